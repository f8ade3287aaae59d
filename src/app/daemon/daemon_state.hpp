// The daemon's state, shared by the files that implement it (daemon*.cpp): one class, split by
// concern so that each file can be read alone. Private to the app module.
#pragma once

#include "devin_orch/api/devin_client.hpp"
#include "devin_orch/api/http_client.hpp"
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/daemon/daemon.hpp"
#include "devin_orch/app/daemon/group_commit.hpp"
#include "devin_orch/app/daemon/store_watch.hpp"
#include "devin_orch/app/daemon/systemd_notify.hpp"
#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/creation_machine.hpp"
#include "devin_orch/core/incremental_poll.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/poll_planner.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/rate_gate.hpp"
#include "devin_orch/core/recheck_schedule.hpp"
#include "devin_orch/core/session_policy.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/server/metrics.hpp"
#include "devin_orch/server/status_server.hpp"
#include "devin_orch/store/change_feed.hpp"
#include "devin_orch/store/queue_store.hpp"
#include "queue_lease.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace devin_orch::app::detail {

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using core::TimePoint;
using SteadyClock = std::chrono::steady_clock;

inline constexpr auto kTuple = net::as_tuple(use_awaitable);

// While creates queue at the gate: how long the dispatcher waits between refills of create
// slots, and how long a recorded session waits for others to share its commit. Those creates
// wait for tokens anyway, so neither pause costs throughput, and a longer pause lets more of
// them share one transaction (one fsync) and wakes the daemon less often. The measurements
// behind 250 ms are in bench/findings.md (eleventh round).
inline constexpr auto kGatedCreateBatching = std::chrono::milliseconds{250};

// A one-shot wake-up for a single waiter that never loses a notify sent before the wait.
class Wakeup {
 public:
  explicit Wakeup(net::any_io_executor executor) : timer_{std::move(executor)} {}

  awaitable<void> wait_for(core::Duration timeout);
  void notify();

 private:
  net::steady_timer timer_;
  bool pending_ = false;
};

inline core::Duration until(TimePoint deadline, TimePoint now) {
  return std::max(core::Duration{0}, deadline - now);
}

struct TrackedSession {
  std::int64_t job_id = 0;
  std::int64_t started_at_ms = 0;  // session committed; for the session-duration histogram
  std::string job_key;
  std::string status;
  std::optional<std::string> status_detail;
  core::SessionPolicy policy;  // the job's controls applied to each observation
  core::SyncMark sync;         // how far its changes are known (incremental polls)
};

struct Org {
  Org(std::string id, const Config& config, core::Random& random, net::any_io_executor executor);

  std::string org_id;
  core::RateGate gate;
  core::PollPlanner planner;
  core::IncrementalPoll sync;
  Wakeup poll_wakeup;
  net::steady_timer slot_freed;  // cancelled whenever an in-flight slot frees; queue heads wait
  std::set<net::steady_timer*> gate_sleepers;  // woken when the gate opens early (hold released)
  // Flows waiting at the gate, per kind (creates, others), in arrival order. Only the head of
  // a queue waits for a token or a slot; the others wait for their turn, so a token wakes one
  // waiter rather than all of them.
  std::deque<net::steady_timer*> create_queue;
  std::deque<net::steady_timer*> other_queue;
  int in_flight = 0;
  int creating = 0;               // creation flows running
  int creates_waiting = 0;        // creation flows queued at the gate (token or slot)
  int active_sessions = 0;        // sessions being polled
  int poll_failures = 0;          // consecutive failed poll requests
  std::optional<std::string> paused_reason;
  bool pause_unsaved = false;     // paused_reason could not be written to org_pauses yet
};

class Daemon {
 public:
  Daemon(net::io_context& io, const Config& config, store::QueueStore& store,
         store::ChangeFeed& changes,
         std::unique_ptr<api::HttpClient> http, const DaemonOptions& options,
         server::MetricsRegistry& metrics);

  // Signals, the systemd heartbeat and the queue's lease: from here the daemon either works
  // the queue or stands by until it may.
  void start();

  int exit_code() const noexcept { return exit_code_; }

  // /readyz: this process works the queue, restart recovery is done and the lease is proven;
  // otherwise why not (a standby names the daemon it waits for).
  server::Readiness readiness() const;

  // After the loop has ended: lets the lease lapse at once if this process holds it.
  void release_lease() { lease_.stop_and_release(); }

  void refresh_gauges();

 private:
  // ---- metrics, supervision, start-up, shutdown, the rate gate (daemon.cpp) ---------------

  void observe_call(std::string_view operation, const core::CallOutcome& outcome,
                    SteadyClock::time_point started);
  void count(std::string_view name, std::string_view help, server::Labels labels = {}) {
    metrics_.counter(name, help, std::move(labels)).inc();
  }
  void count_job_end(core::JobState state);

  std::string status_line();
  awaitable<void> heartbeat();

  void take_over();
  void stand_by(const core::LeaseHolder& holder);
  void abandon(const std::string& why);
  bool lease_ok() const { return lease_.may_act(); }
  bool recover();
  Org& org_for(const core::JobRecord& job) {
    return org_named(job.definition.org_id.value_or(config_.api.org_id));
  }
  Org& org_named(const std::string& org_id);

  void listen_for_signals();
  void reload_job_files();
  void request_stop(const std::string& why);
  awaitable<void> drain_watch();
  int requests_in_flight() const;
  awaitable<bool> sleep_for(core::Duration timeout, std::set<net::steady_timer*>* also = nullptr);

  awaitable<bool> pass_gate(Org& org, core::RequestKind kind);
  // Every request to the API but the create (which reads its secrets between the gate and the
  // send): waits at the org's gate, sends, frees the slot, lets the gate learn from the answer
  // and records the metrics. nullopt when the daemon stops at the gate and nothing was sent.
  template <class Send>
  auto gated_call(Org& org, core::RequestKind kind, std::string_view operation, Send send)
      -> awaitable<std::optional<typename std::invoke_result_t<Send&>::value_type>> {
    if (!co_await pass_gate(org, kind)) co_return std::nullopt;
    const auto started = SteadyClock::now();
    auto answer = co_await send();
    release(org, answer.outcome);
    observe_call(operation, answer.outcome, started);
    co_return answer;
  }
  void release(Org& org, const core::CallOutcome& outcome);
  void pause_org(Org& org, const std::string& reason);
  bool paused(const Org& org) const { return org.paused_reason.has_value() || global_pause_; }
  void sync_pauses();
  void save_pause(Org& org);

  void commit_updates(std::vector<store::StatusUpdate> updates, TimePoint now);

  // ---- store writes (daemon.cpp) ------------------------------------------------------------
  // One place for a write the daemon must not drop: it goes now, or after the writes still
  // waiting (in order); a failure whose cause may pass (full disk, I/O error, a lock held
  // elsewhere) keeps it waiting until it goes through; any other failure is logged and counted.
  void write(std::string what, std::function<store::StoreResult<void>()> attempt);
  // Every failed store call is reported here: logged with its cause, counted by kind, and for
  // a storage failure remembered until a write goes through again (/readyz, status).
  void store_failed(std::string_view what, const store::Error& error);
  void store_succeeded();
  // A job's end, written through write(): never dropped while its cause may pass.
  void finish_job(const core::JobRecord& job, core::JobState state, std::string reason);
  awaitable<void> retry_writes();

  struct PendingWrite {
    std::string what;
    std::function<store::StoreResult<void>()> attempt;
  };
  struct StorageTrouble {
    boost::system::error_code error;
    SteadyClock::time_point since;
    SteadyClock::time_point last_logged;
  };

  // ---- dispatch, deadlines and cancellations (daemon_dispatch.cpp) ------------------------

  awaitable<void> dispatcher();
  void watch_store();
  void on_store_notice();
  void absorb_own_write();
  core::Duration until_next_look(SteadyClock::time_point last_tick) const;
  bool creates_queue_at_gate() const;
  std::optional<SteadyClock::time_point> refill_at() const;
  std::size_t claim_limit(bool any_org) const;
  store::QueueStore::ClaimFilter claim_filter() const;
  void dispatch_ready_jobs(bool any_org);
  bool idle_or_stuck();

  void enforce_deadlines();
  void handle_cancellations();
  void end_by_termination(core::JobRecord job, core::JobState state, std::string reason,
                          bool archive);
  awaitable<void> terminate(Org& org, core::JobRecord job, core::JobState state,
                            std::string reason, bool archive);

  // ---- creation and fan-out (daemon_creation.cpp) -----------------------------------------

  void launch_creation(core::JobRecord job, bool resumed);

  struct LookupResult {
    core::CallOutcome outcome;
    std::vector<api::Session> matches;  // oldest first
  };

  awaitable<std::optional<LookupResult>> lookup_by_tag(Org& org, const std::string& tag,
                                                       std::int64_t created_after);

  // One job's creation: its machine, the machine's next action and what the steps learnt.
  struct CreationFlow {
    core::JobRecord job;
    std::string tag;
    core::CreationMachine machine;
    core::CreationAction action;
    std::optional<api::Session> session;  // from the create answer or the lookup
    bool adopted = false;
    bool claim = true;  // the next intent claims the job from queued (see IntentWrite::claim)
  };

  awaitable<void> creation_flow(Org& org, core::JobRecord job, bool resumed);
  // The flow's longer steps, each a coroutine of its own so that its locals exist only while
  // it runs: GCC gives every local of a coroutine its own slot in the frame, and one frame
  // holding all of them was 5 KB, times the creates in flight. Each sets flow.action to the
  // next action, or returns false when the flow ends.
  awaitable<bool> commit_intent_step(CreationFlow& flow);
  awaitable<bool> send_create_step(Org& org, CreationFlow& flow);
  awaitable<bool> lookup_step(Org& org, CreationFlow& flow);
  awaitable<bool> commit_session_step(Org& org, CreationFlow& flow);
  awaitable<void> fan_out(Org& org, core::JobRecord job);

  // ---- polling (daemon_polling.cpp) -------------------------------------------------------

  void track_session(Org& org, const core::JobRecord& job, const std::string& status,
                     const std::optional<std::string>& detail, TimePoint now,
                     bool poll_soon = true, std::int64_t server_time = -1);
  void untrack_session(Org& org, const std::string& session_id);
  awaitable<void> poller(Org& org);
  core::Duration poll_retry_delay(Org& org);
  std::optional<std::int64_t> batch_updated_after(Org& org, const std::vector<std::string>& ids,
                                                  TimePoint now) const;
  awaitable<void> poll_batch(Org& org, std::vector<std::string> ids);
  awaitable<void> poll_single(Org& org, std::string session_id);
  void apply_status(Org& org, api::Session session, TimePoint now,
                    std::vector<store::StatusUpdate>& updates);
  awaitable<void> send_message(Org& org, std::string session_id, std::string text,
                               std::int64_t count);

  net::io_context& io_;
  server::MetricsRegistry& metrics_;
  const Config& config_;
  // Pointers so that store_-> reads as it did when the daemon owned the store; never null.
  store::QueueStore* store_;
  store::ChangeFeed* changes_;
  std::unique_ptr<api::HttpClient> http_;
  api::DevinClient client_;
  DaemonOptions options_;
  SystemdNotifier notifier_;
  core::Random random_;
  Wakeup dispatch_wakeup_;
  net::steady_timer drain_timer_;
  net::signal_set signals_;
  core::CreationPolicy creation_policy_;
  std::map<std::string, std::unique_ptr<Org>> orgs_;
  std::unordered_map<std::string, TrackedSession> tracked_;
  std::unordered_set<std::int64_t> in_progress_;
  std::unordered_set<std::int64_t> terminating_;  // jobs whose session DELETE is in flight
  std::optional<std::string> global_pause_;       // org_pauses row "*"
  std::map<std::string, std::string> pauses_;     // org_pauses as last read
  std::set<net::steady_timer*> sleepers_;
  int batches_in_flight_ = 0;
  GroupCommit<store::IntentWrite, store::Error> intents_;  // create intents, fsynced together per loop turn
  GroupCommit<store::SessionWrite, store::Error> sessions_;  // created sessions; linger while creates queue
  std::unique_ptr<StoreWatch> store_watch_;  // null: polling every queue_check_interval
  core::RecheckSchedule recheck_;            // looks due after the watch's latest notice
  QueueLease lease_;                         // whether this process may work the queue
  std::optional<std::int64_t> seen_data_version_;  // PRAGMA data_version at the last look
  bool look_now_ = false;  // data_version moved around a write of ours: look once, at once
  bool dispatch_requested_ = false;
  SteadyClock::time_point last_refill_{};  // when dispatch last ran for a finished flow
  bool cancellations_pending_ = false;
  std::deque<PendingWrite> pending_writes_;
  bool retrying_writes_ = false;
  std::optional<StorageTrouble> storage_trouble_;
  bool stopping_ = false;
  bool ready_ = false;
  int exit_code_ = 0;
};

}  // namespace devin_orch::app::detail
