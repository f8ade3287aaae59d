// Tests for AcuTally: a job's cumulative ACU figures become counter increments that add up to the
// job's total, never go negative, and never count what an earlier process counted.
#include "devin_orch/core/acu_tally.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace devin_orch::core {
namespace {

TEST(AcuTally, ANewSessionCountsEachIncreaseOfItsOwnFigure) {
  AcuTally tally{ParentAcus::separate, /*reattached=*/false};
  EXPECT_DOUBLE_EQ(tally.own(0.0), 0.0);
  EXPECT_DOUBLE_EQ(tally.own(1.5), 1.5);
  EXPECT_DOUBLE_EQ(tally.own(1.5), 0.0) << "an unchanged figure adds nothing";
  EXPECT_DOUBLE_EQ(tally.own(4.0), 2.5);
  EXPECT_DOUBLE_EQ(tally.counted(), 4.0);
}

TEST(AcuTally, SeparateReportingAddsTheChildrensSum) {
  AcuTally tally{ParentAcus::separate, false};
  EXPECT_DOUBLE_EQ(tally.own(2.0), 2.0);
  EXPECT_DOUBLE_EQ(tally.children(3.0), 3.0);
  EXPECT_DOUBLE_EQ(tally.own(2.5), 0.5);
  EXPECT_DOUBLE_EQ(tally.children(5.0), 2.0);
  EXPECT_DOUBLE_EQ(tally.counted(), 7.5);
}

TEST(AcuTally, IncludedChildrenAreNotCountedTwice) {
  // The parent's figure already holds its children's: the total is the larger of the two.
  AcuTally tally{ParentAcus::include_children, false};
  EXPECT_DOUBLE_EQ(tally.own(5.0), 5.0);
  EXPECT_DOUBLE_EQ(tally.children(3.0), 0.0);
  // The children's sum read after the parent's figure can lead it for a while.
  EXPECT_DOUBLE_EQ(tally.children(6.0), 1.0);
  EXPECT_DOUBLE_EQ(tally.own(6.5), 0.5);
  EXPECT_DOUBLE_EQ(tally.counted(), 6.5);
}

TEST(AcuTally, AFallingFigureNeverMakesTheCounterGoDown) {
  AcuTally tally{ParentAcus::separate, false};
  EXPECT_DOUBLE_EQ(tally.own(10.0), 10.0);
  EXPECT_DOUBLE_EQ(tally.own(8.0), 0.0);
  EXPECT_DOUBLE_EQ(tally.own(9.0), 0.0) << "still below what was counted";
  EXPECT_DOUBLE_EQ(tally.own(11.0), 1.0);
  EXPECT_DOUBLE_EQ(tally.own(-3.0), 0.0) << "a negative figure counts as zero";
}

TEST(AcuTally, NonFiniteFiguresAreIgnored) {
  AcuTally tally{ParentAcus::separate, false};
  EXPECT_DOUBLE_EQ(tally.own(2.0), 2.0);
  EXPECT_DOUBLE_EQ(tally.own(std::numeric_limits<double>::infinity()), 0.0);
  EXPECT_DOUBLE_EQ(tally.children(std::numeric_limits<double>::quiet_NaN()), 0.0);
  EXPECT_DOUBLE_EQ(tally.own(3.0), 1.0) << "the bad readings left nothing behind";
}

TEST(AcuTally, AReattachedSessionsFirstReadingsAreBaselines) {
  // The previous process counted 40 own and 7 children's ACUs; this one counts from there.
  AcuTally tally{ParentAcus::separate, /*reattached=*/true};
  EXPECT_DOUBLE_EQ(tally.own(40.0), 0.0);
  EXPECT_DOUBLE_EQ(tally.children(7.0), 0.0);
  EXPECT_DOUBLE_EQ(tally.counted(), 47.0);
  EXPECT_DOUBLE_EQ(tally.own(41.0), 1.0);
  EXPECT_DOUBLE_EQ(tally.children(9.0), 2.0);
}

}  // namespace
}  // namespace devin_orch::core
