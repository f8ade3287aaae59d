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

TEST(StallRule, NoDelayMeansNeverStalled) {
  StallWatch watch{{}};
  EXPECT_EQ(watch.observe({.updated_at = at(0s)}, at(1000h)), Step::progressing);
}

TEST(StallRule, ActionsHaveTheirConfigNames) {
  for (const auto action : {StallAction::report, StallAction::message, StallAction::terminate}) {
    EXPECT_EQ(parse_stall_action(to_string(action)), action);
  }
  EXPECT_FALSE(parse_stall_action("kill"));
}

}  // namespace
}  // namespace devin_orch::core
