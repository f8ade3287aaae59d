// Tests for SqliteStore against real database files in temporary directories, including a second
// raw SQLite connection acting as an external queue producer.
#include "devin_orch/store/sqlite/sqlite_store.hpp"

#include "devin_orch/store/sqlite/schema.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "store/contract/contract.hpp"
#include "support/sync_counting_vfs.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <thread>
#include <string>
#include <vector>

namespace devin_orch::store {
namespace {

using core::JobState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/devin-orch-store-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A second connection to the same file, as an external producer or a second process would use.
class RawConnection {
 public:
  explicit RawConnection(const std::filesystem::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path.string());
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawConnection() { sqlite3_close(db_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Runs a statement with text parameters; returns the (extended) result code.
  int run(const std::string& sql, const std::vector<std::string>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      error_ = sqlite3_errmsg(db_);
      return rc;
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].c_str(),
                        static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    error_ = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  }

  std::string text(const std::string& sql, const std::vector<std::string>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    for (std::size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].c_str(),
                        static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
    }
    std::string out = "<no row>";
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      out = value != nullptr ? std::string(value, sqlite3_column_bytes(stmt, 0)) : "<null>";
    }
    sqlite3_finalize(stmt);
    return out;
  }

  std::int64_t integer(const std::string& sql, const std::vector<std::string>& params = {}) {
    return std::stoll(text(sql, params));
  }

  // The `detail` column of every row of EXPLAIN QUERY PLAN, joined.
  std::string query_plan(const std::string& sql) {
    return explain("EXPLAIN QUERY PLAN " + sql, 3, " | ");
  }

  // The opcodes of the statement's program (EXPLAIN), space-separated.
  std::string opcodes(const std::string& sql) { return explain("EXPLAIN " + sql, 1, " "); }

  const std::string& error() const { return error_; }

 private:
  // One column of every row an EXPLAIN statement returns, each followed by `separator`.
  std::string explain(const std::string& explain_sql, int column, const char* separator) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, explain_sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << explain_sql;
    std::string joined;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      joined += reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
      joined += separator;
    }
    sqlite3_finalize(stmt);
    return joined;
  }

  sqlite3* db_ = nullptr;
  std::string error_;
};

// The value helpers are the contract suite's: one definition for both.
using contract::at;
using contract::events;
using contract::job;
using contract::keys;
using contract::session;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store();
    ASSERT_TRUE(store_);
  }

  std::unique_ptr<SqliteStore> open_store(core::Duration busy_timeout = core::Duration{5'000}) {
    auto opened = SqliteStore::open({.path = db_path_.string(), .busy_timeout = busy_timeout});
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message());
    return opened ? std::move(*opened) : nullptr;
  }

  std::int64_t id_of(const std::string& key) {
    auto found = store_->find(key);
    EXPECT_TRUE(found && found->has_value()) << key;
    return found && *found ? (*found)->id : -1;
  }

  core::JobRecord record(const std::string& key) {
    auto found = store_->find(key);
    EXPECT_TRUE(found && found->has_value()) << key;
    return found && *found ? **found : core::JobRecord{};
  }

  // Drives a new job to running.
  std::int64_t running_job(const std::string& key, const std::string& status = "running") {
    EXPECT_EQ(store_->add_job(job(key), "test", at(1)).value(), AddResult::inserted);
    const std::int64_t id = id_of(key);
    EXPECT_TRUE(store_->commit_intent(id, 1, core::creation_tag(key, 0), 2, at(2)));
    EXPECT_TRUE(store_->commit_session(id, session("s-" + key, status), false, at(3)));
    return id;
  }

  TempDir dir_;
  std::filesystem::path db_path_ = dir_.path() / "jobs.db";
  std::unique_ptr<SqliteStore> store_;
};

mode_t mode_of(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

// --- open ---------------------------------------------------------------------------------

TEST(SqliteStoreOpen, CreatesPrivateDirectoriesAndFile) {
  TempDir dir;
  const auto path = dir.path() / "state" / "orch" / "jobs.db";
  // With the usual umask SQLite alone would create a world-readable 0644 file.
  const mode_t old_umask = ::umask(022);
  auto store = SqliteStore::open({.path = path.string()});
  ::umask(old_umask);
  ASSERT_TRUE(store) << (store ? "" : store.error().message());
  EXPECT_EQ(mode_of(dir.path() / "state"), 0700U);
  EXPECT_EQ(mode_of(dir.path() / "state" / "orch"), 0700U);
  EXPECT_EQ(mode_of(path), 0600U);
  // WAL side files inherit the database file's mode.
  ASSERT_TRUE((*store)->add_job(job("k"), "test", at(1)));
  EXPECT_EQ(mode_of(path.string() + "-wal"), 0600U);
}

TEST(SqliteStoreOpen, LeavesAnExistingDirectoryAlone) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto store = SqliteStore::open({.path = (dir.path() / "jobs.db").string()});
  ASSERT_TRUE(store);
  EXPECT_EQ(mode_of(dir.path()), 0755U);
}

TEST_F(SqliteStoreTest, ConfiguresTheConnection) {
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");  // persistent, so visible to others
  EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version());
  EXPECT_EQ(latest_schema_version(), 11);

  // Per-connection settings: only the store's own connection can report them.
  const auto settings = store_->connection_settings();
  ASSERT_TRUE(settings) << (settings ? "" : settings.error().message());
  EXPECT_EQ(settings->synchronous, 1);  // NORMAL; sync_wal fsyncs what must be
  EXPECT_TRUE(settings->foreign_keys);
  EXPECT_EQ(settings->busy_timeout_ms, 5000);
  EXPECT_EQ(settings->cache_size, -256);  // KiB; SQLite's default would be -2000
}

TEST_F(SqliteStoreTest, TheCacheSizeComesFromTheOptions) {
  store_.reset();
  auto opened = SqliteStore::open({.path = db_path_.string(), .cache_kib = 1024});
  ASSERT_TRUE(opened) << (opened ? "" : opened.error().message());
  const auto settings = (*opened)->connection_settings();
  ASSERT_TRUE(settings);
  EXPECT_EQ(settings->cache_size, -1024);
}

// The state constraint is checked by every INSERT and every UPDATE that assigns state; as an IN
// list it made SQLite build and free a temporary b-tree each time (schema v4).
TEST_F(SqliteStoreTest, TheStateConstraintHoldsWithoutATemporaryTable) {
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.opcodes("UPDATE jobs SET state = 'running' WHERE id = 1").find("OpenEphemeral"),
            std::string::npos);
  EXPECT_EQ(raw.opcodes("INSERT INTO jobs (key, spec) VALUES ('k', '{}')").find("OpenEphemeral"),
            std::string::npos);
  EXPECT_EQ(raw.run("INSERT INTO jobs (key, spec, state) VALUES ('bad', '{}', 'running ')"),
            SQLITE_CONSTRAINT_CHECK);
  for (const char* state : {"queued", "creating", "running", "finished", "failed", "suspended",
                            "dead", "lost", "invalid", "cancelled", "timed_out", "stalled"}) {
    EXPECT_EQ(raw.run("INSERT INTO jobs (key, spec, state) VALUES (?1, '{}', ?1)", {state}),
              SQLITE_OK)
        << state << ": " << raw.error();
  }
}

TEST_F(SqliteStoreTest, ReopenKeepsDataAndVersion) {
  ASSERT_TRUE(store_->add_job(job("persisted"), "test", at(1)));
  store_.reset();
  store_ = open_store();
  ASSERT_TRUE(store_);
  EXPECT_EQ(record("persisted").definition, job("persisted"));
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 11);
  // v8's notify_events and notify_deliveries, and sqlite_sequence for the former's
  // AUTOINCREMENT; v11's job_attachments.
  EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 11);
}

// Which writes are fsynced: a create intent must be on disk before the create is sent; a
// session id or a status may be lost to a power cut (the tag lookup or the next poll finds it
// again), so those commits skip the fsync. Observed as fsyncs of the WAL file.
TEST_F(SqliteStoreTest, OnlyWritesARestartCanRepairSkipTheFsync) {
  store_.reset();
  test::SyncCountingVfs vfs;
  store_ = open_store();
  ASSERT_TRUE(store_);
  (void)vfs.take_wal_syncs();
  // The first write to a new WAL also fsyncs its header (SQLite's own, in every mode).
  ASSERT_TRUE(store_->add_job(job("i"), "test", at(0)));
  (void)vfs.take_wal_syncs();
  ASSERT_TRUE(store_->add_job(job("j"), "test", at(0)));
  EXPECT_EQ(vfs.take_wal_syncs(), 1) << "a submitted job is fsynced";
  const auto id = record("j").id;
  ASSERT_TRUE(store_->commit_intent(id, 1, "orch-x-g0", 1, at(1)));
  EXPECT_EQ(vfs.take_wal_syncs(), 1) << "a create intent is fsynced";
  const core::Session session{.session_id = "devin-1", .url = "u", .status = "running"};
  ASSERT_TRUE(store_->commit_session(id, session, false, at(2)));
  EXPECT_EQ(vfs.take_wal_syncs(), 0) << "a session id is found again by its tag";
  const std::vector<StatusUpdate> update{{.job_id = id, .session = session}};
  ASSERT_TRUE(store_->record_statuses(update, at(3)));
  EXPECT_EQ(vfs.take_wal_syncs(), 0) << "a status is seen again at the next poll";
  ASSERT_TRUE(store_->record_message(id, 1, "more", at(4)));
  EXPECT_EQ(vfs.take_wal_syncs(), 1) << "a follow-up message is recorded before it is sent";
  ASSERT_TRUE(store_->finish(id, core::JobState::finished, "", at(5)));
  EXPECT_EQ(vfs.take_wal_syncs(), 1) << "an outcome is fsynced";
  store_.reset();  // closes its files before the VFS goes away
}

// A failed fsync is not a failed commit: the intent may be in the database yet never reach the
// disk. The caller is told so (sync_failed), distinctly from an ordinary database error.
TEST_F(SqliteStoreTest, AFailedFsyncOfAnIntentIsReportedAsSuch) {
  store_.reset();
  test::SyncCountingVfs vfs;
  store_ = open_store();
  ASSERT_TRUE(store_);
  ASSERT_TRUE(store_->add_job(job("j"), "test", at(0)));
  const auto id = record("j").id;
  vfs.fail_wal_syncs();
  const auto committed = store_->commit_intent(id, 1, "orch-x-g0", 1, at(1));
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error(), errc::sync_failed);
  EXPECT_THAT(committed.error().detail, HasSubstr("fsync"));
  // A relaxed write does not fsync, so it is unaffected.
  const core::Session session{.session_id = "devin-1", .url = "u", .status = "running"};
  EXPECT_TRUE(store_->commit_session(id, session, false, at(2)));
  store_.reset();
}

TEST_F(SqliteStoreTest, DeadlineLookupUsesItsIndex) {
  RawConnection raw{db_path_};
  const std::string plan = raw.query_plan(
      "SELECT id FROM jobs INDEXED BY jobs_deadline WHERE deadline IS NOT NULL AND "
      "deadline <= 5 AND state IN ('queued', 'creating', 'running') ORDER BY id");
  EXPECT_NE(plan.find("USING INDEX jobs_deadline"), std::string::npos) << plan;
}

// The daemon asks for cancellations whenever another process writes; the answer must come
// from the partial index (cancel_requests() names it with INDEXED BY, which needs the index to
// exist and its WHERE to cover the query's), not from reading every active job.
TEST_F(SqliteStoreTest, CancellationLookupUsesItsIndex) {
  RawConnection raw{db_path_};
  const std::string plan = raw.query_plan(
      "SELECT id FROM jobs INDEXED BY jobs_cancel_requested WHERE cancel_requested <> 0 AND "
      "state IN ('queued', 'creating', 'running') ORDER BY id");
  EXPECT_NE(plan.find("USING INDEX jobs_cancel_requested"), std::string::npos) << plan;
}

// Retention's batches (prune_ended) and the CLI's prune read the ended jobs through their index,
// so a batch reads the rows it removes rather than the whole table.
TEST_F(SqliteStoreTest, EndedJobLookupUsesItsIndex) {
  RawConnection raw{db_path_};
  for (const std::string query :
       {"SELECT id FROM jobs WHERE NOT (state = 'queued' OR state = 'creating' OR "
        "state = 'running') AND coalesce(finished_at, updated_at) < 5 "
        "ORDER BY coalesce(finished_at, updated_at) LIMIT 100",
        "SELECT count(*) FROM jobs WHERE NOT (state = 'queued' OR state = 'creating' OR "
        "state = 'running') AND coalesce(finished_at, updated_at) < 5"}) {
    const std::string plan = raw.query_plan(query);
    EXPECT_NE(plan.find("USING INDEX jobs_ended"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
  }
}

// The outbox row and the change it announces are one transaction: if the event cannot be
// written, the job does not end either (and the next poll tries both again).
TEST_F(SqliteStoreTest, AJobEndsOnlyTogetherWithItsEvent) {
  ASSERT_TRUE(store_->add_job(job("atomic"), "test", at(1)));
  const std::int64_t id = record("atomic").id;
  ASSERT_TRUE(store_->commit_intent(id, 1, core::creation_tag("atomic", 0), 2, at(2)));
  ASSERT_TRUE(store_->commit_session(
      id, core::Session{.session_id = "s-1", .url = "u", .status = "running"}, false, at(3)));
  {
    RawConnection raw{db_path_};
    ASSERT_EQ(raw.run("CREATE TRIGGER refuse BEFORE INSERT ON notify_events "
                      "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"),
              SQLITE_OK)
        << raw.error();
  }
  const StatusUpdate ended{.job_id = id,
                           .session = {.session_id = "s-1", .url = "u", .status = "exit"},
                           .new_state = core::JobState::finished};
  EXPECT_FALSE(store_->record_statuses(std::span{&ended, 1}, at(4)));
  EXPECT_EQ(record("atomic").state, core::JobState::running);
  EXPECT_FALSE(store_->finish(id, core::JobState::dead, "gave up", at(5)));
  EXPECT_EQ(record("atomic").state, core::JobState::running);
  {
    RawConnection raw{db_path_};
    ASSERT_EQ(raw.run("DROP TRIGGER refuse"), SQLITE_OK);
  }
  ASSERT_TRUE(store_->record_statuses(std::span{&ended, 1}, at(6)));
  EXPECT_EQ(record("atomic").state, core::JobState::finished);
  const auto events = store_->unrouted_events(10).value();
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].type, core::EventType::job_finished);
}

TEST_F(SqliteStoreTest, RefusesANewerSchema) {
  store_.reset();
  {
    RawConnection raw{db_path_};
    ASSERT_EQ(raw.run("PRAGMA user_version = 12"), SQLITE_OK);
  }
  auto reopened = SqliteStore::open({.path = db_path_.string()});
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error(), errc::database_error);
  EXPECT_EQ(reopened.error().detail, "database schema version 12 is newer than this devin-orch supports (" +
                       std::to_string(latest_schema_version()) + ")");
}

// The daemon and a CLI command (or two producers) often open a new database at the same
// moment; switching it to WAL needs an exclusive lock that SQLite's busy handler does not wait
// for, so one of them used to fail with "database is locked".
TEST(SqliteStoreOpen, ProcessesOpeningANewDatabaseTogetherAllSucceed) {
  TempDir dir;
  for (int round = 0; round < 40; ++round) {
    const auto path = (std::filesystem::path{dir.path()} / ("race-" + std::to_string(round) + ".db")).string();
    constexpr int kOpeners = 4;
    std::latch start{kOpeners};
    std::vector<std::string> errors(kOpeners);
    std::vector<std::thread> openers;
    for (int i = 0; i < kOpeners; ++i) {
      openers.emplace_back([&, i] {
        start.arrive_and_wait();
        auto store = SqliteStore::open({.path = path});
        if (!store) errors[i] = store.error().message();
      });
    }
    for (auto& opener : openers) opener.join();
    for (const auto& error : errors) ASSERT_EQ(error, "") << "round " << round;
  }
}

TEST(SqliteStoreOpen, ReportsAParentThatIsAFile) {
  TempDir dir;
  std::ofstream{dir.path() / "file"} << "x";
  auto store = SqliteStore::open({.path = (dir.path() / "file" / "jobs.db").string()});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), errc::database_error);
  EXPECT_THAT(store.error().detail, HasSubstr("is not a directory"));
}

TEST(SqliteStoreOpen, RejectsAnEmptyPath) {
  auto store = SqliteStore::open({});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), errc::invalid_argument);
  EXPECT_FALSE(store.error().detail.empty());
}

// --- definitions --------------------------------------------------------------------------

TEST_F(SqliteStoreTest, AddJobComparesProducerSpecsCanonically) {
  RawConnection raw{db_path_};
  ASSERT_EQ(raw.run("INSERT INTO jobs (key, spec) VALUES (?1, ?2)",
                    {"ext", R"({ "tags": ["a"],  "prompt": "do the thing" })"}),
            SQLITE_OK);
  core::JobDefinition same = job("ext");
  same.spec.tags = {"a"};
  EXPECT_EQ(store_->add_job(same, "cli", at(1)).value(), AddResult::unchanged);
}

TEST_F(SqliteStoreTest, MetacharactersAndUnicodeRoundTripInEveryField) {
  const std::string evil =
      "x'); DROP TABLE jobs; -- \"q\" \\ %_ ? ?1 :name @p $v \n\t\xC3\xBC \xE6\x97\xA5 "
      "\xF0\x9F\x99\x82";
  // Names and ids are one line by core's rules (a definition breaking them does not read back);
  // every other metacharacter still goes through them.
  std::string one_line = evil;
  std::erase_if(one_line, [](char c) { return c == '\n' || c == '\t'; });
  core::JobDefinition definition{
      .key = "key " + one_line,
      .org_id = "org " + one_line,
      .priority = -7,
      .spec =
          core::JobSpec{
              .prompt = "prompt " + evil + std::string("\0nul", 4),
              .title = "title " + one_line,
              .tags = {"tag " + one_line, " "},
              .create_as_user_id = "user " + one_line,
              .playbook_id = "playbook " + one_line,
              .knowledge_ids = std::vector<std::string>{"k " + one_line},
              .secret_ids = std::vector<std::string>{"s " + one_line},
              .repos = {"repo " + one_line},
              .max_acu_limit = 5,
              .structured_output_schema =
                  R"({"description":"schema ')" + std::string("; --") + R"("})",
              .devin_mode = "normal",
          },
  };
  ASSERT_EQ(store_->add_job(definition, "source " + evil, at(1)).value(), AddResult::inserted);
  EXPECT_EQ(store_->add_job(definition, "source " + evil, at(1)).value(), AddResult::unchanged);

  const core::JobRecord stored = record(definition.key);
  EXPECT_EQ(stored.definition, definition);
  const std::int64_t id = stored.id;

  ASSERT_TRUE(store_->commit_intent(id, 1, "tag " + evil, 2, at(2)));
  core::Session s = session("session " + evil, "running " + evil, "detail " + evil);
  s.url = "url " + evil;
  s.acus_consumed = 1.25;
  s.pull_requests = {{.pr_url = "pr " + evil, .pr_state = "open " + evil}, {.pr_url = "pr2"}};
  s.structured_output = R"({"answer":")" + evil + R"("})";
  ASSERT_TRUE(store_->commit_session(id, s, true, at(3)));
  ASSERT_TRUE(store_->note_error(id, "error " + evil, at(4)));

  const core::JobRecord running = record(definition.key);
  EXPECT_EQ(running.creation_tag, "tag " + evil);
  EXPECT_EQ(running.session_id, s.session_id);
  EXPECT_EQ(running.session_url, s.url);
  EXPECT_EQ(running.status, s.status);
  EXPECT_EQ(running.status_detail, s.status_detail);
  EXPECT_EQ(running.last_error, "error " + evil);

  ASSERT_TRUE(store_->finish(id, JobState::cancelled, "reason " + evil, at(5)));
  auto out = store_->outcome(id);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->pull_requests, s.pull_requests);
  EXPECT_DOUBLE_EQ(out->acus_consumed, 1.25);
  EXPECT_EQ(out->structured_output, s.structured_output);

  auto entries = store_->history(id);
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 4U);
  EXPECT_EQ((*entries)[0].message, "source " + evil);
  EXPECT_EQ((*entries)[2].event, "adopted");
  EXPECT_EQ((*entries)[2].status, s.status);
  EXPECT_EQ((*entries)[2].status_detail, s.status_detail);
  EXPECT_EQ((*entries)[2].message, s.session_id);
  EXPECT_EQ((*entries)[3].message, "reason " + evil);
  EXPECT_EQ(record(definition.key).last_error, "reason " + evil);

  // Nothing was executed as SQL along the way.
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.integer("SELECT count(*) FROM jobs"), 1);
}

// --- lifecycle ----------------------------------------------------------------------------

TEST_F(SqliteStoreTest, ProducerRowsAreClaimedAndBadOnesInvalidated) {
  RawConnection producer{db_path_};
  const std::int64_t before = core::to_epoch_ms(core::wall_now());
  ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES (?1, ?2)",
                         {"ext-good", R"({"prompt":"from the queue"})"}),
            SQLITE_OK)
      << producer.error();
  const std::int64_t after = core::to_epoch_ms(core::wall_now());
  ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec, priority) VALUES (?1, ?2, 9)",
                         {"ext-broken", "{not json"}),
            SQLITE_OK);
  ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec, priority) VALUES (?1, ?2, 8)",
                         {"ext-typo", R"({"prompt":"p","tgas":[]})"}),
            SQLITE_OK);

  // Broken rows rank first but must not use up the batch.
  auto ready = store_->claimable(at(10), 1);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->size(), 1U);
  const core::JobRecord& good = (*ready)[0];
  EXPECT_EQ(good.definition.key, "ext-good");
  EXPECT_EQ(good.definition.spec.prompt, "from the queue");
  EXPECT_EQ(good.definition.priority, 0);
  EXPECT_FALSE(good.definition.org_id.has_value());
  EXPECT_EQ(good.state, JobState::queued);
  EXPECT_EQ(good.generation, 0);
  EXPECT_EQ(good.attempts, 0);
  EXPECT_GE(good.created_at_ms, before - 1);
  EXPECT_LE(good.created_at_ms, after + 1);
  EXPECT_EQ(producer.text("SELECT source FROM jobs WHERE key = 'ext-good'"), "queue");

  const core::JobRecord broken = record("ext-broken");
  EXPECT_EQ(broken.state, JobState::invalid);
  ASSERT_TRUE(broken.last_error.has_value());
  EXPECT_THAT(*broken.last_error, StartsWith("invalid spec: not valid JSON: "));
  EXPECT_THAT(events(*store_, broken.id), ElementsAre("invalid"));
  EXPECT_EQ(record("ext-typo").last_error, "invalid spec: unknown field 'tgas'");
  EXPECT_EQ(store_->outcome(broken.id).value().finished_at_ms, 10);

  EXPECT_EQ(store_->count_by_state().value().at(JobState::invalid), 2);
  EXPECT_EQ(keys(store_->claimable(at(11), 5).value()), std::vector<std::string>{"ext-good"});
}

// Issue 24 through the documented producer path (docs/queue.md): the script that inserted a bad
// row is fixed and run again, with the same INSERT ... ON CONFLICT (key) DO NOTHING. That mends
// the invalid job (schema v7's trigger) and the daemon then runs it.
TEST_F(SqliteStoreTest, AProducersCorrectedRowMendsItsInvalidJob) {
  RawConnection producer{db_path_};
  const std::string insert =
      "INSERT INTO jobs (key, spec, priority, source) VALUES (?1, ?2, ?3, 'enqueue.py') "
      "ON CONFLICT (key) DO NOTHING";
  ASSERT_EQ(producer.run(insert, {"ext", R"({"prompt":"p","tags":"ci"})", "1"}), SQLITE_OK);
  ASSERT_TRUE(store_->claimable(at(10), 5));
  ASSERT_EQ(record("ext").state, JobState::invalid);
  // The same broken row again changes nothing: a producer retrying its script does not make
  // the job flip between invalid and queued.
  ASSERT_EQ(producer.run(insert, {"ext", R"({"prompt":"p","tags":"ci"})", "1"}), SQLITE_OK);
  EXPECT_EQ(record("ext").state, JobState::invalid);

  ASSERT_EQ(producer.run(insert, {"ext", R"({"prompt":"p","tags":["ci"]})", "2"}), SQLITE_OK)
      << producer.error();
  const core::JobRecord mended = record("ext");
  EXPECT_EQ(mended.state, JobState::queued);
  EXPECT_EQ(mended.definition.spec.tags, std::vector<std::string>{"ci"});
  EXPECT_EQ(mended.definition.priority, 2);
  EXPECT_EQ(mended.last_error, std::nullopt);
  EXPECT_EQ(store_->outcome(mended.id).value().finished_at_ms, std::nullopt);
  const auto entries = store_->history(mended.id).value();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].event, "invalid");
  EXPECT_EQ(entries[1].event, "mended");
  EXPECT_EQ(entries[1].state, "queued");
  EXPECT_EQ(entries[1].message, "definition replaced by enqueue.py: priority, spec differ");
  EXPECT_EQ(producer.integer("SELECT count(*) FROM jobs"), 1);
  EXPECT_EQ(keys(store_->claimable(at(20), 5).value()), std::vector<std::string>{"ext"});

  // Only an invalid job: now queued, another row under its key is dropped as before.
  ASSERT_EQ(producer.run(insert, {"ext", R"({"prompt":"other"})", "2"}), SQLITE_OK);
  EXPECT_EQ(record("ext").definition.spec.prompt, "p");
  EXPECT_THAT(events(*store_, mended.id), ElementsAre("invalid", "mended"));
}

// A plain INSERT of an existing key fails, and the mend fails with it: nothing changes.
TEST_F(SqliteStoreTest, AFailedProducerInsertMendsNothing) {
  ASSERT_TRUE(store_->add_invalid("typo", "file:jobs.yaml", "unknown field 'promt'", at(1)));
  RawConnection producer{db_path_};
  EXPECT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES ('typo', '{\"prompt\":\"p\"}')"),
            SQLITE_CONSTRAINT_UNIQUE);
  EXPECT_EQ(record("typo").state, JobState::invalid);
  EXPECT_THAT(events(*store_, id_of("typo")), ElementsAre("invalid"));
}

// `delete` and retention keep what prune keeps: the outcome, in the archive.
TEST_F(SqliteStoreTest, DeleteAndRetentionArchiveTheOutcome) {
  running_job("deleted");
  running_job("retired");
  for (const char* key : {"deleted", "retired"}) {
    ASSERT_TRUE(store_->finish(id_of(key), JobState::failed, "boom", at(5)));
  }
  ASSERT_EQ(store_->delete_job("deleted", at(6)).value(), DeleteResult::deleted);
  ASSERT_EQ(store_->prune_ended(at(6), at(7), 100).value(), 1);
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.text("SELECT group_concat(key || ':' || state || ':' || session_id || ':' || "
                     "pruned_at, ' ') FROM (SELECT * FROM outcomes ORDER BY id)"),
            "deleted:failed:s-deleted:6 retired:failed:s-retired:7");
  EXPECT_EQ(raw.integer("SELECT count(*) FROM jobs"), 0);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM job_events"), 0);
}

TEST_F(SqliteStoreTest, StrictTablesRefuseWrongTypesFromProducers) {
  RawConnection producer{db_path_};
  EXPECT_EQ(producer.run("INSERT INTO jobs (key, spec, priority) VALUES ('p', '{}', 'abc')"),
            SQLITE_CONSTRAINT_DATATYPE);
  EXPECT_THAT(producer.error(),
              HasSubstr("cannot store TEXT value in INTEGER column jobs.priority"));
  // A number is converted losslessly to TEXT even by STRICT; a blob is not.
  EXPECT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES ('s', X'7b7d')"),
            SQLITE_CONSTRAINT_DATATYPE);
  EXPECT_EQ(producer.run("INSERT INTO jobs (key, spec, priority) VALUES ('f', '{}', 1.5)"),
            SQLITE_CONSTRAINT_DATATYPE);
  EXPECT_EQ(producer.run("INSERT INTO jobs (key, spec, state) VALUES ('t', '{}', 'bogus')"),
            SQLITE_CONSTRAINT_CHECK);
  EXPECT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES ('', '{}')"),
            SQLITE_CONSTRAINT_CHECK);
  EXPECT_EQ(producer.run("INSERT INTO jobs (key) VALUES ('no-spec')"), SQLITE_CONSTRAINT_NOTNULL);
  EXPECT_EQ(producer.integer("SELECT count(*) FROM jobs"), 0);
}

TEST_F(SqliteStoreTest, SchemaAcceptsEveryJobStateAndCountsThem) {
  RawConnection producer{db_path_};
  int states = 0;
  for (int value = 0;; ++value) {
    const auto name = core::to_string(static_cast<JobState>(value));
    if (name == "unknown") break;
    ++states;
    ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec, state) VALUES (?1, '{}', ?1)",
                           {std::string(name)}),
              SQLITE_OK)
        << name << ": " << producer.error();
  }
  EXPECT_EQ(states, 12);
  const auto counts = store_->count_by_state().value();
  EXPECT_EQ(counts.size(), 12U);
  for (const auto& [state, count] : counts) EXPECT_EQ(count, 1) << core::to_string(state);
}

TEST_F(SqliteStoreTest, DataVersionMovesOnlyForOtherConnections) {
  const std::int64_t initial = store_->change_mark().value();
  ASSERT_TRUE(store_->all_jobs());
  EXPECT_EQ(store_->change_mark().value(), initial);
  ASSERT_TRUE(store_->add_job(job("own"), "test", at(1)));  // our own commit
  const std::int64_t after_own = store_->change_mark().value();
  EXPECT_EQ(after_own, initial);

  RawConnection producer{db_path_};
  ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES ('theirs', '{\"prompt\":\"p\"}')"),
            SQLITE_OK);
  EXPECT_NE(store_->change_mark().value(), after_own);
}

TEST_F(SqliteStoreTest, BusyDatabaseFailsCleanlyWithAMessage) {
  store_ = open_store(core::Duration{0});
  RawConnection other{db_path_};
  ASSERT_EQ(other.run("BEGIN IMMEDIATE"), SQLITE_OK);
  auto blocked = store_->add_job(job("blocked"), "test", at(1));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error(), errc::storage_busy);
  EXPECT_THAT(blocked.error().detail, HasSubstr("database is locked"));
  ASSERT_EQ(other.run("COMMIT"), SQLITE_OK);

  EXPECT_EQ(store_->add_job(job("blocked"), "test", at(2)).value(), AddResult::inserted);
  EXPECT_THAT(events(*store_, id_of("blocked")), ElementsAre("queued"));
}

TEST_F(SqliteStoreTest, AFailedTransactionLeavesNoTrace) {
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  // A trigger stands in for any failure in the middle of a transaction: the history insert
  // fails after the job row was written.
  RawConnection admin{db_path_};
  ASSERT_EQ(admin.run("CREATE TRIGGER refuse BEFORE INSERT ON job_events "
                      "WHEN NEW.event = 'intent' BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            SQLITE_OK);
  const std::int64_t id = id_of("a");
  auto intent = store_->commit_intent(id, 1, "tag", 5, at(5));
  ASSERT_FALSE(intent);
  EXPECT_EQ(intent.error(), errc::database_error);
  EXPECT_THAT(intent.error().detail, HasSubstr("refused"));
  const core::JobRecord unchanged = record("a");
  EXPECT_EQ(unchanged.state, JobState::queued);
  EXPECT_FALSE(unchanged.intent_at_ms.has_value());
  EXPECT_EQ(unchanged.attempts, 0);
  // And the connection is usable afterwards.
  ASSERT_EQ(admin.run("DROP TRIGGER refuse"), SQLITE_OK);
  EXPECT_TRUE(store_->commit_intent(id, 1, "tag", 5, at(6)));
}

TEST_F(SqliteStoreTest, AnotherConnectionHoldingTheWriteLockIsSeen) {
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  EXPECT_FALSE(store_->commit_in_flight_elsewhere().value());
  // Another connection (in this process, which the probe must see too) mid-transaction.
  RawConnection writer{db_path_};
  ASSERT_EQ(writer.run("BEGIN IMMEDIATE"), SQLITE_OK);
  ASSERT_EQ(writer.run("UPDATE jobs SET priority = 3 WHERE key = 'a'"), SQLITE_OK);
  EXPECT_TRUE(store_->commit_in_flight_elsewhere().value());
  ASSERT_EQ(writer.run("COMMIT"), SQLITE_OK);
  EXPECT_FALSE(store_->commit_in_flight_elsewhere().value());
  // Our own write transactions never count: the lock is ours only while one runs.
  ASSERT_TRUE(store_->add_job(job("b"), "test", at(2)));
  EXPECT_FALSE(store_->commit_in_flight_elsewhere().value());
}

TEST_F(SqliteStoreTest, WriteHooksRunAroundEachWriteTransactionOnly) {
  std::vector<std::string> calls;
  store_->set_write_hooks({
      .before = [&] { calls.push_back("before"); },
      // Once the transaction is over the write lock is free again, even after a failure.
      .after = [&] { calls.push_back(store_->commit_in_flight_elsewhere().value() ? "locked"
                                                                               : "after"); },
  });
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  EXPECT_EQ(calls, (std::vector<std::string>{"before", "after"}));
  calls.clear();
  ASSERT_TRUE(store_->claimable(at(2), 10));  // a read
  ASSERT_TRUE(store_->change_mark());
  EXPECT_TRUE(calls.empty());
  RawConnection admin{db_path_};
  ASSERT_EQ(admin.run("CREATE TRIGGER refuse BEFORE INSERT ON job_events "
                      "WHEN NEW.event = 'intent' BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            SQLITE_OK);
  EXPECT_FALSE(store_->commit_intent(id_of("a"), 1, "tag", 5, at(5)));
  EXPECT_EQ(calls, (std::vector<std::string>{"before", "after"}));
  store_->set_write_hooks({});
  calls.clear();
  ASSERT_TRUE(store_->add_job(job("b"), "test", at(6)));
  EXPECT_TRUE(calls.empty());
}

TEST_F(SqliteStoreTest, DeletingAJobCascadesToItsHistory) {
  const std::int64_t id = running_job("gone");
  // Any tool that deletes a row with foreign keys enforced (as the store's connection does)
  // takes its history with it: the cascade is the schema's.
  RawConnection raw{db_path_};
  ASSERT_EQ(raw.run("PRAGMA foreign_keys = ON"), SQLITE_OK);
  ASSERT_EQ(raw.run("DELETE FROM jobs WHERE key = 'gone'"), SQLITE_OK) << raw.error();
  EXPECT_TRUE(store_->history(id).value().empty());
}

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

class JobControlsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStore::open(StoreOptions{.path = (dir_.path() / "c.db").string()});
    ASSERT_TRUE(opened);
    store_ = std::move(*opened);
  }
  core::JobRecord get(const std::string& key) { return store_->find(key).value().value(); }
  static core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(1'800'000'000'000 + ms); }

  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(JobControlsStoreTest, BadControlsFromAProducerEndInvalid) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "c.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "INSERT INTO jobs (key, spec, controls) VALUES "
                         "('bad', '{\"prompt\": \"p\"}', '{\"complete_on\": \"never\"}')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  EXPECT_TRUE(store_->claimable(at(0), 10).value().empty());
  const auto bad = get("bad");
  EXPECT_EQ(bad.state, core::JobState::invalid);
  EXPECT_NE(bad.last_error.value().find("complete_on"), std::string::npos);
}

TEST(SqliteStoreMigration, AVersionOneDatabaseIsMigratedWithItsRowsIntact) {
  TempDir dir;
  const auto path = (dir.path() / "v1.db").string();
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, migrations().front().sql, nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "PRAGMA user_version = 1; INSERT INTO jobs (key, spec) VALUES "
                           "('from-v1', '{\"prompt\": \"old\"}')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto store = SqliteStore::open(StoreOptions{.path = path});
  ASSERT_TRUE(store);
  const auto job = (*store)->find("from-v1").value();
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->definition.spec.prompt, "old");
  EXPECT_EQ(job->definition.controls, core::JobControls{});
  EXPECT_EQ((*store)->claimable(core::wall_now(), 10).value().size(), 1U);
}

TEST(SqliteStoreMigration, AVersionThreeDatabaseGetsTheCheaperStateConstraint) {
  TempDir dir;
  const auto path = (dir.path() / "v3.db").string();
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    for (const Migration& migration : migrations().first(3)) {
      ASSERT_EQ(sqlite3_exec(raw, migration.sql, nullptr, nullptr, nullptr), SQLITE_OK);
    }
    ASSERT_EQ(sqlite3_exec(raw,
                           "PRAGMA user_version = 3; INSERT INTO jobs (key, spec, state) VALUES "
                           "('from-v3', '{\"prompt\": \"old\"}', 'timed_out')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  {
    RawConnection before{path};
    EXPECT_NE(before.opcodes("UPDATE jobs SET state = 'dead'").find("OpenEphemeral"),
              std::string::npos);
  }
  auto store = SqliteStore::open(StoreOptions{.path = path});
  ASSERT_TRUE(store);
  EXPECT_EQ((*store)->find("from-v3").value()->state, core::JobState::timed_out);

  RawConnection raw{path};
  EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version());
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
  const std::string definition = raw.text("SELECT sql FROM sqlite_schema WHERE name = 'jobs'");
  EXPECT_EQ(definition.find("state IN"), std::string::npos) << definition;
  EXPECT_NE(definition.find("state = 'timed_out'"), std::string::npos) << definition;
  EXPECT_EQ(raw.opcodes("UPDATE jobs SET state = 'dead'").find("OpenEphemeral"),
            std::string::npos);
  EXPECT_EQ(raw.run("UPDATE jobs SET state = 'gone'"), SQLITE_CONSTRAINT_CHECK);
}

TEST(SqliteStoreMigration, AVersionEightDatabaseTakesTheStalledStateAndItsColumn) {
  TempDir dir;
  const auto path = (dir.path() / "v8.db").string();
  const auto apply = [&path](std::span<const Migration> steps, const char* then) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    for (const Migration& migration : steps) {
      // v4 edits the schema's text, which needs writable_schema (as the store's runner does);
      // the next connection reads the edited text.
      if (migration.edits_schema_text) {
        ASSERT_EQ(sqlite3_exec(raw, "PRAGMA writable_schema = ON", nullptr, nullptr, nullptr),
                  SQLITE_OK);
      }
      ASSERT_EQ(sqlite3_exec(raw, migration.sql, nullptr, nullptr, nullptr), SQLITE_OK)
          << migration.version << ": " << sqlite3_errmsg(raw);
    }
    ASSERT_EQ(sqlite3_exec(raw, then, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
    sqlite3_close(raw);
  };
  apply(migrations().first(4), "PRAGMA user_version = 4");
  apply(migrations().subspan(4, 4),
        "PRAGMA user_version = 8; INSERT INTO jobs (key, spec, state) VALUES "
        "('from-v8', '{\"prompt\": \"old\"}', 'timed_out')");
  {
    RawConnection before{path};
    ASSERT_EQ(before.run("UPDATE jobs SET state = 'stalled'"), SQLITE_CONSTRAINT_CHECK);
  }
  auto store = SqliteStore::open(StoreOptions{.path = path});
  ASSERT_TRUE(store) << (store ? "" : store.error().detail);
  EXPECT_EQ((*store)->find("from-v8").value()->state, core::JobState::timed_out);
  EXPECT_FALSE((*store)->find("from-v8").value()->stalled_since_ms);
  RawConnection raw{path};
  EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version());
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.run("UPDATE jobs SET state = 'stalled', stalled_since = 1"), SQLITE_OK)
      << raw.error();
  EXPECT_EQ(raw.run("UPDATE jobs SET state = 'gone'"), SQLITE_CONSTRAINT_CHECK);
}

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

TEST(SqliteStoreBatch, AddJobsReportsEachOutcomeInOneTransaction) {
  TempDir dir;
  auto store = SqliteStore::open(StoreOptions{.path = (dir.path() / "b.db").string()}).value();
  ASSERT_TRUE(store->add_job({.key = "old", .spec = {.prompt = "p"}}, "t", core::wall_now()));
  const std::vector<core::JobDefinition> batch{{.key = "old", .spec = {.prompt = "p"}},
                                               {.key = "old2", .spec = {.prompt = "p"}},
                                               {.key = "old", .spec = {.prompt = "changed"}}};
  const auto results = store->add_jobs(batch, "t", core::wall_now());
  ASSERT_TRUE(results);
  EXPECT_EQ(*results, (std::vector<AddResult>{AddResult::unchanged, AddResult::inserted,
                                              AddResult::changed}));
  // All or none: a key the schema refuses rolls the whole batch back.
  const std::vector<core::JobDefinition> bad{{.key = "fresh", .spec = {.prompt = "p"}},
                                             {.key = std::string(600, 'k'), .spec = {.prompt = "p"}}};
  EXPECT_FALSE(store->add_jobs(bad, "t", core::wall_now()));
  EXPECT_FALSE(store->find("fresh").value().has_value());
}

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

TEST(SqliteStoreClaim, APausedOrganisationsBacklogDoesNotStarveTheOthers) {
  TempDir dir;
  auto store = SqliteStore::open(StoreOptions{.path = (dir.path() / "p.db").string()}).value();
  const auto now = core::wall_now();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->add_job({.key = "paused-" + std::to_string(i), .org_id = "org-paused",
                                .priority = 10, .spec = {.prompt = "p"}},
                               "t", now));
  }
  ASSERT_TRUE(store->add_job({.key = "default-org", .spec = {.prompt = "p"}}, "t", now));
  ASSERT_TRUE(store->add_job({.key = "other-org", .org_id = "org-b", .spec = {.prompt = "p"}},
                             "t", now));
  // Without the filter the paused organisation's higher-priority backlog fills the window.
  auto unfiltered = store->claimable(now, 2).value();
  EXPECT_EQ(unfiltered.front().definition.org_id, "org-paused");
  const auto ready =
      store->claimable(now, 2, {.paused_orgs = {"org-paused"}, .default_org = "org-a"}).value();
  ASSERT_EQ(ready.size(), 2U);
  EXPECT_EQ(ready[0].definition.key, "default-org");
  EXPECT_EQ(ready[1].definition.key, "other-org");
  // The default organisation is matched through NULL org_id.
  const auto only_b =
      store->claimable(now, 10, {.paused_orgs = {"org-paused", "org-a"}, .default_org = "org-a"})
          .value();
  ASSERT_EQ(only_b.size(), 1U);
  EXPECT_EQ(only_b[0].definition.key, "other-org");
}

// A producer's raw row is read as every other reader reads it: list_jobs's tag filter decodes
// the spec rather than asking SQLite's JSON functions, which would see tags the program rejects.
TEST_F(SqliteStoreTest, AStoredSpecThatDoesNotDecodeHasNoTags) {
  core::JobDefinition good = job("good");
  good.spec.tags = {"ci"};
  ASSERT_TRUE(store_->add_job(good, "test", at(1000)));
  RawConnection producer{db_path_};
  ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES "
                         "('bad', '{\"prompt\":\"p\",\"tags\":[\"ci\", 7]}')"),
            SQLITE_OK);
  const auto summary_keys = [&](const JobFilter& filter) {
    std::vector<std::string> out;
    for (const auto& summary : store_->list_jobs(filter).value()) out.push_back(summary.key);
    return out;
  };
  EXPECT_THAT(summary_keys({.tag = "ci"}), ElementsAre("good"));
  EXPECT_THAT(summary_keys({}), ElementsAre("good", "bad"));
}

}  // namespace
}  // namespace devin_orch::store
