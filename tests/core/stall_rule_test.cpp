// Tests for the stall rule: a session is stalled once neither its updated_at nor its message
// count has moved for stall_after; it is reported once per stall, and moving again resets it.
#include "devin_orch/core/stall_rule.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using Step = StallWatch::Step;
using namespace std::chrono_literals;

constexpr std::int64_t kStart = 1'800'000'000'000;
TimePoint at(Duration offset) { return from_epoch_ms(kStart) + offset; }

TEST(StallRule, AnUnmovedUpdatedAtStallsAfterTheDelayAndIsReportedOnce) {
  StallWatch watch{{.stall_after = 10min}};
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(1min)), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(10min) - 1ms), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(10min)), Step::stalled);
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(11min)), Step::still_stalled);
  EXPECT_EQ(watch.still_since(), at(0s));
}

TEST(StallRule, ANewerUpdatedAtIsProgressAndAStallAfterItIsANewOne) {
  StallWatch watch{{.stall_after = 10min}};
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(10min)), Step::stalled);
  EXPECT_EQ(watch.observe({.updated_at = at(12min)}, at(12min)), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(12min)}, at(21min)), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(12min)}, at(22min)), Step::stalled)
      << "a second stall is reported again";
  // An older updated_at (a lagging read) is not progress and does not go back in time.
  EXPECT_EQ(watch.observe({.updated_at = at(1min)}, at(23min)), Step::still_stalled);
  EXPECT_EQ(watch.still_since(), at(12min));
}

TEST(StallRule, AChangedMessageCountIsProgressFromWhenItWasSeen) {
  StallWatch watch{{.stall_after = 10min}};
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 4}, at(5min)), Step::progressing);
  // The count moved: progress at the moment it was seen, though updated_at did not move.
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 5}, at(9min)), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 5}, at(18min)), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 5}, at(19min)), Step::stalled);
  // A poll that did not read the count changes nothing.
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(20min)), Step::still_stalled);
}

// The count costs a request, so it is asked for only around a quiet spell: a baseline halfway
// through, a second look before a stall may be called, then every half stall_after.
TEST(StallRule, TheMessageCountIsWantedOnlyHalfwayThroughAQuietSpellAndBeforeAStall) {
  StallWatch watch{{.stall_after = 10min}};
  EXPECT_FALSE(watch.wants_message_count(at(0s), at(4min)));
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(4min)), Step::progressing);
  EXPECT_TRUE(watch.wants_message_count(at(0s), at(5min)));
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 3}, at(5min)), Step::progressing);
  EXPECT_FALSE(watch.wants_message_count(at(0s), at(6min)));
  EXPECT_FALSE(watch.wants_message_count(at(0s), at(10min) - 1ms));
  // Due to be called a stall: the count is read once more first, and it did not move.
  EXPECT_TRUE(watch.wants_message_count(at(0s), at(10min)));
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 3}, at(10min)), Step::stalled);
  EXPECT_FALSE(watch.wants_message_count(at(0s), at(14min)));
  EXPECT_TRUE(watch.wants_message_count(at(0s), at(15min)));
  // Devin wrote meanwhile: progress, and the new spell starts without a read.
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 4}, at(15min)), Step::progressing);
  EXPECT_FALSE(watch.wants_message_count(at(0s), at(20min))) << "that read is the baseline";
  EXPECT_TRUE(watch.wants_message_count(at(0s), at(25min)));
  // A moved updated_at starts a new spell too: no read until it is half through.
  EXPECT_FALSE(watch.wants_message_count(at(19min), at(23min)));
}

// A baseline read late in the spell (sparse polls) is not the last word: the stall is called
// only on a count read once it was due.
TEST(StallRule, ALateBaselineIsReadAgainWhenTheStallIsDue) {
  StallWatch watch{{.stall_after = 2s}};
  ASSERT_TRUE(watch.wants_message_count(at(0s), at(1900ms)));
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 1}, at(1900ms)),
            Step::progressing);
  EXPECT_TRUE(watch.wants_message_count(at(0s), at(2s)));
  EXPECT_EQ(watch.observe({.updated_at = at(0s), .message_count = 2}, at(2s)), Step::progressing);
}

TEST(StallRule, AnUnreadableCountIsNotAskedForAgainForHalfTheDelay) {
  StallWatch watch{{.stall_after = 10min}};
  ASSERT_TRUE(watch.wants_message_count(at(0s), at(10min)));
  watch.message_count_unavailable(at(10min));
  EXPECT_FALSE(watch.wants_message_count(at(0s), at(12min)));
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(12min)), Step::stalled)
      << "judged by updated_at alone";
  EXPECT_TRUE(watch.wants_message_count(at(0s), at(15min)));
  EXPECT_FALSE(StallWatch{{}}.wants_message_count(at(0s), at(1000h)));
}

TEST(StallRule, NoDelayMeansNeverStalled) {
  StallWatch watch{{}};
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(1000h)), Step::progressing);
}

TEST(StallRule, AStallReportedBeforeARestartIsNotReportedAgain) {
  StallWatch watch{{.stall_after = 10min}};
  watch.already_reported(at(0s));  // an earlier process reported the stall since 0s
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(30min)), Step::still_stalled);
  // It moves again, then stalls again: a new stall, reported.
  EXPECT_EQ(watch.observe({.updated_at = at(31min)}, at(32min)), Step::progressing);
  EXPECT_EQ(watch.observe({.updated_at = at(31min)}, at(41min)), Step::stalled);
}

TEST(StallRule, AStallReportedBeforeARestartThatMovedMeanwhileIsANewStall) {
  StallWatch watch{{.stall_after = 10min}};
  watch.already_reported(at(0s));
  // While the daemon was down the session moved at 15min, then stood still again.
  EXPECT_EQ(watch.observe({.updated_at = at(15min)}, at(40min)), Step::stalled);
  EXPECT_EQ(watch.still_since(), at(15min));
}

TEST(StallRule, OnlySessionsAtWorkAreWatched) {
  EXPECT_TRUE(stall_applies("running", std::nullopt));
  EXPECT_TRUE(stall_applies("running", std::string{"working"}));
  EXPECT_TRUE(stall_applies("running", std::string{"some_new_detail"}));
  EXPECT_FALSE(stall_applies("running", std::string{"waiting_for_user"}));
  EXPECT_FALSE(stall_applies("running", std::string{"waiting_for_approval"}));
  EXPECT_FALSE(stall_applies("running", std::string{"finished"}));
  EXPECT_FALSE(stall_applies("suspended", std::string{"inactivity"}));
  EXPECT_FALSE(stall_applies("claimed", std::nullopt));
}

TEST(StallRule, AJobsOverrideWinsFieldByField) {
  const StallPolicy configured{.stall_after = 30min, .action = StallAction::message,
                               .message = "still there?"};
  const auto same = stall_policy_for(configured, {});
  EXPECT_EQ(same, configured);
  const auto shorter = stall_policy_for(configured, {.after = 5min});
  EXPECT_EQ(shorter.stall_after, Duration{5min});
  EXPECT_EQ(shorter.action, StallAction::message);
  const auto ended = stall_policy_for(StallPolicy{}, {.action = StallAction::terminate});
  EXPECT_FALSE(ended.stall_after) << "an action alone does not turn detection on";
  EXPECT_EQ(ended.action, StallAction::terminate);
  EXPECT_EQ(ended.message, StallPolicy{}.message);
}

TEST(StallRule, ActionsHaveTheirConfigNames) {
  for (const auto action : {StallAction::report, StallAction::message, StallAction::terminate}) {
    EXPECT_EQ(parse_stall_action(to_string(action)), action);
  }
  EXPECT_FALSE(parse_stall_action("kill"));
}

}  // namespace
}  // namespace devin_orch::core
