// OperatorStore: what the operator's commands and the producers (job files, `enqueue`) ask of
// the database: adding jobs, reading them back, and the controls (cancel, retry, pause, resume,
// prune, delete). Pure virtual; the SQLite store implements it today, a PostgreSQL store next.
#pragma once

#include "devin_orch/store/error.hpp"
#include "devin_orch/store/job_intake.hpp"
#include "devin_orch/store/types.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {

// Errors, for every call: a storage errc (with the backend's words in Error::detail),
// not_found where stated, invalid_argument for a bad argument. A failed write leaves the
// database as it was. Nothing here is fenced by the daemon's lease: an operator acts beside it.
// Adding jobs is JobIntake's, inherited.
class OperatorStore : public virtual JobIntake {
 public:
  using CancelResult = store::CancelResult;
  using RetryResult = store::RetryResult;
  using DeleteResult = store::DeleteResult;

  virtual ~OperatorStore() = default;

  // ---- reading (find(key) is JobIntake's) ----
  // In id order.
  virtual StoreResult<std::vector<core::JobRecord>> all_jobs() = 0;
  // Jobs matching `filter`, in its order.
  virtual StoreResult<std::vector<JobSummary>> list_jobs(const JobFilter& filter) = 0;
  virtual StoreResult<Outcome> outcome(std::int64_t job_id) = 0;  // not_found: unknown id
  // Oldest first; empty for an unknown job.
  virtual StoreResult<std::vector<HistoryEntry>> history(std::int64_t job_id) = 0;
  // Where a job came from (add_job's `source`); not_found for an unknown id.
  virtual StoreResult<std::string> job_source(std::int64_t job_id) = 0;
  // Every JobState is a key, zero counts included.
  virtual StoreResult<std::map<core::JobState, std::int64_t>> count_by_state() = 0;
  // Who works the queue (the daemon's lease), for `status`.
  virtual StoreResult<std::optional<core::LeaseHolder>> read_lease(std::string_view name) = 0;
  // Which daemon works which organisation ("org:" rows) and which daemons are alive
  // ("daemon:" rows), for `status`.
  virtual StoreResult<std::vector<NamedLease>> list_leases(std::string_view prefix) = 0;

  // ---- controls ----
  // Queued: cancelled at once. Creating/running: flagged; the daemon terminates the session
  // (archiving it if `archive`) and ends the job `cancelled`.
  virtual StoreResult<CancelResult> request_cancel(std::string_view key, bool archive,
                                                   core::TimePoint now) = 0;
  // A terminal job (except finished and invalid) back to queued as a new generation: a new
  // creation tag, attempts and session cleared, history kept.
  virtual StoreResult<RetryResult> retry(std::string_view key, core::TimePoint now) = 0;
  // Organisation pauses ("*" pauses all). Persisted, so they survive restarts.
  virtual StoreResult<void> pause_org(std::string_view org_id, std::string_view reason,
                                      std::string_view source, core::TimePoint now) = 0;
  virtual StoreResult<std::int64_t> resume_org(std::string_view org_id) = 0;  // lifted: 0 or 1
  virtual StoreResult<std::map<std::string, std::string>> paused_orgs() = 0;  // org -> reason
  virtual StoreResult<std::vector<OrgPause>> list_pauses() = 0;               // by org_id
  // Waits the server announced for an organisation still in force at `now`, by org (the
  // daemon's QueueStore::hold_org), for a listing that says why a queued job waits.
  virtual StoreResult<std::vector<OrgHold>> org_holds(core::TimePoint now) = 0;
  // The jobs the spending guard charges since `since` (QueueStore::spending_since), for a
  // listing that says a queued job waits for the ACU budget.
  virtual StoreResult<std::vector<SpendingRow>> spending_since(core::TimePoint since) = 0;
  // User pauses the daemon set (user_usage_limit_exceeded); lifted: 0 or 1.
  virtual StoreResult<std::vector<UserPause>> paused_users() = 0;  // by org, then user
  virtual StoreResult<std::int64_t> resume_user(std::string_view org_id,
                                                std::string_view user_id) = 0;
  // Moves terminal jobs that finished before `cutoff` to the outcomes archive and deletes them
  // (and their history). Returns how many were pruned.
  virtual StoreResult<std::int64_t> prune(core::TimePoint cutoff, core::TimePoint now) = 0;
  // One ended job removed (and its history), its outcome first copied to the outcomes archive
  // as prune does. A job that is queued, creating or running is left alone (not_ended).
  virtual StoreResult<DeleteResult> delete_job(std::string_view key, core::TimePoint now) = 0;
  // How many jobs prune(cutoff, ...) would remove now: the same selection, nothing written.
  virtual StoreResult<std::int64_t> count_prunable(core::TimePoint cutoff) = 0;
};

}  // namespace devin_orch::store
