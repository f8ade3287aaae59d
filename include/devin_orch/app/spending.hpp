// The spending guard's inputs as the daemon and `ls` build them: the configured budgets, and the
// store's charged jobs grouped by effective organisation (core/spending_guard.hpp decides).
#pragma once

#include "devin_orch/app/config/config.hpp"
#include "devin_orch/core/session_family.hpp"
#include "devin_orch/core/spending_guard.hpp"
#include "devin_orch/store/types.hpp"

#include <map>
#include <string>
#include <vector>

namespace devin_orch::app {

using SpendingCharges = std::map<std::string, std::vector<core::SpendingCharge>, std::less<>>;

// Every organisation's default budget, the organisations' own (their overrides resolved over the
// default) and the concurrency keys'.
core::SpendingBudgets spending_budgets(const SpendingConfig& config);

// The setting whose budget held a create, as `ls` and the logs name it:
// "spending.acus_per_day", "spending.organizations.org-a.acus_per_month" (the organisation's
// own, when it differs from the default), or `spending.concurrency_keys "repo:*" acus_per_day`.
std::string spending_setting(const core::SpendingVerdict& verdict,
                             const core::SpendingBudgets& budgets, std::string_view org);

// By organisation (a job naming none is `default_org`'s); a job's consumption follows
// core::job_acus with `rule`, and it is live while creating or running; each keeps its
// concurrency_key for the key budgets.
SpendingCharges spending_charges(const std::vector<store::SpendingRow>& rows,
                                 const std::string& default_org, core::ParentAcus rule);

}  // namespace devin_orch::app
