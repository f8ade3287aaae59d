// The daemon's creation flows: drives each job's core::CreationMachine (intent, create, lookup
// by tag, commit) until its session is recorded, and fans enterprise jobs out per organisation.
// Owns the jobs in flight and the group commits of intents and sessions. Private to the app
// module.
#pragma once

#include "org_gates.hpp"
#include "parts.hpp"
#include "store_writer.hpp"

#include "devin_orch/app/daemon/group_commit.hpp"
#include "devin_orch/core/concurrency_groups.hpp"
#include "devin_orch/core/creation_machine.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace devin_orch::app::detail {

class Creator {
 public:
  struct Callbacks {
    // A session was recorded for the job: poll it from now on.
    std::function<void(Org&, const core::JobRecord&, const api::Session&, TimePoint)> recorded;
    // A flow ended (its create slot is free).
    std::function<void()> flow_ended;
    // An fsync failed: nothing more may be sent by this process.
    std::function<void(const std::string& why)> fatal;
  };

  Creator(Services& services, StoreWriter& writer, OrgGates& gates, Callbacks callbacks);

  // Starts the job's creation flow (`resumed`: the job was left `creating` by a previous run).
  void launch(core::JobRecord job, bool resumed);
  // Starts an enterprise job's fan-out to one child job per organisation.
  void launch_fan_out(core::JobRecord job);

  bool in_flight(std::int64_t job_id) const { return in_progress_.contains(job_id); }
  std::size_t size() const noexcept { return in_progress_.size(); }
  // Writes the sessions waiting for their group commit now (shutdown: no linger).
  void flush_now() { sessions_.flush_now(); }

 private:
  // One job's creation: its machine, the machine's next action and what the steps learnt.
  struct Flow {
    core::JobRecord job;
    std::string tag;
    core::CreationMachine machine;
    core::CreationAction action;
    std::optional<api::Session> session;  // from the create answer or the lookup
    bool adopted = false;
    bool claim = true;  // the next intent claims the job from queued (see IntentWrite::claim)
    std::vector<std::string> attachment_urls;  // the job's uploaded files, in spec order
  };

  awaitable<void> run(Org& org, core::JobRecord job, bool resumed);
  // The flow's longer steps, each a coroutine of its own so that its locals exist only while
  // it runs: GCC gives every local of a coroutine its own slot in the frame, and one frame
  // holding all of them was 5 KB, times the creates in flight. Each sets flow.action to the
  // next action, or returns false when the flow ends.
  // Before the first intent (creator_attachments.cpp): uploads each of the job's files that has
  // no stored URL, stores the URL, and fills flow.attachment_urls. False: the flow ends (the
  // job ended, or the daemon stops; a job left queued keeps the URLs stored so far).
  awaitable<bool> attachments_step(Org& org, Flow& flow);
  awaitable<bool> commit_intent_step(Flow& flow);
  awaitable<bool> send_create_step(Org& org, Flow& flow);
  awaitable<bool> lookup_step(Org& org, Flow& flow);
  awaitable<bool> commit_session_step(Org& org, Flow& flow);
  awaitable<void> fan_out(Org& org, core::JobRecord job);
  void ended(std::int64_t job_id);

  Services& services_;
  StoreWriter& writer_;
  OrgGates& gates_;
  Callbacks callbacks_;
  core::CreationPolicy policy_;
  // The config's `concurrency:`: a claim carries its job's group limit, which the store checks
  // in the intent's transaction (the dispatcher's count alone does not see other daemons').
  core::ConcurrencyGroups groups_;
  std::unordered_set<std::int64_t> in_progress_;
  GroupCommit<store::IntentWrite, store::Error> intents_;  // fsynced together per loop turn
  GroupCommit<store::SessionWrite, store::Error> sessions_;  // linger while creates queue
};

}  // namespace devin_orch::app::detail
