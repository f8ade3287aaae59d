// Tests for the spending guard: UTC day and month windows, what live and ended jobs hold of a
// budget, admission at the edge of a budget, the roll-over, and who is over a hard limit.
#include "devin_orch/core/spending_guard.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

// 2026-03-15T23:00:00Z
constexpr std::int64_t kMarch15At23 = 1773615600000;
constexpr std::int64_t kHour = 3'600'000;

TimePoint at(std::int64_t ms) { return from_epoch_ms(ms); }

SpendingCharge live(std::int64_t id, std::int64_t charged_ms, std::optional<double> limit,
                    double consumed = 0.0) {
  return {.job_id = id, .charged_at = at(charged_ms), .consumed = consumed, .limit = limit,
          .live = true};
}
SpendingCharge ended(std::int64_t id, std::int64_t charged_ms, double consumed) {
  return {.job_id = id, .charged_at = at(charged_ms), .consumed = consumed, .live = false};
}

TEST(SpendingGuard, WindowsAreUtcDaysAndCalendarMonths) {
  const auto day = window_at(SpendingWindow::day, at(kMarch15At23));
  EXPECT_EQ(to_epoch_ms(day.start), kMarch15At23 - 23 * kHour);  // 2026-03-15T00:00:00Z
  EXPECT_EQ(to_epoch_ms(day.end), kMarch15At23 + kHour);          // 2026-03-16T00:00:00Z
  const auto month = window_at(SpendingWindow::month, at(kMarch15At23));
  EXPECT_EQ(to_epoch_ms(month.start), 1772323200000);  // 2026-03-01T00:00:00Z
  EXPECT_EQ(to_epoch_ms(month.end), 1775001600000);    // 2026-04-01T00:00:00Z
  // December rolls into the next year.
  const auto december = window_at(SpendingWindow::month, at(1796083200000));  // 2026-12-01
  EXPECT_EQ(to_epoch_ms(december.end), 1798761600000);                        // 2027-01-01
}

TEST(SpendingGuard, ALiveJobHoldsItsLimitOrWhatItConsumedIfMore) {
  EXPECT_DOUBLE_EQ(held_acus(live(1, 0, 3.0, 1.0), 10.0), 3.0);
  EXPECT_DOUBLE_EQ(held_acus(live(1, 0, 3.0, 4.5), 10.0), 4.5);
  EXPECT_DOUBLE_EQ(held_acus(live(1, 0, std::nullopt, 1.0), 10.0), 10.0)
      << "no max_acu_limit: the default reserve";
  EXPECT_DOUBLE_EQ(held_acus(ended(1, 0, 1.25), 10.0), 1.25) << "an ended job frees the rest";
}

TEST(SpendingGuard, TenAcusADayAdmitThreeJobsOfThree) {
  const SpendingBudget budget{.per_day = 10.0};
  std::vector<SpendingCharge> charges;
  const auto now = at(kMarch15At23);
  for (int started = 0; started < 3; ++started) {
    const auto verdict = admit(budget, charges, 3.0, now);
    ASSERT_TRUE(verdict.allowed) << "job " << started;
    charges.push_back(live(started, kMarch15At23, 3.0));
  }
  const auto held = admit(budget, charges, 3.0, now);
  EXPECT_FALSE(held.allowed);
  EXPECT_EQ(held.window, SpendingWindow::day);
  EXPECT_DOUBLE_EQ(held.committed, 9.0);
  EXPECT_DOUBLE_EQ(held.reservation, 3.0);
  EXPECT_DOUBLE_EQ(held.budget, 10.0);
  EXPECT_EQ(to_epoch_ms(held.resumes_at), kMarch15At23 + kHour);
  // A job small enough for what is left still goes.
  EXPECT_TRUE(admit(budget, charges, 1.0, now).allowed);
}

TEST(SpendingGuard, TheNextDayStartsAfresh) {
  const SpendingBudget budget{.per_day = 10.0};
  const std::vector<SpendingCharge> charges{live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0),
                                            live(3, kMarch15At23, 3.0)};
  EXPECT_FALSE(admit(budget, charges, 3.0, at(kMarch15At23 + kHour - 1)).allowed);
  EXPECT_TRUE(admit(budget, charges, 3.0, at(kMarch15At23 + kHour)).allowed);
}

TEST(SpendingGuard, EndedJobsCountWhatTheyConsumed) {
  const SpendingBudget budget{.per_day = 10.0};
  const std::vector<SpendingCharge> charges{ended(1, kMarch15At23, 2.0),
                                            ended(2, kMarch15At23, 2.5), live(3, kMarch15At23, 3.0)};
  EXPECT_TRUE(admit(budget, charges, 2.5, at(kMarch15At23)).allowed) << "7.5 + 2.5 = 10";
  EXPECT_FALSE(admit(budget, charges, 2.6, at(kMarch15At23)).allowed);
}

TEST(SpendingGuard, TheMonthHoldsWhenTheDayWouldNot) {
  const SpendingBudget budget{.per_day = 10.0, .per_month = 20.0};
  // Earlier this month: 18 ACUs on other days.
  const std::vector<SpendingCharge> charges{ended(1, kMarch15At23 - 72 * kHour, 18.0)};
  const auto verdict = admit(budget, charges, 3.0, at(kMarch15At23));
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.window, SpendingWindow::month);
  EXPECT_DOUBLE_EQ(verdict.committed, 18.0);
  EXPECT_EQ(to_epoch_ms(verdict.resumes_at), 1775001600000);
  // Charges of last month do not count.
  const std::vector<SpendingCharge> last_month{ended(1, 1772323200000 - 1, 18.0)};
  EXPECT_TRUE(admit(budget, last_month, 3.0, at(kMarch15At23)).allowed);
}

TEST(SpendingGuard, NoBudgetAdmitsEverything) {
  const std::vector<SpendingCharge> charges{ended(1, kMarch15At23, 1e9)};
  EXPECT_TRUE(admit(SpendingBudget{}, charges, 3.0, at(kMarch15At23)).allowed);
  EXPECT_FALSE(ledger_since(SpendingBudget{}, at(kMarch15At23)));
  EXPECT_EQ(to_epoch_ms(*ledger_since({.per_day = 1.0}, at(kMarch15At23))),
            kMarch15At23 - 23 * kHour);
  EXPECT_EQ(to_epoch_ms(*ledger_since({.per_day = 1.0, .per_month = 5.0}, at(kMarch15At23))),
            1772323200000);
}

TEST(SpendingGuard, RaisingTheBudgetLetsHeldJobsGo) {
  const std::vector<SpendingCharge> charges{live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0),
                                            live(3, kMarch15At23, 3.0)};
  EXPECT_FALSE(admit({.per_day = 10.0}, charges, 3.0, at(kMarch15At23)).allowed);
  EXPECT_TRUE(admit({.per_day = 12.0}, charges, 3.0, at(kMarch15At23)).allowed);
}

TEST(SpendingGuard, OverTheHardLimitLiveJobsOfTheWindowAreTerminated) {
  SpendingBudget budget{.per_day = 10.0};
  const std::vector<SpendingCharge> charges{
      ended(1, kMarch15At23, 6.0), live(2, kMarch15At23, 3.0, 4.5),
      live(3, kMarch15At23 - 24 * kHour, 3.0, 9.0)  // yesterday's: not this window
  };
  EXPECT_TRUE(over_budget(budget, charges, at(kMarch15At23)).empty()) << "option off";
  budget.terminate_over_budget = true;
  EXPECT_EQ(over_budget(budget, charges, at(kMarch15At23)), std::vector<std::int64_t>{2});
  // Reservations alone never terminate anything.
  const std::vector<SpendingCharge> reserved{live(4, kMarch15At23, 30.0, 1.0)};
  EXPECT_TRUE(over_budget(budget, reserved, at(kMarch15At23)).empty());
}

TEST(SpendingLedger, ACreateChargedNowIsSeenByTheNextAdmission) {
  SpendingLedger ledger{{.per_day = 10.0}};
  ledger.reload({{"org-a", {live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0)}}});
  const auto now = at(kMarch15At23);
  ASSERT_TRUE(ledger.admit("org-a", 3.0, now).allowed);
  ledger.charge("org-a", 3, 3.0, now);
  EXPECT_FALSE(ledger.admit("org-a", 3.0, now).allowed);
  EXPECT_TRUE(ledger.admit("org-b", 3.0, now).allowed) << "budgets are per organisation";
  EXPECT_DOUBLE_EQ(ledger.committed("org-a", SpendingWindow::day, now), 9.0);
  ledger.reload({});
  EXPECT_TRUE(ledger.admit("org-a", 3.0, now).allowed);
}

}  // namespace
}  // namespace devin_orch::core
