// Tests for the spending guard: UTC day and month windows, what live and ended jobs hold of a
// budget, admission at the edge of a budget, the roll-over, and who is over a hard limit; per
// organisation (the default, or its own) and per concurrency key across organisations.
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
  SpendingLedger ledger{SpendingBudgets{.defaults = {.per_day = 10.0}}};
  ledger.reload({{"org-a", {live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0)}}});
  const auto now = at(kMarch15At23);
  ASSERT_TRUE(ledger.admit("org-a", std::nullopt, 3.0, now).allowed);
  ledger.charge("org-a", std::nullopt, 3, 3.0, now);
  EXPECT_FALSE(ledger.admit("org-a", std::nullopt, 3.0, now).allowed);
  EXPECT_TRUE(ledger.admit("org-b", std::nullopt, 3.0, now).allowed)
      << "budgets are per organisation";
  EXPECT_DOUBLE_EQ(ledger.committed("org-a", SpendingWindow::day, now), 9.0);
  ledger.reload({});
  EXPECT_TRUE(ledger.admit("org-a", std::nullopt, 3.0, now).allowed);
}

// A create whose intent the store does not show yet (an upload or the gate first) keeps its
// reservation across reloads while it is still starting, and is counted once when it shows.
TEST(SpendingLedger, ACreateNotYetStoredKeepsItsReservationWhileItStarts) {
  SpendingLedger ledger{SpendingBudgets{.defaults = {.per_day = 6.0}}};
  const auto now = at(kMarch15At23);
  ledger.reload({{"org-a", {live(1, kMarch15At23, 3.0)}}});
  ledger.charge("org-a", std::nullopt, 2, 3.0, now);
  bool starting = true;
  const auto still_starting = [&](std::int64_t id) { return id == 2 && starting; };
  ledger.reload({{"org-a", {live(1, kMarch15At23, 3.0)}}}, still_starting);
  EXPECT_DOUBLE_EQ(ledger.committed("org-a", SpendingWindow::day, now), 6.0);
  EXPECT_FALSE(ledger.admit("org-a", std::nullopt, 3.0, now).allowed);
  // Stored now: counted from the store, once.
  ledger.reload({{"org-a", {live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0)}}},
                still_starting);
  EXPECT_DOUBLE_EQ(ledger.committed("org-a", SpendingWindow::day, now), 6.0);
  // A create that ended without an intent (requeued, say) holds nothing once it stops starting.
  ledger.charge("org-a", std::nullopt, 3, 3.0, now);
  ledger.reload({{"org-a", {live(1, kMarch15At23, 3.0)}}}, [](std::int64_t) { return false; });
  EXPECT_DOUBLE_EQ(ledger.committed("org-a", SpendingWindow::day, now), 3.0);
}

SpendingCharge keyed(SpendingCharge charge, std::string key) {
  charge.concurrency_key = std::move(key);
  return charge;
}

// 6 ACUs a day for each key matching repo:*: two jobs of 3 of repo:a, one in each organisation,
// fill it; a third waits in either organisation, while repo:b and unkeyed jobs go on.
TEST(SpendingLedger, AKeyBudgetCountsTheKeysJobsInEveryOrganisation) {
  SpendingLedger ledger{SpendingBudgets{.keys = {{.pattern = "repo:*", .per_day = 6.0}}}};
  ASSERT_TRUE(ledger.active()) << "a key budget alone makes the guard work";
  const auto now = at(kMarch15At23);
  ledger.reload({{"org-a", {keyed(live(1, kMarch15At23 - kHour, 3.0), "repo:a")}}});
  const std::optional<std::string> repo_a{"repo:a"};
  ASSERT_TRUE(ledger.admit("org-b", repo_a, 3.0, now).allowed);
  ledger.charge("org-b", repo_a, 2, 3.0, now);
  EXPECT_DOUBLE_EQ(ledger.committed_by_key("repo:a", SpendingWindow::day, now), 6.0);
  for (const auto* org : {"org-a", "org-b"}) {
    const auto verdict = ledger.admit(org, repo_a, 3.0, now);
    EXPECT_FALSE(verdict.allowed) << org;
    EXPECT_EQ(verdict.scope, SpendingScope::concurrency_key);
    EXPECT_EQ(verdict.key, "repo:a");
    EXPECT_EQ(verdict.pattern, "repo:*");
    EXPECT_EQ(verdict.window, SpendingWindow::day);
    EXPECT_DOUBLE_EQ(verdict.committed, 6.0);
    EXPECT_DOUBLE_EQ(verdict.budget, 6.0);
    EXPECT_EQ(to_epoch_ms(verdict.resumes_at), kMarch15At23 + kHour);
  }
  EXPECT_TRUE(ledger.admit("org-a", std::string{"repo:b"}, 3.0, now).allowed)
      << "each key matching the pattern has its own budget";
  EXPECT_TRUE(ledger.admit("org-a", std::string{"team:x"}, 3.0, now).allowed)
      << "a key no pattern matches has none";
  EXPECT_TRUE(ledger.admit("org-a", std::nullopt, 3.0, now).allowed);
  // A reload from the store replaces the charge made since; the key's jobs are found again.
  ledger.reload({{"org-a", {keyed(live(1, kMarch15At23 - kHour, 3.0), "repo:a")}},
                 {"org-b", {keyed(live(2, kMarch15At23, 3.0), "repo:a")}}});
  EXPECT_FALSE(ledger.admit("org-a", repo_a, 3.0, now).allowed);
}

// The first pattern a key matches sets its budget, as for concurrency groups.
TEST(SpendingLedger, TheFirstMatchingKeyPatternWins) {
  SpendingLedger ledger{SpendingBudgets{.keys = {{.pattern = "repo:big", .per_day = 20.0},
                                                 {.pattern = "repo:*", .per_day = 3.0}}}};
  const auto now = at(kMarch15At23);
  ledger.reload({{"org-a", {keyed(live(1, kMarch15At23, 3.0), "repo:big"),
                            keyed(live(2, kMarch15At23, 3.0), "repo:small")}}});
  EXPECT_TRUE(ledger.admit("org-a", std::string{"repo:big"}, 3.0, now).allowed);
  const auto small = ledger.admit("org-a", std::string{"repo:small"}, 3.0, now);
  EXPECT_FALSE(small.allowed);
  EXPECT_EQ(small.pattern, "repo:*");
}

// An organisation with its own budget beside the default; the organisation's budget is asked
// first, and a job must fit both.
TEST(SpendingLedger, AnOrganisationsOwnBudgetStandsBesideTheDefault) {
  SpendingBudgets budgets{.defaults = {.per_day = 6.0},
                          .organizations = {{"org-big", {.per_day = 12.0}},
                                            {"org-free", {}}},
                          .keys = {{.pattern = "repo:*", .per_day = 9.0}}};
  SpendingLedger ledger{budgets};
  const auto now = at(kMarch15At23);
  std::vector<SpendingCharge> three_jobs{live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0),
                                         live(3, kMarch15At23, 3.0)};
  ledger.reload({{"org-small", {live(1, kMarch15At23, 3.0), live(2, kMarch15At23, 3.0)}},
                 {"org-big", three_jobs},
                 {"org-free", three_jobs}});
  const auto small = ledger.admit("org-small", std::nullopt, 3.0, now);
  EXPECT_FALSE(small.allowed) << "the default budget: 6";
  EXPECT_EQ(small.scope, SpendingScope::organization);
  EXPECT_DOUBLE_EQ(small.budget, 6.0);
  EXPECT_TRUE(ledger.admit("org-big", std::nullopt, 3.0, now).allowed) << "9 + 3 <= 12";
  EXPECT_TRUE(ledger.admit("org-free", std::nullopt, 30.0, now).allowed) << "no budget of its own";
  ledger.charge("org-big", std::nullopt, 4, 3.0, now);
  const auto big = ledger.admit("org-big", std::nullopt, 3.0, now);
  EXPECT_FALSE(big.allowed);
  EXPECT_DOUBLE_EQ(big.budget, 12.0);
  // The organisation allows it, the key does not (9 of repo:a committed in org-free).
  ledger.reload({{"org-free", {keyed(live(1, kMarch15At23, 3.0), "repo:a"),
                               keyed(live(2, kMarch15At23, 6.0), "repo:a")}}});
  const auto keyed_verdict = ledger.admit("org-free", std::string{"repo:a"}, 1.0, now);
  EXPECT_FALSE(keyed_verdict.allowed);
  EXPECT_EQ(keyed_verdict.scope, SpendingScope::concurrency_key);
  // Both hold it: the organisation's is named.
  ledger.reload({{"org-small", {keyed(live(1, kMarch15At23, 6.0), "repo:a"),
                                keyed(live(2, kMarch15At23, 3.0), "repo:a")}}});
  EXPECT_EQ(ledger.admit("org-small", std::string{"repo:a"}, 1.0, now).scope,
            SpendingScope::organization);
}

// A key's day rolls over at 00:00 UTC: yesterday's charges no longer count; its month does not.
TEST(SpendingLedger, AKeysWindowsRollOver) {
  SpendingLedger ledger{
      SpendingBudgets{.keys = {{.pattern = "repo:a", .per_day = 6.0, .per_month = 9.0}}}};
  const std::optional<std::string> key{"repo:a"};
  ledger.reload({{"org-a", {keyed(live(1, kMarch15At23, 3.0), "repo:a"),
                            keyed(ended(2, kMarch15At23 - kHour, 3.0), "repo:a")}}});
  const auto verdict = ledger.admit("org-b", key, 3.0, at(kMarch15At23));
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.window, SpendingWindow::day);
  const auto next_day = at(kMarch15At23 + kHour);  // 2026-03-16T00:00:00Z
  EXPECT_TRUE(ledger.admit("org-b", key, 3.0, next_day).allowed) << "6 + 3 <= 9 this month";
  const auto month = ledger.admit("org-b", key, 4.0, next_day);
  EXPECT_FALSE(month.allowed);
  EXPECT_EQ(month.window, SpendingWindow::month);
  EXPECT_DOUBLE_EQ(month.committed, 6.0);
  EXPECT_EQ(to_epoch_ms(*ledger_since(ledger.budgets(), next_day)), 1772323200000)
      << "a monthly key budget reads the month";
}

// terminate_over_budget: live jobs of a key whose window consumed more than its budget, in
// whichever organisation; an organisation's own overrun is named as such.
TEST(SpendingLedger, AKeyOverrunTerminatesTheKeysLiveJobs) {
  SpendingLedger ledger{SpendingBudgets{.defaults = {.terminate_over_budget = true},
                                        .keys = {{.pattern = "repo:*", .per_day = 6.0}}}};
  const auto now = at(kMarch15At23);
  ledger.reload({{"org-a", {keyed(live(1, kMarch15At23, 10.0, 4.0), "repo:a"),
                            keyed(live(3, kMarch15At23, 10.0, 1.0), "repo:b")}},
                 {"org-b", {keyed(live(2, kMarch15At23, 10.0, 2.5), "repo:a"), live(4, kMarch15At23, 10.0, 9.0)}}});
  EXPECT_EQ(ledger.over_budget(now),
            (std::vector<SpendingOverrun>{
                {.job_id = 1, .scope = SpendingScope::concurrency_key, .key = "repo:a"},
                {.job_id = 2, .scope = SpendingScope::concurrency_key, .key = "repo:a"}}));
  SpendingLedger off{SpendingBudgets{.keys = {{.pattern = "repo:*", .per_day = 6.0}}}};
  off.reload({{"org-a", {keyed(live(1, kMarch15At23, 10.0, 7.0), "repo:a")}}});
  EXPECT_TRUE(off.over_budget(now).empty()) << "option off";
}

}  // namespace
}  // namespace devin_orch::core
