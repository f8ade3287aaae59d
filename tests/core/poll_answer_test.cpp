// Step tests for a status poll's bookkeeping: answered once, asked singly, proven unchanged,
// and what failed polls mean.
#include "devin_orch/core/poll_answer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using testing::ElementsAre;
using testing::IsEmpty;

Session session(std::string id, std::int64_t updated_at) {
  Session s;
  s.session_id = std::move(id);
  s.status = "running";
  s.updated_at = updated_at;
  return s;
}

TEST(PollAnswer, EachAskedSessionIsAppliedOnceAndStrangersAreIgnored) {
  const std::vector<Session> items{session("b", 10), session("x", 99), session("a", 11),
                                   session("b", 12)};
  const auto plan = sort_poll_answer({"a", "b", "c"}, items, /*full=*/true, 5);
  EXPECT_THAT(plan.apply, ElementsAre(0u, 2u));
  EXPECT_THAT(plan.ask_singly, ElementsAre("c"));
  EXPECT_THAT(plan.unchanged, IsEmpty());
}

TEST(PollAnswer, LeftOutOfAnIncrementalAnswerMeansUnchanged) {
  const std::vector<Session> items{session("a", 11)};
  const auto plan = sort_poll_answer({"c", "a", "b"}, items, /*full=*/false, 5);
  EXPECT_THAT(plan.apply, ElementsAre(0u));
  EXPECT_THAT(plan.ask_singly, IsEmpty());
  EXPECT_THAT(plan.unchanged, ElementsAre("b", "c"));
}

TEST(PollAnswer, ProvenUntilIsTheNewestOfTheSendTimeAndTheAnswer) {
  const std::vector<Session> items{session("a", 11), session("x", 40)};
  EXPECT_EQ(sort_poll_answer({"a"}, items, true, 5).proven_until, 40);
  EXPECT_EQ(sort_poll_answer({"a"}, {}, true, 50).proven_until, 50);
}

TEST(PollAnswer, AnEmptyFullAnswerAsksForEverySessionByIdNeverCallingItLost) {
  const auto plan = sort_poll_answer({"b", "a"}, {}, /*full=*/true, -1);
  EXPECT_THAT(plan.apply, IsEmpty());
  EXPECT_THAT(plan.ask_singly, ElementsAre("a", "b"));
}

TEST(PollFailures, BackOffGrowsWithConsecutiveFailuresAndResets) {
  Random random{3};
  PollFailures failures{BackoffPolicy{milliseconds{1'000}, milliseconds{30'000}, 2.0},
                        milliseconds{500}};
  const auto first = failures.failed(CallOutcome{.cls = CallClass::ambiguous}, true, random);
  EXPECT_GE(first.retry_in, milliseconds{500});
  EXPECT_LE(first.retry_in, milliseconds{30'000});
  EXPECT_FALSE(first.pause_org);
  EXPECT_FALSE(first.stop_incremental);
  for (int i = 0; i < 10; ++i) (void)failures.failed(CallOutcome{.cls = CallClass::ambiguous}, true, random);
  EXPECT_EQ(failures.consecutive(), 11);
  failures.succeeded();
  EXPECT_EQ(failures.consecutive(), 0);
  EXPECT_GE(failures.retry_delay(random), milliseconds{500});
}

TEST(PollFailures, A401PausesTheOrganisation) {
  Random random{3};
  PollFailures failures{BackoffPolicy{}, milliseconds{500}};
  EXPECT_TRUE(failures.failed(CallOutcome{.cls = CallClass::unauthorized, .http_status = 401},
                              true, random)
                  .pause_org);
}

TEST(PollFailures, ARefusedIncrementalPollTurnsIncrementalPollsOff) {
  Random random{3};
  PollFailures failures{BackoffPolicy{}, milliseconds{500}};
  const CallOutcome refused{.cls = CallClass::rejected, .http_status = 422};
  EXPECT_TRUE(failures.failed(refused, /*full=*/false, random).stop_incremental);
  EXPECT_FALSE(failures.failed(refused, /*full=*/true, random).stop_incremental);
}

}  // namespace
}  // namespace devin_orch::core
