// OrgSpread: the fair share of organisations, which leases to take and which to hand over.
#include "devin_orch/core/org_spread.hpp"

#include <algorithm>
#include <ostream>

namespace devin_orch::core {

std::ostream& operator<<(std::ostream& out, const SpreadPlan& plan) {
  const auto list = [&out](const std::vector<std::string>& orgs) {
    out << '[';
    for (std::size_t i = 0; i < orgs.size(); ++i) out << (i ? "," : "") << orgs[i];
    out << ']';
  };
  out << "plan{take=";
  list(plan.take);
  out << ", probe=";
  list(plan.probe);
  out << ", hand_over=";
  list(plan.hand_over);
  out << ", drain=";
  list(plan.drain);
  return out << ", fair_share=" << plan.fair_share
             << ", next_look=" << plan.next_look.time_since_epoch().count() << "ms}";
}

// Free: nobody holds the row, or its holder let it lapse (released or died). A row of this
// daemon's own that it does not prove (a renewal failed, a restart) counts as free as well:
// asking again either renews it with the same epoch or finds it taken.
bool OrgSpread::is_free(const SpreadLook& look, const std::string& org) const {
  if (look.held.contains(org)) return false;
  const auto row = look.leases.find(org);
  if (row == look.leases.end()) return true;
  const LeaseHolder& holder = row->second;
  return holder.epoch == 0 || holder.expires_at_ms <= look.store_now_ms || holder.owner == self_;
}

SpreadPlan OrgSpread::resume(const SpreadLook& look) {
  std::set<std::string> live{look.live_daemons.begin(), look.live_daemons.end()};
  live.insert(self_);
  // Every org with work, and every org this daemon holds (one with no work left counts until
  // it is handed over).
  std::set<std::string> orgs{look.orgs.begin(), look.orgs.end()};
  orgs.insert(look.held.begin(), look.held.end());

  SpreadPlan plan;
  plan.next_look = look.now + policy_.look_every;
  plan.fair_share = (orgs.size() + live.size() - 1) / live.size();

  std::vector<std::string> free;
  for (const auto& org : orgs) {
    if (is_free(look, org)) {
      free_since_.try_emplace(org, look.now);
      free.push_back(org);
    } else {
      free_since_.erase(org);
    }
  }
  std::erase_if(free_since_, [&orgs](const auto& entry) { return !orgs.contains(entry.first); });

  const std::size_t held = look.held.size();
  if (held < plan.fair_share) {
    const std::size_t room = plan.fair_share - held;
    plan.take.assign(free.begin(), free.begin() + static_cast<std::ptrdiff_t>(
                                                      std::min(room, free.size())));
  }
  // Still below the share with nothing free: held by others, maybe by a dead daemon.
  for (const auto& org : orgs) {
    if (held + plan.take.size() + plan.probe.size() >= plan.fair_share) break;
    if (!look.held.contains(org) && !is_free(look, org)) plan.probe.push_back(org);
  }
  // Orphans: free too long for whoever the registry says should take them.
  for (const auto& org : free) {
    if (look.now - free_since_.at(org) >= policy_.orphan_grace &&
        std::find(plan.take.begin(), plan.take.end(), org) == plan.take.end()) {
      plan.take.push_back(org);
    }
  }

  // Beyond the share, or with no work left: handed over, idle ones first, then the last by
  // name (a stable choice, so two looks do not pick different orgs); a busy one is drained
  // until it can go. Nothing is handed over while this daemon still takes orgs: the share it
  // computes is then not settled.
  if (!plan.take.empty()) return plan;
  std::vector<std::string> candidates;
  for (auto it = look.held.rbegin(); it != look.held.rend(); ++it) {
    if (!look.busy.contains(*it)) candidates.push_back(*it);
  }
  for (auto it = look.held.rbegin(); it != look.held.rend(); ++it) {
    if (look.busy.contains(*it)) candidates.push_back(*it);
  }
  std::size_t keep = held;
  for (const auto& org : candidates) {
    const bool idle_org = std::find(look.orgs.begin(), look.orgs.end(), org) == look.orgs.end();
    if (keep > plan.fair_share || idle_org) {
      (look.busy.contains(org) ? plan.drain : plan.hand_over).push_back(org);
      --keep;
    }
  }
  return plan;
}

}  // namespace devin_orch::core
