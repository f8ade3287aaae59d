// What every part of the daemon (writer, gates, creator, poller, dispatcher) shares: the
// runtime, the configuration, the store, the API clients, the metrics and the random source.
// Private to the app module.
#pragma once

#include "api_clients.hpp"
#include "daemon_metrics.hpp"

#include "devin_orch/api/devin_client.hpp"
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/daemon/runtime.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/store/queue_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

namespace devin_orch::app::detail {

namespace net = boost::asio;
using net::awaitable;
using core::TimePoint;
using SteadyClock = std::chrono::steady_clock;

inline constexpr auto kTuple = net::as_tuple(net::use_awaitable);

// While creates queue at the gate: how long the dispatcher waits between refills of create
// slots, and how long a recorded session waits for others to share its commit. Those creates
// wait for tokens anyway, so neither pause costs throughput, and a longer pause lets more of
// them share one transaction (one fsync) and wakes the daemon less often. The measurements
// behind 250 ms are in bench/findings.md (eleventh round).
inline constexpr auto kGatedCreateBatching = std::chrono::milliseconds{250};

inline core::Duration until(TimePoint deadline, TimePoint now) {
  return std::max(core::Duration{0}, deadline - now);
}

struct Services {
  Runtime& runtime;
  const Config& config;
  store::QueueStore& store;
  ApiClients& clients;
  DaemonMetrics& metrics;
  core::Random& random;

  // The client of the organisation's API version and key: every request about an
  // organisation's sessions goes through it.
  api::DevinClient& client_for(std::string_view org_id) const { return clients.for_org(org_id); }
};

}  // namespace devin_orch::app::detail
