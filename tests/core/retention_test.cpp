// Tests for core::RetentionSchedule, step by step: when passes come, how a pass is cut into
// batches with pauses between them, that a pass ends at its own cutoff, and failures.
#include "devin_orch/core/retention.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kDay = 86'400'000;

TimePoint at(std::int64_t ms) { return from_epoch_ms(ms); }

RetentionWait wait_of(const RetentionAction& action) {
  const auto* wait = std::get_if<RetentionWait>(&action);
  EXPECT_NE(wait, nullptr) << "expected a wait";
  return wait != nullptr ? *wait : RetentionWait{};
}

RetentionPrune prune_of(const RetentionAction& action) {
  const auto* prune = std::get_if<RetentionPrune>(&action);
  EXPECT_NE(prune, nullptr) << "expected a prune";
  return prune != nullptr ? *prune : RetentionPrune{};
}

TEST(RetentionSchedule, PassesComeEveryTenthOfTheRetentionBetweenASecondAndAnHour) {
  EXPECT_EQ(RetentionSchedule({.ended_after = 30 * Duration{kDay}}).period(), 1h);
  EXPECT_EQ(RetentionSchedule({.ended_after = 1h}).period(), 6min);
  EXPECT_EQ(RetentionSchedule({.ended_after = 2s}).period(), 1s);
}

// A daemon restarted more often than an hour still prunes: the first pass comes soon.
TEST(RetentionSchedule, TheFirstPassComesSoonAfterTheStart) {
  RetentionSchedule long_retention({.ended_after = 30 * Duration{kDay}});
  EXPECT_EQ(wait_of(long_retention.resume(RetentionStart{})).wait, 10s);
  RetentionSchedule short_retention({.ended_after = 5s});
  EXPECT_EQ(wait_of(short_retention.resume(RetentionStart{})).wait, 1s);
}

TEST(RetentionSchedule, APassPrunesInBatchesWithPausesAndEndsAtItsOwnCutoff) {
  RetentionSchedule schedule({.ended_after = Duration{kDay}, .batch = 100, .between_batches = 50ms});
  (void)schedule.resume(RetentionStart{});
  const auto first = prune_of(schedule.resume(RetentionDue{at(10 * kDay)}));
  EXPECT_EQ(first.cutoff, at(9 * kDay));
  EXPECT_EQ(first.limit, 100U);

  // A full batch: more may be left, so the pass goes on after a short pause.
  const auto pause = wait_of(schedule.resume(RetentionPruned{100}));
  EXPECT_EQ(pause.wait, 50ms);
  EXPECT_FALSE(pause.pass_pruned.has_value());
  // The same cutoff, although time moved: jobs that aged meanwhile are the next pass's, so a
  // pass ends even while jobs keep ending.
  const auto second = prune_of(schedule.resume(RetentionDue{at(10 * kDay + 60'000)}));
  EXPECT_EQ(second.cutoff, at(9 * kDay));

  // A short batch: nothing older is left; the pass ends and reports its total.
  const auto end = wait_of(schedule.resume(RetentionPruned{37}));
  EXPECT_EQ(end.wait, schedule.period());
  EXPECT_EQ(end.pass_pruned, 137);
  EXPECT_EQ(end.pass_cutoff, at(9 * kDay));

  // The next pass starts from its own time.
  const auto next = prune_of(schedule.resume(RetentionDue{at(11 * kDay)}));
  EXPECT_EQ(next.cutoff, at(10 * kDay));
  EXPECT_EQ(wait_of(schedule.resume(RetentionPruned{0})).pass_pruned, 0);
}

TEST(RetentionSchedule, AFailedBatchEndsThePassUntilTheNextPeriod) {
  RetentionSchedule schedule({.ended_after = 1h, .batch = 10});
  (void)schedule.resume(RetentionStart{});
  (void)prune_of(schedule.resume(RetentionDue{at(10'000'000)}));
  (void)schedule.resume(RetentionPruned{10});
  (void)prune_of(schedule.resume(RetentionDue{at(10'000'050)}));
  const auto failed = wait_of(schedule.resume(RetentionFailed{}));
  EXPECT_EQ(failed.wait, 6min);
  EXPECT_FALSE(failed.pass_pruned.has_value());
  // A new pass, with a new cutoff.
  EXPECT_EQ(prune_of(schedule.resume(RetentionDue{at(20'000'000)})).cutoff,
            at(20'000'000 - 3'600'000));
}

TEST(RetentionSchedule, ABatchOfZeroIsOne) {
  RetentionSchedule schedule({.ended_after = 1h, .batch = 0});
  (void)schedule.resume(RetentionStart{});
  EXPECT_EQ(prune_of(schedule.resume(RetentionDue{at(5'000'000)})).limit, 1U);
}

}  // namespace
}  // namespace devin_orch::core
