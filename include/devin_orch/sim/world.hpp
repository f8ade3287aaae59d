// The simulated Devin service as a pure function of (request, time): sessions and their
// lifecycle, filters, paging, rate limiting, fault decisions and admin counters. No sockets and
// no clock of its own, so every behaviour is unit-testable with an injected time.
#pragma once

#include "devin_orch/sim/lifecycle.hpp"
#include "devin_orch/sim/rate_limiter.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devin_orch::sim {

enum class TotalMode {
  always,  // `total` is the match count
  never,   // `total` is null
  random,  // either, decided per list request from the seed
};

// How `updated_after` filters a list. The reference says only "epoch, use for incremental
// sync"; other readings an implementation might take are selectable for tests.
enum class UpdatedAfterMode {
  inclusive,          // updated_at >= updated_after (the default, like created_after)
  exclusive,          // updated_at > updated_after
  ignored,            // the parameter is accepted and has no effect
  rejected_with_ids,  // 422 when combined with session_ids
};

// Probabilities in [0, 1], decided per API request in this order.
struct FaultRates {
  double reset = 0.0;              // close the socket without answering; nothing processed
  double http_500 = 0.0;           // answer 500 without processing
  double http_503 = 0.0;           // answer 503 without processing
  double http_429 = 0.0;           // answer 429 without processing (drawn from its own stream)
  double http_502_html = 0.0;      // answer 502 with an HTML page without processing
  double drop_after_create = 0.0;  // successful create processed, connection closed unanswered
  double slow = 0.0;               // processed, answer delayed by slow_ms
  double garbage = 0.0;            // processed, answered 200 with a non-JSON body
  double creating = 0.0;           // a new session passes through the `creating` status
};

struct WorldConfig {
  std::uint64_t seed = 1;
  double time_factor = 1.0;                      // lifecycle durations are multiplied by it
  std::vector<std::string> orgs{"org-demo"};     // organisations that exist
  int enterprise_orgs = 0;                       // extra orgs org-e0001.. (listed and usable)
  std::string api_key;                           // empty: any `Bearer cog_...` is accepted
  // The legacy v1 routes take only v1 keys (apk_..., apk_user_...), v3 ones only v3 keys.
  std::string v1_api_key;                        // empty: any `Bearer apk_...` is accepted
  double rate_limit_rpm = 0.0;                   // per API key; 0 = no rate limit
  double rate_limit_burst = 10.0;                // bucket capacity
  RetryAfterMode retry_after_mode = RetryAfterMode::seconds;
  int max_concurrent_sessions = 0;               // per org; 0 = no cap
  FaultRates faults{};
  int slow_ms = 2000;                            // delay of a `slow` fault (not time-scaled)
  TotalMode total_mode = TotalMode::random;
  UpdatedAfterMode updated_after_mode = UpdatedAfterMode::inclusive;
  bool hold_running = false;                     // runs started now never leave running/working
  int in_flight_grace_ms = 50;                   // see early_requests_after_429
  // The wait that 500, 503 and 429 fault answers announce; 0 = they announce none.
  int fault_retry_after_ms = 0;
  RetryAfterMode fault_retry_after_mode = RetryAfterMode::seconds;  // how they announce it
  // A new session stays out of list answers (any filter) for this long after its creation;
  // GET by id sees it at once. Not scaled by time_factor.
  int list_lag_ms = 0;
  int child_sessions = 2;  // children spawned by a session created with child_playbook_id
  // ACUs each user (create_as_user_id) may consume; a session created as a user who has used
  // it up suspends with user_usage_limit_exceeded before working. nullopt = no quota.
  std::optional<double> user_acu_quota;
};

struct Request {
  std::string_view method;         // "GET", "POST", ...
  std::string_view target;         // origin-form: path and query
  std::string_view authorization;  // the Authorization header, empty if absent
  std::string_view body;
  std::string_view content_type;   // the Content-Type header, empty if absent
};

enum class Delivery {
  respond,  // write the reply (after delay_ms)
  reset,    // abort the connection (RST) without answering
  drop,     // close the connection without answering
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Delivery delivery = Delivery::respond;
  int delay_ms = 0;
  std::string route;  // "<METHOD> <route template>", for logs and stats
};

class World {
 public:
  explicit World(WorldConfig config);
  ~World();
  World(World&&) noexcept;
  World& operator=(World&&) noexcept;

  // Every HTTP request, API and /_sim/ admin alike.
  Reply handle(const Request& request, TimeMs now);

  const WorldConfig& config() const noexcept;
  std::size_t session_count() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace devin_orch::sim
