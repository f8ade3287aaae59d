// SqliteStore: the queue in one SQLite file. WAL, busy timeout, BEGIN IMMEDIATE for every write,
// synchronous=FULL's durability (an fsync of the WAL) for the commits that need it (a create
// intent must survive power loss, or a restart could send a second create) and not for writes a
// restart repairs (session ids, statuses); a versioned schema migrated forward through PRAGMA
// user_version. Implements all three interfaces of store.hpp; callers outside the store and its
// SQLite-specific tests get it only as a Store from open_store().
// Single-threaded use; other processes may read and insert concurrently.
#pragma once

#include "devin_orch/store/store.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

struct sqlite3;

namespace devin_orch::store {

class Statement;  // sqlite/statement.hpp

// The connection's own settings as SQLite reports them. They are per connection, so only the
// store can read them: for diagnostics and the tests that pin them.
struct ConnectionSettings {
  std::int64_t synchronous = 0;  // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
  bool foreign_keys = false;
  std::int64_t busy_timeout_ms = 0;
  std::int64_t cache_size = 0;  // negative: KiB; positive: pages
};

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed: directory 0700, file 0600) and migrates.
  static StoreResult<std::unique_ptr<SqliteStore>> open(const StoreOptions& options);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // JobIntake, QueueStore and OperatorStore (the calls two of them have are defined once).
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
  // One intent or one session alone: the batch calls above with one write.
  StoreResult<void> commit_intent(std::int64_t job_id, std::int64_t attempt, std::string_view tag,
                                  std::int64_t intent_at_ms, core::TimePoint now);
  StoreResult<void> commit_session(std::int64_t job_id, const core::Session& session,
                                   bool adopted, core::TimePoint now);
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

  // ChangeFeed.
  // PRAGMA data_version: changes when another connection commits.
  StoreResult<std::int64_t> change_mark() override;
  // Whether another connection holds the database's write lock at this instant. Reads the
  // WAL-index lock byte of the -shm file (offset 120, WAL_WRITE_LOCK in SQLite's documented
  // WAL-index format) without taking it. False when no -shm file exists (no connection in WAL
  // mode, so no writer either).
  StoreResult<bool> commit_in_flight_elsewhere() override;
  void set_write_hooks(WriteHooks hooks) override;

  // SQLite only: the connection's PRAGMA settings, for the tests that pin them.
  StoreResult<ConnectionSettings> connection_settings();

  // OutboxStore (sqlite/outbox_queries.cpp).
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

 private:
  // One write transaction of the outbox's (recoverable durability; `fenced`: checked against
  // the lease) and one statement in it, answering how many rows it changed.
  result<void> write_outbox(const std::function<result<void>()>& body, bool fenced);
  result<std::int64_t> execute_counting(std::string_view sql,
                                        const std::function<void(Statement&)>& bind);
  // Runs one read query (cached like every statement here): `bind` binds its parameters, `row`
  // sees each row and returns false to stop early. For the operator queries, which live in
  // their own source file.
  result<void> read_rows(std::string_view sql, const std::function<void(Statement&)>& bind,
                         const std::function<bool(const Statement&)>& row);
  // Runs one public call's body, written against the SQLite layer's result<T>, and hands its
  // outcome back as StoreResult<T> with SQLite's message for a failure that has one.
  template <class T>
  struct Lifted {
    using type = StoreResult<T>;
  };
  template <class Body>
  using AnswerOf = typename Lifted<typename std::invoke_result_t<Body>::value_type>::type;
  template <class Body>
  auto answer(Body&& body) -> AnswerOf<Body> {
    forget_message();  // a message left by a failure an earlier call handled is not ours
    auto outcome = std::forward<Body>(body)();
    using T = typename decltype(outcome)::value_type;
    if (!outcome) return describe(outcome.error());
    if constexpr (std::is_void_v<T>) {
      return {};
    } else if constexpr (std::is_same_v<T, std::vector<result<void>>>) {
      // Per-write outcomes of a batch (conflict, not_found): the code says it all.
      std::vector<StoreResult<void>> each;
      each.reserve(outcome->size());
      for (const auto& one : *outcome) each.push_back(one ? StoreResult<void>{} : one.error());
      return each;
    } else {
      return std::move(*outcome);
    }
  }
  void forget_message() noexcept;
  // `code` with the message SQLite (or this store) gave for it, if any.
  Error describe(const boost::system::error_code& code);

  struct Impl;
  SqliteStore(sqlite3* db, std::unique_ptr<Impl> impl) noexcept;
  sqlite3* db_;
  std::unique_ptr<Impl> impl_;  // the connection: prepared-statement cache, fence, hooks
};

// A batch's per-write outcomes come back in the store's error style too.
template <>
struct SqliteStore::Lifted<std::vector<result<void>>> {
  using type = StoreResult<std::vector<StoreResult<void>>>;
};

}  // namespace devin_orch::store
