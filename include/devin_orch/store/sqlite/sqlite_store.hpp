// The durable job queue and outcome record in SQLite: WAL, busy timeout, BEGIN IMMEDIATE for
// every write, synchronous=FULL (a create intent must survive power loss, or a restart could
// send a second create) except for writes a restart repairs (session ids, statuses), versioned
// schema migrated forward through PRAGMA user_version.
// Single-threaded use from the event loop; other processes may read and insert concurrently.
#pragma once

#include "devin_orch/core/session.hpp"
#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/lease.hpp"
#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <functional>
#include <vector>

struct sqlite3;

namespace devin_orch::store {

class Statement;  // statement.hpp, internal to the store

struct StoreOptions {
  std::string path;                 // database file; parent directory created 0700, file 0600
  core::Duration busy_timeout{5'000};
  // SQLite's page cache for this connection (PRAGMA cache_size). The daemon keeps what it polls
  // in memory and mostly writes; reads that miss are served from the OS page cache.
  std::int64_t cache_kib = 256;
};

enum class AddResult {
  inserted,   // a new job
  unchanged,  // the key exists with the same definition: nothing done
  changed,    // the key exists with a different definition: NOT updated (reported)
};

// One poll result to record.
struct IntentWrite {
  std::int64_t job_id = 0;
  std::int64_t attempt = 0;  // the job's attempts after this intent; it had attempt - 1 before
  // true: the job is claimed from `queued`; false: a further attempt on a job in `creating`.
  // Either way the job must still have attempt - 1 attempts, so two processes working from one
  // reading of a job cannot both commit an intent for it.
  bool claim = true;
  std::string tag;
  std::int64_t intent_at_ms = 0;
};

// A created or adopted session to record (commit_sessions).
struct SessionWrite {
  std::int64_t job_id = 0;
  core::Session session;
  bool adopted = false;  // found by the tag lookup rather than returned by the create call
};

struct StatusUpdate {
  std::int64_t job_id = 0;
  core::Session session;
  std::optional<core::JobState> new_state;  // set when the job ends with this poll
  std::optional<std::string> reason;        // last_error / terminal reason
};

struct HistoryEntry {
  std::int64_t at_ms = 0;
  std::string event;  // "queued", "intent", "created", "adopted", "status", "requeued", ...
  std::optional<std::string> state;
  std::optional<std::string> status;
  std::optional<std::string> status_detail;
  std::optional<std::string> message;
};

// Everything the store keeps about a job's session, beyond JobRecord's fields.
struct Outcome {
  std::vector<core::PullRequest> pull_requests;
  double acus_consumed = 0.0;
  std::optional<std::string> structured_output;
  std::optional<std::int64_t> started_at_ms;   // session committed
  std::optional<std::int64_t> finished_at_ms;  // terminal state reached
};

// ---- operator queries: types (JobStore's operator queries, src/store/operator_queries.cpp) ----

// Which jobs an operator's listing selects; every field set narrows it.
struct JobFilter {
  std::vector<core::JobState> states;  // any of these; empty: every state
  // The job's effective organisation: its own org_id, or `default_org` when it names none.
  std::optional<std::string> org_id;
  std::string default_org;
  std::optional<std::string> tag;                 // the decoded spec has this tag
  std::optional<std::int64_t> created_before_ms;  // created_at < this
  std::optional<std::int64_t> created_after_ms;   // created_at > this
  std::optional<std::size_t> limit;               // the first N matching jobs
};

// One job as a listing shows it: what a table row or a script needs, not the whole record.
struct JobSummary {
  std::int64_t id = 0;
  std::string key;
  core::JobState state = core::JobState::queued;
  std::string org_id;  // effective: the job's own, else JobFilter::default_org
  std::optional<std::string> session_id;
  std::optional<std::string> session_url;
  std::optional<std::string> status;
  std::optional<std::string> status_detail;
  std::optional<std::string> last_error;
  std::int64_t attempts = 0;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> finished_at_ms;
};

// One organisation pause as stored ("*" pauses all).
struct OrgPause {
  std::string org_id;
  std::string reason;
  std::string source;  // who paused it: "cli", or the daemon's own reason
  std::int64_t paused_at_ms = 0;
};

// The connection's own settings as SQLite reports them. They are per connection, so only the
// store can read them: for diagnostics and the tests that pin them.
struct ConnectionSettings {
  std::int64_t synchronous = 0;  // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
  bool foreign_keys = false;
  std::int64_t busy_timeout_ms = 0;
  std::int64_t cache_size = 0;  // negative: KiB; positive: pages
};

class JobStore {
 public:
  // Opens (creating if needed) and migrates. Errors carry a readable message in `error`.
  static result<std::unique_ptr<JobStore>> open(const StoreOptions& options,
                                                std::string* error = nullptr);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Errors, for every method: database_error (message in last_error_message()), not_found for
  // an unknown job id, conflict for a transition the job's current state forbids,
  // invalid_argument for a bad argument. A failed write leaves the database as it was.

  // Definitions. `source` says where it came from ("file:jobs.yaml", "queue", "cli").
  // The key must be 1..512 characters (invalid_argument otherwise). The spec is stored in its
  // canonical encoding and is not validated here: one that does not decode is moved to
  // `invalid` by claimable(), like a producer's.
  // `parent_key` marks a fan-out child.
  result<AddResult> add_job(const core::JobDefinition& definition, std::string_view source,
                            core::TimePoint now,
                            const std::optional<std::string>& parent_key = std::nullopt);
  // Many definitions in one transaction (one fsync for a whole job file); all or none.
  result<std::vector<AddResult>> add_jobs(std::span<const core::JobDefinition> definitions,
                                          std::string_view source, core::TimePoint now);
  // Records a definition that could not be used, as state `invalid` with `reason`. A key that
  // already exists is left alone (returns unchanged).
  result<AddResult> add_invalid(std::string_view key, std::string_view source,
                                std::string_view reason, core::TimePoint now);

  // Queued jobs ready to start, by priority (high first) then age. Rows whose stored spec
  // cannot be decoded are moved to `invalid` with the reason "invalid spec: ..." and not
  // returned; they do not count against `limit`. Nothing is claimed: the caller's
  // commit_intent is what takes a job.
  // `paused_orgs` are skipped in the query itself, so a paused organisation's backlog never
  // fills the window and starves the others; a NULL org_id counts as `default_org`.
  struct ClaimFilter {
    std::vector<std::string> paused_orgs;
    std::string default_org;
  };
  result<std::vector<core::JobRecord>> claimable(core::TimePoint now, std::size_t limit,
                                                 const ClaimFilter& filter = {});
  // In id order. A record whose spec does not decode (e.g. `invalid`) has a default spec.
  result<std::vector<core::JobRecord>> in_state(core::JobState state);
  result<std::vector<core::JobRecord>> all_jobs();
  result<std::optional<core::JobRecord>> find(std::string_view key);
  result<Outcome> outcome(std::int64_t job_id);
  // Oldest first; empty for an unknown job.
  result<std::vector<HistoryEntry>> history(std::int64_t job_id);
  // Every JobState is a key, zero counts included.
  result<std::map<core::JobState, std::int64_t>> count_by_state();
  // created_at (epoch ms) of the oldest queued job, if any: the queue's age for monitoring.
  result<std::optional<std::int64_t>> oldest_queued_at_ms();

  // Transitions: each is one BEGIN IMMEDIATE transaction that also appends a history row.
  // state=creating, attempts, creation_tag, intent_at (kept if already set). A claim from
  // queued when `attempt` is 1, otherwise a further attempt from creating; the job must have
  // attempt - 1 attempts (see IntentWrite).
  result<void> commit_intent(std::int64_t job_id, std::int64_t attempt, std::string_view tag,
                             std::int64_t intent_at_ms, core::TimePoint now);
  // Several jobs' intents in one fsynced transaction (group commit: one fsync for a burst of
  // creates). Each intent gets its own outcome, in order: a job that is no longer queued or
  // creating is refused (conflict / not_found) without affecting the others. A database error
  // fails the whole batch and records none of it.
  result<std::vector<result<void>>> commit_intents(std::span<const IntentWrite> intents,
                                                   core::TimePoint now);
  // state=running with the session's id, url, status and outcome fields. `adopted` says the
  // session was found by lookup rather than returned by the create call. From creating only.
  result<void> commit_session(std::int64_t job_id, const core::Session& session, bool adopted,
                              core::TimePoint now);
  // Several sessions in one transaction, not fsynced (a lost one is adopted by the tag lookup
  // at the next start). Outcomes per write, as for commit_intents.
  result<std::vector<result<void>>> commit_sessions(std::span<const SessionWrite> sessions,
                                                    core::TimePoint now);
  // state=queued, attempts set, last_error=reason. From queued or creating only (a running
  // job has a session and must not be created again).
  result<void> requeue(std::int64_t job_id, std::int64_t attempts, std::string_view reason,
                       core::TimePoint now);
  // A terminal state (invalid_argument otherwise) with its reason (last_error; empty = none).
  // From a non-terminal state only: a terminal state never changes.
  result<void> finish(std::int64_t job_id, core::JobState state, std::string_view reason,
                      core::TimePoint now);
  // Records a batch of poll results in one transaction; a history row only where status or
  // status_detail changed, plus one when the job ends. new_state, if set, must be terminal.
  // Updates for jobs that are gone or already terminal (an operator's cancel landed first) are
  // skipped. A null structured_output keeps the stored one; a reason sets last_error.
  result<void> record_statuses(std::span<const StatusUpdate> updates, core::TimePoint now);
  // Stores the last error without changing state (e.g. a failing poll).
  result<void> note_error(std::int64_t job_id, std::string_view error, core::TimePoint now);

  // ---- job controls: runtime progress ----
  // First time the session was seen waiting for the user (nullopt: clear it).
  result<void> set_waiting_since(std::int64_t job_id, std::optional<std::int64_t> at_ms,
                                 core::TimePoint now);
  // A follow-up or waiting-policy message was sent; `messages_sent` is the new count.
  result<void> record_message(std::int64_t job_id, std::int64_t messages_sent,
                              std::string_view message, core::TimePoint now);
  // Non-terminal jobs whose deadline has passed, the earliest deadline first.
  result<std::vector<core::JobRecord>> past_deadline(core::TimePoint now);
  // Non-terminal jobs an operator asked to cancel.
  result<std::vector<core::JobRecord>> cancel_requests();

  // ---- operator controls (the CLI, or the daemon itself) ----
  enum class CancelResult { cancelled, requested, already_ended, not_found };
  // Queued: cancelled at once. Creating/running: flagged; the daemon terminates the session
  // (archiving it if `archive`) and ends the job `cancelled`.
  result<CancelResult> request_cancel(std::string_view key, bool archive, core::TimePoint now);
  enum class RetryResult { requeued, not_terminal, not_found };
  // A terminal job (except finished and invalid) back to queued as a new generation: a new
  // creation tag, attempts and session cleared, history kept.
  result<RetryResult> retry(std::string_view key, core::TimePoint now);
  // Organisation pauses ("*" pauses all). Persisted, so they survive restarts.
  result<void> pause_org(std::string_view org_id, std::string_view reason,
                         std::string_view source, core::TimePoint now);
  result<std::int64_t> resume_org(std::string_view org_id);  // pauses lifted: 0 or 1
  result<std::map<std::string, std::string>> paused_orgs();  // org_id -> reason
  // Moves terminal jobs that finished before `cutoff` to `outcomes` and deletes them (and their
  // history). Returns how many were pruned.
  result<std::int64_t> prune(core::TimePoint cutoff, core::TimePoint now);

  // ---- operator queries (read-only; src/store/operator_queries.cpp) ----
  // What the operator's commands read beyond the daemon's own queries. Errors: a storage errc
  // (message in last_error_message()), not_found where stated.
  // Jobs matching `filter`, in the order they were added (id order).
  result<std::vector<JobSummary>> list_jobs(const JobFilter& filter);
  // Where a job came from (add_job's `source`); not_found for an unknown id.
  result<std::string> job_source(std::int64_t job_id);
  // Every pause, by org_id.
  result<std::vector<OrgPause>> list_pauses();
  // How many jobs prune(cutoff, ...) would remove now: the same selection, nothing written.
  result<std::int64_t> count_prunable(core::TimePoint cutoff);
  result<ConnectionSettings> connection_settings();

  // ---- ownership leases (who works the queue) ----
  // The answer to acquire_lease and renew_lease: whether this owner holds the lease now, and
  // the lease row as it stands after the call (the other holder when not granted).
  struct LeaseAnswer {
    bool granted = false;
    core::LeaseHolder holder;
  };
  // Takes the lease `name` for `owner` if nobody holds it, its expiry has passed by `now`, or
  // `owner` holds it already (then only its expiry moves). A new owner gets the epoch after the
  // previous one. Fsynced: a new epoch must not be lost while its holder acts on it.
  result<LeaseAnswer> acquire_lease(std::string_view name, std::string_view owner,
                                    core::Duration ttl, core::TimePoint now);
  // Extends the lease if the row still has `owner` and `epoch`, whether or not it has expired
  // (nobody else took it, so nobody else wrote); otherwise not granted, with the new holder.
  result<LeaseAnswer> renew_lease(std::string_view name, std::string_view owner,
                                  std::int64_t epoch, core::Duration ttl, core::TimePoint now);
  // Lets the lease lapse at once if it is still `owner`'s at `epoch`, so a standby takes over
  // without waiting for the expiry (a clean shutdown).
  result<void> release_lease(std::string_view name, std::string_view owner, std::int64_t epoch,
                             core::TimePoint now);
  result<std::optional<core::LeaseHolder>> read_lease(std::string_view name);

  // From now on every write of this connection (except the lease calls above and the
  // producers' add_job, add_jobs and add_invalid) first checks, inside its transaction, that the
  // lease row `name` still has `owner` and `epoch`, and fails with errc::lease_lost otherwise,
  // writing nothing. The check and the write share one write lock, so a process that lost the
  // lease cannot write after its successor took it.
  struct Fence {
    std::string name;
    std::string owner;
    std::int64_t epoch = 0;
  };
  // `on_refused` is called (inside the refused call: it must not use the store) each time a
  // write is refused for the fence.
  void set_fence(std::optional<Fence> fence, std::function<void()> on_refused = {});

  // PRAGMA data_version: changes when another connection commits. Cheap change detection.
  result<std::int64_t> data_version();

  // Whether another connection holds the database's write lock at this instant: a commit
  // that may not be visible yet. Reads the WAL-index lock byte of the -shm file (offset 120,
  // WAL_WRITE_LOCK in SQLite's documented WAL-index format) without taking it. False when no
  // -shm file exists (no connection in WAL mode, so no writer either).
  result<bool> write_locked_elsewhere();

  // Called on the calling thread before each write transaction of this connection begins and
  // after it has ended (committed or not). The daemon's store watch uses them to tell its own
  // writes from other processes'. Either may be empty.
  struct WriteHooks {
    std::function<void()> before;
    std::function<void()> after;
  };
  void set_write_hooks(WriteHooks hooks);

  // SQLite's message for the last errc::database_error any method returned (the store does not
  // log; callers decide). Empty if none yet.
  const std::string& last_error_message() const noexcept;

 private:
  // Runs one read query (cached like every statement here): `bind` binds its parameters, `row`
  // sees each row and returns false to stop early. A failure keeps SQLite's message for
  // last_error_message(). For the operator queries, which live in their own source file.
  result<void> read_rows(std::string_view sql, const std::function<void(Statement&)>& bind,
                         const std::function<bool(const Statement&)>& row);

  struct Impl;
  JobStore(sqlite3* db, std::unique_ptr<Impl> impl) noexcept;
  sqlite3* db_;
  std::unique_ptr<Impl> impl_;  // prepared-statement cache and error text
};

}  // namespace devin_orch::store
