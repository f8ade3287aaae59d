// Tests for the poll planner: batching, coalescing, cadence growth and reset, and scale.
#include "devin_orch/core/poll_planner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ElementsAre;
using testing::IsEmpty;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

// Exact, jitter-free cadence: 10 s, 20 s, 40 s, capped at 60 s.
PollPlannerPolicy exact_policy(std::size_t max_batch = 200, Duration window = seconds{1}) {
  return PollPlannerPolicy{
      .cadence = {.initial = seconds{10}, .max = seconds{60}, .multiplier = 2.0, .jitter = 0.0},
      .max_batch = max_batch,
      .batch_window = window};
}

TEST(PollPlanner, FirstPollIsOneCadenceStepAfterTracking) {
  Random random{1};
  PollPlanner planner{exact_policy(), random};
  planner.track("a", kT0);
  EXPECT_TRUE(planner.tracking("a"));
  EXPECT_EQ(planner.size(), 1u);
  EXPECT_EQ(planner.next_due(), kT0 + seconds{10});
  EXPECT_THAT(planner.take_due(kT0 + seconds{8}), IsEmpty());
  EXPECT_THAT(planner.take_due(kT0 + seconds{9}), ElementsAre("a"));  // within the window
}

// Incremental polls cost one request per batch whatever its size: their cadence stops growing
// at incremental_max, so an end is seen within about that long. Full polls keep the long cap.
TEST(PollPlanner, IncrementalPollsCapTheCadenceSooner) {
  Random random{1};
  PollPlannerPolicy policy = exact_policy();
  policy.incremental_max = seconds{15};
  PollPlanner planner{policy, random};
  planner.set_incremental(true);
  planner.track("a", kT0);
  EXPECT_EQ(planner.next_due(), kT0 + seconds{10});
  TimePoint now = kT0 + seconds{10};
  ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
  planner.observed("a", false, now);
  EXPECT_EQ(planner.next_due(), now + seconds{15});  // 20 s capped at 15
  now += seconds{15};
  ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
  planner.observed("a", false, now);
  EXPECT_EQ(planner.next_due(), now + seconds{15});
  // The organisation fell back to full polls: the usual cadence and cap again.
  planner.set_incremental(false);
  now += seconds{15};
  ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
  planner.observed("a", false, now);
  EXPECT_EQ(planner.next_due(), now + seconds{60});
}

TEST(PollPlanner, FirstDueOverridesTheCadence) {
  Random random{2};
  PollPlanner planner{exact_policy(), random};
  planner.track("a", kT0, kT0);
  EXPECT_EQ(planner.next_due(), kT0);
  EXPECT_THAT(planner.take_due(kT0), ElementsAre("a"));
}

TEST(PollPlanner, TakesEarliestFirstUpToMaxBatch) {
  Random random{3};
  PollPlanner planner{exact_policy(3, seconds{0}), random};
  planner.track("late", kT0, kT0 + seconds{5});
  planner.track("first", kT0, kT0 + seconds{1});
  planner.track("second", kT0, kT0 + seconds{2});
  planner.track("third", kT0, kT0 + seconds{3});
  planner.track("fourth", kT0, kT0 + seconds{4});
  EXPECT_THAT(planner.take_due(kT0 + seconds{10}), ElementsAre("first", "second", "third"));
  EXPECT_THAT(planner.take_due(kT0 + seconds{10}), ElementsAre("fourth", "late"));
  EXPECT_THAT(planner.take_due(kT0 + seconds{10}), IsEmpty());
  EXPECT_EQ(planner.next_due(), std::nullopt);
  EXPECT_EQ(planner.size(), 5u);  // taken sessions are still tracked
}

TEST(PollPlanner, EqualDueTimesKeepTrackingOrder) {
  Random random{4};
  PollPlanner planner{exact_policy(), random};
  for (const char* id : {"c", "a", "b"}) planner.track(id, kT0, kT0);
  EXPECT_THAT(planner.take_due(kT0), ElementsAre("c", "a", "b"));
}

TEST(PollPlanner, SessionsDueWithinTheWindowJoinTheBatch) {
  Random random{5};
  PollPlanner planner{exact_policy(200, milliseconds{1'000}), random};
  planner.track("now", kT0, kT0);
  planner.track("soon", kT0, kT0 + milliseconds{1'000});
  planner.track("later", kT0, kT0 + milliseconds{1'001});
  EXPECT_THAT(planner.take_due(kT0), ElementsAre("now", "soon"));
  EXPECT_EQ(planner.next_due(), kT0 + milliseconds{1'001});
}

TEST(PollPlanner, TakenSessionsAreNotOfferedAgainUntilObserved) {
  Random random{6};
  PollPlanner planner{exact_policy(), random};
  planner.track("a", kT0, kT0);
  planner.track("b", kT0, kT0);
  EXPECT_THAT(planner.take_due(kT0), ElementsAre("a", "b"));
  EXPECT_THAT(planner.take_due(kT0 + std::chrono::hours{5}), IsEmpty());
  EXPECT_EQ(planner.next_due(), std::nullopt);

  planner.observed("a", false, kT0 + seconds{1});
  EXPECT_EQ(planner.next_due(), kT0 + seconds{21});  // step 1: 20 s
  EXPECT_THAT(planner.take_due(kT0 + std::chrono::hours{5}), ElementsAre("a"));
}

TEST(PollPlanner, UntrackingATakenSessionForgetsItForGood) {
  Random random{7};
  PollPlanner planner{exact_policy(), random};
  planner.track("a", kT0, kT0);
  planner.track("b", kT0, kT0 + seconds{30});
  ASSERT_THAT(planner.take_due(kT0), ElementsAre("a"));
  planner.untrack("a");
  EXPECT_FALSE(planner.tracking("a"));
  EXPECT_EQ(planner.size(), 1u);
  // An answer for it that was already in flight changes nothing.
  planner.observed("a", true, kT0 + seconds{1});
  planner.retry_later("a", seconds{1}, kT0 + seconds{1});
  EXPECT_FALSE(planner.tracking("a"));
  EXPECT_THAT(planner.take_due(kT0 + seconds{60}), ElementsAre("b"));

  // Untracking a scheduled session removes it from the schedule too; unknown ids are ignored.
  planner.track("c", kT0, kT0 + seconds{70});
  planner.untrack("c");
  planner.untrack("never-tracked");
  EXPECT_EQ(planner.next_due(), std::nullopt);
  EXPECT_EQ(planner.size(), 1u);
}

TEST(PollPlanner, RetryLaterKeepsTheCadenceStep) {
  Random random{8};
  PollPlanner planner{exact_policy(200, seconds{0}), random};
  planner.track("a", kT0, kT0);
  ASSERT_THAT(planner.take_due(kT0), ElementsAre("a"));
  planner.observed("a", false, kT0);  // step 1: due at +20 s
  ASSERT_THAT(planner.take_due(kT0 + seconds{20}), ElementsAre("a"));
  planner.retry_later("a", seconds{3}, kT0 + seconds{20});
  EXPECT_EQ(planner.next_due(), kT0 + seconds{23});
  ASSERT_THAT(planner.take_due(kT0 + seconds{23}), ElementsAre("a"));
  planner.observed("a", false, kT0 + seconds{23});  // step 2, not 1: 40 s
  EXPECT_EQ(planner.next_due(), kT0 + seconds{63});
}

TEST(PollPlanner, CadenceGrowsWhileUnchangedAndResetsOnChange) {
  Random random{9};
  PollPlanner planner{exact_policy(200, seconds{0}), random};
  planner.track("a", kT0, kT0);
  TimePoint now = kT0;
  const long long expected_gaps[] = {20, 40, 60, 60, 60};
  for (long long gap : expected_gaps) {
    ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
    planner.observed("a", false, now);
    ASSERT_EQ(planner.next_due(), now + seconds{gap});
    now += seconds{gap};
  }
  ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
  planner.observed("a", true, now);
  EXPECT_EQ(planner.next_due(), now + seconds{10});

  // Re-tracking also starts over.
  ASSERT_THAT(planner.take_due(now + seconds{10}), ElementsAre("a"));
  planner.observed("a", false, now + seconds{10});
  planner.track("a", now + seconds{10});
  EXPECT_EQ(planner.next_due(), now + seconds{20});
  EXPECT_EQ(planner.size(), 1u);
}

TEST(PollPlanner, StepIsCappedSoThousandsOfObservationsStayAtTheMax) {
  Random random{10};
  PollPlanner planner{exact_policy(200, seconds{0}), random};
  planner.track("a", kT0, kT0);
  TimePoint now = kT0;
  for (int i = 0; i < 5'000; ++i) {
    ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
    planner.observed("a", false, now);
    now = *planner.next_due();
  }
  ASSERT_THAT(planner.take_due(now), ElementsAre("a"));
  planner.observed("a", false, now);
  EXPECT_EQ(planner.next_due(), now + seconds{60});
  planner.observed("a", true, now);
  EXPECT_EQ(planner.next_due(), now + seconds{10});
}

TEST(PollPlanner, JitterSpreadsDueTimesWithinTheBand) {
  Random random{11};
  // One session per batch and no window, so every due time is seen on its own.
  PollPlanner planner{PollPlannerPolicy{.cadence = {.initial = seconds{10}, .jitter = 0.2},
                                        .max_batch = 1, .batch_window = seconds{0}},
                      random};
  std::set<long long> distinct;
  for (int i = 0; i < 2'000; ++i) {
    const std::string id = "s" + std::to_string(i);
    planner.track(id, kT0);
  }
  while (auto due = planner.next_due()) {
    const long long offset = (*due - kT0).count();
    ASSERT_GE(offset, 8'000);
    ASSERT_LE(offset, 12'000);
    distinct.insert(offset);
    ASSERT_EQ(planner.take_due(*due).size(), 1u);
  }
  EXPECT_GT(distinct.size(), 500u);
}

TEST(PollPlanner, TenThousandSessionsTakeFiftyFullBatchesPerCycle) {
  Random random{12};
  PollPlanner planner{exact_policy(200, seconds{1}), random};
  for (int i = 0; i < 10'000; ++i) planner.track("s" + std::to_string(i), kT0, kT0);

  for (int cycle = 0; cycle < 3; ++cycle) {
    const TimePoint now = *planner.next_due();
    std::vector<std::string> taken_this_cycle;
    int batches = 0;
    while (true) {
      auto batch = planner.take_due(now);
      if (batch.empty()) break;
      ++batches;
      ASSERT_EQ(batch.size(), 200u);
      taken_this_cycle.insert(taken_this_cycle.end(), batch.begin(), batch.end());
    }
    EXPECT_EQ(batches, 50) << "cycle " << cycle;  // ceil(10000 / 200)
    std::sort(taken_this_cycle.begin(), taken_this_cycle.end());
    EXPECT_EQ(std::unique(taken_this_cycle.begin(), taken_this_cycle.end()),
              taken_this_cycle.end()) << "a session was offered twice in one cycle";
    ASSERT_EQ(taken_this_cycle.size(), 10'000u);
    for (const auto& id : taken_this_cycle) planner.observed(id, false, now);
  }
  EXPECT_EQ(planner.size(), 10'000u);
}

TEST(PollPlanner, ZeroMaxBatchIsRefused) {
  Random random{13};
  EXPECT_THROW((PollPlanner{PollPlannerPolicy{.max_batch = 0}, random}), std::invalid_argument);
}

}  // namespace
}  // namespace devin_orch::core
