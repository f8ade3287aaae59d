// When the daemon prunes ended jobs (retention.ended_after), and how many at a time, as a
// sans-I/O machine: a pass removes every job that ended before its cutoff in small batches, so
// no transaction holds the database's write lock for long, with a pause between batches for
// the other writers; passes come every tenth of the retention, between a second and an hour.
#pragma once

#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>

namespace devin_orch::core {

struct RetentionPolicy {
  Duration ended_after{0};  // a job that ended longer ago than this is pruned
  std::size_t batch = 100;  // jobs per transaction
  Duration between_batches{50};  // other writers take the lock between two batches
  Duration first_pass_within{10'000};  // after the start, at most this long before a pass
};

// Inputs.
struct RetentionStart {};
struct RetentionDue { TimePoint now; };  // the last Wait has passed
struct RetentionPruned { std::int64_t count; };  // the last Prune removed this many
struct RetentionFailed {};  // the last Prune could not be done (logged by the caller)
using RetentionInput = std::variant<RetentionStart, RetentionDue, RetentionPruned, RetentionFailed>;

// Actions.
struct RetentionWait {
  Duration wait;
  // Set when a pass has just ended: the jobs it pruned and its cutoff, for the log.
  std::optional<std::int64_t> pass_pruned;
  TimePoint pass_cutoff;
};
// Prune at most `limit` jobs that ended before `cutoff`, then report RetentionPruned.
struct RetentionPrune {
  TimePoint cutoff;
  std::size_t limit;
};
using RetentionAction = std::variant<RetentionWait, RetentionPrune>;

class RetentionSchedule {
 public:
  explicit RetentionSchedule(RetentionPolicy policy) noexcept;

  RetentionAction resume(const RetentionInput& input);

  // How long a pass waits for the next: a tenth of ended_after, between 1 s and 1 h.
  Duration period() const noexcept;

 private:
  RetentionPolicy policy_;
  // The pass under way: its cutoff, fixed at its start so that it ends, and what it removed.
  std::optional<TimePoint> cutoff_;
  std::int64_t pruned_ = 0;
};

}  // namespace devin_orch::core
