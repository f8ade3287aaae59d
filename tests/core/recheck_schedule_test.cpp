// Tests for the looks at the queue that follow a file-change notice.
#include "devin_orch/core/recheck_schedule.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace devin_orch::core {
namespace {

TimePoint at(std::int64_t ms) { return from_epoch_ms(ms); }

// Drives the schedule the way the dispatcher does: look whenever the next look is due.
std::vector<std::int64_t> looks_after(RecheckSchedule& schedule) {
  std::vector<std::int64_t> looks;
  while (const auto due = schedule.next()) {
    looks.push_back(to_epoch_ms(*due));
    schedule.looked(*due);
  }
  return looks;
}

TEST(RecheckSchedule, NothingIsDueBeforeANotice) {
  RecheckSchedule schedule;
  EXPECT_FALSE(schedule.next());
  schedule.looked(at(5));
  EXPECT_FALSE(schedule.next());
}

TEST(RecheckSchedule, ANoticeIsLookedAtAtOnceThenAtGrowingIntervals) {
  RecheckSchedule schedule;
  schedule.on_notice(at(1000));
  EXPECT_EQ(looks_after(schedule), (std::vector<std::int64_t>{1000, 1002, 1010, 1050, 1250}));
  EXPECT_FALSE(schedule.next());
}

TEST(RecheckSchedule, ALateLookUsesUpEveryOffsetItCovers) {
  RecheckSchedule schedule;
  schedule.on_notice(at(0));
  schedule.looked(at(30));  // the loop was busy: the looks at 0, 2 and 10 happened as one
  EXPECT_EQ(schedule.next(), at(50));
  schedule.looked(at(400));
  EXPECT_FALSE(schedule.next());
}

TEST(RecheckSchedule, ANewNoticeStartsOver) {
  RecheckSchedule schedule;
  schedule.on_notice(at(0));
  schedule.looked(at(0));
  schedule.looked(at(2));
  schedule.looked(at(10));
  schedule.on_notice(at(40));
  EXPECT_EQ(schedule.next(), at(40));
  EXPECT_EQ(looks_after(schedule), (std::vector<std::int64_t>{40, 42, 50, 90, 290}));
}

TEST(RecheckSchedule, AnEarlyLookUsesNothingUp) {
  RecheckSchedule schedule;
  schedule.on_notice(at(100));
  schedule.looked(at(99));  // e.g. the once-a-second look, just before the notice's time
  EXPECT_EQ(schedule.next(), at(100));
}

}  // namespace
}  // namespace devin_orch::core
