// Which sessions to poll when, as a sans-I/O component: each tracked session has a due time on
// a jittered exponential cadence; due sessions are taken in batches (one list request with
// `session_ids`), sessions due within a short window joining the same batch.
#pragma once

#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace devin_orch::core {

struct PollPlannerPolicy {
  CadencePolicy cadence{};
  // While polls are incremental (set_incremental), the cadence grows only up to this (0: no
  // other cap than cadence.max). An incremental poll costs one request per batch whatever the
  // number of sessions in it, so a short cap sees ends sooner for few more requests.
  Duration incremental_max{0};
  std::size_t max_batch = 200;     // the list endpoint's `first` ceiling
  Duration batch_window{1'000};    // sessions due this soon join a batch taken now
};

class PollPlanner {
 public:
  // Throws std::invalid_argument if max_batch is 0 (a configuration error at start-up).
  PollPlanner(PollPlannerPolicy policy, Random& random);

  // Starts tracking; the first poll is due after the cadence's first (jittered) step.
  // `first_due` overrides that (e.g. re-attach after restart: poll soon). Tracking a session
  // again restarts it at the first step.
  void track(const std::string& session_id, TimePoint now,
             std::optional<TimePoint> first_due = std::nullopt);
  void untrack(const std::string& session_id);
  bool tracking(const std::string& session_id) const;

  // observed() and retry_later() ignore sessions no longer tracked (untracked mid-poll).
  // A polled session is still live. A changed status resets the cadence to its first step;
  // an unchanged one moves one step further (up to the cap).
  void observed(const std::string& session_id, bool changed, TimePoint now);

  // A taken session could not be polled (failed request): due again after `delay`, cadence
  // step unchanged.
  void retry_later(const std::string& session_id, Duration delay, TimePoint now);

  // Whether the organisation's polls ask only for what changed (updated_after): the cadence's
  // cap is then PollPlannerPolicy::incremental_max. Applies from each session's next schedule.
  void set_incremental(bool incremental) noexcept { incremental_ = incremental; }

  // Earliest due time among sessions not currently taken.
  std::optional<TimePoint> next_due() const;

  // Takes up to max_batch sessions due at or before now + batch_window, earliest first. Taken
  // sessions are not due again until observed() or retry_later() is called for them.
  std::vector<std::string> take_due(TimePoint now);

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  // The due index is a binary min-heap of (due, seq) kept beside the id map, each entry
  // knowing its heap slot: rescheduling moves one element in place instead of freeing and
  // allocating a tree node plus a copy of the id (at 10,000 sessions that was two
  // allocations per session per poll). `seq` is a tie-breaker so equal due times keep
  // scheduling order (FIFO fairness).
  static constexpr std::size_t kTaken = static_cast<std::size_t>(-1);
  struct Entry {
    int step = 0;
    std::size_t slot = kTaken;  // index in due_, or kTaken while a poll is in flight
  };
  using Node = std::unordered_map<std::string, Entry>::value_type;
  struct Due {
    TimePoint at;
    std::uint64_t seq = 0;
    Node* node = nullptr;  // unordered_map nodes never move, not even on rehash
  };

  void schedule(Node& node, TimePoint due);
  void unschedule(Entry& entry);
  void place(std::size_t slot, Due due);
  void sift_up(std::size_t slot);
  void sift_down(std::size_t slot);

  Duration delay(int step);

  PollPlannerPolicy policy_;
  bool incremental_ = false;
  Random& random_;
  std::vector<Due> due_;
  std::uint64_t next_seq_ = 0;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace devin_orch::core
