// The organisations the daemon works for, each with its gate (core::GateAdmission), its poll
// plan and its pause; the one helper that passes the gate, calls, releases and records; and the
// pauses mirrored from org_pauses. Private to the app module.
#pragma once

#include "parts.hpp"
#include "org_leases.hpp"
#include "store_writer.hpp"

#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/gate_admission.hpp"
#include "devin_orch/core/incremental_poll.hpp"
#include "devin_orch/core/poll_answer.hpp"
#include "devin_orch/core/poll_planner.hpp"

#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>

namespace devin_orch::app::detail {

struct Org {
  Org(std::string id, const Config& config, core::Random& random, Runtime& runtime);

  std::string org_id;
  core::GateAdmission admission;
  core::PollPlanner planner;
  core::IncrementalPoll sync;
  core::PollFailures poll_failures;
  Wakeup poll_wakeup;
  // The timer each request waiting at the gate parks on, by its admission ticket.
  std::unordered_map<core::GateAdmission::Ticket, net::steady_timer*> parked;
  int creating = 0;          // creation flows running
  int active_sessions = 0;   // sessions being polled
  std::optional<std::string> paused_reason;
  bool pause_unsaved = false;  // paused_reason could not be written to org_pauses yet
  TimePoint hold_saved_until{};  // the latest server-announced wait handed to org_holds
};

class OrgGates {
 public:
  OrgGates(Services& services, StoreWriter& writer, const OrgLeases& lease);

  // Called once for each organisation when it is first seen (its poller starts there).
  void on_new_org(std::function<void(Org&)> started) { on_new_org_ = std::move(started); }

  Org& named(const std::string& org_id);
  Org& for_job(const core::JobRecord& job) {
    return named(job.definition.org_id.value_or(services_.config.api.org_id));
  }
  const std::map<std::string, std::unique_ptr<Org>>& all() const noexcept { return orgs_; }

  // Waits for the org's budget and an in-flight slot (see core::GateAdmission). False when
  // stopping: nothing may be sent.
  awaitable<bool> pass_gate(Org& org, core::RequestKind kind);
  // The request that passed the gate ended: frees its slot, lets the gate learn from the answer.
  void release(Org& org, const core::CallOutcome& outcome);
  void observe_call(ApiOperation operation, const core::CallOutcome& outcome,
                    SteadyClock::time_point started);

  // Every request to the API but the create (which reads its secrets between the gate and the
  // send): waits at the org's gate, sends, frees the slot, lets the gate learn from the answer
  // and records the metrics. nullopt when the daemon stops at the gate and nothing was sent.
  template <class Send>
  auto call(Org& org, core::RequestKind kind, ApiOperation operation, Send send)
      -> awaitable<std::optional<typename std::invoke_result_t<Send&>::value_type>> {
    if (!co_await pass_gate(org, kind)) co_return std::nullopt;
    const auto started = SteadyClock::now();
    auto answer = co_await send();
    release(org, answer.outcome);
    observe_call(operation, answer.outcome, started);
    co_return answer;
  }

  // One of the org's sessions ended: a create hold may end.
  void session_ended(Org& org);
  // The queue's lease is proven again: requests held for it go on.
  void lease_resumed();
  // Creates already wait at some gate for tokens or slots.
  bool creates_queue_at_gate() const;
  int requests_in_flight() const;

  // Pauses are rows in org_pauses, so they survive restarts and an operator lifts them with
  // `devin-orch resume`.
  void pause(Org& org, const std::string& reason);
  bool paused(const Org& org) const { return org.paused_reason.has_value() || global_pause_; }
  const std::optional<std::string>& global_pause() const noexcept { return global_pause_; }
  const std::map<std::string, std::string>& stored_pauses() const noexcept { return pauses_; }
  // Mirrors org_pauses and user_pauses into memory: operators pause and resume from another
  // process. False: org_pauses could not be read (nothing changed).
  bool sync_pauses();
  // Reads the waits the server announced before a restart (org_holds): each org applies its own
  // when it is first seen, so nothing is sent to it before the wait ends. False: the store did
  // not answer (nothing read).
  bool load_holds();
  // This daemon takes `org_id` over: reads the pauses and the waits the store has now and
  // applies them to the org's gate, even one known here already, before anything is sent to
  // it. False: the store did not answer, so nothing may be sent yet.
  bool taking_over(const std::string& org_id);

  // Creation paused for the org's jobs created as `user_id` (user_usage_limit_exceeded), saved
  // in user_pauses; lifted by `devin-orch resume --org ORG --user USER`.
  void pause_user(Org& org, const std::string& user_id, const std::string& reason);
  // The org's daemon-set pause ended because its cause did (a key that works again): lifted
  // in the store only if it still has this reason.
  void lift_pause(Org& org, const std::string& reason);
  // The user pauses in force, saved or not yet.
  std::size_t paused_users() const noexcept {
    return user_pauses_.size() + unsaved_user_pauses_.size();
  }
  // Paused organisations, persisted or only known here: left out of the claim query.
  store::QueueStore::ClaimFilter claim_filter() const;

 private:
  void wake_parked(Org& org);
  void save_pause(Org& org);
  void save_hold(Org& org, const core::CallOutcome& outcome, TimePoint now);
  // The stored wait for the org (holds_), if still to come and not applied yet.
  void apply_hold(Org& org);

  Services& services_;
  StoreWriter& writer_;
  const OrgLeases& lease_;
  std::map<std::string, std::unique_ptr<Org>> orgs_;
  std::optional<std::string> global_pause_;    // org_pauses row "*"
  std::map<std::string, std::string> pauses_;  // org_pauses as last read
  std::map<std::string, TimePoint> holds_;     // org_holds in force, as read at the last take-over
  // user_pauses as last read, and those the store did not take yet (saved again at each sync).
  std::vector<store::UserPause> user_pauses_;
  std::vector<store::UserPause> unsaved_user_pauses_;
  std::function<void(Org&)> on_new_org_;
};

}  // namespace devin_orch::app::detail
