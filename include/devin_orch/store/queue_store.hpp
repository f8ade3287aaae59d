// QueueStore: what the daemon that works the queue asks of the database: the jobs it may start,
// every transition of a job it works, the ownership lease and the fence on its writes.
// Pure virtual; the SQLite store implements it today, a PostgreSQL store next.
#pragma once

#include "devin_orch/store/error.hpp"
#include "devin_orch/store/job_intake.hpp"
#include "devin_orch/store/types.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {

// Errors, for every call: a storage errc (with the backend's words in Error::detail),
// not_found for an unknown job id, conflict for a transition the job's current state forbids,
// invalid_argument for a bad argument, lease_lost for a write refused by the fence. A failed
// write leaves the database as it was.
// One thread at a time; other processes may read and insert concurrently.
// Adding jobs (a fan-out's children, the job files at start-up and on reload) is JobIntake's.
class QueueStore : public virtual JobIntake {
 public:
  using ClaimFilter = store::ClaimFilter;
  using LeaseAnswer = store::LeaseAnswer;
  using Fence = store::Fence;

  virtual ~QueueStore() = default;

  // ---- reading the queue ----
  // Queued jobs ready to start, by priority (high first) then age. Rows whose stored spec
  // cannot be decoded are moved to `invalid` with the reason "invalid spec: ..." and not
  // returned; they do not count against `limit`. Nothing is claimed: commit_intents is what
  // takes a job.
  virtual StoreResult<std::vector<core::JobRecord>> claimable(core::TimePoint now,
                                                              std::size_t limit,
                                                              const ClaimFilter& filter = {}) = 0;
  // In id order. A record whose spec does not decode (e.g. `invalid`) has a default spec.
  virtual StoreResult<std::vector<core::JobRecord>> in_state(core::JobState state) = 0;
  // find(key) is JobIntake's.
  // Every JobState is a key, zero counts included.
  virtual StoreResult<std::map<core::JobState, std::int64_t>> count_by_state() = 0;
  // Since when (epoch ms) the longest-waiting job claimable(now, _, filter) would return could
  // have started: the later of its created_at and its not_before; nullopt when there is none.
  // The queue's age for monitoring: work that is stuck, not work scheduled for later, being
  // cancelled, or held back by a pause (those have their own signals).
  virtual StoreResult<std::optional<std::int64_t>> oldest_startable_since_ms(
      core::TimePoint now, const ClaimFilter& filter) = 0;
  // Every job whose first create intent of its generation (intent_at) is at or after `since`,
  // whatever its state, in id order: what the spending guard charges to its windows.
  virtual StoreResult<std::vector<SpendingRow>> spending_since(core::TimePoint since) = 0;
  // Non-terminal jobs whose deadline has passed, the earliest deadline first.
  virtual StoreResult<std::vector<core::JobRecord>> past_deadline(core::TimePoint now) = 0;
  // Non-terminal jobs an operator asked to cancel.
  virtual StoreResult<std::vector<core::JobRecord>> cancel_requests() = 0;

  // ---- transitions: each one transaction that also appends a history row ----
  // Several jobs' intents (state=creating, attempts, creation_tag, intent_at) in one durable
  // transaction: a create intent must survive power loss, or a restart could send a second
  // create. Each intent gets its own outcome, in order: a job that is no longer in the state
  // its IntentWrite expects is refused (conflict / not_found) without affecting the others, and
  // so is a claim whose concurrency group is full (group_full; the job stays queued). A storage
  // error fails the whole batch and records none of it.
  virtual StoreResult<std::vector<StoreResult<void>>> commit_intents(
      std::span<const IntentWrite> intents, core::TimePoint now) = 0;
  // state=running with each session's id, url, status and outcome fields, from creating only.
  // Need not be durable: a lost one is adopted by the tag lookup at the next start. Outcomes
  // per write, as for commit_intents.
  virtual StoreResult<std::vector<StoreResult<void>>> commit_sessions(
      std::span<const SessionWrite> sessions, core::TimePoint now) = 0;
  // state=queued, attempts set, last_error=reason. From queued or creating only (a running
  // job has a session and must not be created again).
  virtual StoreResult<void> requeue(std::int64_t job_id, std::int64_t attempts,
                                    std::string_view reason, core::TimePoint now) = 0;
  // A terminal state (invalid_argument otherwise) with its reason (last_error; empty = none).
  // From a non-terminal state only: a terminal state never changes.
  virtual StoreResult<void> finish(std::int64_t job_id, core::JobState state,
                                   std::string_view reason, core::TimePoint now) = 0;
  // A batch of poll results in one transaction; a history row only where status or
  // status_detail changed, plus one when the job ends. new_state, if set, must be terminal.
  // Updates for jobs that are gone or already terminal (an operator's cancel landed first) are
  // skipped. A null structured_output keeps the stored one; a reason sets last_error.
  virtual StoreResult<void> record_statuses(std::span<const StatusUpdate> updates,
                                            core::TimePoint now) = 0;
  // Two or more sessions carry a running job's tag (a create went again after one the list
  // showed late). The job follows `kept` from now on: if that is not `current_session_id`, the
  // job's session becomes `kept` (only while the job still runs with `current_session_id`).
  // The sessions in `terminated` are recorded in the job's history as duplicates.
  virtual StoreResult<void> record_duplicates(std::int64_t job_id,
                                              std::string_view current_session_id,
                                              const core::Session& kept,
                                              std::span<const std::string> terminated,
                                              core::TimePoint now) = 0;
  // The job's tag needs no more checks for a second session.
  virtual StoreResult<void> end_duplicate_watch(std::int64_t job_id, core::TimePoint now) = 0;
  // The job's child sessions and their ACUs, in one transaction, whatever the job's state: the
  // children's last figures arrive after the parent has ended. Missing jobs are skipped.
  virtual StoreResult<void> record_children(std::span<const ChildrenUpdate> updates,
                                            core::TimePoint now) = 0;
  // Retention: like OperatorStore::prune (outcomes archived, jobs and their history deleted),
  // for at most `limit` ended jobs whose end (finished_at, else updated_at) is before `cutoff`,
  // the earliest ends first, in one short transaction. Returns how many were pruned: fewer
  // than `limit` means none is left. Need not be durable (a lost prune is done again).
  virtual StoreResult<std::int64_t> prune_ended(core::TimePoint cutoff, core::TimePoint now,
                                                std::size_t limit) = 0;
  // Stores the last error without changing state (e.g. a failing poll).
  virtual StoreResult<void> note_error(std::int64_t job_id, std::string_view error,
                                       core::TimePoint now) = 0;
  // ---- attachments: uploaded before the first create intent, each once ----
  // The URL the API answered for each of the job's uploaded files, by path (none: {}).
  virtual StoreResult<std::map<std::string, std::string>> attachment_urls(std::int64_t job_id) = 0;
  // Records an upload's URL; a second record for the same path keeps the first. It is written
  // before the create intent, whose synced commit makes it durable too. not_found: no such job.
  virtual StoreResult<void> record_attachment_url(std::int64_t job_id, std::string_view path,
                                                  std::string_view url, core::TimePoint now) = 0;
  // First time the session was seen waiting for the user (nullopt: clear it).
  virtual StoreResult<void> set_waiting_since(std::int64_t job_id,
                                              std::optional<std::int64_t> at_ms,
                                              core::TimePoint now) = 0;
  // A follow-up or waiting-policy message was sent; `messages_sent` is the new count.
  virtual StoreResult<void> record_message(std::int64_t job_id, std::int64_t messages_sent,
                                           std::string_view message, core::TimePoint now) = 0;
  // The job's running session has made no progress since `since_ms` (epoch ms) and the daemon
  // reports it: stalled_since is set, last_error says `note` (which starts "stalled: "), a
  // history row ("stalled") and a job.stalled notification are written. nullopt: it progresses
  // again (stalled_since cleared, and last_error if it still holds a stall's note; `note` is
  // unused). Only while the job runs; nothing otherwise.
  virtual StoreResult<void> record_stall(std::int64_t job_id, std::optional<std::int64_t> since_ms,
                                         std::string_view note, core::TimePoint now) = 0;
  // ---- organisation pauses the daemon itself decides (a 402 from the API, say) ----
  virtual StoreResult<void> pause_org(std::string_view org_id, std::string_view reason,
                                      std::string_view source, core::TimePoint now) = 0;
  virtual StoreResult<std::map<std::string, std::string>> paused_orgs() = 0;  // org -> reason
  // Lifts the daemon's own pause of the org (source "daemon") if it still has `reason`: its
  // cause ended (a rejected key works again). An operator's pause, or one whose reason changed
  // meanwhile, stays. Lifted: 0 or 1.
  virtual StoreResult<std::int64_t> lift_daemon_pause(std::string_view org_id,
                                                      std::string_view reason) = 0;
  // Creation paused for one user's jobs in an org (user_usage_limit_exceeded). A second pause
  // of the same pair keeps the first reason. An operator lifts it (OperatorStore::resume_user).
  virtual StoreResult<void> pause_user(std::string_view org_id, std::string_view user_id,
                                       std::string_view reason, core::TimePoint now) = 0;
  virtual StoreResult<std::vector<UserPause>> paused_users() = 0;  // by org, then user

  // ---- waits the server announced (Retry-After on any answer), kept across restarts ----
  // Holds the org's requests until `until`. An earlier hold already stored for the org is
  // replaced; a later one is kept (a hold never shortens).
  virtual StoreResult<void> hold_org(std::string_view org_id, core::TimePoint until,
                                     std::string_view reason, core::TimePoint now) = 0;
  // Holds still in force at `now` (ending after it), by org.
  virtual StoreResult<std::vector<OrgHold>> org_holds(core::TimePoint now) = 0;

  // ---- the ownership lease: which process works the queue ----
  // Takes the lease `name` for `owner` if nobody holds it, its expiry has passed by `now`, or
  // `owner` holds it already (then only its expiry moves). A new owner gets the epoch after the
  // previous one. Durable: a new epoch must not be lost while its holder acts on it.
  virtual StoreResult<LeaseAnswer> acquire_lease(std::string_view name, std::string_view owner,
                                                 core::Duration ttl, core::TimePoint now) = 0;
  // Extends the lease if the row still has `owner` and `epoch`, whether or not it has expired
  // (nobody else took it, so nobody else wrote); otherwise not granted, with the new holder.
  virtual StoreResult<LeaseAnswer> renew_lease(std::string_view name, std::string_view owner,
                                               std::int64_t epoch, core::Duration ttl,
                                               core::TimePoint now) = 0;
  // Lets the lease lapse at once if it is still `owner`'s at `epoch`, so a standby takes over
  // without waiting for the expiry (a clean shutdown).
  virtual StoreResult<void> release_lease(std::string_view name, std::string_view owner,
                                          std::int64_t epoch, core::TimePoint now) = 0;
  virtual StoreResult<std::optional<core::LeaseHolder>> read_lease(std::string_view name) = 0;
  // Every lease row whose name starts with `prefix` ("org:", "daemon:"), by name, expired
  // ones included (expires_at_ms tells).
  virtual StoreResult<std::vector<NamedLease>> list_leases(std::string_view prefix) = 0;
  // The organisations with queued, creating or running jobs (default_org for a job naming
  // none), by name: those that need a daemon.
  virtual StoreResult<std::vector<std::string>> orgs_with_work(std::string_view default_org) = 0;
  // From now on every write of this store except the lease calls and the producers' inserts
  // (add_job, add_jobs, add_invalid) first checks, inside its transaction, that the lease row
  // still has the fence's owner and epoch, and fails with errc::lease_lost otherwise, writing
  // nothing. The check and the write must share one lock (one transaction holding the write
  // lock, or a row lock on the lease), so a process that lost the lease cannot write after its
  // successor took it. With Fence::orgs, the write is checked against the lease of each
  // organisation whose jobs (or which itself) it writes, under the same lock. `on_refused` is
  // called inside the refused call (it must not use the store) each time a write is refused
  // for the fence, with the name of the lease that refused it.
  using FenceRefused = std::function<void(const std::string& lease_name)>;
  virtual void set_fence(std::optional<Fence> fence, FenceRefused on_refused = {}) = 0;
};

}  // namespace devin_orch::store
