// The values the store's interfaces take and give (queue_store.hpp, operator_store.hpp,
// change_feed.hpp): plain data, the same for every backend. JobRecord and Session live in core.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/lease.hpp"
#include "devin_orch/core/session.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::store {

// Which database to open and how: PostgreSQL when `url` is set, SQLite's file `path` otherwise
// (open_store chooses by it).
struct StoreOptions {
  std::string path;                 // SQLite: database file; parent directory created 0700, file 0600
  // PostgreSQL: a libpq URL (postgresql://user@host:port/db?sslmode=verify-full...). It must not
  // carry a password: that comes from `password_file` or libpq's PGPASSFILE / ~/.pgpass.
  std::string url;
  std::string password_file;  // PostgreSQL: a libpq password file (host:port:db:user:password)
  core::Duration connect_timeout{5'000};  // PostgreSQL: one attempt to reach the server
  // How long a write waits for another writer's lock (SQLite: busy_timeout; PostgreSQL:
  // lock_timeout).
  core::Duration busy_timeout{5'000};
  // SQLite's page cache for this connection (PRAGMA cache_size). The daemon keeps what it polls
  // in memory and mostly writes; reads that miss are served from the OS page cache.
  std::int64_t cache_kib = 256;
};

enum class AddResult {
  inserted,   // a new job
  unchanged,  // the key exists with the same definition: nothing done
  changed,    // the key exists with a different definition: NOT updated (reported)
  mended,     // the key's job was `invalid` and this different definition replaced it: queued
};

// The concurrency group a claim must find room in: at most `max_active` jobs whose spec has this
// concurrency_key may be creating or running (core::ConcurrencyGroups sets the limit).
struct GroupLimit {
  std::string key;
  int max_active = 1;
};

// One create intent to record.
struct IntentWrite {
  std::int64_t job_id = 0;
  std::int64_t attempt = 0;  // the job's attempts after this intent; it had attempt - 1 before
  // true: the job is claimed from `queued`; false: a further attempt on a job in `creating`.
  // Either way the job must still have attempt - 1 attempts, so two processes working from one
  // reading of a job cannot both commit an intent for it.
  bool claim = true;
  std::string tag;
  std::int64_t intent_at_ms = 0;
  // Create requests whose answer no process saw, after this intent. attempt + cut_short grows
  // by exactly one per intent, and that sum is what the write checks against the row.
  std::int64_t cut_short = 0;
  // Claims only: the job's group, counted inside the write's transaction (on PostgreSQL under
  // an advisory lock per key), so that daemons holding different organisations cannot both
  // take a group's last place. A full group refuses the claim with errc::group_full.
  std::optional<GroupLimit> group;
};

// A created or adopted session to record (commit_sessions).
struct SessionWrite {
  std::int64_t job_id = 0;
  core::Session session;
  bool adopted = false;  // found by the tag lookup rather than returned by the create call
  // Set when the job was created again after a create that may have landed: its tag is
  // checked for a second session until then (epoch ms).
  std::optional<std::int64_t> duplicate_watch_until_ms;
};

// The session's child_session_ids are recorded when the answer carries any (an answer without
// them keeps the ones on record).
struct StatusUpdate {
  std::int64_t job_id = 0;
  core::Session session;
  std::optional<core::JobState> new_state;  // set when the job ends with this poll
  std::optional<std::string> reason;        // last_error / terminal reason
};

// What a poll of a job's child sessions found: their ids and the sum of their acus_consumed.
struct ChildrenUpdate {
  std::int64_t job_id = 0;
  std::vector<std::string> child_session_ids;
  double children_acus = 0.0;
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
  double acus_consumed = 0.0;  // the session's own figure, as the API reported it
  std::optional<std::string> structured_output;
  // The session's children (reference §12) and the sum of their acus_consumed; the total a job
  // reports follows core::job_acus.
  std::vector<std::string> child_session_ids;
  double children_acus = 0.0;
  std::optional<std::int64_t> started_at_ms;   // session committed
  std::optional<std::int64_t> finished_at_ms;  // terminal state reached
};

// ---- what the operator's listings read ----

// The order of an operator's listing: by id (the order the jobs were added), created_at,
// updated_at, key (byte order), or state (the order of core::JobState: queued, creating,
// running, then the ended states). Ties go by id. `descending` reverses the whole order.
enum class JobOrder { added, created, updated, key, state };

// Which jobs an operator's listing selects, every field set narrowing it, and in what order.
struct JobFilter {
  std::vector<core::JobState> states;  // any of these; empty: every state
  // The job's effective organisation: its own org_id, or `default_org` when it names none.
  std::optional<std::string> org_id;
  std::string default_org;
  std::optional<std::string> tag;                 // the decoded spec has this tag
  std::optional<std::int64_t> created_before_ms;  // created_at < this
  std::optional<std::int64_t> created_after_ms;   // created_at > this
  std::optional<std::size_t> limit;               // the first N matching jobs, in `order`
  JobOrder order = JobOrder::added;
  bool descending = false;
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
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> started_at_ms;  // its session was recorded
  std::optional<std::int64_t> finished_at_ms;
  std::optional<std::int64_t> not_before_ms;  // the job's control, why a queued job may wait
  std::optional<std::string> create_as_user_id;  // from the spec (a user's pause holds it)
  std::optional<std::int64_t> max_acu_limit;     // from the spec (the spending guard holds it)
  std::optional<std::string> concurrency_key;    // from the spec (a full group holds it)
  // The session's figures as Outcome has them (null: no session reported any).
  std::optional<double> acus_consumed;
  double children_acus = 0.0;
};

// A job the spending guard charges (QueueStore::spending_since): when its first create intent
// of this generation was, whether it may still consume (creating, running), its ACU figures as
// Outcome has them and the limit its spec sets.
struct SpendingRow {
  std::int64_t job_id = 0;
  std::optional<std::string> org_id;  // as stored: none is the configured default organisation
  core::JobState state = core::JobState::queued;
  std::int64_t intent_at_ms = 0;
  std::optional<double> acus_consumed;
  double children_acus = 0.0;
  std::optional<std::int64_t> max_acu_limit;  // none too when the stored spec does not decode
  std::optional<std::string> concurrency_key;  // from the spec: a key budget charges it too
};

// One organisation pause as stored ("*" pauses all).
struct OrgPause {
  std::string org_id;
  std::string reason;
  std::string source;  // who paused it: "cli", or the daemon's own reason
  std::int64_t paused_at_ms = 0;
};

// A wait the server announced for an organisation (Retry-After on a 429, a 503, ...), kept so
// that a restart honours it too.
struct OrgHold {
  std::string org_id;
  std::int64_t until_ms = 0;
  std::string reason;
  std::int64_t held_at_ms = 0;
};

// Creation paused for the jobs an organisation creates as one user (create_as_user_id): that
// user's quota ran out (user_usage_limit_exceeded), not the organisation's.
struct UserPause {
  std::string org_id;
  std::string user_id;
  std::string reason;
  std::int64_t paused_at_ms = 0;
};

// Which queued jobs claimable() may return.
struct ClaimFilter {
  // Skipped in the query itself, so a paused organisation's backlog never fills the window and
  // starves the others; a job naming no org counts as `default_org`.
  std::vector<std::string> paused_orgs;
  std::string default_org;
  // (org, user) pairs: a job of that org (default_org if it names none) whose spec's
  // create_as_user_id is that user is skipped the same way.
  std::vector<std::pair<std::string, std::string>> paused_users;
  // When set, only jobs of these organisations (default_org for a job naming none): those whose
  // leases this daemon holds.
  std::optional<std::vector<std::string>> only_orgs;
};

enum class CancelResult { cancelled, requested, already_ended, not_found };
enum class RetryResult { requeued, not_terminal, not_found };
// not_ended: the job is queued, creating or running (cancel it first).
enum class DeleteResult { deleted, not_ended, not_found };

// The answer to acquire_lease and renew_lease: whether this owner holds the lease now, and the
// lease row as it stands after the call (the other holder when not granted).
struct LeaseAnswer {
  bool granted = false;
  core::LeaseHolder holder;
};

// The organisations a daemon holds by their own leases ("org:<org_id>", core/org_spread.hpp),
// each with the epoch of its term.
struct OrgTerms {
  std::string default_org;                     // the org of a job naming none
  std::map<std::string, std::int64_t> epochs;  // org -> epoch this owner holds
};

// The lease terms every fenced write is checked against (QueueStore::set_fence): the pair
// (owner, epoch) names one term, so a process whose term ended cannot write.
// Without `orgs`, the lease `name` covers every fenced write (one process works the queue).
// With `orgs`, a write about jobs or organisations is checked against the lease of each
// organisation it touches, and refused for an organisation this owner holds none of; `name`
// and `epoch` (the default organisation's lease, or empty when it is not held) cover the writes
// about no organisation (retention, the notification outbox).
struct Fence {
  std::string name;
  std::string owner;
  std::int64_t epoch = 0;
  std::optional<OrgTerms> orgs;
};

// One row of the leases table (QueueStore::list_leases).
struct NamedLease {
  std::string name;
  core::LeaseHolder holder;

  bool operator==(const NamedLease&) const = default;
};

// Called on the calling thread before each write transaction of this store begins and after it
// has ended (committed or not), so a watcher can tell its own commits from other processes'.
// Either may be empty.
struct WriteHooks {
  std::function<void()> before;
  std::function<void()> after;
};

}  // namespace devin_orch::store
