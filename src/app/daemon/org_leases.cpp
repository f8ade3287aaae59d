// OrgLeases: the spread's plans and each org's lease machine mapped onto store calls and one
// timer.
#include "org_leases.hpp"

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <random>

namespace devin_orch::app::detail {
namespace {

// The spread looks as often as a standby used to ask for the queue's lease; an org free for a
// whole lapse is taken beyond the share (its holder is surely gone, whatever the registry says).
core::SpreadPolicy spread_policy(const core::LeasePolicy& policy) {
  return core::SpreadPolicy{.look_every = policy.standby_poll, .orphan_grace = policy.ttl};
}

}  // namespace

OrgLeases::OrgLeases(boost::asio::io_context& io, store::QueueStore& store,
                     core::LeasePolicy policy, std::string default_org, Callbacks callbacks)
    : store_{store},
      policy_{policy},
      default_org_{std::move(default_org)},
      callbacks_{std::move(callbacks)},
      owner_{make_owner_id()},
      spread_{owner_, spread_policy(policy)},
      timer_{io} {}

std::string OrgLeases::make_owner_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device random;
  return fmt::format("{}:{}:{:08x}", host[0] != '\0' ? host : "unknown", ::getpid(),
                     static_cast<unsigned>(random()));
}

void OrgLeases::start() {
  update_fence();  // nothing held yet: no write on the queue's behalf goes through
  tick();
}

void OrgLeases::stop_and_release() {
  stopped_ = true;
  timer_.cancel();
  store_.set_fence(std::nullopt);
  const auto now = core::wall_now();
  for (const auto& [org, held] : machines_) {
    if (held.machine.role() == core::LeaseRole::standby) continue;
    const auto released =
        store_.release_lease(core::org_lease_name(org), owner_, held.machine.epoch(), now);
    if (!released) {
      spdlog::warn("cannot release the lease of org {} ({}); another daemon takes it when it "
                   "lapses", org, released.error().message());
    } else {
      spdlog::info("released the lease of org {} (epoch {})", org, held.machine.epoch());
    }
  }
  machines_.clear();
  if (registry_epoch_ != 0) {
    (void)store_.release_lease(core::daemon_registry_name(owner_), owner_, registry_epoch_, now);
  }
}

bool OrgLeases::may_act(const std::string& org) const {
  const auto it = machines_.find(org);
  return it != machines_.end() && it->second.machine.may_act(core::monotonic_now());
}

bool OrgLeases::may_act_any() const {
  const auto now = core::monotonic_now();
  return std::any_of(machines_.begin(), machines_.end(),
                     [now](const auto& entry) { return entry.second.machine.may_act(now); });
}

std::vector<std::string> OrgLeases::held() const {
  std::vector<std::string> orgs;
  for (const auto& [org, held] : machines_) {
    if (held.machine.role() != core::LeaseRole::standby) orgs.push_back(org);
  }
  return orgs;
}

std::vector<std::string> OrgLeases::claimable() const {
  auto orgs = held();
  std::erase_if(orgs, [this](const std::string& org) { return draining_.contains(org); });
  return orgs;
}

std::string OrgLeases::describe() const {
  const auto orgs = held();
  std::string list;
  std::string unproven;
  for (const auto& org : orgs) {
    list += (list.empty() ? "" : ",") + org;
    if (machines_.at(org).machine.role() == core::LeaseRole::owner_unproven) {
      unproven += (unproven.empty() ? "" : ",") + org;
    }
  }
  if (orgs.empty()) {
    if (!last_failure_.empty()) {
      return fmt::format("standby as {}: cannot read the leases ({})", owner_, last_failure_);
    }
    std::string workers;
    const auto now_ms = core::to_epoch_ms(core::wall_now());
    for (const auto& [org, holder] : others_) {
      workers += fmt::format("{}org {} is worked by {} (epoch {}; its lease lapses in {:.1f} s "
                             "unless renewed)",
                             workers.empty() ? "" : "; ", org, holder.owner, holder.epoch,
                             static_cast<double>(std::max<std::int64_t>(
                                 0, holder.expires_at_ms - now_ms)) / 1000.0);
    }
    return fmt::format("standby as {}: no organisation is free for this daemon ({} live "
                       "daemon(s)){}{}", owner_, live_daemons_, workers.empty() ? "" : ": ",
                       workers);
  }
  return fmt::format("works org(s) {} as {} ({} live daemon(s)){}", list, owner_, live_daemons_,
                     unproven.empty() ? ""
                                      : "; paused, the lease cannot be renewed: " + unproven);
}

void OrgLeases::schedule(core::Duration delay) {
  timer_.expires_after(std::max(core::Duration{1}, delay));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void OrgLeases::tick() {
  if (stopped_) return;
  const auto now_ms = core::to_epoch_ms(core::wall_now());
  register_self(now_ms);
  std::vector<std::string> due;
  for (const auto& [org, held] : machines_) {
    if (core::monotonic_now() >= held.wake_at) due.push_back(org);
  }
  for (const auto& org : due) step(org, core::LeaseTimer{core::monotonic_now()});
  if (stopped_) return;
  if (core::monotonic_now() >= next_look_) look(now_ms);
  if (stopped_) return;
  auto wake = next_look_;
  for (const auto& [org, held] : machines_) wake = std::min(wake, held.wake_at);
  schedule(wake - core::monotonic_now());
}

// The registry row says this daemon is alive, so the others count it in the share. Renewed
// like a lease; a lost renewal is taken again (nobody else ever holds this name).
void OrgLeases::register_self(std::int64_t now_ms) {
  const auto now = core::monotonic_now();
  if (registry_epoch_ != 0 && now < registry_renew_at_) return;
  const auto name = core::daemon_registry_name(owner_);
  const auto wall = core::from_epoch_ms(now_ms);
  auto answer = registry_epoch_ != 0
                    ? store_.renew_lease(name, owner_, registry_epoch_, policy_.ttl, wall)
                    : store_.acquire_lease(name, owner_, policy_.ttl, wall);
  if (answer && !answer->granted) answer = store_.acquire_lease(name, owner_, policy_.ttl, wall);
  if (!answer || !answer->granted) {
    registry_renew_at_ = now + policy_.retry;
    return;  // the look below fails the same way and says why
  }
  registry_epoch_ = answer->holder.epoch;
  registry_renew_at_ = now + policy_.renew_every;
}

void OrgLeases::look(std::int64_t now_ms) {
  const auto now = core::monotonic_now();
  next_look_ = now + policy_.retry;
  auto daemons = store_.list_leases(core::kDaemonRegistryPrefix);
  auto leases = store_.list_leases(core::kOrgLeasePrefix);
  auto with_work = store_.orgs_with_work(default_org_);
  if (!daemons || !leases || !with_work) {
    const auto& error = !daemons ? daemons.error() : !leases ? leases.error() : with_work.error();
    if (error.message() != last_failure_) {
      last_failure_ = error.message();
      spdlog::warn("cannot read the organisations' leases: {}; retrying", last_failure_);
    }
    return;
  }
  last_failure_.clear();
  core::SpreadLook view{.now = now, .store_now_ms = now_ms, .orgs = std::move(*with_work)};
  view.orgs.push_back(default_org_);  // always worked: the key check and retention are its
  for (const auto& row : *daemons) {
    if (row.holder.expires_at_ms > now_ms) view.live_daemons.push_back(row.holder.owner);
  }
  others_.clear();
  for (const auto& row : *leases) {
    const auto org = row.name.substr(core::kOrgLeasePrefix.size());
    view.leases.emplace(org, row.holder);
    if (row.holder.owner != owner_ && row.holder.epoch > 0 && row.holder.expires_at_ms > now_ms) {
      others_.emplace(org, row.holder);
    }
  }
  for (const auto& org : held()) {
    view.held.insert(org);
    if (callbacks_.busy && callbacks_.busy(org)) view.busy.insert(org);
  }
  const auto live = std::max<std::size_t>(1, view.live_daemons.size() +
                                                 (std::find(view.live_daemons.begin(),
                                                            view.live_daemons.end(),
                                                            owner_) == view.live_daemons.end()));
  if (live != live_daemons_) {
    spdlog::info("{} live daemon(s) share the organisations", live);
    live_daemons_ = live;
  }
  const core::SpreadPlan plan = spread_.resume(view);
  next_look_ = plan.next_look;
  for (const auto& org : plan.drain) {
    if (!draining_.contains(org)) {
      spdlog::info("draining org {} to hand it over: no new work starts for it", org);
    }
  }
  draining_ = {plan.drain.begin(), plan.drain.end()};
  for (const auto* list : {&plan.take, &plan.probe}) {
    for (const auto& org : *list) {
      if (stopped_) return;
      take(org);
    }
  }
  for (const auto& org : plan.hand_over) {
    if (stopped_) return;
    hand_over(org);
  }
  if (stopped_ || !machines_.empty()) {
    last_described_.clear();
    return;
  }
  // Standing by: said once per change of who works what, not at every look.
  std::string who;
  for (const auto& [org, holder] : others_) who += org + "=" + holder.owner + ";";
  if (who != last_described_) {
    last_described_ = who;
    spdlog::info("standing by: {}", describe());
  }
  if (callbacks_.holding_none) callbacks_.holding_none();
}

void OrgLeases::take(const std::string& org) {
  if (machines_.contains(org)) return;
  machines_.emplace(org, Held{policy_});
  step(org, core::LeaseStart{core::monotonic_now()});
}

void OrgLeases::hand_over(const std::string& org) {
  const auto it = machines_.find(org);
  if (it == machines_.end()) return;
  const std::int64_t epoch = it->second.machine.epoch();
  spdlog::info("handing org {} over (epoch {}): {} live daemon(s) share the work", org, epoch,
               live_daemons_);
  if (callbacks_.handing_over) callbacks_.handing_over(org);
  machines_.erase(it);
  draining_.erase(org);
  update_fence();
  if (auto released = store_.release_lease(core::org_lease_name(org), owner_, epoch,
                                           core::wall_now());
      !released) {
    spdlog::warn("cannot release the lease of org {} ({}); another daemon takes it when it "
                 "lapses", org, released.error().message());
  }
}

void OrgLeases::step(const std::string& org, const core::LeaseInput& input) {
  if (stopped_) return;
  auto it = machines_.find(org);
  if (it == machines_.end()) return;
  const core::LeaseAction action = it->second.machine.resume(input);
  using Change = core::LeaseAction::Change;
  switch (action.change) {
    case Change::took_over:
      update_fence();
      spdlog::info("took the lease of org {} as {} (epoch {})", org, owner_, action.epoch);
      if (callbacks_.took_over) callbacks_.took_over(org, action.epoch);
      break;
    case Change::paused:
      spdlog::error("the lease of org {} could not be renewed in time ({}); sending nothing for "
                    "it until it is", org, action.reason);
      if (callbacks_.paused) callbacks_.paused(org, action.reason);
      break;
    case Change::resumed:
      spdlog::info("the lease of org {} is renewed again (epoch {}); carrying on", org,
                   action.epoch);
      if (callbacks_.resumed) callbacks_.resumed(org);
      break;
    case Change::none:
      break;
  }
  if (stopped_) return;
  it = machines_.find(org);  // a callback may have changed the map
  if (it == machines_.end()) return;
  switch (action.step) {
    case core::LeaseAction::Step::acquire:
    case core::LeaseAction::Step::renew:
      ask(org, action.step);
      return;
    case core::LeaseAction::Step::abandon:
      machines_.erase(it);
      update_fence();
      if (callbacks_.lost) callbacks_.lost(org, action.reason);
      return;
    case core::LeaseAction::Step::sleep:
      it->second.wake_at = action.wake_at;
      return;
  }
}

void OrgLeases::ask(const std::string& org, core::LeaseAction::Step what) {
  const auto it = machines_.find(org);
  if (it == machines_.end()) return;
  const bool taking = it->second.machine.role() == core::LeaseRole::standby;
  const auto name = core::org_lease_name(org);
  const auto sent_at = core::monotonic_now();
  const auto answer =
      what == core::LeaseAction::Step::acquire
          ? store_.acquire_lease(name, owner_, policy_.ttl, core::wall_now())
          : store_.renew_lease(name, owner_, it->second.machine.epoch(), policy_.ttl,
                               core::wall_now());
  const auto now = core::monotonic_now();
  if (taking && (!answer || !answer->granted)) {
    // Another daemon was quicker, or the store did not answer: the next look decides again.
    machines_.erase(org);
    return;
  }
  if (!answer) {
    if (answer.error().message() != last_failure_) {
      last_failure_ = answer.error().message();
      spdlog::warn("cannot renew the lease of org {}: {}; retrying", org, last_failure_);
    }
    step(org, core::LeaseStoreFailed{answer.error().message(), now});
    return;
  }
  if (answer->granted) {
    step(org, core::LeaseGranted{answer->holder.epoch, sent_at, now});
  } else if (what == core::LeaseAction::Step::renew) {
    step(org, core::LeaseSuperseded{answer->holder, now});
  } else {
    step(org, core::LeaseHeldElsewhere{answer->holder, now});
  }
}

void OrgLeases::update_fence() {
  store::Fence fence{.owner = owner_, .orgs = store::OrgTerms{.default_org = default_org_}};
  for (const auto& [org, held] : machines_) {
    if (held.machine.role() == core::LeaseRole::standby) continue;
    fence.orgs->epochs.emplace(org, held.machine.epoch());
    if (org == default_org_) {
      fence.name = core::org_lease_name(org);
      fence.epoch = held.machine.epoch();
    }
  }
  store_.set_fence(std::move(fence), [this](const std::string& lease) {
    if (!lease.starts_with(core::kOrgLeasePrefix)) return;
    // Inside the refused store call: look at the lease once that call is over.
    boost::asio::post(timer_.get_executor(),
                      [this, org = lease.substr(core::kOrgLeasePrefix.size())] {
                        if (stopped_ || !machines_.contains(org)) return;
                        step(org, core::LeaseDoubted{core::monotonic_now()});
                      });
  });
}

}  // namespace devin_orch::app::detail
