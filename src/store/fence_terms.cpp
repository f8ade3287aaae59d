// fence_terms: one lease for the whole queue, or one per organisation a write touches.
#include "fence_terms.hpp"

#include "devin_orch/core/org_spread.hpp"

namespace devin_orch::store {

FenceCheck fence_terms(const Fence& fence, const std::set<std::string>& orgs) {
  FenceCheck check;
  // One process works the whole queue, or the write concerns no organisation: the one lease.
  if (!fence.orgs || orgs.empty()) {
    if (fence.name.empty()) {
      check.refused = fence.orgs ? core::org_lease_name(fence.orgs->default_org) : fence.name;
    } else {
      check.terms.push_back(FenceTerm{.lease = fence.name, .epoch = fence.epoch});
    }
    return check;
  }
  for (const auto& org : orgs) {
    const auto held = fence.orgs->epochs.find(org);
    if (held == fence.orgs->epochs.end()) {
      check.refused = core::org_lease_name(org);
      check.terms.clear();
      return check;
    }
    check.terms.push_back(FenceTerm{.lease = core::org_lease_name(org), .epoch = held->second});
  }
  return check;
}

}  // namespace devin_orch::store
