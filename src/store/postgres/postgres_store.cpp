// PostgresStore: opening (URL checks, migrations), transactions and the fence, and every query
// and transition, in the same terms as the SQLite store (docs/architecture.md, "The store's
// interfaces"); the SQL differs only where PostgreSQL's dialect does.
#include "postgres_store.hpp"

#include "../fence_terms.hpp"
#include "../job_row.hpp"
#include "../outbox_rows.hpp"
#include "../spending_row.hpp"
#include "pq.hpp"
#include "schema.hpp"

#include "devin_orch/core/job_state_list.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/core/notify_event.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/store/mend.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <random>
#include <set>
#include <type_traits>
#include <utility>

namespace devin_orch::store {

using pg::Params;
using pg::Row;
using pg::Rows;

struct PostgresStore::Impl {
  explicit Impl(const pg::ConnectTarget& target) : db{target}, listener{target} {}

  pg::Connection db;
  // Only LISTENs: its socket turns readable for a notification and nothing else, so a loop can
  // wait on it. Opened by the first change_mark() (the CLI never needs it).
  pg::Connection listener;
  std::int64_t mark = 0;
  WriteHooks hooks;
  std::optional<Fence> fence;
  QueueStore::FenceRefused fence_refused;
  const FenceScope* fence_scope = nullptr;  // what the write about to begin touches
  // For the outbox's event ids.
  core::Random random{(std::uint64_t{std::random_device{}()} << 32U) ^ std::random_device{}()};
};

namespace {

using Impl = PostgresStore::Impl;

#define DEVIN_ORCH_IN_PROGRESS "state IN ('queued', 'creating', 'running')"
#define DEVIN_ORCH_ENDED "state NOT IN ('queued', 'creating', 'running')"
// A session's status is the job's only while the job runs on that session: never onto a row
// whose session commit was lost or that follows another session since.
#define DEVIN_ORCH_HOLDS_SESSION(param) "state = 'running' AND session_id = " param

std::optional<std::string> state_name(core::JobState state) {
  return std::string(core::to_string(state));
}

// A text[] literal for a parameter: every element quoted, quotes and backslashes escaped.
std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// What keeps a queued job from starting now, as one WHERE clause shared by the claim and the
// queue's age: a not_before still ahead, an operator's cancel, a paused organisation or user.
// $1 is now; the filter's parameters are numbered from `next` on, in the order
// add_startable_params adds them. The pause clauses are there only while something is paused.
std::string startable_conditions(const ClaimFilter& filter, int next) {
  const auto param = [next](int offset) { return "$" + std::to_string(next + offset); };
  std::string sql =
      "state = 'queued' AND cancel_requested = 0 AND (not_before IS NULL OR not_before <= "
      "$1::bigint)";
  // Both clauses share the numbering: with only users paused, the org list is empty.
  if (!filter.paused_orgs.empty() || !filter.paused_users.empty()) {
    sql += " AND coalesce(org_id, " + param(0) + "::text) <> ALL(" + param(1) + "::text[])";
  }
  if (!filter.paused_users.empty()) {
    sql += " AND NOT EXISTS (SELECT 1 FROM unnest(" + param(2) + "::text[], " + param(3) +
           "::text[]) AS p(org, usr) WHERE p.org = coalesce(jobs.org_id, " + param(0) +
           "::text) AND p.usr = devin_orch_spec_field(jobs.spec, 'create_as_user_id'))";
  }
  // Only the organisations whose leases this daemon holds (the last parameter).
  if (filter.only_orgs) {
    const int last = 1 + (filter.paused_orgs.empty() && filter.paused_users.empty() ? 0 : 1) +
                     (filter.paused_users.empty() ? 0 : 2);
    sql += " AND coalesce(org_id, " + param(0) + "::text) = ANY(" + param(last) + "::text[])";
  }
  return sql;
}

void add_startable_params(Params& params, const ClaimFilter& filter) {
  if (filter.paused_orgs.empty() && filter.paused_users.empty()) {
    if (filter.only_orgs) params.add(filter.default_org).add(array_literal(*filter.only_orgs));
    return;
  }
  params.add(filter.default_org).add(array_literal(filter.paused_orgs));
  if (!filter.paused_users.empty()) {
    std::vector<std::string> orgs;
    std::vector<std::string> users;
    for (const auto& [org, user] : filter.paused_users) {
      orgs.push_back(org);
      users.push_back(user);
    }
    params.add(array_literal(orgs)).add(array_literal(users));
  }
  if (filter.only_orgs) params.add(array_literal(*filter.only_orgs));
}

// Runs one public call's body against the connection (reconnecting first if it broke) and hands
// its outcome back in the store's error style, with the server's words for a failure.
template <class T>
struct Lifted {
  using type = StoreResult<T>;
  static type lift(result<T>&& outcome) {
    if constexpr (std::is_void_v<T>) {
      return {};
    } else {
      return std::move(*outcome);
    }
  }
};
template <>
struct Lifted<std::vector<result<void>>> {
  using type = StoreResult<std::vector<StoreResult<void>>>;
  static type lift(result<std::vector<result<void>>>&& outcome) {
    std::vector<StoreResult<void>> each;
    each.reserve(outcome->size());
    for (const auto& one : *outcome) each.push_back(one ? StoreResult<void>{} : one.error());
    return each;
  }
};

template <class Body>
auto answer(Impl& impl, Body&& body) {
  using T = typename std::invoke_result_t<Body>::value_type;
  using Out = typename Lifted<T>::type;
  impl.db.forget_error();
  if (auto connected = impl.db.ensure(); !connected) {
    return Out{Error{connected.error(), impl.db.take_error()}};
  }
  auto outcome = std::forward<Body>(body)();
  if (!outcome) return Out{Error{outcome.error(), impl.db.take_error()}};
  return Lifted<T>::lift(std::move(outcome));
}

// The write hooks around one write transaction.
class WriteHooksScope {
 public:
  explicit WriteHooksScope(const WriteHooks& hooks) : hooks_{hooks} {
    if (hooks_.before) hooks_.before();
  }
  ~WriteHooksScope() {
    if (hooks_.after) hooks_.after();
  }
  WriteHooksScope(const WriteHooksScope&) = delete;
  WriteHooksScope& operator=(const WriteHooksScope&) = delete;

 private:
  const WriteHooks& hooks_;
};

// Rolls back unless committed (or the connection is gone, which ends the transaction).
class Transaction {
 public:
  explicit Transaction(pg::Connection& db) noexcept : db_{db} {}
  ~Transaction() {
    if (open_ && db_.in_transaction()) (void)db_.simple("ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  result<void> begin(bool synced) {
    // One round trip: a write a restart repairs need not wait for the WAL's flush.
    auto done = db_.simple(synced ? "BEGIN" : "BEGIN; SET LOCAL synchronous_commit = off");
    if (!done) return done.error();
    open_ = true;
    return {};
  }
  result<void> commit() {
    auto done = db_.simple("COMMIT");
    open_ = false;
    if (!done) return done.error();
    return {};
  }

 private:
  pg::Connection& db_;
  bool open_ = false;
};

// How a write must survive a crash of the server: synced commits are flushed to the server's WAL
// before they return (synchronous_commit as the server has it); recoverable ones are not waited
// for, because the next poll or renewal repairs their loss (a status, a lease). Unlike the
// SQLite store's power loss, a server crash leaves the daemon running on what it believes was
// written, so what only a restart would repair (a session commit, a job's end, a requeue) is
// synced here.
enum class Durability { synced, recoverable };
enum class Fencing { fenced, unfenced };

// What the next write transaction of a call touches, for a fence by organisation: set for the
// call's duration.
class FenceScopeGuard {
 public:
  FenceScopeGuard(Impl& impl, FenceScope scope) : impl_{impl}, scope_{std::move(scope)} {
    impl_.fence_scope = &scope_;
  }
  ~FenceScopeGuard() { impl_.fence_scope = nullptr; }
  FenceScopeGuard(const FenceScopeGuard&) = delete;
  FenceScopeGuard& operator=(const FenceScopeGuard&) = delete;

 private:
  Impl& impl_;
  FenceScope scope_;
};

// The organisations a fenced write touches: its own, and those of its jobs. The job rows are
// share-locked, so their org cannot change before this transaction ends.
result<std::set<std::string>> scope_orgs(pg::Connection& db, const FenceScope& scope,
                                         const std::string& default_org) {
  std::set<std::string> orgs{scope.orgs.begin(), scope.orgs.end()};
  if (scope.job_ids.empty()) return orgs;
  std::vector<std::string> ids;
  for (const std::int64_t id : scope.job_ids) ids.push_back(std::to_string(id));
  auto rows = db.exec("SELECT coalesce(org_id, $2) FROM jobs WHERE id = ANY($1::bigint[]) "
                      "FOR SHARE",
                      Params{}.add(array_literal(ids)).add(default_org));
  if (!rows) return rows.error();
  for (int i = 0; i < rows->size(); ++i) orgs.insert((*rows)[i].text_at(0));
  return orgs;
}

// Inside a write transaction: the fence still matches the lease rows the write needs, and a
// share lock on each keeps a successor from taking that lease until this transaction ends.
result<void> check_fence(Impl& impl) {
  if (!impl.fence) return {};
  const Fence& fence = *impl.fence;
  std::set<std::string> orgs;
  if (fence.orgs && impl.fence_scope != nullptr) {
    auto touched = scope_orgs(impl.db, *impl.fence_scope, fence.orgs->default_org);
    if (!touched) return touched.error();
    // Every job it names is gone: the write changes nothing, whoever holds what.
    if (touched->empty() && !impl.fence_scope->job_ids.empty()) return {};
    orgs = std::move(*touched);
  }
  const auto refuse = [&impl](const std::string& lease) -> result<void> {
    if (impl.fence_refused) impl.fence_refused(lease);
    return errc::lease_lost;
  };
  const FenceCheck check = fence_terms(fence, orgs);
  if (check.refused) return refuse(*check.refused);
  for (const FenceTerm& term : check.terms) {
    auto rows = impl.db.exec("SELECT owner, epoch FROM leases WHERE name = $1 FOR SHARE",
                             Params{}.add(term.lease));
    if (!rows) return rows.error();
    if (rows->empty() || (*rows)[0].text_at(0) != fence.owner ||
        (*rows)[0].int64_at(1) != term.epoch) {
      return refuse(term.lease);
    }
  }
  return {};
}

template <class Body>
auto in_write_transaction(Impl& impl, Body&& body, Durability durability = Durability::synced,
                          Fencing fencing = Fencing::fenced) -> decltype(body()) {
  const WriteHooksScope hooks{impl.hooks};
  Transaction transaction{impl.db};
  if (auto begun = transaction.begin(durability == Durability::synced); !begun) {
    return begun.error();
  }
  if (fencing == Fencing::fenced) {
    if (auto current = check_fence(impl); !current) return current.error();
  }
  auto outcome = body();
  if (!outcome) return outcome;
  if (auto committed = transaction.commit(); !committed) return committed.error();
  return outcome;
}

result<void> insert_event(pg::Connection& db, std::int64_t job_id, core::TimePoint at,
                          std::string_view event, std::optional<std::string> state,
                          std::optional<std::string> status,
                          std::optional<std::string> status_detail,
                          std::optional<std::string> message) {
  auto done = db.exec(
      "INSERT INTO job_events (job_id, at, event, state, status, status_detail, message) "
      "VALUES ($1::bigint, $2::bigint, $3, $4, $5, $6, $7)",
      Params{}
          .add(job_id)
          .add(core::to_epoch_ms(at))
          .add(event)
          .add(state)
          .add(status)
          .add(status_detail)
          .add(message));
  if (!done) return done.error();
  return {};
}

// Inserts an outbox row, in the caller's transaction.
result<void> insert_notification(pg::Connection& db, const EventRow& row) {
  auto done = db.exec(
      "INSERT INTO notify_events (id, type, job_id, job_key, org_id, tags, targets, body, "
      "created_at) VALUES ($1, $2, $3::bigint, $4, $5, $6, $7, $8, $9::bigint)",
      Params{}
          .add(row.id)
          .add(row.type)
          .add(row.job_id)
          .add(row.job_key)
          .add(row.org_id)
          .add(row.tags)
          .add(row.targets)
          .add(row.body)
          .add(row.created_at_ms));
  if (!done) return done.error();
  return {};
}

// The outbox row of a job event, in the caller's transaction (the one that makes the change
// the event announces), built from the job's row as that transaction left it.
result<void> append_job_notification(Impl& impl, std::int64_t job_id, core::EventType type,
                                     core::TimePoint now, const JobEventNote& note = {}) {
  auto rows = impl.db.exec("SELECT " DEVIN_ORCH_JOB_EVENT_COLUMNS " FROM jobs WHERE id = $1::bigint",
                           Params{}.add(job_id));
  if (!rows) return rows.error();
  if (rows->empty()) return {};
  return insert_notification(impl.db,
                             job_event_row(impl.random, type, now, read_job_facts((*rows)[0]), note));
}

result<void> append_org_notification(Impl& impl, std::string_view org_id, core::EventType type,
                                     core::TimePoint now, std::optional<std::string_view> reason,
                                     std::optional<std::string_view> source) {
  return insert_notification(impl.db,
                             org_event_row(impl.random, type, now, org_id, reason, source));
}

// Why a guarded UPDATE touched no row: the job is missing, or in a state that forbids it.
result<void> transition_refused(pg::Connection& db, std::int64_t job_id) {
  auto rows = db.exec("SELECT 1 FROM jobs WHERE id = $1::bigint", Params{}.add(job_id));
  if (!rows) return rows.error();
  return rows->empty() ? errc::not_found : errc::conflict;
}

// The first key of the two-key advisory locks that guard concurrency groups. PostgreSQL keeps the
// two-key space apart from the one-bigint space the migration's lock uses, and this constant
// keeps it apart from any other two-key lock.
constexpr int kGroupLockSpace = 0x64'6f'67'72;  // "dogr"

// Takes the advisory lock of each concurrency group the batch's claims count, in one order for
// every daemon (by the key's hash), so that two batches naming the same keys cannot deadlock.
// Held until the transaction ends: a second daemon counts only after this claim is committed.
result<void> lock_groups(pg::Connection& db, std::span<const IntentWrite> intents) {
  std::vector<std::string> keys;
  for (const IntentWrite& intent : intents) {
    if (intent.claim && intent.group) keys.push_back(intent.group->key);
  }
  if (keys.empty()) return {};
  auto hashes = db.exec(
      "SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY h",
      Params{}.add(array_literal(keys)));
  if (!hashes) return hashes.error();
  for (int i = 0; i < hashes->size(); ++i) {
    auto locked = db.exec("SELECT pg_advisory_xact_lock($1::integer, $2::integer)",
                          Params{}.add(kGroupLockSpace).add((*hashes)[i].int64_at(0)));
    if (!locked) return locked.error();
  }
  return {};
}

// Whether the claim's concurrency group already has its limit of jobs creating or running,
// counted under lock_groups' lock and after the batch's earlier claims.
result<bool> group_full(pg::Connection& db, const IntentWrite& intent) {
  auto rows = db.exec(
      "SELECT count(*) FROM jobs WHERE state IN ('creating', 'running') AND "
      "devin_orch_spec_field(spec, 'concurrency_key') = $1",
      Params{}.add(intent.group->key));
  if (!rows) return result<bool>{boost::system::in_place_error, rows.error()};
  return !rows->empty() && (*rows)[0].int64_at(0) >= intent.group->max_active;
}

// A claim its full group refuses: group_full while the job is still queued with the attempts the
// claim expects (it may start later), otherwise why it could not be claimed anyway.
result<void> claim_refused_for_group(pg::Connection& db, const IntentWrite& intent) {
  auto rows = db.exec(
      "SELECT 1 FROM jobs WHERE id = $1::bigint AND state = 'queued' AND "
      "attempts + sends = $2::bigint + $3::bigint - 1",
      Params{}.add(intent.job_id).add(intent.attempt).add(intent.cut_short));
  if (!rows) return rows.error();
  if (!rows->empty()) return errc::group_full;
  return transition_refused(db, intent.job_id);
}

// A session commit tried again after a failure whose commit went through after all (the
// answer was lost with the connection) finds the job running on that very session: done.
result<void> session_held_or_refused(pg::Connection& db, std::int64_t job_id,
                                     const std::string& session_id) {
  auto rows = db.exec(
      "SELECT 1 FROM jobs WHERE id = $1::bigint AND state = 'running' AND session_id = $2",
      Params{}.add(job_id).add(session_id));
  if (!rows) return rows.error();
  if (!rows->empty()) return {};
  return transition_refused(db, job_id);
}

result<void> validate_key(std::string_view key) {
  if (core::validate_key(key)) return errc::invalid_argument;
  return {};
}

result<std::vector<core::JobRecord>> select_jobs(pg::Connection& db, std::string_view sql,
                                                 const Params& params = {}) {
  auto rows = db.exec(sql, params);
  if (!rows) return rows.error();
  std::vector<core::JobRecord> jobs;
  jobs.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) jobs.push_back(read_job((*rows)[i]).record);
  return jobs;
}

// A corrected definition replaces the one of an `invalid` job, which is queued again, and its
// history says what changed. Nothing of a run is on the row to clear: a job becomes invalid
// before it ever reaches `creating`.
result<void> mend_invalid_job(pg::Connection& db, std::int64_t id,
                              const core::JobDefinition& definition, const std::string& spec,
                              const std::string& encoded_controls, std::string_view source,
                              core::TimePoint now, const std::string& message) {
  const auto& controls = definition.controls;
  auto updated = db.exec(
      "UPDATE jobs SET org_id = $2, priority = $3::bigint, spec = $4, source = $5, "
      "not_before = $6::bigint, deadline = $7::bigint, max_attempts = $8::bigint, "
      "controls = $9, state = 'queued', last_error = NULL, finished_at = NULL, "
      "updated_at = $10::bigint WHERE id = $1::bigint",
      Params{}
          .add(id)
          .add(definition.org_id)
          .add(definition.priority)
          .add(spec)
          .add(source)
          .add(controls.not_before_ms)
          .add(controls.deadline_ms)
          .add(controls.max_attempts)
          .add(text_or_null(encoded_controls))
          .add(core::to_epoch_ms(now)));
  if (!updated) return updated.error();
  return insert_event(db, id, now, "mended", state_name(core::JobState::queued), std::nullopt,
                      std::nullopt, message);
}

// The job under the key, locked, compared with `definition`: unchanged, changed, or mended when
// it was invalid. nullopt when there is no such job.
result<std::optional<AddResult>> add_to_existing(pg::Connection& db,
                                                 const core::JobDefinition& definition,
                                                 const std::string& spec,
                                                 const std::string& encoded_controls,
                                                 std::string_view source, core::TimePoint now) {
  auto existing = db.exec(
      "SELECT org_id, priority, spec, not_before, deadline, max_attempts, "
      "coalesce(controls, ''), id, state FROM jobs WHERE key = $1 FOR UPDATE",
      Params{}.add(definition.key));
  if (!existing) return existing.error();
  if (existing->empty()) return std::optional<AddResult>{};
  const Row row = (*existing)[0];
  const StoredDefinition stored{.org_id = row.optional_text_at(0),
                                .priority = row.int64_at(1),
                                .spec = row.text_at(2),
                                .not_before_ms = row.optional_int64_at(3),
                                .deadline_ms = row.optional_int64_at(4),
                                .max_attempts = row.optional_int64_at(5),
                                .controls = row.text_at(6)};
  const auto& controls = definition.controls;
  const bool same = stored.org_id == definition.org_id &&
                    stored.priority == definition.priority &&
                    canonical_spec(stored.spec) == spec &&
                    stored.not_before_ms == controls.not_before_ms &&
                    stored.deadline_ms == controls.deadline_ms &&
                    stored.max_attempts == controls.max_attempts &&
                    stored.controls == encoded_controls;
  if (same) return std::optional{AddResult::unchanged};
  if (row.text_at(8) != "invalid") return std::optional{AddResult::changed};
  if (auto mended = mend_invalid_job(db, row.int64_at(7), definition, spec, encoded_controls,
                                     source, now, mend_message(source, stored, definition));
      !mended) {
    return mended.error();
  }
  return std::optional{AddResult::mended};
}

result<AddResult> add_job_in_transaction(pg::Connection& db, const core::JobDefinition& definition,
                                         std::string_view source, core::TimePoint now,
                                         const std::optional<std::string>& parent_key) {
  if (auto valid = validate_key(definition.key); !valid) return valid.error();
  const std::string spec = encode_spec(definition.spec);
  const auto& controls = definition.controls;
  const std::string encoded_controls = encode_controls(controls);
  // The existing job first, so that an invalid one is mended here, with a message naming the
  // spec's members, rather than by the producers' trigger (schema v2). Then the INSERT, whose
  // ON CONFLICT covers a producer inserting the same key at this instant: it waits for us, or
  // we for it, and a conflict sends us back to compare with that producer's row.
  for (int round = 0; round < 2; ++round) {
    auto existing = add_to_existing(db, definition, spec, encoded_controls, source, now);
    if (!existing) return existing.error();
    if (*existing) return **existing;
    auto inserted = db.exec(
        "INSERT INTO jobs (key, org_id, priority, spec, source, created_at, updated_at, "
        "not_before, deadline, max_attempts, controls, parent_key) "
        "VALUES ($1, $2, $3::bigint, $4, $5, $6::bigint, $6::bigint, $7::bigint, $8::bigint, "
        "$9::bigint, $10, $11) ON CONFLICT (key) DO NOTHING RETURNING id",
        Params{}
            .add(definition.key)
            .add(definition.org_id)
            .add(definition.priority)
            .add(spec)
            .add(source)
            .add(core::to_epoch_ms(now))
            .add(controls.not_before_ms)
            .add(controls.deadline_ms)
            .add(controls.max_attempts)
            .add(text_or_null(encoded_controls))
            .add(parent_key));
    if (!inserted) return inserted.error();
    if (!inserted->empty()) {
      const std::int64_t id = (*inserted)[0].int64_at(0);
      if (auto logged = insert_event(db, id, now, "queued", state_name(core::JobState::queued),
                                     std::nullopt, std::nullopt, std::string(source));
          !logged) {
        return logged.error();
      }
      return AddResult::inserted;
    }
  }
  return errc::conflict;  // inserted and deleted again by others between our statements
}

}  // namespace

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) noexcept : impl_{std::move(impl)} {}

PostgresStore::~PostgresStore() = default;

StoreResult<std::unique_ptr<PostgresStore>> PostgresStore::open(const StoreOptions& options) {
  if (const auto problem = pg::url_problem(options.url)) {
    return Error{errc::invalid_argument, "database URL " + *problem};
  }
  auto impl = std::make_unique<Impl>(pg::ConnectTarget{.url = options.url,
                                                       .password_file = options.password_file,
                                                       .connect_timeout = options.connect_timeout,
                                                       .lock_timeout = options.busy_timeout});
  impl->listener.set_on_connect({std::string{"LISTEN "} + pg::kQueueChannel});
  if (auto connected = impl->db.ensure(); !connected) {
    return Error{connected.error(), impl->db.take_error()};
  }
  if (auto migrated = pg::migrate(impl->db); !migrated) {
    return Error{migrated.error(), impl->db.take_error()};
  }
  return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

// ---- producers ---------------------------------------------------------------------------

StoreResult<AddResult> PostgresStore::add_job(const core::JobDefinition& definition,
                                              std::string_view source, core::TimePoint now,
                                              const std::optional<std::string>& parent_key) {
  return answer(*impl_, [&]() -> result<AddResult> {
    return in_write_transaction(
        *impl_,
        [&]() { return add_job_in_transaction(impl_->db, definition, source, now, parent_key); },
        Durability::synced, Fencing::unfenced);
  });
}

StoreResult<std::vector<AddResult>> PostgresStore::add_jobs(
    std::span<const core::JobDefinition> definitions, std::string_view source,
    core::TimePoint now) {
  return answer(*impl_, [&]() -> result<std::vector<AddResult>> {
    return in_write_transaction(*impl_, [&]() -> result<std::vector<AddResult>> {
      std::vector<AddResult> results;
      results.reserve(definitions.size());
      for (const auto& definition : definitions) {
        auto added = add_job_in_transaction(impl_->db, definition, source, now, std::nullopt);
        if (!added) return added.error();
        results.push_back(*added);
      }
      return results;
    }, Durability::synced, Fencing::unfenced);
  });
}

StoreResult<AddResult> PostgresStore::add_invalid(std::string_view key, std::string_view source,
                                                  std::string_view reason, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<AddResult> {
    if (auto valid = validate_key(key); !valid) return valid.error();
    return in_write_transaction(*impl_, [&]() -> result<AddResult> {
      auto& db = impl_->db;
      auto inserted = db.exec(
          "INSERT INTO jobs (key, spec, source, state, last_error, created_at, updated_at, "
          "finished_at) VALUES ($1, '{}', $2, 'invalid', $3, $4::bigint, $4::bigint, $4::bigint) "
          "ON CONFLICT (key) DO NOTHING RETURNING id",
          Params{}.add(key).add(source).add(reason).add(core::to_epoch_ms(now)));
      if (!inserted) return inserted.error();
      if (inserted->empty()) return AddResult::unchanged;
      if (auto logged = insert_event(db, (*inserted)[0].int64_at(0), now, "invalid",
                                     state_name(core::JobState::invalid), std::nullopt,
                                     std::nullopt, std::string(reason));
          !logged) {
        return logged.error();
      }
      return AddResult::inserted;
    }, Durability::synced, Fencing::unfenced);
  });
}

// ---- reading the queue -------------------------------------------------------------------

StoreResult<std::vector<core::JobRecord>> PostgresStore::claimable(core::TimePoint now,
                                                                   std::size_t limit,
                                                                   const ClaimFilter& filter) {
  return answer(*impl_, [&]() -> result<std::vector<core::JobRecord>> {
    auto& db = impl_->db;
    std::vector<core::JobRecord> ready;
    if (limit == 0) return ready;
    // Paused organisations and users are skipped in the query, so their backlog never fills
    // the window.
    const std::string sql = "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs WHERE " +
                            startable_conditions(filter, 3) +
                            " ORDER BY priority DESC, id LIMIT $2::bigint";
    Params params;
    params.add(core::to_epoch_ms(now)).add(static_cast<std::int64_t>(limit));
    add_startable_params(params, filter);
    // Rows whose spec does not decode are moved to `invalid` and the window read again, so they
    // never crowd good ones out of a batch.
    for (;;) {
      ready.clear();
      auto rows = db.exec(sql, params);
      if (!rows) return rows.error();
      std::vector<std::pair<std::int64_t, std::string>> broken;  // id, reason
      for (int i = 0; i < rows->size(); ++i) {
        DecodedJob job = read_job((*rows)[i]);
        if (job.spec_error) {
          broken.emplace_back(job.record.id, "invalid spec: " + *job.spec_error);
        } else {
          ready.push_back(std::move(job.record));
        }
      }
      if (broken.empty()) return ready;
      FenceScope broken_jobs;
      for (const auto& entry : broken) broken_jobs.job_ids.push_back(entry.first);
      const FenceScopeGuard fenced_by{*impl_, std::move(broken_jobs)};
      auto moved = in_write_transaction(*impl_, [&]() -> result<void> {
        for (const auto& entry : broken) {
          auto updated = db.exec(
              "UPDATE jobs SET state = 'invalid', last_error = $2, finished_at = $3::bigint, "
              "updated_at = $3::bigint WHERE id = $1::bigint AND state = 'queued'",
              Params{}.add(entry.first).add(entry.second).add(core::to_epoch_ms(now)));
          if (!updated) return updated.error();
          if (updated->affected() == 0) continue;  // someone else moved it meanwhile
          if (auto logged = insert_event(db, entry.first, now, "invalid",
                                         state_name(core::JobState::invalid), std::nullopt,
                                         std::nullopt, entry.second);
              !logged) {
            return logged.error();
          }
        }
        return {};
      });
      if (!moved) return moved.error();
      if (rows->size() < static_cast<int>(limit)) return ready;
    }
  });
}

StoreResult<std::vector<core::JobRecord>> PostgresStore::in_state(core::JobState state) {
  return answer(*impl_, [&]() {
    return select_jobs(impl_->db,
                       "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs WHERE state = $1 ORDER BY id",
                       Params{}.add(core::to_string(state)));
  });
}

StoreResult<std::vector<core::JobRecord>> PostgresStore::all_jobs() {
  return answer(*impl_, [&]() {
    return select_jobs(impl_->db, "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs ORDER BY id");
  });
}

StoreResult<std::optional<core::JobRecord>> PostgresStore::find(std::string_view key) {
  return answer(*impl_, [&]() -> result<std::optional<core::JobRecord>> {
    auto jobs = select_jobs(impl_->db,
                            "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs WHERE key = $1",
                            Params{}.add(key));
    if (!jobs) return jobs.error();
    if (jobs->empty()) return std::optional<core::JobRecord>{};
    return std::optional<core::JobRecord>{std::move(jobs->front())};
  });
}

StoreResult<Outcome> PostgresStore::outcome(std::int64_t job_id) {
  return answer(*impl_, [&]() -> result<Outcome> {
    auto& db = impl_->db;
    auto rows = db.exec(
        "SELECT pull_requests, acus_consumed, structured_output, started_at, finished_at, "
        "child_session_ids, children_acus FROM jobs WHERE id = $1::bigint",
        Params{}.add(job_id));
    if (!rows) return rows.error();
    if (rows->empty()) return errc::not_found;
    const Row row = (*rows)[0];
    Outcome out;
    if (auto text = row.optional_text_at(0)) {
      auto pull_requests = parse_pull_requests(*text);
      if (!pull_requests) {
        return db.fail(errc::database_error,
                       "job " + std::to_string(job_id) + ": stored pull_requests is not valid");
      }
      out.pull_requests = std::move(*pull_requests);
    }
    out.acus_consumed = row.optional_double_at(1).value_or(0.0);
    out.structured_output = row.optional_text_at(2);
    out.started_at_ms = row.optional_int64_at(3);
    out.finished_at_ms = row.optional_int64_at(4);
    if (auto text = row.optional_text_at(5)) {
      auto children = parse_ids(*text);
      if (!children) {
        return db.fail(errc::database_error,
                       "job " + std::to_string(job_id) + ": stored child_session_ids is not valid");
      }
      out.child_session_ids = std::move(*children);
    }
    out.children_acus = row.optional_double_at(6).value_or(0.0);
    return out;
  });
}

StoreResult<std::vector<HistoryEntry>> PostgresStore::history(std::int64_t job_id) {
  return answer(*impl_, [&]() -> result<std::vector<HistoryEntry>> {
    // By id, not `at`: insertion order is the order things happened even if the clock stepped.
    auto rows = impl_->db.exec(
        "SELECT at, event, state, status, status_detail, message FROM job_events "
        "WHERE job_id = $1::bigint ORDER BY id",
        Params{}.add(job_id));
    if (!rows) return rows.error();
    std::vector<HistoryEntry> entries;
    for (int i = 0; i < rows->size(); ++i) {
      const Row row = (*rows)[i];
      entries.push_back(HistoryEntry{.at_ms = row.int64_at(0),
                                     .event = row.text_at(1),
                                     .state = row.optional_text_at(2),
                                     .status = row.optional_text_at(3),
                                     .status_detail = row.optional_text_at(4),
                                     .message = row.optional_text_at(5)});
    }
    return entries;
  });
}

StoreResult<std::map<core::JobState, std::int64_t>> PostgresStore::count_by_state() {
  return answer(*impl_, [&]() -> result<std::map<core::JobState, std::int64_t>> {
    std::map<core::JobState, std::int64_t> counts;
    for (int value = 0;; ++value) {
      const auto state = static_cast<core::JobState>(value);
      if (core::to_string(state) == "unknown") break;
      counts[state] = 0;
    }
    auto rows = impl_->db.exec("SELECT state, count(*) FROM jobs GROUP BY state");
    if (!rows) return rows.error();
    for (int i = 0; i < rows->size(); ++i) {
      if (auto state = core::parse_job_state((*rows)[i].text_at(0))) {
        counts[*state] = (*rows)[i].int64_at(1);
      }
    }
    return counts;
  });
}

StoreResult<std::optional<std::int64_t>> PostgresStore::oldest_startable_since_ms(
    core::TimePoint now, const ClaimFilter& filter) {
  return answer(*impl_, [&]() -> result<std::optional<std::int64_t>> {
    Params params;
    params.add(core::to_epoch_ms(now));
    add_startable_params(params, filter);
    auto rows = impl_->db.exec(
        "SELECT min(greatest(created_at, coalesce(not_before, 0))) FROM jobs WHERE " +
            startable_conditions(filter, 2),
        params);
    if (!rows) return rows.error();
    return (*rows)[0].optional_int64_at(0);
  });
}

StoreResult<std::vector<core::JobRecord>> PostgresStore::past_deadline(core::TimePoint now) {
  return answer(*impl_, [&]() {
    return select_jobs(impl_->db,
                       "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs "
                       "WHERE deadline IS NOT NULL AND deadline <= $1::bigint "
                       "AND " DEVIN_ORCH_IN_PROGRESS " ORDER BY deadline, id",
                       Params{}.add(core::to_epoch_ms(now)));
  });
}

StoreResult<std::vector<core::JobRecord>> PostgresStore::cancel_requests() {
  return answer(*impl_, [&]() {
    return select_jobs(impl_->db,
                       "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs "
                       "WHERE cancel_requested <> 0 AND " DEVIN_ORCH_IN_PROGRESS " ORDER BY id");
  });
}

// ---- transitions -------------------------------------------------------------------------

StoreResult<std::vector<StoreResult<void>>> PostgresStore::commit_intents(
    std::span<const IntentWrite> intents, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<std::vector<result<void>>> {
    const FenceScopeGuard fenced_by{*impl_, jobs_scope(intents)};
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<std::vector<result<void>>> {
      if (auto locked = lock_groups(db, intents); !locked) return locked.error();
      std::vector<result<void>> outcomes;
      outcomes.reserve(intents.size());
      for (const IntentWrite& intent : intents) {
        if (intent.claim && intent.group) {
          auto full = group_full(db, intent);
          if (!full) return full.error();
          if (*full) {
            // Refuse this claim only: the job stays queued, the others go ahead.
            outcomes.push_back(claim_refused_for_group(db, intent));
            continue;
          }
        }
        // SKIP LOCKED: a job another daemon is claiming at this instant is refused at once
        // rather than waited for; its attempts would not match after that claim anyway.
        auto updated = db.exec(
            "UPDATE jobs SET state = 'creating', attempts = $2::bigint, sends = $7::bigint, "
            "creation_tag = $3, intent_at = COALESCE(intent_at, $4::bigint), "
            "updated_at = $5::bigint WHERE id = (SELECT id FROM jobs WHERE id = $1::bigint "
            "AND attempts + sends = $2::bigint + $7::bigint - 1 AND "
            "(($6::boolean AND state = 'queued') OR (NOT $6::boolean AND state = 'creating')) "
            "FOR UPDATE SKIP LOCKED)",
            Params{}
                .add(intent.job_id)
                .add(intent.attempt)
                .add(intent.tag)
                .add(intent.intent_at_ms)
                .add(core::to_epoch_ms(now))
                .add(intent.claim)
                .add(intent.cut_short));
        if (!updated) return updated.error();
        if (updated->affected() == 0) {
          outcomes.push_back(transition_refused(db, intent.job_id));
          continue;
        }
        if (auto logged = insert_event(db, intent.job_id, now, "intent",
                                       state_name(core::JobState::creating), std::nullopt,
                                       std::nullopt,
                                       "attempt " + std::to_string(intent.attempt) +
                                           (intent.cut_short > 0
                                                ? " (" + std::to_string(intent.cut_short) +
                                                      " cut short by restarts)"
                                                : std::string{}));
            !logged) {
          return logged.error();
        }
        outcomes.emplace_back();
      }
      return outcomes;
    });
  });
}

StoreResult<std::vector<StoreResult<void>>> PostgresStore::commit_sessions(
    std::span<const SessionWrite> sessions, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<std::vector<result<void>>> {
    const FenceScopeGuard fenced_by{*impl_, jobs_scope(sessions)};
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<std::vector<result<void>>> {
      std::vector<result<void>> outcomes;
      outcomes.reserve(sessions.size());
      for (const SessionWrite& write : sessions) {
        const core::Session& session = write.session;
        auto updated = db.exec(
            "UPDATE jobs SET state = 'running', session_id = $2, session_url = $3, status = $4, "
            "status_detail = $5, pull_requests = $6, acus_consumed = $7::double precision, "
            "structured_output = $8, started_at = $9::bigint, updated_at = $9::bigint, "
            "duplicate_watch_until = $10::bigint, child_session_ids = $11 "
            "WHERE id = $1::bigint AND state = 'creating'",
            Params{}
                .add(write.job_id)
                .add(session.session_id)
                .add(session.url)
                .add(session.status)
                .add(session.status_detail)
                .add(serialise_pull_requests(session.pull_requests))
                .add(session.acus_consumed)
                .add(session.structured_output)
                .add(core::to_epoch_ms(now))
                .add(write.duplicate_watch_until_ms)
                .add(serialise_ids(session.child_session_ids)));
        if (!updated) return updated.error();
        if (updated->affected() == 0) {
          outcomes.push_back(session_held_or_refused(db, write.job_id, session.session_id));
          continue;
        }
        if (auto logged = insert_event(db, write.job_id, now, write.adopted ? "adopted" : "created",
                                       state_name(core::JobState::running), session.status,
                                       session.status_detail, session.session_id);
            !logged) {
          return logged.error();
        }
        outcomes.emplace_back();
      }
      return outcomes;
      // Synced: the daemon polls the session from the moment this returns, and a commit the
      // server loses in a crash would leave the job `creating` while its session runs on.
    }, Durability::synced);
  });
}

StoreResult<void> PostgresStore::requeue(std::int64_t job_id, std::int64_t attempts,
                                         std::string_view reason, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = db.exec(
          "UPDATE jobs SET state = 'queued', attempts = $2::bigint, last_error = $3, "
          "updated_at = $4::bigint WHERE id = $1::bigint AND state IN ('queued', 'creating')",
          Params{}.add(job_id).add(attempts).add(text_or_null(reason)).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (updated->affected() == 0) return transition_refused(db, job_id);
      return insert_event(db, job_id, now, "requeued", state_name(core::JobState::queued),
                          std::nullopt, std::nullopt, text_or_null(reason));
    }, Durability::synced);  // else a lost requeue strands the job `creating`
  });
}

StoreResult<void> PostgresStore::finish(std::int64_t job_id, core::JobState state,
                                        std::string_view reason, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    if (!core::is_terminal(state)) return errc::invalid_argument;
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = db.exec(
          "UPDATE jobs SET state = $2, last_error = $3, finished_at = $4::bigint, "
          "updated_at = $4::bigint WHERE id = $1::bigint AND " DEVIN_ORCH_IN_PROGRESS,
          Params{}
              .add(job_id)
              .add(core::to_string(state))
              .add(text_or_null(reason))
              .add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (updated->affected() == 0) return transition_refused(db, job_id);
      if (auto logged = insert_event(db, job_id, now, core::to_string(state), state_name(state),
                                     std::nullopt, std::nullopt, text_or_null(reason));
          !logged) {
        return logged.error();
      }
      if (const auto type = core::end_event(state)) {
        return append_job_notification(*impl_, job_id, *type, now);
      }
      return {};
    });
  });
}

StoreResult<void> PostgresStore::record_statuses(std::span<const StatusUpdate> updates,
                                                 core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, jobs_scope(updates)};
    for (const auto& update : updates) {
      if (update.new_state && !core::is_terminal(*update.new_state)) return errc::invalid_argument;
    }
    if (updates.empty()) return {};
    auto& db = impl_->db;
    const std::int64_t now_ms = core::to_epoch_ms(now);
    // An end is not repaired by the next poll (there is none): it must outlive a crash of the
    // server, or the job would stay running on a row no daemon polls until its next start.
    const bool ends_a_job = std::ranges::any_of(
        updates, [](const StatusUpdate& update) { return update.new_state.has_value(); });
    return in_write_transaction(*impl_, [&]() -> result<void> {
      for (const auto& update : updates) {
        const core::Session& session = update.session;
        const std::optional<std::string> new_state =
            update.new_state ? state_name(*update.new_state) : std::nullopt;
        const std::optional<std::string> reason =
            update.reason ? text_or_null(*update.reason) : std::nullopt;
        // The status event first, from the row as it still is, only when the status or its
        // detail changes and only for a job still in progress.
        // Whether the status changed is what this INSERT wrote, read before the row changes.
        auto logged = db.exec(
            "INSERT INTO job_events (job_id, at, event, state, status, status_detail) "
            "SELECT id, $2::bigint, 'status', COALESCE($3::text, state), $4::text, $5::text "
            "FROM jobs WHERE id = $1::bigint AND " DEVIN_ORCH_HOLDS_SESSION("$6::text") " "
            "AND (status IS DISTINCT FROM $4::text OR status_detail IS DISTINCT FROM $5::text)",
            Params{}
                .add(update.job_id)
                .add(now_ms)
                .add(new_state)
                .add(session.status)
                .add(session.status_detail)
                .add(session.session_id));
        if (!logged) return logged.error();
        const bool status_changed = logged->affected() != 0;
        Params params;
        params.add(update.job_id)
            .add(session.status)
            .add(session.status_detail)
            .add(serialise_pull_requests(session.pull_requests))
            .add(session.acus_consumed)
            .add(session.structured_output)
            .add(now_ms)
            .add(serialise_ids(session.child_session_ids))
            .add(session.session_id);
        auto updated =
            new_state
                ? db.exec(
                      "UPDATE jobs SET status = $2, status_detail = $3, pull_requests = $4, "
                      "acus_consumed = $5::double precision, "
                      "structured_output = COALESCE($6, structured_output), "
                      "updated_at = $7::bigint, child_session_ids = COALESCE($8, child_session_ids), "
                      "state = $10, finished_at = $7::bigint, last_error = $11 "
                      "WHERE id = $1::bigint AND " DEVIN_ORCH_HOLDS_SESSION("$9::text"),
                      params.add(new_state).add(reason))
                : db.exec(
                      "UPDATE jobs SET status = $2, status_detail = $3, pull_requests = $4, "
                      "acus_consumed = $5::double precision, "
                      "structured_output = COALESCE($6, structured_output), "
                      "updated_at = $7::bigint, child_session_ids = COALESCE($8, child_session_ids) "
                      "WHERE id = $1::bigint AND " DEVIN_ORCH_HOLDS_SESSION("$9::text"),
                      params);
        if (!updated) return updated.error();
        if (updated->affected() == 0) continue;  // missing, ended, or not on this session
        // The session starts waiting for its user: announced once per wait, with the status
        // change that shows it.
        if (!update.new_state && status_changed &&
            core::waits_for_user(session.status, session.status_detail)) {
          if (auto queued = append_job_notification(*impl_, update.job_id,
                                                    core::EventType::job_waiting_for_user, now);
              !queued) {
            return queued.error();
          }
        }
        if (update.new_state) {
          if (auto ended = insert_event(db, update.job_id, now, *new_state, new_state,
                                        session.status, session.status_detail, reason);
              !ended) {
            return ended.error();
          }
          if (const auto type = core::end_event(*update.new_state)) {
            if (auto queued = append_job_notification(*impl_, update.job_id, *type, now);
                !queued) {
              return queued.error();
            }
          }
        }
      }
      return {};
    }, ends_a_job ? Durability::synced : Durability::recoverable);
  });
}

StoreResult<void> PostgresStore::record_duplicates(std::int64_t job_id,
                                                   std::string_view current_session_id,
                                                   const core::Session& kept,
                                                   std::span<const std::string> terminated,
                                                   core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<void> {
      if (kept.session_id != current_session_id) {
        auto switched = db.exec(
            "UPDATE jobs SET session_id = $3, session_url = $4, status = $5, status_detail = $6, "
            "pull_requests = $7, acus_consumed = $8::double precision, "
            "structured_output = COALESCE($9, structured_output), updated_at = $10::bigint "
            "WHERE id = $1::bigint AND session_id = $2 AND state = 'running'",
            Params{}
                .add(job_id)
                .add(current_session_id)
                .add(kept.session_id)
                .add(kept.url)
                .add(kept.status)
                .add(kept.status_detail)
                .add(serialise_pull_requests(kept.pull_requests))
                .add(kept.acus_consumed)
                .add(kept.structured_output)
                .add(core::to_epoch_ms(now)));
        if (!switched) return switched.error();
        if (switched->affected() == 0) return transition_refused(db, job_id);
      }
      for (const auto& session_id : terminated) {
        if (auto logged = insert_event(db, job_id, now, "duplicate", std::nullopt, std::nullopt,
                                       std::nullopt,
                                       "session " + session_id +
                                           " carried this job's tag too; terminated, keeping " +
                                           kept.session_id);
            !logged) {
          return logged.error();
        }
      }
      if (!terminated.empty()) {
        JobEventNote note;
        note.kept_session_id = kept.session_id;
        note.terminated_session_ids.assign(terminated.begin(), terminated.end());
        note.detail = std::to_string(terminated.size()) +
                      " other session(s) carried this job's tag; terminated, keeping " +
                      kept.session_id;
        return append_job_notification(*impl_, job_id, core::EventType::job_duplicate_terminated,
                                       now, note);
      }
      return {};
    });
  });
}

StoreResult<void> PostgresStore::end_duplicate_watch(std::int64_t job_id, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = impl_->db.exec(
          "UPDATE jobs SET duplicate_watch_until = NULL, updated_at = $2::bigint "
          "WHERE id = $1::bigint",
          Params{}.add(job_id).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      return {};
    });
  });
}

StoreResult<void> PostgresStore::record_children(std::span<const ChildrenUpdate> updates,
                                                 core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, jobs_scope(updates)};
    if (updates.empty()) return {};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      for (const auto& update : updates) {
        // Any state: a parent that ended leaves children whose last figures come after it.
        auto updated = impl_->db.exec(
            "UPDATE jobs SET child_session_ids = COALESCE($2, child_session_ids), "
            "children_acus = $3::double precision, updated_at = $4::bigint WHERE id = $1::bigint",
            Params{}
                .add(update.job_id)
                .add(serialise_ids(update.child_session_ids))
                .add(update.children_acus)
                .add(core::to_epoch_ms(now)));
        if (!updated) return updated.error();
      }
      return {};
    });
  });
}

StoreResult<std::map<std::string, std::string>> PostgresStore::attachment_urls(
    std::int64_t job_id) {
  return answer(*impl_, [&]() -> result<std::map<std::string, std::string>> {
    auto rows = impl_->db.exec(
        "SELECT path, url FROM job_attachments WHERE job_id = $1::bigint ORDER BY path",
        Params{}.add(job_id));
    if (!rows) return rows.error();
    std::map<std::string, std::string> urls;
    for (int i = 0; i < rows->size(); ++i) urls[(*rows)[i].text_at(0)] = (*rows)[i].text_at(1);
    return urls;
  });
}

StoreResult<void> PostgresStore::record_attachment_url(std::int64_t job_id, std::string_view path,
                                                       std::string_view url,
                                                       core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    // The job's organisation's lease, like every write about a job (not the default org's).
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto inserted = impl_->db.exec(
          "INSERT INTO job_attachments (job_id, path, url, uploaded_at) "
          "SELECT id, $2, $3, $4::bigint FROM jobs WHERE id = $1::bigint "
          "ON CONFLICT (job_id, path) DO NOTHING",
          Params{}.add(job_id).add(path).add(url).add(core::to_epoch_ms(now)));
      if (!inserted) return inserted.error();
      if (inserted->affected() == 0) {
        auto exists = impl_->db.exec("SELECT 1 FROM jobs WHERE id = $1::bigint",
                                     Params{}.add(job_id));
        if (!exists) return exists.error();
        if (exists->size() == 0) return errc::not_found;
      }
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<void> PostgresStore::note_error(std::int64_t job_id, std::string_view error,
                                            core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = impl_->db.exec(
          "UPDATE jobs SET last_error = $2, updated_at = $3::bigint WHERE id = $1::bigint",
          Params{}.add(job_id).add(text_or_null(error)).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (updated->affected() == 0) return errc::not_found;
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<void> PostgresStore::set_waiting_since(std::int64_t job_id,
                                                   std::optional<std::int64_t> at_ms,
                                                   core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = impl_->db.exec(
          "UPDATE jobs SET waiting_since = $2::bigint, updated_at = $3::bigint "
          "WHERE id = $1::bigint",
          Params{}.add(job_id).add(at_ms).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (updated->affected() == 0) return errc::not_found;
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<void> PostgresStore::record_message(std::int64_t job_id, std::int64_t messages_sent,
                                                std::string_view message, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, job_scope(job_id)};
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = db.exec(
          "UPDATE jobs SET messages_sent = $2::bigint, updated_at = $3::bigint "
          "WHERE id = $1::bigint",
          Params{}.add(job_id).add(messages_sent).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (updated->affected() == 0) return errc::not_found;
      return insert_event(db, job_id, now, "message", std::nullopt, std::nullopt, std::nullopt,
                          std::string(message));
    });
  });
}

StoreResult<void> PostgresStore::record_stall(std::int64_t job_id,
                                              std::optional<std::int64_t> since_ms,
                                              std::string_view note, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated =
          since_ms
              ? db.exec("UPDATE jobs SET stalled_since = $2::bigint, last_error = $3, "
                        "updated_at = $4::bigint WHERE id = $1::bigint AND state = 'running'",
                        Params{}.add(job_id).add(*since_ms).add(text_or_null(note)).add(
                            core::to_epoch_ms(now)))
              : db.exec("UPDATE jobs SET stalled_since = NULL, last_error = CASE WHEN "
                        "last_error LIKE 'stalled: %' THEN NULL ELSE last_error END, "
                        "updated_at = $2::bigint "
                        "WHERE id = $1::bigint AND state = 'running' AND stalled_since IS NOT NULL",
                        Params{}.add(job_id).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (updated->affected() == 0 || !since_ms) return {};
      if (auto logged = insert_event(db, job_id, now, "stalled", std::nullopt, std::nullopt,
                                     std::nullopt, text_or_null(note));
          !logged) {
        return logged.error();
      }
      return append_job_notification(*impl_, job_id, core::EventType::job_stalled, now);
    });
  });
}

// ---- the operator's controls -------------------------------------------------------------

namespace {

// A job's row id and state by key, locked until the transaction ends.
result<std::optional<std::pair<std::int64_t, std::string>>> lock_id_and_state(
    pg::Connection& db, std::string_view key) {
  auto rows = db.exec("SELECT id, state FROM jobs WHERE key = $1 FOR UPDATE", Params{}.add(key));
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<std::pair<std::int64_t, std::string>>{};
  return std::optional{std::pair{(*rows)[0].int64_at(0), (*rows)[0].text_at(1)}};
}

}  // namespace

StoreResult<CancelResult> PostgresStore::request_cancel(std::string_view key, bool archive,
                                                        core::TimePoint now) {
  return answer(*impl_, [&]() -> result<CancelResult> {
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<CancelResult> {
      auto found = lock_id_and_state(db, key);
      if (!found) return found.error();
      if (!*found) return CancelResult::not_found;
      const auto [id, state] = **found;
      const auto at = core::to_epoch_ms(now);
      if (state == "queued") {
        auto updated = db.exec(
            "UPDATE jobs SET state = 'cancelled', last_error = 'cancelled by an operator', "
            "finished_at = $2::bigint, updated_at = $2::bigint WHERE id = $1::bigint",
            Params{}.add(id).add(at));
        if (!updated) return updated.error();
        if (auto logged = insert_event(db, id, now, "cancelled", std::string{"cancelled"},
                                       std::nullopt, std::nullopt,
                                       std::string{"cancelled by an operator before it started"});
            !logged) {
          return logged.error();
        }
        if (auto queued = append_job_notification(*impl_, id, core::EventType::job_cancelled, now);
            !queued) {
          return queued.error();
        }
        return CancelResult::cancelled;
      }
      if (state != "creating" && state != "running") return CancelResult::already_ended;
      auto updated = db.exec(
          "UPDATE jobs SET cancel_requested = $2::integer, updated_at = $3::bigint "
          "WHERE id = $1::bigint",
          Params{}.add(id).add(std::int64_t{archive ? 2 : 1}).add(at));
      if (!updated) return updated.error();
      if (auto logged = insert_event(db, id, now, "cancel_requested", std::nullopt, std::nullopt,
                                     std::nullopt,
                                     std::string{archive ? "terminate and archive" : "terminate"});
          !logged) {
        return logged.error();
      }
      return CancelResult::requested;
    });
  });
}

StoreResult<RetryResult> PostgresStore::retry(std::string_view key, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<RetryResult> {
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<RetryResult> {
      auto found = lock_id_and_state(db, key);
      if (!found) return found.error();
      if (!*found) return RetryResult::not_found;
      const auto [id, state] = **found;
      static constexpr std::array<std::string_view, 7> kRetryable{
          "failed", "suspended", "dead", "lost", "cancelled", "timed_out", "stalled"};
      if (std::find(kRetryable.begin(), kRetryable.end(), state) == kRetryable.end()) {
        return RetryResult::not_terminal;
      }
      auto updated = db.exec(
          "UPDATE jobs SET state = 'queued', generation = generation + 1, attempts = 0, "
          "creation_tag = NULL, intent_at = NULL, session_id = NULL, session_url = NULL, "
          "status = NULL, status_detail = NULL, pull_requests = NULL, acus_consumed = NULL, "
          "structured_output = NULL, last_error = NULL, started_at = NULL, finished_at = NULL, "
          "messages_sent = 0, waiting_since = NULL, stalled_since = NULL, cancel_requested = 0, "
          "updated_at = $2::bigint, child_session_ids = NULL, children_acus = NULL "
          "WHERE id = $1::bigint",
          Params{}.add(id).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      if (auto logged = insert_event(db, id, now, "retry", std::string{"queued"}, std::nullopt,
                                     std::nullopt, "retried by an operator after " + state);
          !logged) {
        return logged.error();
      }
      return RetryResult::requeued;
    });
  });
}

StoreResult<void> PostgresStore::pause_org(std::string_view org_id, std::string_view reason,
                                           std::string_view source, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, org_scope(org_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto done = impl_->db.exec(
          "INSERT INTO org_pauses (org_id, reason, paused_at, source) "
          "VALUES ($1, $2, $3::bigint, $4) ON CONFLICT (org_id) DO NOTHING",
          Params{}.add(org_id).add(reason).add(core::to_epoch_ms(now)).add(source));
      if (!done) return done.error();
      if (done->affected() == 0) return {};  // paused already: announced then
      return append_org_notification(*impl_, org_id, core::EventType::org_paused, now, reason,
                                     source);
    });
  });
}

StoreResult<std::int64_t> PostgresStore::resume_org(std::string_view org_id) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      auto deleted =
          impl_->db.exec("DELETE FROM org_pauses WHERE org_id = $1", Params{}.add(org_id));
      if (!deleted) return deleted.error();
      const std::int64_t lifted = deleted->affected();
      if (lifted != 0) {
        // The interface passes no time here; the event's time is this host's clock.
        if (auto queued = append_org_notification(*impl_, org_id, core::EventType::org_resumed,
                                                  core::wall_now(), std::nullopt, "operator");
            !queued) {
          return queued.error();
        }
      }
      return lifted;
    });
  });
}

StoreResult<std::map<std::string, std::string>> PostgresStore::paused_orgs() {
  return answer(*impl_, [&]() -> result<std::map<std::string, std::string>> {
    auto rows = impl_->db.exec("SELECT org_id, reason FROM org_pauses ORDER BY org_id");
    if (!rows) return rows.error();
    std::map<std::string, std::string> paused;
    for (int i = 0; i < rows->size(); ++i) paused[(*rows)[i].text_at(0)] = (*rows)[i].text_at(1);
    return paused;
  });
}

StoreResult<std::int64_t> PostgresStore::lift_daemon_pause(std::string_view org_id,
                                                           std::string_view reason) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    const FenceScopeGuard fenced_by{*impl_, org_scope(org_id)};
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      auto deleted = impl_->db.exec(
          "DELETE FROM org_pauses WHERE org_id = $1 AND reason = $2 AND source = 'daemon'",
          Params{}.add(org_id).add(reason));
      if (!deleted) return deleted.error();
      const std::int64_t lifted = deleted->affected();
      if (lifted != 0) {
        if (auto queued = append_org_notification(*impl_, org_id, core::EventType::org_resumed,
                                                  core::wall_now(), reason, "daemon");
            !queued) {
          return queued.error();
        }
      }
      return lifted;
    });
  });
}

StoreResult<void> PostgresStore::pause_user(std::string_view org_id, std::string_view user_id,
                                            std::string_view reason, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, org_scope(org_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto done = impl_->db.exec(
          "INSERT INTO user_pauses (org_id, user_id, reason, paused_at) "
          "VALUES ($1, $2, $3, $4::bigint) ON CONFLICT (org_id, user_id) DO NOTHING",
          Params{}.add(org_id).add(user_id).add(reason).add(core::to_epoch_ms(now)));
      if (!done) return done.error();
      return {};
    });
  });
}

StoreResult<std::vector<UserPause>> PostgresStore::paused_users() {
  return answer(*impl_, [&]() -> result<std::vector<UserPause>> {
    auto rows = impl_->db.exec(
        "SELECT org_id, user_id, reason, paused_at FROM user_pauses ORDER BY org_id, user_id");
    if (!rows) return rows.error();
    std::vector<UserPause> pauses;
    for (int i = 0; i < rows->size(); ++i) {
      const Row row = (*rows)[i];
      pauses.push_back(UserPause{.org_id = row.text_at(0),
                                 .user_id = row.text_at(1),
                                 .reason = row.text_at(2),
                                 .paused_at_ms = row.int64_at(3)});
    }
    return pauses;
  });
}

StoreResult<std::int64_t> PostgresStore::resume_user(std::string_view org_id,
                                                     std::string_view user_id) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      auto deleted = impl_->db.exec("DELETE FROM user_pauses WHERE org_id = $1 AND user_id = $2",
                                    Params{}.add(org_id).add(user_id));
      if (!deleted) return deleted.error();
      return deleted->affected();
    });
  });
}

StoreResult<void> PostgresStore::hold_org(std::string_view org_id, core::TimePoint until,
                                          std::string_view reason, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    const FenceScopeGuard fenced_by{*impl_, org_scope(org_id)};
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto done = impl_->db.exec(
          "INSERT INTO org_holds (org_id, until_ms, reason, held_at) "
          "VALUES ($1, $2::bigint, $3, $4::bigint) ON CONFLICT (org_id) DO UPDATE SET "
          "until_ms = excluded.until_ms, reason = excluded.reason, held_at = excluded.held_at "
          "WHERE excluded.until_ms > org_holds.until_ms",
          Params{}
              .add(org_id)
              .add(core::to_epoch_ms(until))
              .add(reason)
              .add(core::to_epoch_ms(now)));
      if (!done) return done.error();
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<std::vector<OrgHold>> PostgresStore::org_holds(core::TimePoint now) {
  return answer(*impl_, [&]() -> result<std::vector<OrgHold>> {
    auto rows = impl_->db.exec(
        "SELECT org_id, until_ms, reason, held_at FROM org_holds WHERE until_ms > $1::bigint "
        "ORDER BY org_id",
        Params{}.add(core::to_epoch_ms(now)));
    if (!rows) return rows.error();
    std::vector<OrgHold> holds;
    for (int i = 0; i < rows->size(); ++i) {
      const Row row = (*rows)[i];
      holds.push_back(OrgHold{.org_id = row.text_at(0),
                              .until_ms = row.int64_at(1),
                              .reason = row.text_at(2),
                              .held_at_ms = row.int64_at(3)});
    }
    return holds;
  });
}

// A scan of jobs (intent_at has no index): the daemon reads it at most once a second, and only
// with a budget configured.
StoreResult<std::vector<SpendingRow>> PostgresStore::spending_since(core::TimePoint since) {
  return answer(*impl_, [&]() -> result<std::vector<SpendingRow>> {
    auto rows = impl_->db.exec(
        "SELECT " DEVIN_ORCH_SPENDING_COLUMNS " FROM jobs "
        "WHERE intent_at >= $1::bigint ORDER BY id",
        Params{}.add(core::to_epoch_ms(since)));
    if (!rows) return rows.error();
    std::vector<SpendingRow> charged;
    for (int i = 0; i < rows->size(); ++i) {
      if (auto row = read_spending_row((*rows)[i])) charged.push_back(std::move(*row));
    }
    return charged;
  });
}

#define DEVIN_ORCH_PRUNABLE DEVIN_ORCH_ENDED " AND coalesce(finished_at, updated_at) < $1::bigint"

namespace {

// Deletes the jobs `selection` names (a WHERE clause over `params`) and archives their outcomes
// in the same statement, `now_param` (e.g. "$2") the time they were removed: a job that ends or
// is retried meanwhile is either both archived and deleted or neither. Their history goes with
// them (ON DELETE CASCADE). Returns how many jobs were removed.
result<std::int64_t> archive_and_delete(pg::Connection& db, const std::string& selection,
                                        const char* now_param, const Params& params) {
  auto archived = db.exec(
      "WITH gone AS (DELETE FROM jobs WHERE " + selection +
          " RETURNING id, key, generation, org_id, state, session_id, session_url, status, "
          "status_detail, acus_consumed, pull_requests, structured_output, last_error, "
          "created_at, finished_at) "
          "INSERT INTO outcomes (key, generation, org_id, state, session_id, session_url, "
          "status, status_detail, acus_consumed, pull_requests, structured_output, last_error, "
          "created_at, finished_at, pruned_at) "
          "SELECT key, generation, org_id, state, session_id, session_url, status, "
          "status_detail, acus_consumed, pull_requests, structured_output, last_error, "
          "created_at, finished_at, " +
          std::string{now_param} + "::bigint FROM gone ORDER BY id",
      params);
  if (!archived) return archived.error();
  return archived->affected();
}

}  // namespace

StoreResult<std::int64_t> PostgresStore::prune(core::TimePoint cutoff, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      return archive_and_delete(impl_->db, DEVIN_ORCH_PRUNABLE, "$2",
                                Params{}.add(core::to_epoch_ms(cutoff)).add(core::to_epoch_ms(now)));
    });
  });
}

StoreResult<std::int64_t> PostgresStore::prune_ended(core::TimePoint cutoff, core::TimePoint now,
                                                     std::size_t limit) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    if (limit == 0) return std::int64_t{0};
    // The batch is locked as it is chosen (rows another transaction holds are left for the
    // next batch), and the outer condition is checked again on each row's latest version.
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      return archive_and_delete(
          impl_->db,
          "id IN (SELECT id FROM jobs WHERE " DEVIN_ORCH_PRUNABLE
          " ORDER BY coalesce(finished_at, updated_at) LIMIT $3::bigint FOR UPDATE SKIP LOCKED)"
          " AND " DEVIN_ORCH_PRUNABLE,
          "$2",
          Params{}
              .add(core::to_epoch_ms(cutoff))
              .add(core::to_epoch_ms(now))
              .add(static_cast<std::int64_t>(limit)));
    }, Durability::recoverable);
  });
}

StoreResult<DeleteResult> PostgresStore::delete_job(std::string_view key, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<DeleteResult> {
    auto& db = impl_->db;
    return in_write_transaction(*impl_, [&]() -> result<DeleteResult> {
      auto found = lock_id_and_state(db, key);
      if (!found) return found.error();
      if (!*found) return DeleteResult::not_found;
      const auto [id, state_text] = **found;
      const auto state = core::parse_job_state(state_text);
      if (!state || !core::is_terminal(*state)) return DeleteResult::not_ended;
      auto deleted = archive_and_delete(db, "id = $1::bigint", "$2",
                                        Params{}.add(id).add(core::to_epoch_ms(now)));
      if (!deleted) return deleted.error();
      return DeleteResult::deleted;
    });
  });
}

StoreResult<std::int64_t> PostgresStore::count_prunable(core::TimePoint cutoff) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    auto rows = impl_->db.exec("SELECT count(*) FROM jobs WHERE " DEVIN_ORCH_PRUNABLE,
                               Params{}.add(core::to_epoch_ms(cutoff)));
    if (!rows) return rows.error();
    return (*rows)[0].int64_at(0);
  });
}

// ---- the operator's listings -------------------------------------------------------------

namespace {

// list_jobs's ORDER BY for a JobFilter: one text per order, ties by id in the same direction.
// Keys compare as bytes (COLLATE "C"), as SQLite's do, whatever the database's collation.
std::string list_jobs_order(JobOrder order, bool descending) {
  const std::string direction = descending ? " DESC" : " ASC";
  std::string sql = "ORDER BY ";
  switch (order) {
    case JobOrder::added: break;
    case JobOrder::created: sql += "created_at" + direction + ", "; break;
    case JobOrder::updated: sql += "updated_at" + direction + ", "; break;
    case JobOrder::key: sql += "key COLLATE \"C\"" + direction + ", "; break;
    case JobOrder::state: {
      // By core::JobState's order, not by name.
      sql += "CASE state";
      int rank = 0;
      for (const auto state : core::all_job_states()) {
        sql += " WHEN '" + std::string{core::to_string(state)} + "' THEN " +
               std::to_string(rank++);
      }
      sql += " END" + direction + ", ";
      break;
    }
  }
  return sql + "id" + direction;
}

}  // namespace

StoreResult<std::vector<JobSummary>> PostgresStore::list_jobs(const JobFilter& filter) {
  return answer(*impl_, [&]() -> result<std::vector<JobSummary>> {
    std::vector<JobSummary> jobs;
    if (filter.limit == std::size_t{0}) return jobs;
    std::optional<std::string> states;
    if (!filter.states.empty()) {
      std::vector<std::string> names;
      for (const auto state : filter.states) names.emplace_back(core::to_string(state));
      states = array_literal(names);
    }
    // The tag test reads the spec as every other reader does (decode_spec), so the limit is
    // applied here rather than in SQL when a tag narrows the listing.
    auto rows = impl_->db.exec(
        "SELECT id, key, state, coalesce(org_id, $3::text), session_id, session_url, status, "
        "status_detail, last_error, attempts, created_at, finished_at, spec, updated_at, "
        "started_at, not_before, acus_consumed, children_acus FROM jobs "
        "WHERE ($1::text[] IS NULL OR state = ANY($1::text[])) "
        "AND ($2::text IS NULL OR coalesce(org_id, $3::text) = $2::text) "
        "AND ($4::bigint IS NULL OR created_at < $4::bigint) "
        "AND ($5::bigint IS NULL OR created_at > $5::bigint) " +
            list_jobs_order(filter.order, filter.descending) + " LIMIT $6::bigint",
        Params{}
            .add(states)
            .add(filter.org_id)
            .add(filter.default_org)
            .add(filter.created_before_ms)
            .add(filter.created_after_ms)
            .add(filter.limit && !filter.tag ? std::optional<std::int64_t>{static_cast<std::int64_t>(*filter.limit)}
                                             : std::nullopt));
    if (!rows) return rows.error();
    for (int i = 0; i < rows->size(); ++i) {
      if (filter.limit && jobs.size() >= *filter.limit) break;
      const Row row = (*rows)[i];
      const auto state = core::parse_job_state(row.text_at(2)).value_or(core::JobState::invalid);
      // The spec is decoded only where it is needed: the tag filter, a queued job's user
      // (whose pause would hold it), and a live or queued job's concurrency key (a full group
      // holds the queued ones).
      std::optional<core::JobSpec> spec;
      if (filter.tag || state == core::JobState::queued ||
          state == core::JobState::creating || state == core::JobState::running) {
        if (auto decoded = decode_spec(row.text_at(12))) spec = std::move(*decoded);
      }
      if (filter.tag && !(spec && std::find(spec->tags.begin(), spec->tags.end(), *filter.tag) !=
                                      spec->tags.end())) {
        continue;
      }
      jobs.push_back(JobSummary{
          .id = row.int64_at(0),
          .key = row.text_at(1),
          .state = state,
          .org_id = row.text_at(3),
          .session_id = row.optional_text_at(4),
          .session_url = row.optional_text_at(5),
          .status = row.optional_text_at(6),
          .status_detail = row.optional_text_at(7),
          .last_error = row.optional_text_at(8),
          .attempts = row.int64_at(9),
          .created_at_ms = row.int64_at(10),
          .updated_at_ms = row.int64_at(13),
          .started_at_ms = row.optional_int64_at(14),
          .finished_at_ms = row.optional_int64_at(11),
          .not_before_ms = row.optional_int64_at(15),
          .create_as_user_id = spec ? spec->create_as_user_id : std::nullopt,
          .max_acu_limit = spec ? spec->max_acu_limit : std::nullopt,
          .concurrency_key = spec ? spec->concurrency_key : std::nullopt,
          .acus_consumed = row.optional_double_at(16),
          .children_acus = row.optional_double_at(17).value_or(0.0),
      });
    }
    return jobs;
  });
}

StoreResult<std::string> PostgresStore::job_source(std::int64_t job_id) {
  return answer(*impl_, [&]() -> result<std::string> {
    auto rows = impl_->db.exec("SELECT source FROM jobs WHERE id = $1::bigint",
                               Params{}.add(job_id));
    if (!rows) return rows.error();
    if (rows->empty()) return errc::not_found;
    return (*rows)[0].text_at(0);
  });
}

StoreResult<std::vector<OrgPause>> PostgresStore::list_pauses() {
  return answer(*impl_, [&]() -> result<std::vector<OrgPause>> {
    auto rows = impl_->db.exec(
        "SELECT org_id, reason, source, paused_at FROM org_pauses ORDER BY org_id");
    if (!rows) return rows.error();
    std::vector<OrgPause> pauses;
    for (int i = 0; i < rows->size(); ++i) {
      const Row row = (*rows)[i];
      pauses.push_back(OrgPause{.org_id = row.text_at(0),
                                .reason = row.text_at(1),
                                .source = row.text_at(2),
                                .paused_at_ms = row.int64_at(3)});
    }
    return pauses;
  });
}

// ---- ownership leases --------------------------------------------------------------------

namespace {

// A row with epoch 0 is a placeholder acquire_lease inserted to have a row to lock: nobody's.
result<std::optional<core::LeaseHolder>> select_lease(pg::Connection& db, std::string_view name,
                                                      bool for_update) {
  auto rows = db.exec(for_update ? "SELECT owner, epoch, expires_at FROM leases "
                                   "WHERE name = $1 AND epoch > 0 FOR UPDATE"
                                 : "SELECT owner, epoch, expires_at FROM leases "
                                   "WHERE name = $1 AND epoch > 0",
                      Params{}.add(name));
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<core::LeaseHolder>{};
  const Row row = (*rows)[0];
  return std::optional<core::LeaseHolder>{core::LeaseHolder{
      .owner = row.text_at(0), .epoch = row.int64_at(1), .expires_at_ms = row.int64_at(2)}};
}

}  // namespace

StoreResult<LeaseAnswer> PostgresStore::acquire_lease(std::string_view name,
                                                      std::string_view owner, core::Duration ttl,
                                                      core::TimePoint now) {
  return answer(*impl_, [&]() -> result<LeaseAnswer> {
    auto& db = impl_->db;
    const std::int64_t now_ms = core::to_epoch_ms(now);
    const std::int64_t expires_ms = now_ms + ttl.count();
    return in_write_transaction(*impl_, [&]() -> result<LeaseAnswer> {
      // A row to lock first, so that two first askers cannot both insert one; the lock is held
      // until commit, and every fenced write of the holder takes a share lock on the same row.
      auto placeholder = db.exec(
          "INSERT INTO leases (name, owner, epoch, expires_at, acquired_at, renewed_at) "
          "VALUES ($1, '', 0, 0, 0, 0) ON CONFLICT (name) DO NOTHING",
          Params{}.add(name));
      if (!placeholder) return placeholder.error();
      auto locked = db.exec("SELECT 1 FROM leases WHERE name = $1 FOR UPDATE", Params{}.add(name));
      if (!locked) return locked.error();
      auto current = select_lease(db, name, false);
      if (!current) return current.error();
      if (*current && (*current)->owner != owner && (*current)->expires_at_ms > now_ms) {
        return LeaseAnswer{.granted = false, .holder = **current};
      }
      const bool mine = *current && (*current)->owner == owner;
      const std::int64_t epoch = !*current ? 1 : mine ? (*current)->epoch : (*current)->epoch + 1;
      auto written = db.exec(
          "UPDATE leases SET owner = $2, epoch = $3::bigint, expires_at = $4::bigint, "
          "renewed_at = $5::bigint, "
          "acquired_at = CASE WHEN epoch = $3::bigint THEN acquired_at ELSE $5::bigint END "
          "WHERE name = $1",
          Params{}.add(name).add(owner).add(epoch).add(expires_ms).add(now_ms));
      if (!written) return written.error();
      return LeaseAnswer{
          .granted = true,
          .holder = {.owner = std::string(owner), .epoch = epoch, .expires_at_ms = expires_ms}};
    }, Durability::synced, Fencing::unfenced);
  });
}

StoreResult<LeaseAnswer> PostgresStore::renew_lease(std::string_view name, std::string_view owner,
                                                    std::int64_t epoch, core::Duration ttl,
                                                    core::TimePoint now) {
  return answer(*impl_, [&]() -> result<LeaseAnswer> {
    auto& db = impl_->db;
    const std::int64_t now_ms = core::to_epoch_ms(now);
    const std::int64_t expires_ms = now_ms + ttl.count();
    // Not waited for: a renewal lost with a server crash only makes the lease lapse sooner.
    return in_write_transaction(*impl_, [&]() -> result<LeaseAnswer> {
      auto written = db.exec(
          "UPDATE leases SET expires_at = $4::bigint, renewed_at = $5::bigint "
          "WHERE name = $1 AND owner = $2 AND epoch = $3::bigint",
          Params{}.add(name).add(owner).add(epoch).add(expires_ms).add(now_ms));
      if (!written) return written.error();
      if (written->affected() == 1) {
        return LeaseAnswer{
            .granted = true,
            .holder = {.owner = std::string(owner), .epoch = epoch, .expires_at_ms = expires_ms}};
      }
      auto current = select_lease(db, name, false);
      if (!current) return current.error();
      return LeaseAnswer{.granted = false, .holder = current->value_or(core::LeaseHolder{})};
    }, Durability::recoverable, Fencing::unfenced);
  });
}

StoreResult<void> PostgresStore::release_lease(std::string_view name, std::string_view owner,
                                               std::int64_t epoch, core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto done = impl_->db.exec(
          "UPDATE leases SET expires_at = $4::bigint "
          "WHERE name = $1 AND owner = $2 AND epoch = $3::bigint",
          Params{}.add(name).add(owner).add(epoch).add(core::to_epoch_ms(now)));
      if (!done) return done.error();
      return {};
    }, Durability::recoverable, Fencing::unfenced);
  });
}

StoreResult<std::optional<core::LeaseHolder>> PostgresStore::read_lease(std::string_view name) {
  return answer(*impl_, [&]() { return select_lease(impl_->db, name, false); });
}

StoreResult<std::vector<NamedLease>> PostgresStore::list_leases(std::string_view prefix) {
  return answer(*impl_, [&]() -> result<std::vector<NamedLease>> {
    // left() rather than LIKE: a prefix may hold '%' or '_' (an org id is the user's text).
    auto rows = impl_->db.exec(
        "SELECT name, owner, epoch, expires_at FROM leases "
        "WHERE left(name, char_length($1)) = $1 ORDER BY name",
        Params{}.add(prefix));
    if (!rows) return rows.error();
    std::vector<NamedLease> leases;
    for (int i = 0; i < rows->size(); ++i) {
      const auto row = (*rows)[i];
      leases.push_back(NamedLease{.name = row.text_at(0),
                                  .holder = core::LeaseHolder{.owner = row.text_at(1),
                                                              .epoch = row.int64_at(2),
                                                              .expires_at_ms = row.int64_at(3)}});
    }
    return leases;
  });
}

StoreResult<std::vector<std::string>> PostgresStore::orgs_with_work(std::string_view default_org) {
  return answer(*impl_, [&]() -> result<std::vector<std::string>> {
    auto rows = impl_->db.exec("SELECT DISTINCT coalesce(org_id, $1) AS org FROM jobs WHERE "
                               DEVIN_ORCH_IN_PROGRESS " ORDER BY org",
                               Params{}.add(default_org));
    if (!rows) return rows.error();
    std::vector<std::string> orgs;
    for (int i = 0; i < rows->size(); ++i) orgs.push_back((*rows)[i].text_at(0));
    return orgs;
  });
}

void PostgresStore::set_fence(std::optional<Fence> fence, FenceRefused on_refused) {
  impl_->fence = std::move(fence);
  impl_->fence_refused = std::move(on_refused);
}

// ---- the change feed ---------------------------------------------------------------------

// One round trip on the listening connection: the server sends, before it answers, every
// notification committed before the query arrived, so a commit another connection finished
// before this call is counted by it. Notifications from this store's own connection are not.
StoreResult<std::int64_t> PostgresStore::change_mark() {
  auto& listener = impl_->listener;
  listener.forget_error();
  const auto failed = [&](const boost::system::error_code& code) -> StoreResult<std::int64_t> {
    Error error{code, listener.take_error()};
    listener.drop();  // a broken socket must not keep waking the loop
    return error;
  };
  if (auto connected = listener.ensure(); !connected) return failed(connected.error());
  // Whatever the old connection would have received meanwhile is lost: count it as a change.
  if (listener.take_reconnected()) ++impl_->mark;
  if (auto done = listener.simple(""); !done) return failed(done.error());
  const int own_pid = impl_->db.backend_pid();
  while (PGnotify* notice = PQnotifies(listener.get())) {
    if (notice->be_pid != own_pid) ++impl_->mark;
    PQfreemem(notice);
  }
  return impl_->mark;
}

StoreResult<bool> PostgresStore::commit_in_flight_elsewhere() {
  // Notifications are sent after the commit: nothing is ever half-visible to report.
  return false;
}

void PostgresStore::set_write_hooks(WriteHooks hooks) { impl_->hooks = std::move(hooks); }

int PostgresStore::notification_descriptor() {
  return impl_->listener.connected() ? PQsocket(impl_->listener.get()) : -1;
}

#undef DEVIN_ORCH_JOB_COLUMNS
#undef DEVIN_ORCH_PRUNABLE

// ---- the notification outbox ------------------------------------------------------------
// The event rows are written by the transitions above, in their own transactions; here the
// queue's owner routes them and records its attempts (fenced), and the operator lists and
// retries dead letters. The same semantics as the SQLite store's outbox_queries.cpp.

StoreResult<std::vector<OutboxEvent>> PostgresStore::unrouted_events(std::size_t limit) {
  return answer(*impl_, [&]() -> result<std::vector<OutboxEvent>> {
    auto rows = impl_->db.exec("SELECT " DEVIN_ORCH_OUTBOX_EVENT_COLUMNS
                               " FROM notify_events WHERE routed_at IS NULL ORDER BY seq "
                               "LIMIT $1::bigint",
                               Params{}.add(static_cast<std::int64_t>(limit)));
    if (!rows) return rows.error();
    std::vector<OutboxEvent> events;
    events.reserve(static_cast<std::size_t>(rows->size()));
    for (int i = 0; i < rows->size(); ++i) events.push_back(read_outbox_event((*rows)[i]));
    return events;
  });
}

StoreResult<void> PostgresStore::route_event(std::int64_t seq,
                                             std::span<const DeliveryRoute> routes,
                                             core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    auto& db = impl_->db;
    const std::int64_t at = core::to_epoch_ms(now);
    // Recoverable: an event's routing lost to a server crash is routed again, a delivery
    // recorded and lost is delivered again, which at-least-once allows.
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto marked = db.exec(
          "UPDATE notify_events SET routed_at = $2::bigint "
          "WHERE seq = $1::bigint AND routed_at IS NULL",
          Params{}.add(seq).add(at));
      if (!marked) return marked.error();
      if (marked->affected() == 0) return {};  // routed already (or gone)
      for (const auto& route : routes) {
        auto inserted = db.exec(
            "INSERT INTO notify_deliveries (seq, sink, target, next_attempt_at, age_from, "
            "updated_at) SELECT $1::bigint, $2, $3, $4::bigint, created_at, $4::bigint "
            "FROM notify_events WHERE seq = $1::bigint ON CONFLICT (seq, sink) DO NOTHING",
            Params{}.add(seq).add(route.sink).add(encode_target(route.target)).add(at));
        if (!inserted) return inserted.error();
      }
      return {};
    }, Durability::recoverable, Fencing::fenced);
  });
}

namespace {

result<std::vector<Delivery>> select_deliveries(pg::Connection& db, std::string_view sql,
                                                const Params& params) {
  auto rows = db.exec(sql, params);
  if (!rows) return rows.error();
  std::vector<Delivery> deliveries;
  deliveries.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) deliveries.push_back(read_delivery((*rows)[i]));
  return deliveries;
}

}  // namespace

StoreResult<std::vector<Delivery>> PostgresStore::pending_deliveries(std::size_t per_sink_limit) {
  return answer(*impl_, [&]() -> result<std::vector<Delivery>> {
    // The window numbers each sink's pending deliveries in seq order (the partial index serves
    // it), so a receiver with a long backlog yields only its first ones. Sinks compare as bytes,
    // as in SQLite.
    return select_deliveries(
        impl_->db,
        "SELECT " DEVIN_ORCH_DELIVERY_COLUMNS " FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY sink ORDER BY seq) AS place "
        "  FROM notify_deliveries WHERE state = 'pending') AS d "
        "JOIN notify_events AS e ON e.seq = d.seq WHERE d.place <= $1::bigint "
        "ORDER BY d.seq, d.sink COLLATE \"C\"",
        Params{}.add(static_cast<std::int64_t>(per_sink_limit)));
  });
}

StoreResult<void> PostgresStore::record_attempt(const DeliveryAttempt& attempt,
                                                core::TimePoint now) {
  return answer(*impl_, [&]() -> result<void> {
    return in_write_transaction(*impl_, [&]() -> result<void> {
      auto updated = impl_->db.exec(
          "UPDATE notify_deliveries SET state = $3, attempts = $4::bigint, "
          "next_attempt_at = $5::bigint, last_error = $6, "
          "delivered_at = CASE WHEN $3 = 'delivered' THEN $7::bigint END, "
          "updated_at = $7::bigint WHERE seq = $1::bigint AND sink = $2 AND state = 'pending'",
          Params{}
              .add(attempt.seq)
              .add(attempt.sink)
              .add(to_string(attempt.state))
              .add(attempt.attempts)
              .add(attempt.next_attempt_at_ms)
              .add(attempt.error)
              .add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      return {};
    }, Durability::recoverable, Fencing::fenced);
  });
}

StoreResult<OutboxCounts> PostgresStore::outbox_counts() {
  return answer(*impl_, [&]() -> result<OutboxCounts> {
    auto& db = impl_->db;
    OutboxCounts counts;
    auto unrouted = db.exec("SELECT count(*) FROM notify_events WHERE routed_at IS NULL");
    if (!unrouted) return unrouted.error();
    counts.unrouted = (*unrouted)[0].int64_at(0);
    auto states = db.exec("SELECT state, count(*) FROM notify_deliveries GROUP BY state");
    if (!states) return states.error();
    for (int i = 0; i < states->size(); ++i) {
      const Row row = (*states)[i];
      const auto state = parse_delivery_state(row.text_at(0));
      const std::int64_t n = row.int64_at(1);
      if (state == DeliveryState::pending) counts.pending = n;
      if (state == DeliveryState::delivered) counts.delivered = n;
      if (state == DeliveryState::dead) counts.dead = n;
    }
    return counts;
  });
}

StoreResult<std::vector<Delivery>> PostgresStore::list_deliveries(const DeliveryFilter& filter) {
  return answer(*impl_, [&]() -> result<std::vector<Delivery>> {
    std::optional<std::string> states;
    if (!filter.states.empty()) {
      std::vector<std::string> names;
      for (const auto state : filter.states) names.emplace_back(to_string(state));
      states = array_literal(names);
    }
    return select_deliveries(
        impl_->db,
        "SELECT " DEVIN_ORCH_DELIVERY_COLUMNS
        " FROM notify_deliveries AS d JOIN notify_events AS e ON e.seq = d.seq "
        "WHERE ($1::text[] IS NULL OR d.state = ANY($1::text[])) "
        "AND ($2::text IS NULL OR e.id = $2::text) AND ($3::text IS NULL OR e.job_key = $3::text) "
        "ORDER BY d.seq, d.sink COLLATE \"C\" LIMIT $4::bigint",
        Params{}
            .add(states)
            .add(filter.event_id)
            .add(filter.job_key)
            .add(filter.limit ? std::optional<std::int64_t>{static_cast<std::int64_t>(*filter.limit)}
                              : std::nullopt));
  });
}

StoreResult<std::int64_t> PostgresStore::retry_deliveries(std::optional<std::string> event_id,
                                                          core::TimePoint now) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      auto updated = impl_->db.exec(
          "UPDATE notify_deliveries SET state = 'pending', next_attempt_at = $2::bigint, "
          "age_from = $2::bigint, updated_at = $2::bigint WHERE state = 'dead' AND "
          "($1::text IS NULL OR seq = (SELECT seq FROM notify_events WHERE id = $1::text))",
          Params{}.add(event_id).add(core::to_epoch_ms(now)));
      if (!updated) return updated.error();
      return updated->affected();
    }, Durability::recoverable, Fencing::unfenced);
  });
}

StoreResult<std::int64_t> PostgresStore::prune_events(core::TimePoint cutoff) {
  return answer(*impl_, [&]() -> result<std::int64_t> {
    return in_write_transaction(*impl_, [&]() -> result<std::int64_t> {
      auto deleted = impl_->db.exec(
          "DELETE FROM notify_events WHERE created_at < $1::bigint AND routed_at IS NOT NULL "
          "AND NOT EXISTS (SELECT 1 FROM notify_deliveries AS d "
          "WHERE d.seq = notify_events.seq AND d.state = 'pending')",
          Params{}.add(core::to_epoch_ms(cutoff)));
      if (!deleted) return deleted.error();
      return deleted->affected();
    }, Durability::recoverable, Fencing::unfenced);
  });
}

}  // namespace devin_orch::store
