// The spending guard's inputs as the daemon and `ls` build them: the configured budget, and the
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

core::SpendingBudget spending_budget(const SpendingConfig& config);

// By organisation (a job naming none is `default_org`'s); a job's consumption follows
// core::job_acus with `rule`, and it is live while creating or running.
SpendingCharges spending_charges(const std::vector<store::SpendingRow>& rows,
                                 const std::string& default_org, core::ParentAcus rule);

}  // namespace devin_orch::app
