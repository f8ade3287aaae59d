// The daemon's dispatch: reads the queue when it changed, starts creation flows within each
// organisation's limits, ends jobs whose deadline passed or that an operator cancelled, and
// notices when a batch run (--until-idle) is done. Private to the app module.
#pragma once

#include "creator.hpp"
#include "notification_watch.hpp"
#include "notifier.hpp"
#include "org_gates.hpp"
#include "parts.hpp"
#include "poller.hpp"
#include "org_leases.hpp"
#include "store_writer.hpp"
#include "until_idle_reporter.hpp"

#include "devin_orch/app/daemon/store_watch.hpp"
#include "devin_orch/core/concurrency_groups.hpp"
#include "devin_orch/core/recheck_schedule.hpp"
#include "devin_orch/core/spending_guard.hpp"
#include "devin_orch/store/change_feed.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

namespace devin_orch::app::detail {

class Dispatcher {
 public:
  struct Parts {
    StoreWriter& writer;
    OrgGates& gates;
    Creator& creator;
    Poller& poller;
    const OrgLeases& lease;
    store::ChangeFeed& changes;
    Notifier& notifier;
  };
  // `until_idle`: a batch run, which ends once nothing is queued or in flight, and logs why it
  // waits and, every `progress_every`, its progress; `stop(why, exit_code)` ends it (idle, or
  // stuck behind a pause).
  Dispatcher(Services& services, Parts parts, bool until_idle, core::Duration progress_every,
             std::function<void(const std::string&, int)> stop);

  // The dispatch loop; ends when the runtime stops.
  awaitable<void> run();
  // A create slot may be free (a flow or a session ended): refill soon.
  void slot_freed();
  // Something changed that only a full look notices (a reload of the job files).
  void look_again();
  // New ACU budgets (SIGHUP): applied once the store's charges are read for them; false (the
  // budgets unchanged) when they cannot be.
  bool set_spending_budgets(core::SpendingBudgets budgets);
  void wake() { wakeup_.notify(); }
  // The job's session is stalled and its stall action is `terminate`: the session is
  // terminated (as for a deadline) and the job ends `stalled`. Nothing if it no longer runs or
  // a termination is under way.
  void end_stalled(const std::string& key, std::string reason);

 private:
  void watch_store();
  void on_store_notice();
  void absorb_own_write();
  core::Duration until_next_look(SteadyClock::time_point last_tick) const;
  std::optional<SteadyClock::time_point> refill_at() const;
  std::size_t claim_limit(bool any_org) const;
  // `recheck_held`: also read the jobs of organisations held for their ACU budget (once a
  // second); otherwise the claim skips them, so that their backlog does not fill the window.
  void dispatch_ready_jobs(bool any_org, bool recheck_held);
  // The spending guard's charges read again from the store (once a second); false when the
  // store could not answer (the previous ones stay).
  bool reload_spending(TimePoint now);
  // Logs and counts the organisations, and the concurrency keys, whose creates began to wait
  // for a budget; with `complete` (every organisation's jobs were read), those that stopped
  // waiting too.
  void note_spending_holds(std::map<std::string, core::SpendingVerdict, std::less<>> held,
                           std::map<std::string, core::SpendingVerdict, std::less<>> key_held,
                           bool complete);
  void terminate_over_budget(TimePoint now);
  // The jobs active per concurrency key, from the store (creating or running) plus the creates
  // of ours not committed yet; false when the store could not answer (then nothing keyed starts).
  bool reload_concurrency();
  // Logs the groups that became full and those that have room again.
  void note_concurrency_holds(std::map<std::string, core::GroupVerdict, std::less<>> held);
  bool idle_or_stuck();

  void enforce_deadlines();
  void handle_cancellations();
  void end_by_termination(core::JobRecord job, core::JobState state, std::string reason,
                          bool archive);
  awaitable<void> terminate(Org& org, core::JobRecord job, core::JobState state,
                            std::string reason, bool archive);

  Services& services_;
  Parts parts_;
  bool until_idle_;
  std::optional<UntilIdleReporter> reporter_;  // with until_idle_
  std::function<void(const std::string&, int)> stop_;
  Wakeup wakeup_;
  std::unique_ptr<StoreWatch> store_watch_;  // SQLite's files; null: see notifications_
  // PostgreSQL's LISTEN socket. Neither watch: polling every queue_check_interval.
  std::unique_ptr<NotificationWatch> notifications_;
  core::RecheckSchedule recheck_;            // looks due after the watch's latest notice
  std::optional<std::int64_t> seen_data_version_;  // the store's change mark at the last look
  bool look_now_ = false;  // the mark moved around a write of ours: look once, at once
  bool dispatch_requested_ = false;
  SteadyClock::time_point last_refill_{};  // when dispatch last ran for a finished flow
  bool cancellations_pending_ = false;
  std::unordered_set<std::int64_t> terminating_;  // jobs whose session DELETE is in flight
  core::SpendingLedger spending_;                  // spending.*: inactive without budgets
  // Organisations whose next create waits for an ACU budget, as the last full look found.
  std::map<std::string, core::SpendingVerdict, std::less<>> spending_held_;
  // Concurrency keys whose jobs wait for the key's ACU budget, likewise; and how many queued
  // jobs the last dispatch left for it (read again with a wider window).
  std::map<std::string, core::SpendingVerdict, std::less<>> spending_keys_held_;
  std::size_t held_by_key_budgets_ = 0;
  core::ConcurrencyGroups concurrency_;  // the config's `concurrency:`; inactive when empty
  // Jobs we launched with a limited concurrency key, until the store shows them (or their
  // create ends): between the launch and the intent's commit the store still says queued.
  std::map<std::int64_t, std::string> launched_keys_;
  std::map<std::string, core::GroupVerdict, std::less<>> concurrency_held_;  // key -> verdict
  // Queued jobs the last dispatch found held by a full group: the next claim reads that many
  // more rows, so that they do not fill the window and keep other keys' jobs from being read.
  std::size_t held_by_groups_ = 0;
};

}  // namespace devin_orch::app::detail
