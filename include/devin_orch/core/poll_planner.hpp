// Which sessions to poll when, as a sans-I/O component: each tracked session has a due time on
// a jittered exponential cadence; due sessions are taken in batches (one list request with
// `session_ids`), sessions due within a short window joining the same batch.
#pragma once

#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace devin_orch::core {

struct PollPlannerPolicy {
  CadencePolicy cadence{};
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

  // Earliest due time among sessions not currently taken.
  std::optional<TimePoint> next_due() const;

  // Takes up to max_batch sessions due at or before now + batch_window, earliest first. Taken
  // sessions are not due again until observed() or retry_later() is called for them.
  std::vector<std::string> take_due(TimePoint now);

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    int step = 0;
    std::optional<std::multimap<TimePoint, std::string>::iterator> slot;  // empty while taken
  };

  void schedule(const std::string& session_id, Entry& entry, TimePoint due);

  PollPlannerPolicy policy_;
  Random& random_;
  std::multimap<TimePoint, std::string> due_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace devin_orch::core
