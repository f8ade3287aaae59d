// The daemon's polling of live sessions: one poller per organisation that sends due sessions in
// batches through its gate, each job's controls applied to what a poll sees, follow-up
// messages, and the statuses recorded. Owns the tracked sessions. Private to the app module.
#pragma once

#include "org_gates.hpp"
#include "parts.hpp"
#include "store_writer.hpp"

#include "devin_orch/core/acu_tally.hpp"
#include "devin_orch/core/incremental_poll.hpp"
#include "devin_orch/core/session_policy.hpp"
#include "devin_orch/core/stall_rule.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace devin_orch::app::detail {

class Poller {
 public:
  // `session_ended`: a tracked session left (ended, lost, terminated): its slot is free.
  // `end_stalled(key, reason)`: a job whose stall action is `terminate` is stalled; its session
  // is to be terminated and the job ended `stalled` (asked again at each poll that finds it
  // still stalled, until it has ended).
  Poller(Services& services, StoreWriter& writer, OrgGates& gates,
         std::function<void()> session_ended,
         std::function<void(const std::string&, std::string)> end_stalled);

  // Starts the org's poll loop (once, when the org is first seen).
  void start(Org& org);

  // Polls the job's session from now on. `reattached`: a session an earlier process tracked,
  // polled at once (it may have moved on while the daemon was down), whose ACUs so far that
  // process counted (see core::AcuTally); `server_time`: the newest server timestamp of the
  // answer the session came in (see IncrementalPoll).
  void track(Org& org, const core::JobRecord& job, const std::string& status,
             const std::optional<std::string>& detail, TimePoint now, bool reattached = true,
             std::int64_t server_time = -1);
  void untrack(Org& org, const std::string& session_id);
  // Stops polling every session of the org without recording anything: its lease goes to
  // another daemon, which re-attaches them from the store.
  void drop_org(Org& org);
  bool tracking(const std::string& session_id) const { return tracked_.contains(session_id); }
  // The child sessions a poll has shown the session to have (empty: none known yet).
  std::vector<std::string> children_of(const std::string& session_id) const;
  std::size_t size() const noexcept { return tracked_.size(); }
  // Tracked sessions stalled now (core/stall_rule.hpp).
  std::size_t stalled() const noexcept;
  // Families whose last children poll is still to come (a parent ended, its children not).
  std::size_t children_pending() const noexcept { return families_.size(); }

  // Records statuses (and ends) through the writer.
  void commit_updates(std::vector<store::StatusUpdate> updates, TimePoint now);

 private:
  struct TrackedSession {
    std::int64_t job_id = 0;
    std::string org_id;
    std::int64_t started_at_ms = 0;  // session committed; for the session-duration histogram
    std::string job_key;
    std::optional<std::string> create_as_user_id;  // whose quota a user-level suspension names
    std::string status;
    std::optional<std::string> status_detail;
    core::SessionPolicy policy;  // the job's controls applied to each observation
    core::SyncMark sync;         // how far its changes are known (incremental polls)
    // Created again after a create that may have landed: until then (epoch ms) the job's tag
    // is checked for a second session after each poll.
    std::optional<std::int64_t> watch_until_ms;
    std::string tag;
    std::int64_t lookup_from = 0;  // created_after for that check (server seconds)
    bool checking = false;         // a check is in flight
    // The stall rule over its polls: the job's stall_after / stall_action over the config's.
    core::StallWatch stall{core::StallPolicy{}};
    // The session's updated_at at the last poll (server seconds); <= 0: not known yet.
    std::int64_t updated_at = 0;
    bool stalled = false;         // stalled at the last poll
    bool counting_messages = false;  // a count of Devin's messages is in flight
    double recorded_acus = 0.0;      // acus_consumed as last written to the store
  };

  // What a duplicate check needs, copied: the session may be untracked meanwhile.
  struct DuplicateCheck {
    std::int64_t job_id = 0;
    std::string job_key;
    std::string session_id;
    std::string tag;
    std::int64_t lookup_from = 0;
    bool job_ended = false;
  };

  core::ParentAcus acu_reporting() const;
  awaitable<void> poll_loop(Org& org);
  std::optional<std::int64_t> batch_updated_after(Org& org, const std::vector<std::string>& ids,
                                                  TimePoint now) const;
  awaitable<void> poll_batch(Org& org, std::vector<std::string> ids);
  void note_dating(Org& org, TrackedSession& tracked, const api::Session& session);
  awaitable<void> poll_single(Org& org, std::string session_id);
  void apply_status(Org& org, api::Session session, TimePoint now,
                    std::vector<store::StatusUpdate>& updates);
  // A session's children (reference §12): polled in one list request after each poll of the
  // parent, and once more when the parent ends, for their ACUs (the API may report them apart
  // from the parent's).
  struct Family {
    std::int64_t job_id = 0;
    std::vector<std::string> child_ids;
    std::unordered_map<std::string, double> acus;  // each child's last acus_consumed
    std::optional<double> recorded;                // children_acus last written
    bool ids_recorded = false;                     // child_ids written since they last grew
    bool parent_ended = false;                     // the next poll of the children is the last
  };
  void note_children(const TrackedSession& tracked, const api::Session& session);
  // The stall rule applied to one poll of a session still running (its updated_at and status
  // as the poll shows them; unchanged ones when an incremental poll left it out).
  void observe_stall(Org& org, TrackedSession& tracked, const std::string& session_id,
                     TimePoint now);
  awaitable<void> count_messages_then_observe(Org& org, std::string session_id);
  void act_on_stall(Org& org, TrackedSession& tracked, const std::string& session_id,
                    core::StallWatch::Step step, bool was_stalled, TimePoint now);
  // Records a stall (at most once: before the message, which therefore goes at most once), then
  // sends the message when that is the action.
  awaitable<void> report_stall(Org& org, std::string session_id, std::int64_t job_id,
                               std::string job_key, std::int64_t since_ms, std::string note,
                               core::StallPolicy policy);
  awaitable<void> poll_children(Org& org, std::vector<std::string> parents);
  awaitable<void> send_message(Org& org, std::string session_id, std::string text,
                               std::int64_t count);
  void maybe_check_duplicates(Org& org, TrackedSession& tracked, const std::string& session_id,
                              bool ended, TimePoint now);
  awaitable<void> check_duplicates(Org& org, DuplicateCheck check);
  void switch_session(Org& org, const std::string& from, const api::Session& to, TimePoint now);

  Services& services_;
  StoreWriter& writer_;
  OrgGates& gates_;
  std::function<void()> session_ended_;
  std::function<void(const std::string&, std::string)> end_stalled_;
  std::unordered_map<std::string, TrackedSession> tracked_;
  std::unordered_map<std::string, Family> families_;  // by the parent's session id
  // By job id, while its session or its children are polled: what devin_orch_acus_consumed_total
  // has counted of the job.
  std::unordered_map<std::int64_t, core::AcuTally> acus_;
};

}  // namespace devin_orch::app::detail
