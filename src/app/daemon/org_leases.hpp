// The organisations' leases on the event loop: this daemon's registry row, one
// core::LeaseMachine per organisation it holds, and core::OrgSpread deciding which it takes and
// which it hands over; fences the store's writes with the epochs it holds, and tells the daemon
// when an organisation is taken, paused, resumed, lost or to be handed over. Private to the app
// module.
#pragma once

#include "devin_orch/core/lease.hpp"
#include "devin_orch/core/org_spread.hpp"
#include "devin_orch/store/queue_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace devin_orch::app::detail {

class OrgLeases {
 public:
  struct Callbacks {
    // Start working the org (reconcile what a previous holder left in flight).
    std::function<void(const std::string& org, std::int64_t epoch)> took_over;
    std::function<void(const std::string& org, const std::string& why)> paused;  // send nothing
    std::function<void(const std::string& org)> resumed;  // the same epoch, proven again
    // Another daemon took the org while this one worked it: nothing of it may be written.
    std::function<void(const std::string& org, const std::string& why)> lost;
    // Whether the org can be let go now (nothing of it in flight that cannot stop at once).
    std::function<bool(const std::string& org)> busy;
    // Stop working the org (drop its sessions from the polls): its lease is released next.
    std::function<void(const std::string& org)> handing_over;
    // After each look that left this daemon with no organisation (a standby).
    std::function<void()> holding_none;
  };

  OrgLeases(boost::asio::io_context& io, store::QueueStore& store, core::LeasePolicy policy,
            std::string default_org, Callbacks callbacks);

  // A name unique to this process: host, pid and a random nonce (a pid can be reused).
  static std::string make_owner_id();

  void start();
  // Stops asking; releases every lease this process holds and its registry row, so that the
  // other daemons take its organisations without waiting for the lapse. Synchronous.
  void stop_and_release();

  // This process may send requests and write for `org` now: it holds its lease, proven.
  bool may_act(const std::string& org) const;
  // For the work of no one organisation (retention, notifications, the key check): the
  // default organisation's holder does it.
  bool may_act() const { return may_act(default_org_); }
  bool may_act_any() const;
  // The orgs this process holds (proven or not), by name.
  std::vector<std::string> held() const;
  // Those it starts new work for: held, and not being drained for a hand-over.
  std::vector<std::string> claimable() const;
  std::size_t held_count() const noexcept { return machines_.size(); }
  const std::string& owner() const noexcept { return owner_; }
  const std::string& default_org() const noexcept { return default_org_; }
  // For /readyz, the log and status: what this process works, seen from here.
  std::string describe() const;

 private:
  void tick();
  void schedule(core::Duration delay);
  void register_self(std::int64_t now_ms);
  void look(std::int64_t now_ms);
  void take(const std::string& org);
  void hand_over(const std::string& org);
  // Feeds one org's machine and carries out what it answers (store calls included).
  void step(const std::string& org, const core::LeaseInput& input);
  void ask(const std::string& org, core::LeaseAction::Step what);
  void update_fence();

  struct Held {
    explicit Held(core::LeasePolicy policy) : machine{policy} {}
    core::LeaseMachine machine;
    core::MonotonicTime wake_at{};
  };

  store::QueueStore& store_;
  core::LeasePolicy policy_;
  std::string default_org_;
  Callbacks callbacks_;
  std::string owner_;
  core::OrgSpread spread_;
  boost::asio::steady_timer timer_;
  std::map<std::string, Held> machines_;  // orgs this process holds
  std::set<std::string> draining_;        // held, to be handed over once no create is in flight
  // Who held the others' leases at the last look (for a standby's description).
  std::map<std::string, core::LeaseHolder> others_;
  std::string last_described_;
  core::MonotonicTime next_look_{};
  std::int64_t registry_epoch_ = 0;  // of this daemon's registry row, once written
  core::MonotonicTime registry_renew_at_{};
  std::size_t live_daemons_ = 1;
  std::string last_failure_;
  bool stopped_ = false;
};

}  // namespace devin_orch::app::detail
