// The retention schedule's transitions.
#include "devin_orch/core/retention.hpp"

#include <algorithm>

namespace devin_orch::core {
namespace {

constexpr Duration kShortestPeriod{1'000};
constexpr Duration kLongestPeriod{3'600'000};

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

RetentionSchedule::RetentionSchedule(RetentionPolicy policy) noexcept : policy_{policy} {
  policy_.batch = std::max<std::size_t>(policy_.batch, 1);
}

Duration RetentionSchedule::period() const noexcept {
  return std::clamp(policy_.ended_after / 10, kShortestPeriod, kLongestPeriod);
}

RetentionAction RetentionSchedule::resume(const RetentionInput& input) {
  return std::visit(
      Overloaded{
          // A daemon restarted more often than the period must still prune: the first pass
          // comes soon, though not at once (the start has recovery work of its own).
          [&](const RetentionStart&) -> RetentionAction {
            cutoff_.reset();
            return RetentionWait{.wait = std::min(period(), policy_.first_pass_within)};
          },
          [&](const RetentionDue& due) -> RetentionAction {
            if (!cutoff_) {
              cutoff_ = due.now - policy_.ended_after;
              pruned_ = 0;
            }
            return RetentionPrune{.cutoff = *cutoff_, .limit = policy_.batch};
          },
          [&](const RetentionPruned& pruned) -> RetentionAction {
            if (!cutoff_) return RetentionWait{.wait = period()};
            pruned_ += std::max<std::int64_t>(pruned.count, 0);
            // A full batch: more may be left. The pass goes on after a pause for the others.
            if (pruned.count >= static_cast<std::int64_t>(policy_.batch)) {
              return RetentionWait{.wait = policy_.between_batches};
            }
            const TimePoint cutoff = *cutoff_;
            cutoff_.reset();
            return RetentionWait{.wait = period(), .pass_pruned = pruned_, .pass_cutoff = cutoff};
          },
          // The cause is the store's (busy, full, the lease): the next pass tries again.
          [&](const RetentionFailed&) -> RetentionAction {
            cutoff_.reset();
            return RetentionWait{.wait = period()};
          },
      },
      input);
}

}  // namespace devin_orch::core
