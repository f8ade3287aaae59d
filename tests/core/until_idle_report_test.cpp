// Tests for what a batch run says while it waits: reasons once when they appear or change,
// progress at its period.
#include "devin_orch/core/until_idle_report.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

TimePoint at(std::int64_t ms) { return from_epoch_ms(ms); }

UntilIdleReasons scheduled(std::int64_t count, std::string key, std::int64_t at_ms) {
  return UntilIdleReasons{.scheduled = ScheduledStarts{.count = count,
                                                       .next_key = std::move(key),
                                                       .next_at = at(at_ms)}};
}

UntilIdleReasons held(std::string org, std::int64_t until_ms, bool creates_only = false) {
  return UntilIdleReasons{.server_waits = {ServerWait{.org_id = std::move(org),
                                                      .until = at(until_ms),
                                                      .creates_only = creates_only}}};
}

TEST(UntilIdleReport, NoReasonsSayNothing) {
  UntilIdleReport report{Duration{0}};
  const auto say = report.observe({}, at(0));
  EXPECT_FALSE(say.reasons);
  EXPECT_FALSE(say.progress);
}

TEST(UntilIdleReport, AReasonIsSaidOnceWhenItAppears) {
  UntilIdleReport report{Duration{0}};
  EXPECT_TRUE(report.observe(scheduled(1, "later", 60'000), at(0)).reasons);
  EXPECT_FALSE(report.observe(scheduled(1, "later", 60'000), at(1'000)).reasons);
  EXPECT_FALSE(report.observe(scheduled(1, "later", 60'000), at(2'000)).reasons);
}

TEST(UntilIdleReport, AChangedReasonIsSaidAgain) {
  UntilIdleReport report{Duration{0}};
  EXPECT_TRUE(report.observe(scheduled(2, "first", 60'000), at(0)).reasons);
  EXPECT_TRUE(report.observe(scheduled(1, "second", 90'000), at(60'000)).reasons)
      << "the first started: one left, another next";
  UntilIdleReasons paused = scheduled(1, "second", 90'000);
  paused.paused = {"org-a (budget review)"};
  EXPECT_TRUE(report.observe(paused, at(61'000)).reasons) << "a pause joined";
  EXPECT_FALSE(report.observe(paused, at(62'000)).reasons);
}

TEST(UntilIdleReport, AServerWaitGrowingLongerIsNotAChange) {
  UntilIdleReport report{Duration{0}};
  EXPECT_TRUE(report.observe(held("org-a", 5'000), at(0)).reasons);
  EXPECT_FALSE(report.observe(held("org-a", 9'000), at(1'000)).reasons) << "a 429 storm";
  EXPECT_TRUE(report.observe(held("org-b", 9'000), at(2'000)).reasons) << "another org";
  EXPECT_TRUE(report.observe(held("org-b", 9'000, /*creates_only=*/true), at(3'000)).reasons)
      << "another kind of wait";
}

TEST(UntilIdleReport, ReasonsThatWentAwayAreSaidAgainWhenTheyReturn) {
  UntilIdleReport report{Duration{0}};
  EXPECT_TRUE(report.observe(held("org-a", 5'000), at(0)).reasons);
  EXPECT_FALSE(report.observe({}, at(6'000)).reasons) << "nothing to say when nothing waits";
  EXPECT_TRUE(report.observe(held("org-a", 20'000), at(10'000)).reasons);
}

TEST(UntilIdleReport, PendingNotificationsAreSaidWhenTheyBecomeTheReason) {
  UntilIdleReport report{Duration{0}};
  EXPECT_TRUE(report.observe({.notifications_pending = 3}, at(0)).reasons);
  // Deliveries going out one by one are progress, not a new reason.
  EXPECT_FALSE(report.observe({.notifications_pending = 2}, at(1'000)).reasons);
  EXPECT_FALSE(report.observe({.notifications_pending = 1}, at(2'000)).reasons);
  // Beside another reason that appears, the line is said again.
  UntilIdleReasons both = scheduled(1, "later", 60'000);
  both.notifications_pending = 1;
  EXPECT_TRUE(report.observe(both, at(3'000)).reasons);
  // Gone and back: said again.
  EXPECT_FALSE(report.observe({}, at(4'000)).reasons);
  EXPECT_TRUE(report.observe({.notifications_pending = 5}, at(5'000)).reasons);
}

TEST(UntilIdleReport, ProgressComesOncePerPeriodAfterTheFirstLook) {
  UntilIdleReport report{Duration{5'000}};
  EXPECT_FALSE(report.observe({}, at(0)).progress);
  EXPECT_FALSE(report.observe({}, at(4'999)).progress);
  EXPECT_TRUE(report.observe({}, at(5'000)).progress);
  EXPECT_FALSE(report.observe({}, at(9'000)).progress);
  EXPECT_TRUE(report.observe({}, at(10'500)).progress);
  EXPECT_FALSE(report.observe({}, at(11'000)).progress);
}

TEST(UntilIdleReport, AZeroPeriodMeansNoProgressLines) {
  UntilIdleReport report{Duration{0}};
  for (std::int64_t t = 0; t < 100'000; t += 1'000) EXPECT_FALSE(report.observe({}, at(t)).progress);
}

}  // namespace
}  // namespace devin_orch::core
