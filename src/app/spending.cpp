// The spending guard's inputs from the configuration and the store (spending.hpp).
#include "devin_orch/app/spending.hpp"

namespace devin_orch::app {

core::SpendingBudget spending_budget(const SpendingConfig& config) {
  return {.per_day = config.acus_per_day,
          .per_month = config.acus_per_month,
          .reserve_without_limit = config.reserve_without_limit,
          .terminate_over_budget = config.terminate_over_budget};
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
        .live = live});
  }
  return charges;
}

}  // namespace devin_orch::app
