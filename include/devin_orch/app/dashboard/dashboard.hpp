// The dashboard: the JSON API under /api/v1 and the HTML pages under /, as one pure function
// from an HttpRequest to an HttpResponse over the operator's store (no sockets here; the daemon
// serves it with server::HttpListener on its event loop, one request at a time).
#pragma once

#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/dashboard/web_auth.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/server/http_listener.hpp"
#include "devin_orch/store/operator_store.hpp"
#include "devin_orch/store/outbox_store.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app::dashboard {

// A POST /api/v1/jobs body: one job in the `enqueue --stdin` format, as long as a line of it.
inline constexpr std::size_t kMaxJobBodyBytes = 1U << 20U;
// Jobs on one page of the list.
inline constexpr std::size_t kPageSize = 50;
// How often the pages refresh themselves.
inline constexpr int kRefreshSeconds = 5;

// One organisation's rate gate as the daemon holds it (in memory only: the store has no copy).
struct RateUse {
  std::string org_id;
  double ceiling_per_minute = 0;  // rate.requests_per_minute
  double allowed_per_minute = 0;  // after the gate slowed down for 429s
  double tokens = 0;              // requests that may go out back to back now
  double burst = 0;               // rate.burst: the most tokens the gate holds
  int requests_in_flight = 0;
};

class Dashboard {
 public:
  // `store` and `outbox` (may be null: no events shown) must outlive it. `auth` decides who
  // may write; `now` is the clock (core::wall_now in the daemon).
  Dashboard(store::OperatorStore& store, store::OutboxStore* outbox, const Config& config,
            WebAuth auth, std::function<core::TimePoint()> now);

  server::HttpResponse handle(const server::HttpRequest& request);
  // The answer to a request the listener refused (too large, malformed): a JSON error.
  static server::HttpResponse rejected(int status, std::string_view reason);

  const WebAuth& auth() const noexcept { return auth_; }
  // The daemon's rate gates, for the overview; without it the overview has no rate section.
  void set_rate_use(std::function<std::vector<RateUse>()> rate_use) {
    rate_use_ = std::move(rate_use);
  }

 private:
  store::OperatorStore& store_;
  store::OutboxStore* outbox_;
  const Config& config_;
  WebAuth auth_;
  std::function<core::TimePoint()> now_;
  std::function<std::vector<RateUse>()> rate_use_;
};

}  // namespace devin_orch::app::dashboard
