// The spending guard's inputs from the configuration and the store (spending.hpp).
#include "devin_orch/app/spending.hpp"

namespace devin_orch::app {

core::SpendingBudgets spending_budgets(const SpendingConfig& config) {
  core::SpendingBudgets budgets{.defaults = {.per_day = config.acus_per_day,
                                             .per_month = config.acus_per_month,
                                             .reserve_without_limit = config.reserve_without_limit,
                                             .terminate_over_budget = config.terminate_over_budget},
                                .keys = config.concurrency_keys};
  for (const auto& [org_id, own] : config.organizations) {
    core::SpendingBudget budget = budgets.defaults;
    budget.per_day = own.acus_per_day.over(config.acus_per_day);
    budget.per_month = own.acus_per_month.over(config.acus_per_month);
    budgets.organizations.emplace(org_id, budget);
  }
  return budgets;
}

std::string spending_setting(const core::SpendingVerdict& verdict,
                             const core::SpendingBudgets& budgets, std::string_view org) {
  const bool day = verdict.window == core::SpendingWindow::day;
  const std::string field = day ? "acus_per_day" : "acus_per_month";
  if (verdict.scope == core::SpendingScope::concurrency_key) {
    return "spending.concurrency_keys \"" + verdict.pattern + "\" " + field;
  }
  const auto& own = budgets.for_org(org);
  const auto& global = budgets.defaults;
  if (day ? own.per_day != global.per_day : own.per_month != global.per_month) {
    return "spending.organizations." + std::string{org} + "." + field;
  }
  return "spending." + field;
}

SpendingCharges spending_charges(const std::vector<store::SpendingRow>& rows,
                                 const std::string& default_org, core::ParentAcus rule) {
  SpendingCharges charges;
  for (const auto& row : rows) {
    const bool live = row.state == core::JobState::creating || row.state == core::JobState::running;
    std::optional<double> limit;
    if (row.max_acu_limit) limit = static_cast<double>(*row.max_acu_limit);
    charges[row.org_id.value_or(default_org)].push_back(core::SpendingCharge{
        .job_id = row.job_id,
        .charged_at = core::from_epoch_ms(row.intent_at_ms),
        .consumed = core::job_acus(row.acus_consumed.value_or(0.0), row.children_acus, rule).total,
        .limit = limit,
        .live = live,
        .concurrency_key = row.concurrency_key});
  }
  return charges;
}

}  // namespace devin_orch::app
