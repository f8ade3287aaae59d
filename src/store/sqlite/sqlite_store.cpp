// SqliteStore: opening (file modes, PRAGMAs, migrations), the statement cache and transactions,
// and every query and transition on jobs and job_events.
#include "devin_orch/store/sqlite/sqlite_store.hpp"

#include "epoch_locks.hpp"
#include "../fence_terms.hpp"
#include "../job_row.hpp"
#include "../outbox_rows.hpp"
#include "../spending_row.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/core/notify_event.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/store/notify_codec.hpp"
#include "devin_orch/store/sqlite/schema.hpp"
#include "devin_orch/store/mend.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "devin_orch/store/sqlite/statement.hpp"

#include <boost/json.hpp>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <thread>
#include <algorithm>
#include <array>
#include <utility>

namespace devin_orch::store {
namespace json = boost::json;
namespace {

// A job still in progress, and one that has ended (every other state the jobs CHECK allows).
// Not `state IN (...)`: SQLite 3.40 builds a temporary b-tree for an IN list of more than two
// values on every run of a statement, often more work than the rest of the statement (schema v4).
#define DEVIN_ORCH_IN_PROGRESS "(state = 'queued' OR state = 'creating' OR state = 'running')"
#define DEVIN_ORCH_ENDED "NOT " DEVIN_ORCH_IN_PROGRESS
// A session's status is the job's only while the job runs on that session: never onto a row
// whose session commit was lost or that follows another session since.
#define DEVIN_ORCH_HOLDS_SESSION(param) "state = 'running' AND session_id = " #param

// The stored key must satisfy the table's CHECK, which counts characters as core's rule does.
result<void> validate_key(std::string_view key) {
  if (core::validate_key(key)) return errc::invalid_argument;
  return {};
}

// Owns the connection and its cached statements; records SQLite's message for every failure.
class Connection {
 public:
  explicit Connection(sqlite3* db) noexcept : db_{db} {}
  ~Connection() {
    // Statements first: sqlite3_close refuses a connection with live statements.
    cache_.clear();
    sqlite3_close(db_);
    // Only now: closing any descriptor of the -shm file drops every POSIX lock this process
    // holds on it, SQLite's included.
    if (shm_probe >= 0) ::close(shm_probe);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const noexcept { return db_; }
  // SQLite's message for the last failure, handed to that failure's Error (and so taken).
  std::string take_error() noexcept { return std::exchange(last_error_, {}); }
  void forget_error() noexcept { last_error_.clear(); }

  // Statements are prepared once and kept: every SQL text here is a constant (or one of the
  // few variants of the claim query).
  result<Statement*> prepared(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      auto statement = Statement::prepare(db_, sql);
      if (!statement) {
        record(sql);
        return statement.error();
      }
      it = cache_.emplace(std::string(sql), std::move(*statement)).first;
    }
    return &it->second;
  }

  result<bool> step(Statement& statement) {
    auto row = statement.step();
    if (!row) record(sqlite3_sql(statement.get()));
    return row;
  }

  result<void> run(Statement& statement) {
    auto done = statement.run();
    if (!done) record(sqlite3_sql(statement.get()));
    return done;
  }

  // Runs `sql` with parameters bound by `bind`, ignoring any rows.
  template <class Bind>
  result<void> execute(std::string_view sql, Bind&& bind) {
    auto statement = prepared(sql);
    if (!statement) return statement.error();
    StatementUse use{**statement};
    bind(*use);
    return run(*use);
  }

  std::int64_t changes() const noexcept { return sqlite3_changes64(db_); }

  errc fail(std::string message) {
    last_error_ = std::move(message);
    return errc::database_error;
  }

 private:
  void record(std::string_view sql) {
    last_error_ = sqlite3_errmsg(db_);
    if (!sql.empty()) {
      constexpr std::size_t kShown = 60;
      last_error_ += " (in: ";
      last_error_ += sql.substr(0, kShown);
      if (sql.size() > kShown) last_error_ += "...";
      last_error_ += ")";
    }
  }

  sqlite3* db_;
  std::map<std::string, Statement, std::less<>> cache_;
  std::string last_error_;

 public:
  WriteHooks hooks;
  std::optional<Fence> fence;  // checked by every fenced write transaction
  QueueStore::FenceRefused fence_refused;
  const FenceScope* fence_scope = nullptr;  // what the write about to begin touches
  std::unique_ptr<EpochLocks> epoch_locks;  // beside the database file; see acquire_lease
  int shm_probe = -1;  // read-only descriptor of the -shm file, for commit_in_flight_elsewhere()
  // Event ids (core::new_event_id): seeded from the kernel, so two processes never share ids.
  core::Random random{(std::uint64_t{std::random_device{}()} << 32U) ^ std::random_device{}()};
};

// Runs the write hooks around one write transaction: constructed before it begins, destroyed
// after it has committed or rolled back.
class WriteHooksScope {
 public:
  explicit WriteHooksScope(Connection& connection) : connection_{connection} {
    if (connection_.hooks.before) connection_.hooks.before();
  }
  ~WriteHooksScope() {
    if (connection_.hooks.after) connection_.hooks.after();
  }
  WriteHooksScope(const WriteHooksScope&) = delete;
  WriteHooksScope& operator=(const WriteHooksScope&) = delete;

 private:
  Connection& connection_;
};

// BEGIN IMMEDIATE takes the write lock up front, so busy_timeout applies to it; a deferred
// transaction upgrading to a write would fail with SQLITE_BUSY at once. Rolls back unless
// committed.
class Transaction {
 public:
  explicit Transaction(Connection& connection) noexcept : connection_{connection} {}
  ~Transaction() {
    if (!open_) return;
    // Some errors (SQLITE_FULL, IOERR, ...) have already rolled the transaction back.
    if (sqlite3_get_autocommit(connection_.db()) != 0) return;
    if (auto rollback = connection_.prepared("ROLLBACK")) {
      StatementUse use{**rollback};
      (void)use->run();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  result<void> begin() {
    auto done = connection_.execute("BEGIN IMMEDIATE", [](Statement&) {});
    open_ = done.has_value();
    return done;
  }

  result<void> commit() {
    auto done = connection_.execute("COMMIT", [](Statement&) {});
    if (done) open_ = false;
    return done;
  }

 private:
  Connection& connection_;
  bool open_ = false;
};

result<void> insert_event(Connection& connection, std::int64_t job_id, core::TimePoint at,
                          std::string_view event, std::optional<std::string> state,
                          std::optional<std::string> status,
                          std::optional<std::string> status_detail,
                          std::optional<std::string> message) {
  return connection.execute(
      "INSERT INTO job_events (job_id, at, event, state, status, status_detail, message) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
      [&](Statement& s) {
        s.bind(1, job_id);
        s.bind(2, core::to_epoch_ms(at));
        s.bind(3, event);
        s.bind(4, state);
        s.bind(5, status);
        s.bind(6, status_detail);
        s.bind(7, message);
      });
}

// Inserts an outbox row, in the caller's transaction.
result<void> insert_notification(Connection& db, const EventRow& row) {
  return db.execute(
      "INSERT INTO notify_events (id, type, job_id, job_key, org_id, tags, targets, body, "
      "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
      [&](Statement& s) {
        s.bind(1, row.id);
        s.bind(2, row.type);
        s.bind(3, row.job_id);
        s.bind(4, row.job_key);
        s.bind(5, row.org_id);
        s.bind(6, row.tags);
        s.bind(7, row.targets);
        s.bind(8, row.body);
        s.bind(9, row.created_at_ms);
      });
}

// The outbox row of a job event, in the caller's transaction (the one that makes the change
// the event announces), built from the job's row as that transaction left it.
result<void> append_job_notification(Connection& db, std::int64_t job_id, core::EventType type,
                                     core::TimePoint now, const JobEventNote& note = {}) {
  std::optional<JobFacts> facts;
  {
    auto statement =
        db.prepared("SELECT " DEVIN_ORCH_JOB_EVENT_COLUMNS " FROM jobs WHERE id = ?1");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    use->bind(1, job_id);
    auto row = db.step(*use);
    if (!row) return row.error();
    if (!*row) return {};
    facts = read_job_facts(*use);
  }
  return insert_notification(db, job_event_row(db.random, type, now, *facts, note));
}

result<void> append_org_notification(Connection& db, std::string_view org_id, core::EventType type,
                                     core::TimePoint now, std::optional<std::string_view> reason,
                                     std::optional<std::string_view> source) {
  return insert_notification(db, org_event_row(db.random, type, now, org_id, reason, source));
}

std::optional<std::string> state_name(core::JobState state) {
  return std::string(core::to_string(state));
}

// Why a guarded UPDATE touched no row: the job is missing, or in a state that forbids it.
result<void> transition_refused(Connection& connection, std::int64_t job_id) {
  auto statement = connection.prepared("SELECT 1 FROM jobs WHERE id = ?1");
  if (!statement) return statement.error();
  StatementUse use{**statement};
  use->bind(1, job_id);
  auto row = connection.step(*use);
  if (!row) return row.error();
  return *row ? errc::conflict : errc::not_found;
}

// Whether the claim's concurrency group already has its limit of jobs creating or running. It
// counts inside the claim's write transaction, so it sees the batch's earlier claims and no other
// writer can interleave: SQLite's one writer needs no lock of its own.
result<bool> group_full(Connection& db, const IntentWrite& intent) {
  auto counted = db.prepared(
      "SELECT count(*) FROM jobs WHERE state IN ('creating', 'running') AND "
      "CASE WHEN json_valid(spec) THEN json_extract(spec, '$.concurrency_key') END = ?1");
  if (!counted) return result<bool>{boost::system::in_place_error, counted.error()};
  StatementUse count{**counted};
  count->bind(1, intent.group->key);
  auto row = db.step(*count);
  if (!row) return result<bool>{boost::system::in_place_error, row.error()};
  return *row && count->int64_at(0) >= intent.group->max_active;
}

// A claim its full group refuses: group_full while the job is still queued with the attempts the
// claim expects (it may start later), otherwise why it could not be claimed anyway.
result<void> claim_refused_for_group(Connection& db, const IntentWrite& intent) {
  auto statement = db.prepared(
      "SELECT 1 FROM jobs WHERE id = ?1 AND state = 'queued' AND attempts + sends = ?2 + ?3 - 1");
  if (!statement) return statement.error();
  StatementUse use{**statement};
  use->bind(1, intent.job_id);
  use->bind(2, intent.attempt);
  use->bind(3, intent.cut_short);
  auto row = db.step(*use);
  if (!row) return row.error();
  if (*row) return errc::group_full;
  return transition_refused(db, intent.job_id);
}

// A session commit tried again after a failure whose commit went through after all (the
// answer was lost) finds the job running on that very session: done, not a conflict.
result<void> session_held_or_refused(Connection& connection, std::int64_t job_id,
                                     const std::string& session_id) {
  auto statement = connection.prepared(
      "SELECT 1 FROM jobs WHERE id = ?1 AND state = 'running' AND session_id = ?2");
  if (!statement) return statement.error();
  StatementUse use{**statement};
  use->bind(1, job_id);
  use->bind(2, session_id);
  auto row = connection.step(*use);
  if (!row) return row.error();
  if (*row) return {};
  return transition_refused(connection, job_id);
}

// How a write must survive power loss (a process crash never loses a commit in WAL mode).
enum class Durability {
  // fsynced before the call returns: a create intent, a follow-up message, anything that must
  // be on disk before the side effect it permits.
  synced,
  // Written to the WAL without an fsync. A power loss can drop it, but only together with
  // every later commit (WAL recovery keeps a prefix) and never past the next synced commit,
  // whose fsync covers the whole WAL. Only for writes whose loss a restart repairs: a lost
  // session id is found again by the tag lookup, a lost status by the next poll.
  recoverable,
};

// Makes the commit just written durable, as synchronous=FULL would have at COMMIT: fsyncs the
// WAL, which holds that commit and every earlier one. The connection runs with
// synchronous=NORMAL so that only the commits that need an fsync pay for it (switching the
// pragma around each commit cost two statement re-preparations per write).
result<void> sync_wal(Connection& connection) {
  sqlite3_file* wal = nullptr;
  if (sqlite3_file_control(connection.db(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) !=
          SQLITE_OK ||
      wal == nullptr || wal->pMethods == nullptr) {
    return connection.fail("cannot reach the WAL file to fsync a commit");
  }
  if (const int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
    (void)connection.fail(std::string("fsync of the WAL failed: ") + sqlite3_errstr(rc));
    return errc::sync_failed;
  }
  return {};
}

// Whether a write transaction acts on the queue's behalf (and so needs the lease) or is a
// producer's or the lease's own.
enum class Fencing { fenced, unfenced };

// What the next write transaction of a call touches, for a fence by organisation: set for the
// call's duration.
class FenceScopeGuard {
 public:
  FenceScopeGuard(Connection& connection, FenceScope scope)
      : connection_{connection}, scope_{std::move(scope)} {
    connection_.fence_scope = &scope_;
  }
  ~FenceScopeGuard() { connection_.fence_scope = nullptr; }
  FenceScopeGuard(const FenceScopeGuard&) = delete;
  FenceScopeGuard& operator=(const FenceScopeGuard&) = delete;

 private:
  Connection& connection_;
  FenceScope scope_;
};

// The organisations a fenced write touches: its own, and those of its jobs (read inside the
// transaction, so a job's org cannot change between this read and the write).
result<std::set<std::string>> scope_orgs(Connection& connection, const FenceScope& scope,
                                         const std::string& default_org) {
  std::set<std::string> orgs{scope.orgs.begin(), scope.orgs.end()};
  if (scope.job_ids.empty()) return orgs;
  auto statement = connection.prepared("SELECT coalesce(org_id, ?2) FROM jobs WHERE id = ?1");
  if (!statement) return statement.error();
  for (const std::int64_t id : scope.job_ids) {
    StatementUse use{**statement};
    use->bind(1, id);
    use->bind(2, default_org);
    auto row = connection.step(*use);
    if (!row) return row.error();
    if (*row) orgs.insert(use->text_at(0));
  }
  return orgs;
}

// Inside a write transaction: the connection's fence still matches the lease rows the write
// needs. The write lock is held, so no other process can take a lease between this check and
// the commit.
result<void> check_fence(Connection& connection) {
  if (!connection.fence) return {};
  const Fence& fence = *connection.fence;
  std::set<std::string> orgs;
  if (fence.orgs && connection.fence_scope != nullptr) {
    auto touched = scope_orgs(connection, *connection.fence_scope, fence.orgs->default_org);
    if (!touched) return touched.error();
    // Every job it names is gone: the write changes nothing, whoever holds what.
    if (touched->empty() && !connection.fence_scope->job_ids.empty()) return {};
    orgs = std::move(*touched);
  }
  const auto refuse = [&connection](const std::string& lease) -> result<void> {
    if (connection.fence_refused) connection.fence_refused(lease);
    return errc::lease_lost;
  };
  const FenceCheck check = fence_terms(fence, orgs);
  if (check.refused) return refuse(*check.refused);
  auto statement = connection.prepared("SELECT owner, epoch FROM leases WHERE name = ?1");
  if (!statement) return statement.error();
  for (const FenceTerm& term : check.terms) {
    StatementUse use{**statement};
    use->bind(1, term.lease);
    auto row = connection.step(*use);
    if (!row) return row.error();
    if (!*row || use->text_at(0) != fence.owner || use->int64_at(1) != term.epoch) {
      return refuse(term.lease);
    }
  }
  return {};
}

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT; any error rolls everything back.
template <class Body>
auto in_write_transaction(Connection& connection, Body&& body,
                          Durability durability = Durability::synced,
                          Fencing fencing = Fencing::fenced) -> decltype(body()) {
  const WriteHooksScope hooks{connection};  // declared first: `after` runs once all is over
  Transaction transaction{connection};
  if (auto begun = transaction.begin(); !begun) return begun.error();
  if (fencing == Fencing::fenced) {
    if (auto current = check_fence(connection); !current) return current.error();
  }
  auto outcome = body();
  if (!outcome) return outcome;
  if (auto committed = transaction.commit(); !committed) return committed.error();
  if (durability == Durability::synced) {
    // Committed but maybe never on disk: the caller must not act on it (send a create, say),
    // nor trust a later fsync (after a failed one Linux may drop the dirty pages and report
    // success next time): errc::sync_failed.
    if (auto synced = sync_wal(connection); !synced) return synced.error();
  }
  return outcome;
}

result<std::vector<core::JobRecord>> select_jobs(
    Connection& connection, std::string_view sql,
    const std::function<void(Statement&)>& bind = [](Statement&) {}) {
  auto statement = connection.prepared(sql);
  if (!statement) return statement.error();
  StatementUse use{**statement};
  bind(*use);
  std::vector<core::JobRecord> jobs;
  for (;;) {
    auto row = connection.step(*use);
    if (!row) return row.error();
    if (!*row) break;
    jobs.push_back(read_job(*use).record);
  }
  return jobs;
}

// Creates every missing directory of `dir` with mode 0700: the database holds prompts and
// session links that other local users have no business reading.
bool make_private_directories(const std::filesystem::path& dir, std::string& error) {
  if (dir.empty()) return true;
  struct stat info {};
  if (::stat(dir.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) return true;
    error = "'" + dir.string() + "' exists and is not a directory";
    return false;
  }
  if (errno != ENOENT) {
    error = "cannot inspect '" + dir.string() + "': " + std::strerror(errno);
    return false;
  }
  if (!make_private_directories(dir.parent_path(), error)) return false;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return true;  // another process won the race
    error = "cannot create directory '" + dir.string() + "': " + std::strerror(errno);
    return false;
  }
  // The umask may have taken owner bits away; it can never have added any.
  ::chmod(dir.c_str(), 0700);
  return true;
}

// A new database file is created here with mode 0600 rather than by SQLite with the umask's
// choice; SQLite gives the -wal and -shm files the database file's mode. Existing files are
// left as they are.
bool create_private_file(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return true;
    error = "cannot create database file '" + path + "': " + std::strerror(errno);
    return false;
  }
  ::fchmod(fd, 0600);
  ::close(fd);
  return true;
}

bool exec(sqlite3* db, const char* sql, std::string& error) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return true;
  error = std::string(sql) + ": " + (message != nullptr ? message : sqlite3_errmsg(db));
  sqlite3_free(message);
  return false;
}

// Switching a new database to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY
// at once instead of calling the busy handler when another connection (the daemon and a CLI
// command starting together) holds a lock: retry for as long as busy_timeout allows.
bool enable_wal(sqlite3* db, core::Duration busy_timeout, std::string& error) {
  const auto give_up = std::chrono::steady_clock::now() + busy_timeout;
  for (;;) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      const std::string mode = text != nullptr ? text : "";
      sqlite3_finalize(stmt);
      if (mode == "wal") return true;
      error = "the database cannot use WAL journal mode (got '" + mode + "')";
      return false;
    }
    sqlite3_finalize(stmt);
    const int primary = rc & 0xff;
    if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) &&
        std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
      continue;
    }
    error = std::string("PRAGMA journal_mode = WAL: ") + sqlite3_errmsg(db);
    return false;
  }
}

}  // namespace

struct SqliteStore::Impl : Connection {
  using Connection::Connection;
};

SqliteStore::SqliteStore(sqlite3* db, std::unique_ptr<Impl> impl) noexcept
    : db_{db}, impl_{std::move(impl)} {}

SqliteStore::~SqliteStore() = default;

void SqliteStore::forget_message() noexcept { impl_->forget_error(); }

Error SqliteStore::describe(const boost::system::error_code& code) {
  return Error{code, impl_->take_error()};
}

result<void> SqliteStore::read_rows(std::string_view sql, const std::function<void(Statement&)>& bind,
                                 const std::function<bool(const Statement&)>& row) {
  Connection& db = *impl_;
  auto statement = db.prepared(sql);
  if (!statement) return statement.error();
  StatementUse use{**statement};
  bind(*use);
  for (;;) {
    auto stepped = db.step(*use);
    if (!stepped) return stepped.error();
    if (!*stepped || !row(*use)) return {};
  }
}

StoreResult<std::unique_ptr<SqliteStore>> SqliteStore::open(const StoreOptions& options) {
  std::string message;
  auto fail = [&](errc code) -> StoreResult<std::unique_ptr<SqliteStore>> {
    return Error{code, std::move(message)};
  };
  if (options.path.empty()) {
    message = "the database path is empty";
    return fail(errc::invalid_argument);
  }
  if (!make_private_directories(std::filesystem::path(options.path).parent_path(), message) ||
      !create_private_file(options.path, message)) {
    return fail(errc::database_error);
  }

  // SQLite's memory statistics take a process-wide mutex around every allocation; nothing
  // here reads them. Only possible before SQLite initialises, so once, before the first open
  // (a later call is refused harmlessly).
  static const bool statistics_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)statistics_off;
  sqlite3* raw = nullptr;
  // NOMUTEX: a SqliteStore, like the daemon's loop, is used by one thread at a time, so the
  // connection's own mutex around every call would be pure cost (other connections and
  // processes are still coordinated by SQLite's file locks).
  const int rc = sqlite3_open_v2(options.path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  // From here the Impl owns the handle, so every early return closes it.
  auto impl = std::make_unique<Impl>(raw);
  impl->epoch_locks = std::make_unique<EpochLocks>(options.path + "-lease");
  if (rc != SQLITE_OK) {
    message = "cannot open database '" + options.path +
              "': " + (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    return fail(errc::database_error);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));

  if (!enable_wal(raw, options.busy_timeout, message) ||
      // NORMAL: commits are not fsynced unless they must be (sync_wal after a synced write;
      // a create intent must survive power loss, or a restart could send a second create).
      !exec(raw, "PRAGMA synchronous = NORMAL", message) ||
      !exec(raw, "PRAGMA foreign_keys = ON", message) ||
      // Negative: a size in KiB rather than in pages. PRAGMA takes no bound parameters; the
      // value is an integer from StoreOptions.
      !exec(raw, ("PRAGMA cache_size = -" + std::to_string(options.cache_kib)).c_str(), message)) {
    return fail(errc::database_error);
  }
  if (!migrate(raw, message)) return fail(errc::database_error);
  return std::unique_ptr<SqliteStore>(new SqliteStore(raw, std::move(impl)));
}

namespace {

// A corrected definition replaces the one of an `invalid` job, which is queued again, and its
// history says what changed. Nothing of a run is on the row to clear: a job becomes invalid
// before it ever reaches `creating`.
result<void> mend_invalid_job(Connection& db, std::int64_t id, const core::JobDefinition& definition,
                              const std::string& spec, std::string_view source,
                              core::TimePoint now, const std::string& message) {
  const auto& controls = definition.controls;
  const std::string encoded_controls = encode_controls(controls);
  auto updated = db.execute(
      "UPDATE jobs SET org_id = ?2, priority = ?3, spec = ?4, source = ?5, not_before = ?6, "
      "deadline = ?7, max_attempts = ?8, controls = ?9, state = 'queued', last_error = NULL, "
      "finished_at = NULL, updated_at = ?10 WHERE id = ?1",
      [&](Statement& s) {
        s.bind(1, id);
        s.bind(2, definition.org_id);
        s.bind(3, definition.priority);
        s.bind(4, spec);
        s.bind(5, source);
        s.bind(6, controls.not_before_ms);
        s.bind(7, controls.deadline_ms);
        s.bind(8, controls.max_attempts);
        s.bind(9, text_or_null(encoded_controls));
        s.bind(10, core::to_epoch_ms(now));
      });
  if (!updated) return updated.error();
  return insert_event(db, id, now, "mended", state_name(core::JobState::queued), std::nullopt,
                      std::nullopt, message);
}

// add_job's work inside a write transaction the caller holds.
result<AddResult> add_job_in_transaction(Connection& db, const core::JobDefinition& definition,
                                         std::string_view source, core::TimePoint now,
                                         const std::optional<std::string>& parent_key) {
  if (auto valid = validate_key(definition.key); !valid) return valid.error();
  const std::string spec = encode_spec(definition.spec);
  {
    auto existing = db.prepared(
        "SELECT org_id, priority, spec, not_before, deadline, max_attempts, "
        "coalesce(controls, ''), id, state FROM jobs WHERE key = ?1");
    if (!existing) return existing.error();
    StatementUse use{**existing};
    use->bind(1, definition.key);
    auto row = db.step(*use);
    if (!row) return row.error();
    if (*row) {
      const StoredDefinition stored{.org_id = use->optional_text_at(0),
                                    .priority = use->int64_at(1),
                                    .spec = use->text_at(2),
                                    .not_before_ms = use->optional_int64_at(3),
                                    .deadline_ms = use->optional_int64_at(4),
                                    .max_attempts = use->optional_int64_at(5),
                                    .controls = use->text_at(6)};
      const auto& controls = definition.controls;
      const bool same = stored.org_id == definition.org_id &&
                        stored.priority == definition.priority &&
                        canonical_spec(stored.spec) == spec &&
                        stored.not_before_ms == controls.not_before_ms &&
                        stored.deadline_ms == controls.deadline_ms &&
                        stored.max_attempts == controls.max_attempts &&
                        stored.controls == encode_controls(controls);
      if (same) return AddResult::unchanged;
      if (use->text_at(8) != "invalid") return AddResult::changed;
      const std::int64_t id = use->int64_at(7);
      use->reset();  // done with the row before writing to its table
      if (auto mended = mend_invalid_job(db, id, definition, spec, source, now,
                                         mend_message(source, stored, definition));
          !mended) {
        return mended.error();
      }
      return AddResult::mended;
    }
  }
  std::int64_t id = 0;
  {
    auto insert = db.prepared(
        "INSERT INTO jobs (key, org_id, priority, spec, source, created_at, updated_at, "
        "not_before, deadline, max_attempts, controls, parent_key) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id");
    if (!insert) return insert.error();
    StatementUse use{**insert};
    const auto& controls = definition.controls;
    const std::string encoded_controls = encode_controls(controls);
    use->bind(1, definition.key);
    use->bind(2, definition.org_id);
    use->bind(3, definition.priority);
    use->bind(4, spec);
    use->bind(5, source);
    use->bind(6, core::to_epoch_ms(now));
    use->bind(7, controls.not_before_ms);
    use->bind(8, controls.deadline_ms);
    use->bind(9, controls.max_attempts);
    use->bind(10, text_or_null(encoded_controls));
    use->bind(11, parent_key);
    auto row = db.step(*use);
    if (!row) return row.error();
    id = use->int64_at(0);
    if (auto rest = db.run(*use); !rest) return rest.error();
  }
  if (auto logged = insert_event(db, id, now, "queued", state_name(core::JobState::queued),
                                 std::nullopt, std::nullopt, std::string(source));
      !logged) {
    return logged.error();
  }
  return AddResult::inserted;
}

}  // namespace

StoreResult<AddResult> SqliteStore::add_job(const core::JobDefinition& definition, std::string_view source,
                                    core::TimePoint now,
                                    const std::optional<std::string>& parent_key) {
  return answer([&]() -> result<AddResult> {
    Connection& db = *impl_;
    return in_write_transaction(
        db, [&]() { return add_job_in_transaction(db, definition, source, now, parent_key); },
        Durability::synced, Fencing::unfenced);
  });
}

StoreResult<std::vector<AddResult>> SqliteStore::add_jobs(std::span<const core::JobDefinition> definitions,
                                                  std::string_view source, core::TimePoint now) {
  return answer([&]() -> result<std::vector<AddResult>> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<std::vector<AddResult>> {
      std::vector<AddResult> results;
      results.reserve(definitions.size());
      for (const auto& definition : definitions) {
        auto added = add_job_in_transaction(db, definition, source, now, std::nullopt);
        if (!added) return added.error();
        results.push_back(*added);
      }
      return results;
    }, Durability::synced, Fencing::unfenced);
  });
}

StoreResult<AddResult> SqliteStore::add_invalid(std::string_view key, std::string_view source,
                                        std::string_view reason, core::TimePoint now) {
  return answer([&]() -> result<AddResult> {
    if (auto valid = validate_key(key); !valid) return valid.error();
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<AddResult> {
      {
        auto existing = db.prepared("SELECT 1 FROM jobs WHERE key = ?1");
        if (!existing) return existing.error();
        StatementUse use{**existing};
        use->bind(1, key);
        auto row = db.step(*use);
        if (!row) return row.error();
        if (*row) return AddResult::unchanged;
      }
      std::int64_t id = 0;
      {
        auto insert = db.prepared(
            "INSERT INTO jobs (key, spec, source, state, last_error, created_at, updated_at, "
            "finished_at) VALUES (?1, '{}', ?2, 'invalid', ?3, ?4, ?4, ?4) RETURNING id");
        if (!insert) return insert.error();
        StatementUse use{**insert};
        use->bind(1, key);
        use->bind(2, source);
        use->bind(3, reason);
        use->bind(4, core::to_epoch_ms(now));
        auto row = db.step(*use);
        if (!row) return row.error();
        id = use->int64_at(0);
        if (auto rest = db.run(*use); !rest) return rest.error();
      }
      if (auto logged = insert_event(db, id, now, "invalid", state_name(core::JobState::invalid),
                                     std::nullopt, std::nullopt, std::string(reason));
          !logged) {
        return logged.error();
      }
      return AddResult::inserted;
    }, Durability::synced, Fencing::unfenced);
  });
}

namespace {

// What keeps a queued job from starting now, as one WHERE clause shared by the claim and the
// queue's age: a not_before still ahead, an operator's cancel, a paused organisation or user.
// ?1 is now; bind_startable binds the rest.
// Without paused organisations (the usual case) the clause has no subquery: its list would be
// built in a temporary table on every run, once a second and per freed slot. A paused user's
// jobs are skipped likewise, only while some user is paused; json_extract on the spec runs only
// for the rows the index already yields in claim order.
std::string startable_conditions(const ClaimFilter& filter) {
  std::string sql =
      "state = 'queued' AND cancel_requested = 0 AND (not_before IS NULL OR not_before <= ?1)";
  if (!filter.paused_orgs.empty()) {
    sql += " AND coalesce(org_id, ?2) NOT IN (SELECT value FROM json_each(?3))";
  }
  if (!filter.paused_users.empty()) {
    sql += " AND NOT EXISTS (SELECT 1 FROM json_each(?4) AS p "
           "WHERE json_extract(p.value, '$[0]') = coalesce(jobs.org_id, ?2) "
           "AND json_extract(p.value, '$[1]') = json_extract(jobs.spec, '$.create_as_user_id'))";
  }
  // Only the organisations whose leases this daemon holds.
  if (filter.only_orgs) sql += " AND coalesce(org_id, ?2) IN (SELECT value FROM json_each(?5))";
  return sql;
}

void bind_startable(Statement& statement, core::TimePoint now, const ClaimFilter& filter) {
  statement.bind(1, core::to_epoch_ms(now));
  if (filter.paused_orgs.empty() && filter.paused_users.empty() && !filter.only_orgs) return;
  statement.bind(2, filter.default_org);
  if (filter.only_orgs) {
    json::array owned;
    for (const auto& org : *filter.only_orgs) owned.emplace_back(org);
    statement.bind(5, json::serialize(owned));
  }
  if (!filter.paused_orgs.empty()) {
    json::array paused;
    for (const auto& org : filter.paused_orgs) paused.emplace_back(org);
    statement.bind(3, json::serialize(paused));
  }
  if (!filter.paused_users.empty()) {
    json::array paused;
    for (const auto& [org, user] : filter.paused_users) {
      paused.emplace_back(json::array{json::string{org}, json::string{user}});
    }
    statement.bind(4, json::serialize(paused));
  }
}

}  // namespace

StoreResult<std::vector<core::JobRecord>> SqliteStore::claimable(core::TimePoint now, std::size_t limit,
                                                         const ClaimFilter& filter) {
  return answer([&]() -> result<std::vector<core::JobRecord>> {
    Connection& db = *impl_;
    std::vector<core::JobRecord> ready;
    std::vector<std::pair<std::int64_t, std::string>> broken;  // id, reason
    if (limit == 0) return ready;
    {
      // Streams rows in claim order (served by the jobs_claim index) until `limit` usable ones
      // are found, so broken rows never crowd good ones out of a batch.
      auto statement = db.prepared("SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs WHERE " +
                                   startable_conditions(filter) + " ORDER BY priority DESC, id");
      if (!statement) return statement.error();
      StatementUse use{**statement};
      bind_startable(*use, now, filter);
      while (ready.size() < limit) {
        auto row = db.step(*use);
        if (!row) return row.error();
        if (!*row) break;
        DecodedJob job = read_job(*use);
        if (job.spec_error) {
          broken.emplace_back(job.record.id, "invalid spec: " + *job.spec_error);
        } else {
          ready.push_back(std::move(job.record));
        }
      }
    }
    if (broken.empty()) return ready;

    FenceScope broken_jobs;
    for (const auto& entry : broken) broken_jobs.job_ids.push_back(entry.first);
    const FenceScopeGuard fenced_by{db, std::move(broken_jobs)};
    auto moved = in_write_transaction(db, [&]() -> result<void> {
      // Not a structured binding: clang 14 refuses to capture those in the lambda below.
      for (const auto& entry : broken) {
        const std::int64_t id = entry.first;
        const std::string& reason = entry.second;
        auto updated = db.execute(
            "UPDATE jobs SET state = 'invalid', last_error = ?2, finished_at = ?3, updated_at = ?3 "
            "WHERE id = ?1 AND state = 'queued'",
            [&](Statement& s) {
              s.bind(1, id);
              s.bind(2, reason);
              s.bind(3, core::to_epoch_ms(now));
            });
        if (!updated) return updated.error();
        if (db.changes() == 0) continue;  // someone else moved it meanwhile
        if (auto logged = insert_event(db, id, now, "invalid", state_name(core::JobState::invalid),
                                       std::nullopt, std::nullopt, reason);
            !logged) {
          return logged.error();
        }
      }
      return {};
    });
    if (!moved) return moved.error();
    return ready;
  });
}

StoreResult<std::vector<core::JobRecord>> SqliteStore::in_state(core::JobState state) {
  return answer([&]() -> result<std::vector<core::JobRecord>> {
    return select_jobs(*impl_,
                       "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs WHERE state = ?1 ORDER BY id",
                       [&](Statement& s) { s.bind(1, core::to_string(state)); });
  });
}

StoreResult<std::vector<core::JobRecord>> SqliteStore::all_jobs() {
  return answer([&]() -> result<std::vector<core::JobRecord>> {
    return select_jobs(*impl_, "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs ORDER BY id");
  });
}

StoreResult<std::optional<core::JobRecord>> SqliteStore::find(std::string_view key) {
  return answer([&]() -> result<std::optional<core::JobRecord>> {
    auto jobs = select_jobs(*impl_, "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs WHERE key = ?1",
                            [&](Statement& s) { s.bind(1, key); });
    if (!jobs) return jobs.error();
    if (jobs->empty()) return std::optional<core::JobRecord>{};
    return std::optional<core::JobRecord>{std::move(jobs->front())};
  });
}

StoreResult<Outcome> SqliteStore::outcome(std::int64_t job_id) {
  return answer([&]() -> result<Outcome> {
    Connection& db = *impl_;
    auto statement = db.prepared(
        "SELECT pull_requests, acus_consumed, structured_output, started_at, finished_at, "
        "child_session_ids, children_acus FROM jobs WHERE id = ?1");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    use->bind(1, job_id);
    auto row = db.step(*use);
    if (!row) return row.error();
    if (!*row) return errc::not_found;
    Outcome out;
    if (auto text = use->optional_text_at(0)) {
      auto pull_requests = parse_pull_requests(*text);
      if (!pull_requests) {
        return db.fail("job " + std::to_string(job_id) + ": stored pull_requests is not valid");
      }
      out.pull_requests = std::move(*pull_requests);
    }
    out.acus_consumed = use->optional_double_at(1).value_or(0.0);
    out.structured_output = use->optional_text_at(2);
    out.started_at_ms = use->optional_int64_at(3);
    out.finished_at_ms = use->optional_int64_at(4);
    if (auto text = use->optional_text_at(5)) {
      auto children = parse_ids(*text);
      if (!children) {
        return db.fail("job " + std::to_string(job_id) + ": stored child_session_ids is not valid");
      }
      out.child_session_ids = std::move(*children);
    }
    out.children_acus = use->optional_double_at(6).value_or(0.0);
    return out;
  });
}

StoreResult<std::vector<HistoryEntry>> SqliteStore::history(std::int64_t job_id) {
  return answer([&]() -> result<std::vector<HistoryEntry>> {
    Connection& db = *impl_;
    // By id, not `at`: insertion order is the order things happened even if the clock stepped.
    auto statement = db.prepared(
        "SELECT at, event, state, status, status_detail, message FROM job_events "
        "WHERE job_id = ?1 ORDER BY id");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    use->bind(1, job_id);
    std::vector<HistoryEntry> entries;
    for (;;) {
      auto row = db.step(*use);
      if (!row) return row.error();
      if (!*row) break;
      entries.push_back(HistoryEntry{
          .at_ms = use->int64_at(0),
          .event = use->text_at(1),
          .state = use->optional_text_at(2),
          .status = use->optional_text_at(3),
          .status_detail = use->optional_text_at(4),
          .message = use->optional_text_at(5),
      });
    }
    return entries;
  });
}

StoreResult<std::map<core::JobState, std::int64_t>> SqliteStore::count_by_state() {
  return answer([&]() -> result<std::map<core::JobState, std::int64_t>> {
    Connection& db = *impl_;
    std::map<core::JobState, std::int64_t> counts;
    // Every state is present, zeros included, so gauges built from this never go stale.
    for (int value = 0;; ++value) {
      const auto state = static_cast<core::JobState>(value);
      if (core::to_string(state) == "unknown") break;
      counts[state] = 0;
    }
    auto statement = db.prepared("SELECT state, count(*) FROM jobs GROUP BY state");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    for (;;) {
      auto row = db.step(*use);
      if (!row) return row.error();
      if (!*row) break;
      if (auto state = core::parse_job_state(use->text_at(0))) counts[*state] = use->int64_at(1);
    }
    return counts;
  });
}

StoreResult<std::optional<std::int64_t>> SqliteStore::oldest_startable_since_ms(
    core::TimePoint now, const ClaimFilter& filter) {
  return answer([&]() -> result<std::optional<std::int64_t>> {
    Connection& db = *impl_;
    auto statement = db.prepared("SELECT min(max(created_at, coalesce(not_before, 0))) FROM jobs "
                                 "WHERE " + startable_conditions(filter));
    if (!statement) return statement.error();
    StatementUse use{**statement};
    bind_startable(*use, now, filter);
    auto row = db.step(*use);
    if (!row) return row.error();
    if (!*row || use->is_null_at(0)) return std::optional<std::int64_t>{};
    return std::optional<std::int64_t>{use->int64_at(0)};
  });
}

StoreResult<void> SqliteStore::commit_intent(std::int64_t job_id, std::int64_t attempt,
                                     std::string_view tag, std::int64_t intent_at_ms,
                                     core::TimePoint now) {
  const IntentWrite intent{.job_id = job_id,
                           .attempt = attempt,
                           .claim = attempt == 1,
                           .tag = std::string(tag),
                           .intent_at_ms = intent_at_ms};
  auto outcomes = commit_intents(std::span{&intent, 1}, now);
  if (!outcomes) return outcomes.error();
  return outcomes->front();
}

StoreResult<std::vector<StoreResult<void>>> SqliteStore::commit_intents(std::span<const IntentWrite> intents,
                                                           core::TimePoint now) {
  return answer([&]() -> result<std::vector<result<void>>> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, jobs_scope(intents)};
    return in_write_transaction(db, [&]() -> result<std::vector<result<void>>> {
      std::vector<result<void>> outcomes;
      outcomes.reserve(intents.size());
      for (const IntentWrite& intent : intents) {
        if (intent.claim && intent.group) {
          // Counted after the batch's earlier claims, which this transaction already sees.
          auto full = group_full(db, intent);
          if (!full) return full.error();
          if (*full) {
            // Refuse this claim only: the job stays queued, the others go ahead.
            outcomes.push_back(claim_refused_for_group(db, intent));
            continue;
          }
        }
        auto updated = db.execute(
            "UPDATE jobs SET state = 'creating', attempts = ?2, sends = ?7, creation_tag = ?3, "
            "intent_at = COALESCE(intent_at, ?4), updated_at = ?5 "
            "WHERE id = ?1 AND attempts + sends = ?2 + ?7 - 1 AND "
            "(?6 AND state = 'queued' OR NOT ?6 AND state = 'creating')",
            [&](Statement& s) {
              s.bind(1, intent.job_id);
              s.bind(2, intent.attempt);
              s.bind(3, intent.tag);
              s.bind(4, intent.intent_at_ms);
              s.bind(5, core::to_epoch_ms(now));
              s.bind(6, std::int64_t{intent.claim ? 1 : 0});
              s.bind(7, intent.cut_short);
            });
        if (!updated) return updated.error();
        if (db.changes() == 0) {
          // This job moved on (an operator cancelled it, say): refuse it, keep the others.
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

StoreResult<void> SqliteStore::commit_session(std::int64_t job_id, const core::Session& session,
                                      bool adopted, core::TimePoint now) {
  const SessionWrite write{.job_id = job_id, .session = session, .adopted = adopted};
  auto outcomes = commit_sessions(std::span{&write, 1}, now);
  if (!outcomes) return outcomes.error();
  return outcomes->front();
}

StoreResult<std::vector<StoreResult<void>>> SqliteStore::commit_sessions(
    std::span<const SessionWrite> sessions, core::TimePoint now) {
  return answer([&]() -> result<std::vector<result<void>>> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, jobs_scope(sessions)};
    return in_write_transaction(db, [&]() -> result<std::vector<result<void>>> {
      std::vector<result<void>> outcomes;
      outcomes.reserve(sessions.size());
      for (const SessionWrite& write : sessions) {
        const core::Session& session = write.session;
        auto updated = db.execute(
            "UPDATE jobs SET state = 'running', session_id = ?2, session_url = ?3, status = ?4, "
            "status_detail = ?5, pull_requests = ?6, acus_consumed = ?7, structured_output = ?8, "
            "started_at = ?9, updated_at = ?9, duplicate_watch_until = ?10, child_session_ids = ?11 "
            "WHERE id = ?1 AND state = 'creating'",
            [&](Statement& s) {
              s.bind(1, write.job_id);
              s.bind(2, session.session_id);
              s.bind(3, session.url);
              s.bind(4, session.status);
              s.bind(5, session.status_detail);
              s.bind(6, serialise_pull_requests(session.pull_requests));
              s.bind(7, session.acus_consumed);
              s.bind(8, session.structured_output);
              s.bind(9, core::to_epoch_ms(now));
              s.bind(10, write.duplicate_watch_until_ms);
              s.bind(11, serialise_ids(session.child_session_ids));
            });
        if (!updated) return updated.error();
        if (db.changes() == 0) {
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
    }, Durability::recoverable);
  });
}

StoreResult<void> SqliteStore::requeue(std::int64_t job_id, std::int64_t attempts, std::string_view reason,
                               core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated = db.execute(
          "UPDATE jobs SET state = 'queued', attempts = ?2, last_error = ?3, updated_at = ?4 "
          "WHERE id = ?1 AND state IN ('queued', 'creating')",
          [&](Statement& s) {
            s.bind(1, job_id);
            s.bind(2, attempts);
            s.bind(3, text_or_null(reason));
            s.bind(4, core::to_epoch_ms(now));
          });
      if (!updated) return updated.error();
      if (db.changes() == 0) return transition_refused(db, job_id);
      return insert_event(db, job_id, now, "requeued", state_name(core::JobState::queued),
                          std::nullopt, std::nullopt, text_or_null(reason));
    }, Durability::recoverable);
  });
}

StoreResult<void> SqliteStore::finish(std::int64_t job_id, core::JobState state, std::string_view reason,
                              core::TimePoint now) {
  return answer([&]() -> result<void> {
    if (!core::is_terminal(state)) return errc::invalid_argument;
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated = db.execute(
          "UPDATE jobs SET state = ?2, last_error = ?3, finished_at = ?4, updated_at = ?4 "
          "WHERE id = ?1 AND " DEVIN_ORCH_IN_PROGRESS,
          [&](Statement& s) {
            s.bind(1, job_id);
            s.bind(2, core::to_string(state));
            s.bind(3, text_or_null(reason));
            s.bind(4, core::to_epoch_ms(now));
          });
      if (!updated) return updated.error();
      if (db.changes() == 0) return transition_refused(db, job_id);
      if (auto logged = insert_event(db, job_id, now, core::to_string(state), state_name(state),
                                     std::nullopt, std::nullopt, text_or_null(reason));
          !logged) {
        return logged.error();
      }
      if (const auto type = core::end_event(state)) {
        return append_job_notification(db, job_id, *type, now);
      }
      return {};
    });
  });
}

StoreResult<void> SqliteStore::record_duplicates(std::int64_t job_id,
                                                 std::string_view current_session_id,
                                                 const core::Session& kept,
                                                 std::span<const std::string> terminated,
                                                 core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    const std::int64_t now_ms = core::to_epoch_ms(now);
    return in_write_transaction(db, [&]() -> result<void> {
      if (kept.session_id != current_session_id) {
        auto switched = db.execute(
            "UPDATE jobs SET session_id = ?3, session_url = ?4, status = ?5, status_detail = ?6, "
            "pull_requests = ?7, acus_consumed = ?8, "
            "structured_output = COALESCE(?9, structured_output), updated_at = ?10 "
            "WHERE id = ?1 AND session_id = ?2 AND state = 'running'",
            [&](Statement& s) {
              s.bind(1, job_id);
              s.bind(2, current_session_id);
              s.bind(3, kept.session_id);
              s.bind(4, kept.url);
              s.bind(5, kept.status);
              s.bind(6, kept.status_detail);
              s.bind(7, serialise_pull_requests(kept.pull_requests));
              s.bind(8, kept.acus_consumed);
              s.bind(9, kept.structured_output);
              s.bind(10, now_ms);
            });
        if (!switched) return switched.error();
        if (db.changes() == 0) return transition_refused(db, job_id);
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
        return append_job_notification(db, job_id, core::EventType::job_duplicate_terminated, now,
                                       note);
      }
      return {};
    });
  });
}

StoreResult<void> SqliteStore::end_duplicate_watch(std::int64_t job_id, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated = db.execute(
          "UPDATE jobs SET duplicate_watch_until = NULL, updated_at = ?2 WHERE id = ?1",
          [&](Statement& s) {
            s.bind(1, job_id);
            s.bind(2, core::to_epoch_ms(now));
          });
      if (!updated) return updated.error();
      return {};
    });
  });
}

StoreResult<void> SqliteStore::record_statuses(std::span<const StatusUpdate> updates, core::TimePoint now) {
  return answer([&]() -> result<void> {
    for (const auto& update : updates) {
      if (update.new_state && !core::is_terminal(*update.new_state)) return errc::invalid_argument;
    }
    if (updates.empty()) return {};
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, jobs_scope(updates)};
    const std::int64_t now_ms = core::to_epoch_ms(now);
    return in_write_transaction(db, [&]() -> result<void> {
      for (const auto& update : updates) {
        const core::Session& session = update.session;
        const std::optional<std::string> new_state =
            update.new_state ? state_name(*update.new_state) : std::nullopt;
        const std::optional<std::string> reason =
            update.reason ? text_or_null(*update.reason) : std::nullopt;
        // The status event first, from the row as it still is: only when the status or its
        // detail changes, and only for a job still in progress (one that ended meanwhile, say by
        // an operator's cancel, keeps its outcome). Comparing in SQL saves a SELECT of the row
        // before every update.
        auto logged = db.execute(
            "INSERT INTO job_events (job_id, at, event, state, status, status_detail) "
            "SELECT id, ?2, 'status', COALESCE(?3, state), ?4, ?5 FROM jobs "
            "WHERE id = ?1 AND " DEVIN_ORCH_HOLDS_SESSION(?6) " "
            "AND (status IS NOT ?4 OR status_detail IS NOT ?5)",
            [&](Statement& s) {
              s.bind(1, update.job_id);
              s.bind(2, now_ms);
              s.bind(3, new_state);
              s.bind(4, session.status);
              s.bind(5, session.status_detail);
              s.bind(6, session.session_id);
            });
        if (!logged) return logged.error();
        const bool status_changed = db.changes() != 0;
        const auto bind_session = [&](Statement& s) {
          s.bind(1, update.job_id);
          s.bind(2, session.status);
          s.bind(3, session.status_detail);
          s.bind(4, serialise_pull_requests(session.pull_requests));
          s.bind(5, session.acus_consumed);
          s.bind(6, session.structured_output);
          s.bind(7, now_ms);
          s.bind(10, serialise_ids(session.child_session_ids));
          s.bind(11, session.session_id);
        };
        // Two statements rather than one with CASEs: a statement that assigns state makes
        // SQLite rewrite the row's jobs_claim entry and check the state constraint, even when
        // the state stays; most updates are a live session's status change.
        auto updated =
            new_state
                ? db.execute(
                      "UPDATE jobs SET status = ?2, status_detail = ?3, pull_requests = ?4, "
                      "acus_consumed = ?5, structured_output = COALESCE(?6, structured_output), "
                      "updated_at = ?7, state = ?8, finished_at = ?7, last_error = ?9, "
                      "child_session_ids = COALESCE(?10, child_session_ids) "
                      "WHERE id = ?1 AND " DEVIN_ORCH_HOLDS_SESSION(?11),
                      [&](Statement& s) {
                        bind_session(s);
                        s.bind(8, new_state);
                        s.bind(9, reason);
                      })
                : db.execute(
                      "UPDATE jobs SET status = ?2, status_detail = ?3, pull_requests = ?4, "
                      "acus_consumed = ?5, structured_output = COALESCE(?6, structured_output), "
                      "updated_at = ?7, child_session_ids = COALESCE(?10, child_session_ids) "
                      "WHERE id = ?1 AND " DEVIN_ORCH_HOLDS_SESSION(?11),
                      bind_session);
        if (!updated) return updated.error();
        if (db.changes() == 0) continue;  // missing, ended, or not on this session
        // The session starts waiting for its user: announced once per wait, with the status
        // change that shows it.
        if (!update.new_state && status_changed &&
            core::waits_for_user(session.status, session.status_detail)) {
          if (auto queued = append_job_notification(db, update.job_id,
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
            if (auto queued = append_job_notification(db, update.job_id, *type, now); !queued) {
              return queued.error();
            }
          }
        }
      }
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<void> SqliteStore::record_children(std::span<const ChildrenUpdate> updates,
                                               core::TimePoint now) {
  return answer([&]() -> result<void> {
    if (updates.empty()) return {};
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, jobs_scope(updates)};
    return in_write_transaction(db, [&]() -> result<void> {
      for (const auto& update : updates) {
        // Any state: a parent that ended leaves children whose last figures come after it.
        auto updated = db.execute(
            "UPDATE jobs SET child_session_ids = COALESCE(?2, child_session_ids), "
            "children_acus = ?3, updated_at = ?4 WHERE id = ?1",
            [&](Statement& s) {
              s.bind(1, update.job_id);
              s.bind(2, serialise_ids(update.child_session_ids));
              s.bind(3, update.children_acus);
              s.bind(4, core::to_epoch_ms(now));
            });
        if (!updated) return updated.error();
      }
      return {};
    });
  });
}

StoreResult<std::map<std::string, std::string>> SqliteStore::attachment_urls(std::int64_t job_id) {
  return answer([&]() -> result<std::map<std::string, std::string>> {
    Connection& db = *impl_;
    auto statement =
        db.prepared("SELECT path, url FROM job_attachments WHERE job_id = ?1 ORDER BY path");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    use->bind(1, job_id);
    std::map<std::string, std::string> urls;
    for (;;) {
      auto row = db.step(*use);
      if (!row) return row.error();
      if (!*row) break;
      urls[use->text_at(0)] = use->text_at(1);
    }
    return urls;
  });
}

StoreResult<void> SqliteStore::record_attachment_url(std::int64_t job_id, std::string_view path,
                                                     std::string_view url, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    // The job's organisation's lease, like every write about a job (not the default org's).
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto inserted = db.execute(
          "INSERT INTO job_attachments (job_id, path, url, uploaded_at) "
          "SELECT id, ?2, ?3, ?4 FROM jobs WHERE id = ?1 "
          "ON CONFLICT (job_id, path) DO NOTHING",
          [&](Statement& s) {
            s.bind(1, job_id);
            s.bind(2, path);
            s.bind(3, url);
            s.bind(4, core::to_epoch_ms(now));
          });
      if (!inserted) return inserted.error();
      if (db.changes() == 0) {
        auto exists = db.prepared("SELECT 1 FROM jobs WHERE id = ?1");
        if (!exists) return exists.error();
        StatementUse use{**exists};
        use->bind(1, job_id);
        auto row = db.step(*use);
        if (!row) return row.error();
        if (!*row) return errc::not_found;
      }
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<void> SqliteStore::note_error(std::int64_t job_id, std::string_view error,
                                  core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated = db.execute("UPDATE jobs SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
                                [&](Statement& s) {
                                  s.bind(1, job_id);
                                  s.bind(2, text_or_null(error));
                                  s.bind(3, core::to_epoch_ms(now));
                                });
      if (!updated) return updated.error();
      if (db.changes() == 0) return errc::not_found;
      return {};
    }, Durability::recoverable);
  });
}

StoreResult<void> SqliteStore::set_waiting_since(std::int64_t job_id, std::optional<std::int64_t> at_ms,
                                         core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated = db.execute("UPDATE jobs SET waiting_since = ?2, updated_at = ?3 WHERE id = ?1",
                                [&](Statement& s) {
                                  s.bind(1, job_id);
                                  s.bind(2, at_ms);
                                  s.bind(3, core::to_epoch_ms(now));
                                });
      if (!updated) return updated.error();
      return db.changes() == 0 ? result<void>{errc::not_found} : result<void>{};
    }, Durability::recoverable);
  });
}

StoreResult<void> SqliteStore::record_message(std::int64_t job_id, std::int64_t messages_sent,
                                      std::string_view message, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, job_scope(job_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated = db.execute(
          "UPDATE jobs SET messages_sent = ?2, updated_at = ?3 WHERE id = ?1", [&](Statement& s) {
            s.bind(1, job_id);
            s.bind(2, messages_sent);
            s.bind(3, core::to_epoch_ms(now));
          });
      if (!updated) return updated.error();
      if (db.changes() == 0) return errc::not_found;
      return insert_event(db, job_id, now, "message", std::nullopt, std::nullopt, std::nullopt,
                          std::string(message));
    });
  });
}

StoreResult<void> SqliteStore::record_stall(std::int64_t job_id,
                                            std::optional<std::int64_t> since_ms,
                                            std::string_view note, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<void> {
      auto updated =
          since_ms
              ? db.execute("UPDATE jobs SET stalled_since = ?2, last_error = ?3, updated_at = ?4 "
                           "WHERE id = ?1 AND state = 'running'",
                           [&](Statement& s) {
                             s.bind(1, job_id);
                             s.bind(2, *since_ms);
                             s.bind(3, text_or_null(note));
                             s.bind(4, core::to_epoch_ms(now));
                           })
              : db.execute("UPDATE jobs SET stalled_since = NULL, last_error = CASE WHEN "
                           "last_error LIKE 'stalled: %' THEN NULL ELSE last_error END, "
                           "updated_at = ?2 "
                           "WHERE id = ?1 AND state = 'running' AND stalled_since IS NOT NULL",
                           [&](Statement& s) {
                             s.bind(1, job_id);
                             s.bind(2, core::to_epoch_ms(now));
                           });
      if (!updated) return updated.error();
      if (db.changes() == 0 || !since_ms) return {};
      if (auto logged = insert_event(db, job_id, now, "stalled", std::nullopt, std::nullopt,
                                     std::nullopt, text_or_null(note));
          !logged) {
        return logged.error();
      }
      return append_job_notification(db, job_id, core::EventType::job_stalled, now);
    });
  });
}

// INDEXED BY: as for cancel_requests below; this one runs every second. In the index's order
// (deadline, then id), so no sort: a sort sets up its buffers on every run.
StoreResult<std::vector<core::JobRecord>> SqliteStore::past_deadline(core::TimePoint now) {
  return answer([&]() -> result<std::vector<core::JobRecord>> {
    return select_jobs(*impl_,
                       "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs INDEXED BY jobs_deadline "
                       "WHERE deadline IS NOT NULL AND deadline <= ?1 "
                       "AND " DEVIN_ORCH_IN_PROGRESS " ORDER BY deadline, id",
                       [&](Statement& s) { s.bind(1, core::to_epoch_ms(now)); });
  });
}

// INDEXED BY: without statistics the planner prefers jobs_claim, which reads every active row
// to find the few (usually none) with a cancellation.
StoreResult<std::vector<core::JobRecord>> SqliteStore::cancel_requests() {
  return answer([&]() -> result<std::vector<core::JobRecord>> {
    return select_jobs(*impl_,
                       "SELECT " DEVIN_ORCH_JOB_COLUMNS " FROM jobs INDEXED BY jobs_cancel_requested "
                       "WHERE cancel_requested <> 0 AND " DEVIN_ORCH_IN_PROGRESS " "
                       "ORDER BY id");
  });
}

namespace {

// A job's row id and state by key, for operator actions that depend on the state.
result<std::optional<std::pair<std::int64_t, std::string>>> find_id_and_state(
    Connection& db, std::string_view key) {
  auto found = db.prepared("SELECT id, state FROM jobs WHERE key = ?1");
  if (!found) return found.error();
  StatementUse use{**found};
  use->bind(1, key);
  auto row = db.step(*use);
  if (!row) return row.error();
  if (!*row) return std::optional<std::pair<std::int64_t, std::string>>{};
  return std::optional{std::pair{use->int64_at(0), use->text_at(1)}};
}

}  // namespace

StoreResult<CancelResult> SqliteStore::request_cancel(std::string_view key, bool archive,
                                                        core::TimePoint now) {
  return answer([&]() -> result<CancelResult> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<CancelResult> {
      auto found = find_id_and_state(db, key);
      if (!found) return found.error();
      if (!*found) return CancelResult::not_found;
      const std::int64_t id = (*found)->first;  // not a structured binding: clang 14 cannot
      const std::string state = (*found)->second;  // capture those in the lambdas below
      const auto at = core::to_epoch_ms(now);
      if (state == "queued") {
        auto updated = db.execute(
            "UPDATE jobs SET state = 'cancelled', last_error = 'cancelled by an operator', "
            "finished_at = ?2, updated_at = ?2 WHERE id = ?1",
            [&](Statement& s) {
              s.bind(1, id);
              s.bind(2, at);
            });
        if (!updated) return updated.error();
        if (auto logged = insert_event(db, id, now, "cancelled", std::string{"cancelled"},
                                       std::nullopt, std::nullopt,
                                       std::string{"cancelled by an operator before it started"});
            !logged) {
          return logged.error();
        }
        if (auto queued = append_job_notification(db, id, core::EventType::job_cancelled, now);
            !queued) {
          return queued.error();
        }
        return CancelResult::cancelled;
      }
      if (state != "creating" && state != "running") return CancelResult::already_ended;
      auto updated = db.execute(
          "UPDATE jobs SET cancel_requested = ?2, updated_at = ?3 WHERE id = ?1", [&](Statement& s) {
            s.bind(1, id);
            s.bind(2, std::int64_t{archive ? 2 : 1});
            s.bind(3, at);
          });
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

StoreResult<RetryResult> SqliteStore::retry(std::string_view key, core::TimePoint now) {
  return answer([&]() -> result<RetryResult> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<RetryResult> {
      auto found = find_id_and_state(db, key);
      if (!found) return found.error();
      if (!*found) return RetryResult::not_found;
      const std::int64_t id = (*found)->first;
      const std::string state = (*found)->second;
      static constexpr std::array<std::string_view, 7> kRetryable{
          "failed", "suspended", "dead", "lost", "cancelled", "timed_out", "stalled"};
      if (std::find(kRetryable.begin(), kRetryable.end(), state) == kRetryable.end()) {
        return RetryResult::not_terminal;
      }
      auto updated = db.execute(
          "UPDATE jobs SET state = 'queued', generation = generation + 1, attempts = 0, "
          "creation_tag = NULL, intent_at = NULL, session_id = NULL, session_url = NULL, "
          "status = NULL, status_detail = NULL, pull_requests = NULL, acus_consumed = NULL, "
          "structured_output = NULL, last_error = NULL, started_at = NULL, finished_at = NULL, "
          "messages_sent = 0, waiting_since = NULL, stalled_since = NULL, cancel_requested = 0, updated_at = ?2, "
          "child_session_ids = NULL, children_acus = NULL WHERE id = ?1",
          [&](Statement& s) {
            s.bind(1, id);
            s.bind(2, core::to_epoch_ms(now));
          });
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

StoreResult<void> SqliteStore::pause_org(std::string_view org_id, std::string_view reason,
                                 std::string_view source, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, org_scope(org_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      auto inserted = db.execute(
          "INSERT INTO org_pauses (org_id, reason, paused_at, source) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (org_id) DO NOTHING",
          [&](Statement& s) {
            s.bind(1, org_id);
            s.bind(2, reason);
            s.bind(3, core::to_epoch_ms(now));
            s.bind(4, source);
          });
      if (!inserted) return inserted.error();
      if (db.changes() == 0) return {};  // paused already: announced then
      return append_org_notification(db, org_id, core::EventType::org_paused, now, reason, source);
    });
  });
}

StoreResult<std::int64_t> SqliteStore::resume_org(std::string_view org_id) {
  return answer([&]() -> result<std::int64_t> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<std::int64_t> {
      auto deleted = db.execute("DELETE FROM org_pauses WHERE org_id = ?1",
                                [&](Statement& s) { s.bind(1, org_id); });
      if (!deleted) return deleted.error();
      const auto lifted = static_cast<std::int64_t>(db.changes());
      if (lifted != 0) {
        // The interface passes no time here; the event's time is this host's clock.
        if (auto queued = append_org_notification(db, org_id, core::EventType::org_resumed,
                                                  core::wall_now(), std::nullopt, "operator");
            !queued) {
          return queued.error();
        }
      }
      return lifted;
    });
  });
}

StoreResult<std::map<std::string, std::string>> SqliteStore::paused_orgs() {
  return answer([&]() -> result<std::map<std::string, std::string>> {
    Connection& db = *impl_;
    auto statement = db.prepared("SELECT org_id, reason FROM org_pauses ORDER BY org_id");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    std::map<std::string, std::string> paused;
    for (;;) {
      auto row = db.step(*use);
      if (!row) return row.error();
      if (!*row) break;
      paused[use->text_at(0)] = use->text_at(1);
    }
    return paused;
  });
}

StoreResult<std::int64_t> SqliteStore::lift_daemon_pause(std::string_view org_id,
                                                         std::string_view reason) {
  return answer([&]() -> result<std::int64_t> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, org_scope(org_id)};
    return in_write_transaction(db, [&]() -> result<std::int64_t> {
      auto deleted = db.execute(
          "DELETE FROM org_pauses WHERE org_id = ?1 AND reason = ?2 AND source = 'daemon'",
          [&](Statement& s) {
            s.bind(1, org_id);
            s.bind(2, reason);
          });
      if (!deleted) return deleted.error();
      const auto lifted = static_cast<std::int64_t>(db.changes());
      if (lifted != 0) {
        if (auto queued = append_org_notification(db, org_id, core::EventType::org_resumed,
                                                  core::wall_now(), reason, "daemon");
            !queued) {
          return queued.error();
        }
      }
      return lifted;
    });
  });
}

StoreResult<void> SqliteStore::pause_user(std::string_view org_id, std::string_view user_id,
                                          std::string_view reason, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, org_scope(org_id)};
    return in_write_transaction(db, [&]() -> result<void> {
      return db.execute(
          "INSERT INTO user_pauses (org_id, user_id, reason, paused_at) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (org_id, user_id) DO NOTHING",
          [&](Statement& s) {
            s.bind(1, org_id);
            s.bind(2, user_id);
            s.bind(3, reason);
            s.bind(4, core::to_epoch_ms(now));
          });
    });
  });
}

StoreResult<std::vector<UserPause>> SqliteStore::paused_users() {
  return answer([&]() -> result<std::vector<UserPause>> {
    std::vector<UserPause> pauses;
    auto done = read_rows(
        "SELECT org_id, user_id, reason, paused_at FROM user_pauses ORDER BY org_id, user_id",
        [](Statement&) {},
        [&](const Statement& row) {
          pauses.push_back(UserPause{.org_id = row.text_at(0),
                                     .user_id = row.text_at(1),
                                     .reason = row.text_at(2),
                                     .paused_at_ms = row.int64_at(3)});
          return true;
        });
    if (!done) return done.error();
    return pauses;
  });
}

// The operator's (its connection has no fence), like resume_org.
StoreResult<std::int64_t> SqliteStore::resume_user(std::string_view org_id,
                                                   std::string_view user_id) {
  return answer([&]() -> result<std::int64_t> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<std::int64_t> {
      auto deleted = db.execute("DELETE FROM user_pauses WHERE org_id = ?1 AND user_id = ?2",
                                [&](Statement& s) {
                                  s.bind(1, org_id);
                                  s.bind(2, user_id);
                                });
      if (!deleted) return deleted.error();
      return static_cast<std::int64_t>(db.changes());
    });
  });
}

StoreResult<void> SqliteStore::hold_org(std::string_view org_id, core::TimePoint until,
                                        std::string_view reason, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    const FenceScopeGuard fenced_by{db, org_scope(org_id)};
    // Not synced: a hold lost with the last second before a power cut costs at worst one
    // early request, which the server answers with the wait again.
    return in_write_transaction(db, [&]() -> result<void> {
      return db.execute(
          "INSERT INTO org_holds (org_id, until_ms, reason, held_at) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (org_id) DO UPDATE SET until_ms = excluded.until_ms, "
          "reason = excluded.reason, held_at = excluded.held_at "
          "WHERE excluded.until_ms > org_holds.until_ms",
          [&](Statement& s) {
            s.bind(1, org_id);
            s.bind(2, core::to_epoch_ms(until));
            s.bind(3, reason);
            s.bind(4, core::to_epoch_ms(now));
          });
    }, Durability::recoverable);
  });
}

StoreResult<std::vector<OrgHold>> SqliteStore::org_holds(core::TimePoint now) {
  return answer([&]() -> result<std::vector<OrgHold>> {
    std::vector<OrgHold> holds;
    auto done = read_rows(
        "SELECT org_id, until_ms, reason, held_at FROM org_holds WHERE until_ms > ?1 "
        "ORDER BY org_id",
        [&](Statement& s) { s.bind(1, core::to_epoch_ms(now)); },
        [&](const Statement& row) {
          holds.push_back(OrgHold{.org_id = row.text_at(0),
                                  .until_ms = row.int64_at(1),
                                  .reason = row.text_at(2),
                                  .held_at_ms = row.int64_at(3)});
          return true;
        });
    if (!done) return done.error();
    return holds;
  });
}

// A scan of jobs (intent_at has no index): the daemon reads it at most once a second, and only
// with a budget configured.
StoreResult<std::vector<SpendingRow>> SqliteStore::spending_since(core::TimePoint since) {
  return answer([&]() -> result<std::vector<SpendingRow>> {
    std::vector<SpendingRow> rows;
    auto done = read_rows(
        "SELECT " DEVIN_ORCH_SPENDING_COLUMNS " FROM jobs "
        "WHERE intent_at >= ?1 ORDER BY id",
        [&](Statement& s) { s.bind(1, core::to_epoch_ms(since)); },
        [&](const Statement& row) {
          if (auto charged = read_spending_row(row)) rows.push_back(std::move(*charged));
          return true;
        });
    if (!done) return done.error();
    return rows;
  });
}

namespace {

// What prune, prune_ended and delete_job keep of a job they remove: one row of the outcomes
// archive, `?2` the time it was removed. Followed by the selection of the jobs (a WHERE clause).
#define DEVIN_ORCH_ARCHIVE_OUTCOMES                                                            \
  "INSERT INTO outcomes (key, generation, org_id, state, session_id, session_url, status, "    \
  "status_detail, acus_consumed, pull_requests, structured_output, last_error, created_at, "   \
  "finished_at, pruned_at) SELECT key, generation, org_id, state, session_id, session_url, "   \
  "status, status_detail, acus_consumed, pull_requests, structured_output, last_error, "       \
  "created_at, finished_at, ?2 FROM jobs WHERE "

// Ended jobs whose end is before ?1 (served by the jobs_ended index, schema v7).
#define DEVIN_ORCH_ENDED_BEFORE DEVIN_ORCH_ENDED " AND coalesce(finished_at, updated_at) < ?1"

// Archives and deletes the jobs `selection` names (a WHERE clause whose parameters `bind`
// binds; ?2 is the archive's); their history goes with them (ON DELETE CASCADE). Returns how
// many jobs were deleted.
template <class Bind>
result<std::int64_t> archive_and_delete(Connection& db, const std::string& selection,
                                        core::TimePoint now, Bind&& bind) {
  auto archived = db.execute(DEVIN_ORCH_ARCHIVE_OUTCOMES + selection, [&](Statement& s) {
    bind(s);
    s.bind(2, core::to_epoch_ms(now));
  });
  if (!archived) return archived.error();
  auto deleted = db.execute("DELETE FROM jobs WHERE " + selection, bind);
  if (!deleted) return deleted.error();
  return static_cast<std::int64_t>(db.changes());
}

}  // namespace

StoreResult<std::int64_t> SqliteStore::prune(core::TimePoint cutoff, core::TimePoint now) {
  return answer([&]() -> result<std::int64_t> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<std::int64_t> {
      return archive_and_delete(db, DEVIN_ORCH_ENDED_BEFORE, now,
                                [&](Statement& s) { s.bind(1, core::to_epoch_ms(cutoff)); });
    });
  });
}

StoreResult<std::int64_t> SqliteStore::prune_ended(core::TimePoint cutoff, core::TimePoint now,
                                                   std::size_t limit) {
  return answer([&]() -> result<std::int64_t> {
    if (limit == 0) return std::int64_t{0};
    Connection& db = *impl_;
    // The same `limit` rows for both statements: nothing else writes inside this transaction.
    return in_write_transaction(db, [&]() -> result<std::int64_t> {
      return archive_and_delete(
          db,
          "id IN (SELECT id FROM jobs WHERE " DEVIN_ORCH_ENDED_BEFORE
          " ORDER BY coalesce(finished_at, updated_at) LIMIT ?3)",
          now, [&](Statement& s) {
            s.bind(1, core::to_epoch_ms(cutoff));
            s.bind(3, static_cast<std::int64_t>(limit));
          });
    }, Durability::recoverable);
  });
}

StoreResult<DeleteResult> SqliteStore::delete_job(std::string_view key, core::TimePoint now) {
  return answer([&]() -> result<DeleteResult> {
    Connection& db = *impl_;
    return in_write_transaction(db, [&]() -> result<DeleteResult> {
      auto found = find_id_and_state(db, key);
      if (!found) return found.error();
      if (!*found) return DeleteResult::not_found;
      const std::int64_t id = (*found)->first;
      const auto state = core::parse_job_state((*found)->second);
      if (!state || !core::is_terminal(*state)) return DeleteResult::not_ended;
      auto deleted = archive_and_delete(db, "id = ?1", now, [&](Statement& s) { s.bind(1, id); });
      if (!deleted) return deleted.error();
      return DeleteResult::deleted;
    });
  });
}

// ---- ownership leases ----------------------------------------------------------------------

namespace {

result<std::optional<core::LeaseHolder>> select_lease(Connection& db, std::string_view name) {
  auto statement = db.prepared("SELECT owner, epoch, expires_at FROM leases WHERE name = ?1");
  if (!statement) return statement.error();
  StatementUse use{**statement};
  use->bind(1, name);
  auto row = db.step(*use);
  if (!row) return row.error();
  if (!*row) return std::optional<core::LeaseHolder>{};
  return std::optional<core::LeaseHolder>{core::LeaseHolder{
      .owner = use->text_at(0), .epoch = use->int64_at(1), .expires_at_ms = use->int64_at(2)}};
}

}  // namespace

StoreResult<LeaseAnswer> SqliteStore::acquire_lease(std::string_view name,
                                                      std::string_view owner, core::Duration ttl,
                                                      core::TimePoint now) {
  return answer([&]() -> result<LeaseAnswer> {
    Connection& db = *impl_;
    const std::int64_t now_ms = core::to_epoch_ms(now);
    const std::int64_t expires_ms = now_ms + ttl.count();
    auto answer = in_write_transaction(db, [&]() -> result<LeaseAnswer> {
      auto current = select_lease(db, name);
      if (!current) return current.error();
      // An unexpired lease of another owner is taken only when its holder provably died on this
      // machine (a restart after a crash need not wait for the lapse). Anything else waits.
      if (*current && (*current)->owner != owner && (*current)->expires_at_ms > now_ms &&
          !db.epoch_locks->provably_abandoned(name, (*current)->epoch)) {
        return LeaseAnswer{.granted = false, .holder = **current};
      }
      const bool mine = *current && (*current)->owner == owner;
      const std::int64_t epoch = !*current ? 1 : mine ? (*current)->epoch : (*current)->epoch + 1;
      auto written = db.execute(
          "INSERT INTO leases (name, owner, epoch, expires_at, acquired_at, renewed_at) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (name) DO UPDATE SET owner = ?2, "
          "epoch = ?3, expires_at = ?4, renewed_at = ?5, "
          "acquired_at = CASE WHEN leases.epoch = ?3 THEN leases.acquired_at ELSE ?5 END",
          [&](Statement& s) {
            s.bind(1, name);
            s.bind(2, owner);
            s.bind(3, epoch);
            s.bind(4, expires_ms);
            s.bind(5, now_ms);
          });
      if (!written) return written.error();
      // Before the commit makes the epoch visible: a process that reads the row must find its
      // holder's lock already taken, or it would think the holder dead.
      db.epoch_locks->hold(name, epoch);
      return LeaseAnswer{.granted = true,
                         .holder = {.owner = std::string(owner),
                                    .epoch = epoch,
                                    .expires_at_ms = expires_ms}};
    }, Durability::synced, Fencing::unfenced);
    if (!answer || !answer->granted) db.epoch_locks->let_go(name);
    return answer;
  });
}

StoreResult<LeaseAnswer> SqliteStore::renew_lease(std::string_view name, std::string_view owner,
                                                    std::int64_t epoch, core::Duration ttl,
                                                    core::TimePoint now) {
  return answer([&]() -> result<LeaseAnswer> {
    Connection& db = *impl_;
    const std::int64_t now_ms = core::to_epoch_ms(now);
    const std::int64_t expires_ms = now_ms + ttl.count();
    // Not fsynced: a renewal lost to a power loss only makes the lease lapse sooner.
    auto answer = in_write_transaction(db, [&]() -> result<LeaseAnswer> {
      auto written = db.execute(
          "UPDATE leases SET expires_at = ?4, renewed_at = ?5 "
          "WHERE name = ?1 AND owner = ?2 AND epoch = ?3",
          [&](Statement& s) {
            s.bind(1, name);
            s.bind(2, owner);
            s.bind(3, epoch);
            s.bind(4, expires_ms);
            s.bind(5, now_ms);
          });
      if (!written) return written.error();
      if (db.changes() == 1) {
        return LeaseAnswer{.granted = true,
                           .holder = {.owner = std::string(owner),
                                      .epoch = epoch,
                                      .expires_at_ms = expires_ms}};
      }
      auto current = select_lease(db, name);
      if (!current) return current.error();
      return LeaseAnswer{.granted = false, .holder = current->value_or(core::LeaseHolder{})};
    }, Durability::recoverable, Fencing::unfenced);
    if (answer && answer->granted) db.epoch_locks->hold(name, epoch);
    if (answer && !answer->granted) db.epoch_locks->let_go(name);
    return answer;
  });
}

StoreResult<void> SqliteStore::release_lease(std::string_view name, std::string_view owner,
                                     std::int64_t epoch, core::TimePoint now) {
  return answer([&]() -> result<void> {
    Connection& db = *impl_;
    db.epoch_locks->let_go(name);
    return in_write_transaction(db, [&]() -> result<void> {
      return db.execute(
          "UPDATE leases SET expires_at = ?4 WHERE name = ?1 AND owner = ?2 AND epoch = ?3",
          [&](Statement& s) {
            s.bind(1, name);
            s.bind(2, owner);
            s.bind(3, epoch);
            s.bind(4, core::to_epoch_ms(now));
          });
    }, Durability::recoverable, Fencing::unfenced);
  });
}

StoreResult<std::optional<core::LeaseHolder>> SqliteStore::read_lease(std::string_view name) {
  return answer([&]() -> result<std::optional<core::LeaseHolder>> {
    return select_lease(*impl_, name);
  });
}

StoreResult<std::vector<NamedLease>> SqliteStore::list_leases(std::string_view prefix) {
  return answer([&]() -> result<std::vector<NamedLease>> {
    Connection& db = *impl_;
    std::vector<NamedLease> leases;
    // substr rather than LIKE: a prefix may hold '%' or '_' (an org id is the user's text).
    auto statement = db.prepared(
        "SELECT name, owner, epoch, expires_at FROM leases "
        "WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    use->bind(1, prefix);
    for (;;) {
      auto row = db.step(*use);
      if (!row) return row.error();
      if (!*row) return leases;
      leases.push_back(NamedLease{.name = use->text_at(0),
                                  .holder = core::LeaseHolder{.owner = use->text_at(1),
                                                              .epoch = use->int64_at(2),
                                                              .expires_at_ms = use->int64_at(3)}});
    }
  });
}

StoreResult<std::vector<std::string>> SqliteStore::orgs_with_work(std::string_view default_org) {
  return answer([&]() -> result<std::vector<std::string>> {
    Connection& db = *impl_;
    std::vector<std::string> orgs;
    auto statement = db.prepared(
        "SELECT DISTINCT coalesce(org_id, ?1) AS org FROM jobs "
        "WHERE state IN ('queued', 'creating', 'running') ORDER BY org");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    use->bind(1, default_org);
    for (;;) {
      auto row = db.step(*use);
      if (!row) return row.error();
      if (!*row) return orgs;
      orgs.push_back(use->text_at(0));
    }
  });
}

void SqliteStore::set_fence(std::optional<Fence> fence, FenceRefused on_refused) {
  impl_->fence = std::move(fence);
  impl_->fence_refused = std::move(on_refused);
}

StoreResult<std::int64_t> SqliteStore::change_mark() {
  return answer([&]() -> result<std::int64_t> {
    Connection& db = *impl_;
    auto statement = db.prepared("PRAGMA data_version");
    if (!statement) return statement.error();
    StatementUse use{**statement};
    auto row = db.step(*use);
    if (!row) return row.error();
    if (!*row) return db.fail("PRAGMA data_version returned no row");
    return use->int64_at(0);
  });
}

StoreResult<bool> SqliteStore::commit_in_flight_elsewhere() {
  return answer([&]() -> result<bool> {
    Connection& db = *impl_;
    if (db.shm_probe < 0) {
      const char* file = sqlite3_db_filename(db.db(), "main");
      if (file == nullptr || *file == '\0') return false;  // in-memory: no other connection
      db.shm_probe = ::open((std::string{file} + "-shm").c_str(), O_RDONLY | O_CLOEXEC);
      if (db.shm_probe < 0) {
        if (errno == ENOENT) return false;
        return db.fail(std::string{"cannot open the -shm file: "} + std::strerror(errno));
      }
    }
    // An open-file-description lock query: unlike F_GETLK it also reports locks this process
    // holds through another descriptor, such as another connection's in this process.
    constexpr off_t kWalWriteLock = 120;
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    probe.l_start = kWalWriteLock;
    probe.l_len = 1;
    if (::fcntl(db.shm_probe, F_OFD_GETLK, &probe) != 0) {
      return db.fail(std::string{"cannot read the write lock: "} + std::strerror(errno));
    }
    return probe.l_type != F_UNLCK;
  });
}

void SqliteStore::set_write_hooks(WriteHooks hooks) { impl_->hooks = std::move(hooks); }

#undef DEVIN_ORCH_JOB_COLUMNS

result<void> SqliteStore::write_outbox(const std::function<result<void>()>& body, bool fenced) {
  // Recoverable: a delivery recorded and then lost to a power cut is delivered again, which
  // at-least-once allows; an event's routing lost is routed again the same way.
  return in_write_transaction(*impl_, body, Durability::recoverable,
                              fenced ? Fencing::fenced : Fencing::unfenced);
}

result<std::int64_t> SqliteStore::execute_counting(std::string_view sql,
                                                   const std::function<void(Statement&)>& bind) {
  Connection& db = *impl_;
  if (auto done = db.execute(sql, bind); !done) return done.error();
  return static_cast<std::int64_t>(db.changes());
}

}  // namespace devin_orch::store
