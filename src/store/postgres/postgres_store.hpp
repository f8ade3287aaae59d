// PostgresStore: the queue in a PostgreSQL database, for daemons on several hosts. libpq over one
// connection (plus one that only listens, opened by the first change_mark()); a versioned schema
// migrated at open under an advisory lock; every write one transaction, fenced by a shared row
// lock on the lease row; producers' and operators' changes notified on a channel the daemon
// LISTENs to. Private to the store: callers get it as a Store from open_store(). No libpq type
// appears here. Single-threaded use, like SqliteStore.
#pragma once

#include "devin_orch/store/store.hpp"

#include <memory>

namespace devin_orch::store {

class PostgresStore final : public Store {
 public:
  // Connects and migrates. invalid_argument for an unusable URL (one with a password among
  // them); storage_io when the server cannot be reached.
  static StoreResult<std::unique_ptr<PostgresStore>> open(const StoreOptions& options);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  StoreResult<AddResult> add_job(
      const core::JobDefinition& definition, std::string_view source, core::TimePoint now,
      const std::optional<std::string>& parent_key = std::nullopt) override;
  StoreResult<std::vector<AddResult>> add_jobs(std::span<const core::JobDefinition> definitions,
                                               std::string_view source,
                                               core::TimePoint now) override;
  StoreResult<AddResult> add_invalid(std::string_view key, std::string_view source,
                                     std::string_view reason, core::TimePoint now) override;
  StoreResult<std::vector<core::JobRecord>> claimable(core::TimePoint now, std::size_t limit,
                                                      const ClaimFilter& filter = {}) override;
  StoreResult<std::vector<core::JobRecord>> in_state(core::JobState state) override;
  StoreResult<std::vector<core::JobRecord>> all_jobs() override;
  StoreResult<std::optional<core::JobRecord>> find(std::string_view key) override;
  StoreResult<Outcome> outcome(std::int64_t job_id) override;
  StoreResult<std::vector<HistoryEntry>> history(std::int64_t job_id) override;
  StoreResult<std::map<core::JobState, std::int64_t>> count_by_state() override;
  StoreResult<std::optional<std::int64_t>> oldest_startable_since_ms(
      core::TimePoint now, const ClaimFilter& filter) override;
  StoreResult<std::vector<StoreResult<void>>> commit_intents(std::span<const IntentWrite> intents,
                                                             core::TimePoint now) override;
  StoreResult<std::vector<StoreResult<void>>> commit_sessions(
      std::span<const SessionWrite> sessions, core::TimePoint now) override;
  StoreResult<void> requeue(std::int64_t job_id, std::int64_t attempts, std::string_view reason,
                            core::TimePoint now) override;
  StoreResult<void> finish(std::int64_t job_id, core::JobState state, std::string_view reason,
                           core::TimePoint now) override;
  StoreResult<void> record_statuses(std::span<const StatusUpdate> updates,
                                    core::TimePoint now) override;
  StoreResult<void> record_duplicates(std::int64_t job_id, std::string_view current_session_id,
                                      const core::Session& kept,
                                      std::span<const std::string> terminated,
                                      core::TimePoint now) override;
  StoreResult<void> end_duplicate_watch(std::int64_t job_id, core::TimePoint now) override;
  StoreResult<void> record_children(std::span<const ChildrenUpdate> updates,
                                    core::TimePoint now) override;
  StoreResult<std::map<std::string, std::string>> attachment_urls(std::int64_t job_id) override;
  StoreResult<void> record_attachment_url(std::int64_t job_id, std::string_view path,
                                          std::string_view url, core::TimePoint now) override;
  StoreResult<void> note_error(std::int64_t job_id, std::string_view error,
                               core::TimePoint now) override;
  StoreResult<void> set_waiting_since(std::int64_t job_id, std::optional<std::int64_t> at_ms,
                                      core::TimePoint now) override;
  StoreResult<void> record_message(std::int64_t job_id, std::int64_t messages_sent,
                                   std::string_view message, core::TimePoint now) override;
  StoreResult<void> record_stall(std::int64_t job_id, std::optional<std::int64_t> since_ms,
                                 std::string_view note, core::TimePoint now) override;
  StoreResult<std::vector<core::JobRecord>> past_deadline(core::TimePoint now) override;
  StoreResult<std::vector<core::JobRecord>> cancel_requests() override;
  StoreResult<CancelResult> request_cancel(std::string_view key, bool archive,
                                           core::TimePoint now) override;
  StoreResult<RetryResult> retry(std::string_view key, core::TimePoint now) override;
  StoreResult<void> pause_org(std::string_view org_id, std::string_view reason,
                              std::string_view source, core::TimePoint now) override;
  StoreResult<std::int64_t> resume_org(std::string_view org_id) override;
  StoreResult<std::map<std::string, std::string>> paused_orgs() override;
  StoreResult<std::int64_t> lift_daemon_pause(std::string_view org_id,
                                              std::string_view reason) override;
  StoreResult<void> pause_user(std::string_view org_id, std::string_view user_id,
                               std::string_view reason, core::TimePoint now) override;
  StoreResult<std::vector<UserPause>> paused_users() override;
  StoreResult<std::int64_t> resume_user(std::string_view org_id,
                                        std::string_view user_id) override;
  StoreResult<void> hold_org(std::string_view org_id, core::TimePoint until,
                             std::string_view reason, core::TimePoint now) override;
  StoreResult<std::vector<OrgHold>> org_holds(core::TimePoint now) override;
  StoreResult<std::vector<SpendingRow>> spending_since(core::TimePoint since) override;
  StoreResult<std::int64_t> prune(core::TimePoint cutoff, core::TimePoint now) override;
  StoreResult<std::int64_t> prune_ended(core::TimePoint cutoff, core::TimePoint now,
                                        std::size_t limit) override;
  StoreResult<DeleteResult> delete_job(std::string_view key, core::TimePoint now) override;
  StoreResult<std::vector<JobSummary>> list_jobs(const JobFilter& filter) override;
  StoreResult<std::string> job_source(std::int64_t job_id) override;
  StoreResult<std::vector<OrgPause>> list_pauses() override;
  StoreResult<std::int64_t> count_prunable(core::TimePoint cutoff) override;
  StoreResult<LeaseAnswer> acquire_lease(std::string_view name, std::string_view owner,
                                         core::Duration ttl, core::TimePoint now) override;
  StoreResult<LeaseAnswer> renew_lease(std::string_view name, std::string_view owner,
                                       std::int64_t epoch, core::Duration ttl,
                                       core::TimePoint now) override;
  StoreResult<void> release_lease(std::string_view name, std::string_view owner,
                                  std::int64_t epoch, core::TimePoint now) override;
  StoreResult<std::optional<core::LeaseHolder>> read_lease(std::string_view name) override;
  StoreResult<std::vector<NamedLease>> list_leases(std::string_view prefix) override;
  StoreResult<std::vector<std::string>> orgs_with_work(std::string_view default_org) override;
  void set_fence(std::optional<Fence> fence, FenceRefused on_refused = {}) override;

  // ChangeFeed: notifications on the queue's channel from other connections' commits.
  StoreResult<std::int64_t> change_mark() override;
  StoreResult<bool> commit_in_flight_elsewhere() override;
  void set_write_hooks(WriteHooks hooks) override;
  int notification_descriptor() override;

  // OutboxStore: the events the transitions append (schema v3), routed and delivered by the
  // queue's owner (route_event and record_attempt are fenced).
  StoreResult<std::vector<OutboxEvent>> unrouted_events(std::size_t limit) override;
  StoreResult<void> route_event(std::int64_t seq, std::span<const DeliveryRoute> routes,
                                core::TimePoint now) override;
  StoreResult<std::vector<Delivery>> pending_deliveries(std::size_t per_sink_limit) override;
  StoreResult<void> record_attempt(const DeliveryAttempt& attempt, core::TimePoint now) override;
  StoreResult<OutboxCounts> outbox_counts() override;
  StoreResult<std::vector<Delivery>> list_deliveries(const DeliveryFilter& filter) override;
  StoreResult<std::int64_t> retry_deliveries(std::optional<std::string> event_id,
                                             core::TimePoint now) override;
  StoreResult<std::int64_t> prune_events(core::TimePoint cutoff) override;

  struct Impl;

 private:
  explicit PostgresStore(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devin_orch::store
