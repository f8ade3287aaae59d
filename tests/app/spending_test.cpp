// The spending guard's inputs from the configuration and the store: an organisation's own
// budgets resolved over the global ones, key budgets as configured, the charged rows by
// organisation with their concurrency keys, and the setting a hold names.
#include "devin_orch/app/spending.hpp"

#include <gtest/gtest.h>

namespace devin_orch::app {
namespace {

TEST(Spending, AnOrganisationsOwnBudgetsAreResolvedOverTheGlobalOnes) {
  SpendingConfig config{.acus_per_day = 10.0,
                        .acus_per_month = 100.0,
                        .reserve_without_limit = 4.0,
                        .terminate_over_budget = true,
                        .organizations = {{"org-big", {.acus_per_day = {.set = true, .acus = 40.0}}},
                                          {"org-free", {.acus_per_day = {.set = true},
                                                        .acus_per_month = {.set = true}}}},
                        .concurrency_keys = {{.pattern = "repo:*", .per_day = 6.0}}};
  const auto budgets = spending_budgets(config);
  EXPECT_EQ(budgets.defaults.per_day, 10.0);
  EXPECT_EQ(budgets.for_org("org-other").per_day, 10.0);
  const auto& big = budgets.for_org("org-big");
  EXPECT_EQ(big.per_day, 40.0);
  EXPECT_EQ(big.per_month, 100.0) << "left out: the global budget";
  EXPECT_DOUBLE_EQ(big.reserve_without_limit, 4.0);
  EXPECT_TRUE(big.terminate_over_budget);
  EXPECT_FALSE(budgets.for_org("org-free").any()) << "~: none for this organisation";
  ASSERT_NE(budgets.for_key("repo:a"), nullptr);
  EXPECT_EQ(budgets.for_key("repo:a")->per_day, 6.0);
  EXPECT_EQ(budgets.for_key("team:a"), nullptr);

  // Only key budgets: the guard is active all the same.
  EXPECT_TRUE(spending_budgets({.concurrency_keys = {{.pattern = "a", .per_month = 1.0}}}).any());
  EXPECT_FALSE(spending_budgets({}).any());
}

TEST(Spending, ChargesKeepTheJobsConcurrencyKey) {
  const std::vector<store::SpendingRow> rows{
      {.job_id = 1, .state = core::JobState::running, .intent_at_ms = 1'000, .max_acu_limit = 3,
       .concurrency_key = "repo:a"},
      {.job_id = 2, .org_id = "org-b", .state = core::JobState::finished, .intent_at_ms = 2'000,
       .acus_consumed = 1.5}};
  const auto charges = spending_charges(rows, "org-a", core::ParentAcus::separate);
  ASSERT_EQ(charges.at("org-a").size(), 1U);
  EXPECT_EQ(charges.at("org-a")[0].concurrency_key, "repo:a");
  EXPECT_TRUE(charges.at("org-a")[0].live);
  ASSERT_EQ(charges.at("org-b").size(), 1U);
  EXPECT_FALSE(charges.at("org-b")[0].concurrency_key);
  EXPECT_DOUBLE_EQ(charges.at("org-b")[0].consumed, 1.5);
}

TEST(Spending, AHoldNamesTheSettingWhoseBudgetHeldIt) {
  const auto budgets = spending_budgets(
      {.acus_per_day = 10.0,
       .organizations = {{"org-big", {.acus_per_day = {.set = true, .acus = 40.0}}},
                         {"org-same", {.acus_per_day = {.set = true, .acus = 10.0}}}},
       .concurrency_keys = {{.pattern = "repo:*", .per_month = 6.0}}});
  const core::SpendingVerdict day{.allowed = false, .window = core::SpendingWindow::day};
  EXPECT_EQ(spending_setting(day, budgets, "org-a"), "spending.acus_per_day");
  EXPECT_EQ(spending_setting(day, budgets, "org-big"), "spending.organizations.org-big.acus_per_day");
  EXPECT_EQ(spending_setting(day, budgets, "org-same"), "spending.acus_per_day")
      << "the same figure as the default";
  const core::SpendingVerdict key{.allowed = false,
                                  .scope = core::SpendingScope::concurrency_key,
                                  .key = "repo:a",
                                  .pattern = "repo:*",
                                  .window = core::SpendingWindow::month};
  EXPECT_EQ(spending_setting(key, budgets, "org-a"),
            "spending.concurrency_keys \"repo:*\" acus_per_month");
}

}  // namespace
}  // namespace devin_orch::app
