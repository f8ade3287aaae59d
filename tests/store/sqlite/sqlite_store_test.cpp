// Tests for JobStore against real database files in temporary directories, including a second
// raw SQLite connection acting as an external queue producer.
#include "devin_orch/store/job_store.hpp"

#include "devin_orch/store/schema.hpp"
#include "devin_orch/store/spec_codec.hpp"
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

core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(ms); }

core::JobDefinition job(std::string key, std::int64_t priority = 0) {
  return core::JobDefinition{
      .key = std::move(key),
      .priority = priority,
      .spec = core::JobSpec{.prompt = "do the thing"},
  };
}

core::Session session(std::string id, std::string status,
                     std::optional<std::string> detail = std::nullopt) {
  return core::Session{
      .session_id = id,
      .url = "https://app.devin.ai/sessions/" + id,
      .status = std::move(status),
      .status_detail = std::move(detail),
  };
}

std::vector<std::string> events(JobStore& store, std::int64_t job_id) {
  auto entries = store.history(job_id);
  EXPECT_TRUE(entries);
  std::vector<std::string> names;
  if (entries) {
    for (const auto& entry : *entries) names.push_back(entry.event);
  }
  return names;
}

std::vector<std::string> keys(const std::vector<core::JobRecord>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(j.definition.key);
  return out;
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store();
    ASSERT_TRUE(store_);
  }

  std::unique_ptr<JobStore> open_store(core::Duration busy_timeout = core::Duration{5'000}) {
    std::string error;
    auto opened = JobStore::open({.path = db_path_.string(), .busy_timeout = busy_timeout}, &error);
    EXPECT_TRUE(opened) << error;
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
  std::unique_ptr<JobStore> store_;
};

mode_t mode_of(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

// --- open ---------------------------------------------------------------------------------

TEST(JobStoreOpen, CreatesPrivateDirectoriesAndFile) {
  TempDir dir;
  const auto path = dir.path() / "state" / "orch" / "jobs.db";
  // With the usual umask SQLite alone would create a world-readable 0644 file.
  const mode_t old_umask = ::umask(022);
  std::string error;
  auto store = JobStore::open({.path = path.string()}, &error);
  ::umask(old_umask);
  ASSERT_TRUE(store) << error;
  EXPECT_EQ(mode_of(dir.path() / "state"), 0700U);
  EXPECT_EQ(mode_of(dir.path() / "state" / "orch"), 0700U);
  EXPECT_EQ(mode_of(path), 0600U);
  // WAL side files inherit the database file's mode.
  ASSERT_TRUE((*store)->add_job(job("k"), "test", at(1)));
  EXPECT_EQ(mode_of(path.string() + "-wal"), 0600U);
}

TEST(JobStoreOpen, LeavesAnExistingDirectoryAlone) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto store = JobStore::open({.path = (dir.path() / "jobs.db").string()});
  ASSERT_TRUE(store);
  EXPECT_EQ(mode_of(dir.path()), 0755U);
}

TEST_F(JobStoreTest, ConfiguresTheConnection) {
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");  // persistent, so visible to others
  EXPECT_EQ(raw.integer("PRAGMA user_version"), latest_schema_version());
  EXPECT_EQ(latest_schema_version(), 5);

  // Per-connection settings: only the store's own connection can report them.
  const auto settings = store_->connection_settings();
  ASSERT_TRUE(settings) << store_->last_error_message();
  EXPECT_EQ(settings->synchronous, 1);  // NORMAL; sync_wal fsyncs what must be
  EXPECT_TRUE(settings->foreign_keys);
  EXPECT_EQ(settings->busy_timeout_ms, 5000);
  EXPECT_EQ(settings->cache_size, -256);  // KiB; SQLite's default would be -2000
}

TEST_F(JobStoreTest, TheCacheSizeComesFromTheOptions) {
  store_.reset();
  std::string error;
  auto opened = JobStore::open({.path = db_path_.string(), .cache_kib = 1024}, &error);
  ASSERT_TRUE(opened) << error;
  const auto settings = (*opened)->connection_settings();
  ASSERT_TRUE(settings);
  EXPECT_EQ(settings->cache_size, -1024);
}

// The state constraint is checked by every INSERT and every UPDATE that assigns state; as an IN
// list it made SQLite build and free a temporary b-tree each time (schema v4).
TEST_F(JobStoreTest, TheStateConstraintHoldsWithoutATemporaryTable) {
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.opcodes("UPDATE jobs SET state = 'running' WHERE id = 1").find("OpenEphemeral"),
            std::string::npos);
  EXPECT_EQ(raw.opcodes("INSERT INTO jobs (key, spec) VALUES ('k', '{}')").find("OpenEphemeral"),
            std::string::npos);
  EXPECT_EQ(raw.run("INSERT INTO jobs (key, spec, state) VALUES ('bad', '{}', 'running ')"),
            SQLITE_CONSTRAINT_CHECK);
  for (const char* state : {"queued", "creating", "running", "finished", "failed", "suspended",
                            "dead", "lost", "invalid", "cancelled", "timed_out"}) {
    EXPECT_EQ(raw.run("INSERT INTO jobs (key, spec, state) VALUES (?1, '{}', ?1)", {state}),
              SQLITE_OK)
        << state << ": " << raw.error();
  }
}

TEST_F(JobStoreTest, ReopenKeepsDataAndVersion) {
  ASSERT_TRUE(store_->add_job(job("persisted"), "test", at(1)));
  store_.reset();
  store_ = open_store();
  ASSERT_TRUE(store_);
  EXPECT_EQ(record("persisted").definition, job("persisted"));
  RawConnection raw{db_path_};
  EXPECT_EQ(raw.integer("PRAGMA user_version"), 5);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 5);
}

// A burst of creates shares one fsynced transaction; a job that moved on meanwhile is refused
// on its own and the others still take.
TEST_F(JobStoreTest, IntentsOfSeveralJobsCommitTogetherWithTheirOwnOutcomes) {
  for (const char* key : {"a", "b", "c"}) ASSERT_TRUE(store_->add_job(job(key), "test", at(0)));
  ASSERT_EQ(store_->request_cancel("b", false, at(1)).value(), JobStore::CancelResult::cancelled);
  const std::vector<IntentWrite> intents{
      {.job_id = record("a").id, .attempt = 1, .tag = "orch-a-g0", .intent_at_ms = 2},
      {.job_id = record("b").id, .attempt = 1, .tag = "orch-b-g0", .intent_at_ms = 2},
      {.job_id = record("c").id, .attempt = 1, .tag = "orch-c-g0", .intent_at_ms = 2}};
  const auto outcomes = store_->commit_intents(intents, at(2));
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(outcomes->size(), 3U);
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_EQ((*outcomes)[1].error(), errc::conflict);
  EXPECT_TRUE((*outcomes)[2]);
  EXPECT_EQ(record("a").state, core::JobState::creating);
  EXPECT_EQ(record("a").creation_tag, "orch-a-g0");
  EXPECT_EQ(record("b").state, core::JobState::cancelled);
  EXPECT_EQ(record("c").state, core::JobState::creating);
  EXPECT_EQ(record("c").intent_at_ms, 2);
}

// Sessions answered close together are recorded in one transaction; a job that moved on
// meanwhile is refused alone.
TEST_F(JobStoreTest, SessionsOfSeveralJobsCommitTogetherWithTheirOwnOutcomes) {
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->add_job(job(key), "test", at(0)));
    ASSERT_TRUE(store_->commit_intent(record(key).id, 1, std::string("orch-") + key, 1, at(1)));
  }
  ASSERT_TRUE(store_->finish(record("b").id, core::JobState::dead, "gave up", at(2)));
  const std::vector<SessionWrite> writes{
      {.job_id = record("a").id, .session = {.session_id = "devin-a", .status = "running"}},
      {.job_id = record("b").id, .session = {.session_id = "devin-b", .status = "running"}},
      {.job_id = record("c").id,
       .session = {.session_id = "devin-c", .status = "running"},
       .adopted = true}};
  const auto outcomes = store_->commit_sessions(writes, at(3));
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(outcomes->size(), 3U);
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_EQ((*outcomes)[1].error(), errc::conflict);
  EXPECT_TRUE((*outcomes)[2]);
  EXPECT_EQ(record("a").state, core::JobState::running);
  EXPECT_EQ(record("a").session_id, "devin-a");
  EXPECT_EQ(record("b").state, core::JobState::dead);
  EXPECT_EQ(record("c").session_id, "devin-c");
}

// Which writes are fsynced: a create intent must be on disk before the create is sent; a
// session id or a status may be lost to a power cut (the tag lookup or the next poll finds it
// again), so those commits skip the fsync. Observed as fsyncs of the WAL file.
TEST_F(JobStoreTest, OnlyWritesARestartCanRepairSkipTheFsync) {
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
TEST_F(JobStoreTest, AFailedFsyncOfAnIntentIsReportedAsSuch) {
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
  EXPECT_NE(store_->last_error_message().find("fsync"), std::string::npos)
      << store_->last_error_message();
  // A relaxed write does not fsync, so it is unaffected.
  const core::Session session{.session_id = "devin-1", .url = "u", .status = "running"};
  EXPECT_TRUE(store_->commit_session(id, session, false, at(2)));
  store_.reset();
}

TEST_F(JobStoreTest, DeadlineLookupUsesItsIndex) {
  RawConnection raw{db_path_};
  const std::string plan = raw.query_plan(
      "SELECT id FROM jobs INDEXED BY jobs_deadline WHERE deadline IS NOT NULL AND "
      "deadline <= 5 AND state IN ('queued', 'creating', 'running') ORDER BY id");
  EXPECT_NE(plan.find("USING INDEX jobs_deadline"), std::string::npos) << plan;
}

// The daemon asks for cancellations whenever another process writes; the answer must come
// from the partial index (cancel_requests() names it with INDEXED BY, which needs the index to
// exist and its WHERE to cover the query's), not from reading every active job.
TEST_F(JobStoreTest, CancellationLookupUsesItsIndex) {
  RawConnection raw{db_path_};
  const std::string plan = raw.query_plan(
      "SELECT id FROM jobs INDEXED BY jobs_cancel_requested WHERE cancel_requested <> 0 AND "
      "state IN ('queued', 'creating', 'running') ORDER BY id");
  EXPECT_NE(plan.find("USING INDEX jobs_cancel_requested"), std::string::npos) << plan;
}

TEST_F(JobStoreTest, RefusesANewerSchema) {
  store_.reset();
  {
    RawConnection raw{db_path_};
    ASSERT_EQ(raw.run("PRAGMA user_version = 7"), SQLITE_OK);
  }
  std::string error;
  auto reopened = JobStore::open({.path = db_path_.string()}, &error);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error(), errc::database_error);
  EXPECT_EQ(error, "database schema version 7 is newer than this devin-orch supports (" +
                       std::to_string(latest_schema_version()) + ")");
}

// The daemon and a CLI command (or two producers) often open a new database at the same
// moment; switching it to WAL needs an exclusive lock that SQLite's busy handler does not wait
// for, so one of them used to fail with "database is locked".
TEST(JobStoreOpen, ProcessesOpeningANewDatabaseTogetherAllSucceed) {
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
        std::string error;
        auto store = JobStore::open({.path = path}, &error);
        if (!store) errors[i] = error.empty() ? "failed" : error;
      });
    }
    for (auto& opener : openers) opener.join();
    for (const auto& error : errors) ASSERT_EQ(error, "") << "round " << round;
  }
}

TEST(JobStoreOpen, ReportsAParentThatIsAFile) {
  TempDir dir;
  std::ofstream{dir.path() / "file"} << "x";
  std::string error;
  auto store = JobStore::open({.path = (dir.path() / "file" / "jobs.db").string()}, &error);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), errc::database_error);
  EXPECT_THAT(error, HasSubstr("is not a directory"));
}

TEST(JobStoreOpen, RejectsAnEmptyPath) {
  std::string error;
  auto store = JobStore::open({}, &error);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), errc::invalid_argument);
  EXPECT_FALSE(error.empty());
}

// --- definitions --------------------------------------------------------------------------

TEST_F(JobStoreTest, AddJobInsertsOnceAndReportsChangesWithoutApplyingThem) {
  core::JobDefinition original = job("k", 3);
  original.org_id = "org-a";
  EXPECT_EQ(store_->add_job(original, "file:jobs.yaml", at(100)).value(), AddResult::inserted);
  EXPECT_EQ(store_->add_job(original, "file:jobs.yaml", at(200)).value(), AddResult::unchanged);

  core::JobDefinition other_priority = original;
  other_priority.priority = 4;
  core::JobDefinition other_org = original;
  other_org.org_id = std::nullopt;
  core::JobDefinition other_spec = original;
  other_spec.spec.tags = {"new"};
  for (const auto& changed : {other_priority, other_org, other_spec}) {
    EXPECT_EQ(store_->add_job(changed, "file:jobs.yaml", at(300)).value(), AddResult::changed);
  }

  const core::JobRecord stored = record("k");
  EXPECT_EQ(stored.definition, original);
  EXPECT_EQ(stored.state, JobState::queued);
  EXPECT_EQ(stored.created_at_ms, 100);
  EXPECT_EQ(stored.updated_at_ms, 100);
  auto entries = store_->history(stored.id);
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 1U);
  EXPECT_EQ((*entries)[0].event, "queued");
  EXPECT_EQ((*entries)[0].state, "queued");
  EXPECT_EQ((*entries)[0].message, "file:jobs.yaml");
  EXPECT_EQ((*entries)[0].at_ms, 100);
}

TEST_F(JobStoreTest, AddJobComparesProducerSpecsCanonically) {
  RawConnection raw{db_path_};
  ASSERT_EQ(raw.run("INSERT INTO jobs (key, spec) VALUES (?1, ?2)",
                    {"ext", R"({ "tags": ["a"],  "prompt": "do the thing" })"}),
            SQLITE_OK);
  core::JobDefinition same = job("ext");
  same.spec.tags = {"a"};
  EXPECT_EQ(store_->add_job(same, "cli", at(1)).value(), AddResult::unchanged);
}

TEST_F(JobStoreTest, KeyLengthIsCheckedInCharacters) {
  std::string longest;
  for (int i = 0; i < 512; ++i) longest += "\xC3\xBC";  // 512 characters, 1024 bytes
  EXPECT_EQ(store_->add_job(job(longest), "test", at(1)).value(), AddResult::inserted);
  auto too_long = store_->add_job(job(longest + "x"), "test", at(1));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error(), errc::invalid_argument);
  auto empty = store_->add_job(job(""), "test", at(1));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), errc::invalid_argument);
}

TEST_F(JobStoreTest, AddInvalidRecordsTheReasonOnce) {
  EXPECT_EQ(store_
                ->add_invalid("bad", "file:jobs.yaml", "field 'tags': expected an array of strings",
                              at(10))
                .value(),
            AddResult::inserted);
  const core::JobRecord stored = record("bad");
  EXPECT_EQ(stored.state, JobState::invalid);
  EXPECT_EQ(stored.last_error, "field 'tags': expected an array of strings");
  EXPECT_EQ(store_->outcome(stored.id).value().finished_at_ms, 10);
  EXPECT_THAT(events(*store_, stored.id), ElementsAre("invalid"));

  EXPECT_EQ(store_->add_invalid("bad", "file:jobs.yaml", "other", at(11)).value(),
            AddResult::unchanged);
  ASSERT_TRUE(store_->add_job(job("good"), "test", at(1)));
  EXPECT_EQ(store_->add_invalid("good", "file:jobs.yaml", "r", at(12)).value(),
            AddResult::unchanged);
  EXPECT_EQ(record("good").state, JobState::queued);
  EXPECT_EQ(record("bad").last_error, "field 'tags': expected an array of strings");
}

// --- round trips --------------------------------------------------------------------------

TEST_F(JobStoreTest, MetacharactersAndUnicodeRoundTripInEveryField) {
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

TEST_F(JobStoreTest, FullLifecycleIsRecordedInOrder) {
  ASSERT_EQ(store_->add_job(job("life"), "cli", at(1'000)).value(), AddResult::inserted);
  auto ready = store_->claimable(at(1'500), 10);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->size(), 1U);
  const std::int64_t id = (*ready)[0].id;
  const std::string tag = core::creation_tag("life", 0);

  ASSERT_TRUE(store_->commit_intent(id, 1, tag, 2'000, at(2'000)));
  // A retried create keeps the first intent time: lookups search from there.
  ASSERT_TRUE(store_->commit_intent(id, 2, tag, 2'500, at(2'500)));
  core::JobRecord creating = record("life");
  EXPECT_EQ(creating.state, JobState::creating);
  EXPECT_EQ(creating.attempts, 2);
  EXPECT_EQ(creating.creation_tag, tag);
  EXPECT_EQ(creating.intent_at_ms, 2'000);
  EXPECT_TRUE(store_->claimable(at(2'600), 10).value().empty());

  core::Session created = session("devin-1", "running", "working");
  created.pull_requests = {{.pr_url = "https://github.com/o/r/pull/1"}};
  ASSERT_TRUE(store_->commit_session(id, created, false, at(3'000)));
  core::JobRecord running = record("life");
  EXPECT_EQ(running.state, JobState::running);
  EXPECT_EQ(running.session_id, "devin-1");
  EXPECT_EQ(running.session_url, "https://app.devin.ai/sessions/devin-1");
  EXPECT_EQ(running.status_detail, "working");
  EXPECT_EQ(store_->outcome(id).value().started_at_ms, 3'000);
  EXPECT_EQ(running.started_at_ms, 3'000);  // a restart re-attaches with the real start

  core::Session done = session("devin-1", "exit", "finished");
  done.acus_consumed = 4.5;
  done.structured_output = R"({"ok":true})";
  const StatusUpdate update{
      .job_id = id, .session = done, .new_state = JobState::finished, .reason = "session exited"};
  ASSERT_TRUE(store_->record_statuses({&update, 1}, at(4'000)));

  const core::JobRecord finished = record("life");
  EXPECT_EQ(finished.state, JobState::finished);
  EXPECT_EQ(finished.status, "exit");
  EXPECT_EQ(finished.last_error, "session exited");
  EXPECT_EQ(finished.updated_at_ms, 4'000);
  const Outcome out = store_->outcome(id).value();
  EXPECT_EQ(out.finished_at_ms, 4'000);
  EXPECT_DOUBLE_EQ(out.acus_consumed, 4.5);
  EXPECT_EQ(out.structured_output, R"({"ok":true})");
  EXPECT_TRUE(out.pull_requests.empty());

  auto entries = store_->history(id);
  ASSERT_TRUE(entries);
  EXPECT_THAT(events(*store_, id),
              ElementsAre("queued", "intent", "intent", "created", "status", "finished"));
  EXPECT_EQ((*entries)[1].message, "attempt 1");
  EXPECT_EQ((*entries)[2].message, "attempt 2");
  EXPECT_EQ((*entries)[3].state, "running");
  EXPECT_EQ((*entries)[3].status, "running");
  EXPECT_EQ((*entries)[4].status, "exit");
  EXPECT_EQ((*entries)[4].status_detail, "finished");
  EXPECT_EQ((*entries)[5].state, "finished");
  EXPECT_EQ((*entries)[5].message, "session exited");
  std::vector<std::int64_t> times;
  for (const auto& e : *entries) times.push_back(e.at_ms);
  EXPECT_THAT(times, ElementsAre(1'000, 2'000, 2'500, 3'000, 4'000, 4'000));
}

TEST_F(JobStoreTest, TransitionsFromTheWrongStateAreConflicts) {
  ASSERT_TRUE(store_->add_job(job("q"), "test", at(1)));
  const std::int64_t queued = id_of("q");
  auto early = store_->commit_session(queued, session("s", "running"), false, at(2));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error(), errc::conflict);
  EXPECT_EQ(record("q").state, JobState::queued);
  EXPECT_FALSE(record("q").session_id.has_value());
  EXPECT_THAT(events(*store_, queued), ElementsAre("queued"));

  const std::int64_t running = running_job("r");
  EXPECT_EQ(store_->commit_intent(running, 2, "t", 5, at(5)).error(), errc::conflict);
  EXPECT_EQ(store_->commit_session(running, session("s2", "running"), true, at(5)).error(),
            errc::conflict);
  EXPECT_EQ(store_->requeue(running, 1, "no", at(5)).error(), errc::conflict);
  EXPECT_EQ(record("r").session_id, "s-r");

  ASSERT_TRUE(store_->finish(running, JobState::cancelled, "operator", at(6)));
  EXPECT_EQ(store_->finish(running, JobState::failed, "late", at(7)).error(), errc::conflict);
  EXPECT_EQ(record("r").state, JobState::cancelled);

  EXPECT_EQ(store_->finish(queued, JobState::running, "x", at(7)).error(), errc::invalid_argument);
  EXPECT_EQ(store_->commit_session(9999, session("s", "running"), false, at(2)).error(),
            errc::not_found);
  EXPECT_EQ(store_->commit_intent(9999, 1, "t", 1, at(2)).error(), errc::not_found);
  EXPECT_EQ(store_->note_error(9999, "e", at(2)).error(), errc::not_found);
  EXPECT_EQ(store_->outcome(9999).error(), errc::not_found);
}

TEST_F(JobStoreTest, RequeueReturnsACreatingJobToTheQueue) {
  ASSERT_TRUE(store_->add_job(job("rq"), "test", at(1)));
  const std::int64_t id = id_of("rq");
  ASSERT_TRUE(store_->commit_intent(id, 1, "tag", 2, at(2)));
  ASSERT_TRUE(store_->requeue(id, 1, "connect failed", at(3)));
  const core::JobRecord requeued = record("rq");
  EXPECT_EQ(requeued.state, JobState::queued);
  EXPECT_EQ(requeued.attempts, 1);
  EXPECT_EQ(requeued.last_error, "connect failed");
  EXPECT_EQ(requeued.intent_at_ms, 2);
  EXPECT_THAT(events(*store_, id), ElementsAre("queued", "intent", "requeued"));
  EXPECT_EQ(keys(store_->claimable(at(4), 5).value()), std::vector<std::string>{"rq"});
}

TEST_F(JobStoreTest, NoteErrorKeepsTheState) {
  const std::int64_t id = running_job("n");
  ASSERT_TRUE(store_->note_error(id, "poll timed out", at(9)));
  const core::JobRecord noted = record("n");
  EXPECT_EQ(noted.state, JobState::running);
  EXPECT_EQ(noted.last_error, "poll timed out");
  EXPECT_EQ(noted.updated_at_ms, 9);
  EXPECT_THAT(events(*store_, id), ElementsAre("queued", "intent", "created"));
}

TEST_F(JobStoreTest, RecordStatusesWritesHistoryOnlyOnChange) {
  const std::int64_t same = running_job("same");
  const std::int64_t moved = running_job("moved");
  const std::int64_t detail = running_job("detail");

  core::Session same_status = session("s-same", "running");
  same_status.acus_consumed = 2.0;
  core::Session new_status = session("s-moved", "suspended", "inactivity");
  core::Session new_detail = session("s-detail", "running", "waiting_for_user");
  new_detail.pull_requests = {{.pr_url = "https://github.com/o/r/pull/7", .pr_state = "open"}};
  const std::vector<StatusUpdate> batch{
      {.job_id = same, .session = same_status},
      {.job_id = moved, .session = new_status},
      {.job_id = detail, .session = new_detail},
  };
  ASSERT_TRUE(store_->record_statuses(batch, at(50)));

  EXPECT_THAT(events(*store_, same), ElementsAre("queued", "intent", "created"));
  EXPECT_THAT(events(*store_, moved), ElementsAre("queued", "intent", "created", "status"));
  EXPECT_THAT(events(*store_, detail), ElementsAre("queued", "intent", "created", "status"));
  // Fields are written whether or not the status changed.
  EXPECT_DOUBLE_EQ(store_->outcome(same).value().acus_consumed, 2.0);
  EXPECT_EQ(record("same").updated_at_ms, 50);
  EXPECT_EQ(record("moved").status_detail, "inactivity");
  EXPECT_EQ(record("moved").state, JobState::running);
  EXPECT_EQ(store_->outcome(detail).value().pull_requests, new_detail.pull_requests);

  // The same batch again is no change at all.
  ASSERT_TRUE(store_->record_statuses(batch, at(60)));
  EXPECT_EQ(events(*store_, moved).size(), 4U);
  EXPECT_EQ(events(*store_, detail).size(), 4U);

  // A detail cleared to null is a change too.
  const StatusUpdate cleared{.job_id = detail, .session = session("s-detail", "running")};
  ASSERT_TRUE(store_->record_statuses({&cleared, 1}, at(70)));
  auto entries = store_->history(detail).value();
  ASSERT_EQ(entries.size(), 5U);
  EXPECT_FALSE(entries.back().status_detail.has_value());
}

TEST_F(JobStoreTest, RecordStatusesLeavesTerminalJobsAlone) {
  const std::int64_t cancelled = running_job("cancelled");
  const std::int64_t live = running_job("live");
  ASSERT_TRUE(store_->finish(cancelled, JobState::cancelled, "operator", at(10)));

  const std::vector<StatusUpdate> batch{
      {.job_id = cancelled,
       .session = session("s-cancelled", "exit"),
       .new_state = JobState::finished},
      {.job_id = 424242, .session = session("gone", "exit")},
      {.job_id = live, .session = session("s-live", "blocked")},
  };
  ASSERT_TRUE(store_->record_statuses(batch, at(20)));
  EXPECT_EQ(record("cancelled").state, JobState::cancelled);
  EXPECT_EQ(record("cancelled").status, "running");
  EXPECT_THAT(events(*store_, cancelled), ElementsAre("queued", "intent", "created", "cancelled"));
  EXPECT_EQ(record("live").status, "blocked");
}

TEST_F(JobStoreTest, RecordStatusesRejectsANonTerminalNewState) {
  const std::int64_t id = running_job("x");
  const StatusUpdate update{
      .job_id = id, .session = session("s-x", "exit"), .new_state = JobState::queued};
  EXPECT_EQ(store_->record_statuses({&update, 1}, at(5)).error(), errc::invalid_argument);
  EXPECT_EQ(record("x").status, "running");
}

// --- claiming and producers ---------------------------------------------------------------

TEST_F(JobStoreTest, ClaimableOrdersByPriorityThenAgeAndHonoursTheLimit) {
  for (const auto& [key, priority] : std::vector<std::pair<std::string, int>>{
           {"a0", 0}, {"b5", 5}, {"c0", 0}, {"d5", 5}, {"e10", 10}, {"f-1", -1}}) {
    ASSERT_TRUE(store_->add_job(job(key, priority), "test", at(1)));
  }
  ASSERT_TRUE(store_->commit_intent(id_of("d5"), 1, "t", 1, at(2)));  // no longer queued

  EXPECT_EQ(keys(store_->claimable(at(3), 10).value()),
            (std::vector<std::string>{"e10", "b5", "a0", "c0", "f-1"}));
  EXPECT_EQ(keys(store_->claimable(at(3), 3).value()),
            (std::vector<std::string>{"e10", "b5", "a0"}));
  EXPECT_TRUE(store_->claimable(at(3), 0).value().empty());
}

TEST_F(JobStoreTest, ProducerRowsAreClaimedAndBadOnesInvalidated) {
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

TEST_F(JobStoreTest, StrictTablesRefuseWrongTypesFromProducers) {
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

TEST_F(JobStoreTest, SchemaAcceptsEveryJobStateAndCountsThem) {
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
  EXPECT_EQ(states, 11);
  const auto counts = store_->count_by_state().value();
  EXPECT_EQ(counts.size(), 11U);
  for (const auto& [state, count] : counts) EXPECT_EQ(count, 1) << core::to_string(state);
}

TEST_F(JobStoreTest, CountByStateReportsZeros) {
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  ASSERT_TRUE(store_->add_job(job("b"), "test", at(1)));
  running_job("c");
  const auto counts = store_->count_by_state().value();
  EXPECT_EQ(counts.size(), 11U);
  EXPECT_EQ(counts.at(JobState::queued), 2);
  EXPECT_EQ(counts.at(JobState::running), 1);
  EXPECT_EQ(counts.at(JobState::timed_out), 0);
}

TEST_F(JobStoreTest, InStateAndAllJobsAreOrderedById) {
  for (const char* key : {"z", "y", "x"}) ASSERT_TRUE(store_->add_job(job(key), "test", at(1)));
  running_job("w");
  EXPECT_EQ(keys(store_->all_jobs().value()), (std::vector<std::string>{"z", "y", "x", "w"}));
  EXPECT_EQ(keys(store_->in_state(JobState::queued).value()),
            (std::vector<std::string>{"z", "y", "x"}));
  EXPECT_EQ(keys(store_->in_state(JobState::running).value()), std::vector<std::string>{"w"});
  EXPECT_FALSE(store_->find("missing").value().has_value());
}

TEST_F(JobStoreTest, DataVersionMovesOnlyForOtherConnections) {
  const std::int64_t initial = store_->data_version().value();
  ASSERT_TRUE(store_->all_jobs());
  EXPECT_EQ(store_->data_version().value(), initial);
  ASSERT_TRUE(store_->add_job(job("own"), "test", at(1)));  // our own commit
  const std::int64_t after_own = store_->data_version().value();
  EXPECT_EQ(after_own, initial);

  RawConnection producer{db_path_};
  ASSERT_EQ(producer.run("INSERT INTO jobs (key, spec) VALUES ('theirs', '{\"prompt\":\"p\"}')"),
            SQLITE_OK);
  EXPECT_NE(store_->data_version().value(), after_own);
}

TEST_F(JobStoreTest, BusyDatabaseFailsCleanlyWithAMessage) {
  store_ = open_store(core::Duration{0});
  RawConnection other{db_path_};
  ASSERT_EQ(other.run("BEGIN IMMEDIATE"), SQLITE_OK);
  auto blocked = store_->add_job(job("blocked"), "test", at(1));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error(), errc::storage_busy);
  EXPECT_THAT(store_->last_error_message(), HasSubstr("database is locked"));
  ASSERT_EQ(other.run("COMMIT"), SQLITE_OK);

  EXPECT_EQ(store_->add_job(job("blocked"), "test", at(2)).value(), AddResult::inserted);
  EXPECT_THAT(events(*store_, id_of("blocked")), ElementsAre("queued"));
}

TEST_F(JobStoreTest, AFailedTransactionLeavesNoTrace) {
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
  EXPECT_THAT(store_->last_error_message(), HasSubstr("refused"));
  const core::JobRecord unchanged = record("a");
  EXPECT_EQ(unchanged.state, JobState::queued);
  EXPECT_FALSE(unchanged.intent_at_ms.has_value());
  EXPECT_EQ(unchanged.attempts, 0);
  // And the connection is usable afterwards.
  ASSERT_EQ(admin.run("DROP TRIGGER refuse"), SQLITE_OK);
  EXPECT_TRUE(store_->commit_intent(id, 1, "tag", 5, at(6)));
}

TEST_F(JobStoreTest, AnotherConnectionHoldingTheWriteLockIsSeen) {
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  EXPECT_FALSE(store_->write_locked_elsewhere().value());
  // Another connection (in this process, which the probe must see too) mid-transaction.
  RawConnection writer{db_path_};
  ASSERT_EQ(writer.run("BEGIN IMMEDIATE"), SQLITE_OK);
  ASSERT_EQ(writer.run("UPDATE jobs SET priority = 3 WHERE key = 'a'"), SQLITE_OK);
  EXPECT_TRUE(store_->write_locked_elsewhere().value());
  ASSERT_EQ(writer.run("COMMIT"), SQLITE_OK);
  EXPECT_FALSE(store_->write_locked_elsewhere().value());
  // Our own write transactions never count: the lock is ours only while one runs.
  ASSERT_TRUE(store_->add_job(job("b"), "test", at(2)));
  EXPECT_FALSE(store_->write_locked_elsewhere().value());
}

TEST_F(JobStoreTest, WriteHooksRunAroundEachWriteTransactionOnly) {
  std::vector<std::string> calls;
  store_->set_write_hooks({
      .before = [&] { calls.push_back("before"); },
      // Once the transaction is over the write lock is free again, even after a failure.
      .after = [&] { calls.push_back(store_->write_locked_elsewhere().value() ? "locked"
                                                                               : "after"); },
  });
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  EXPECT_EQ(calls, (std::vector<std::string>{"before", "after"}));
  calls.clear();
  ASSERT_TRUE(store_->claimable(at(2), 10));  // a read
  ASSERT_TRUE(store_->data_version());
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

TEST_F(JobStoreTest, DeletingAJobCascadesToItsHistory) {
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

TEST(JobStoreMonitoring, OldestQueuedJobAgeFollowsTheQueue) {
  TempDir dir;
  auto store = JobStore::open(StoreOptions{.path = (dir.path() / "q.db").string()});
  ASSERT_TRUE(store);
  EXPECT_FALSE((*store)->oldest_queued_at_ms().value().has_value());
  core::JobDefinition first{.key = "first", .spec = {.prompt = "p"}};
  core::JobDefinition second{.key = "second", .spec = {.prompt = "p"}};
  ASSERT_TRUE((*store)->add_job(first, "test", core::from_epoch_ms(1'000)));
  ASSERT_TRUE((*store)->add_job(second, "test", core::from_epoch_ms(2'000)));
  const auto oldest = (*store)->oldest_queued_at_ms();
  ASSERT_TRUE(oldest && oldest->has_value());
  const auto job = (*store)->find("first").value();
  ASSERT_TRUE(job);
  EXPECT_EQ(**oldest, job->created_at_ms);
  ASSERT_TRUE((*store)->finish(job->id, core::JobState::cancelled, "test", core::from_epoch_ms(3'000)));
  EXPECT_EQ(*(*store)->oldest_queued_at_ms().value(), (*store)->find("second").value()->created_at_ms);
}

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

class JobControlsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = JobStore::open(StoreOptions{.path = (dir_.path() / "c.db").string()});
    ASSERT_TRUE(opened);
    store_ = std::move(*opened);
  }
  core::JobRecord get(const std::string& key) { return store_->find(key).value().value(); }
  static core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(1'800'000'000'000 + ms); }

  TempDir dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobControlsStoreTest, ControlsRoundTripAndCountAsPartOfTheDefinition) {
  core::JobDefinition job{.key = "controlled", .spec = {.prompt = "p"}};
  job.controls = core::JobControls{
      .not_before_ms = 5, .deadline_ms = 9'000, .max_attempts = 2,
      .on_waiting_for_user = {.action = core::WaitingPolicy::Action::finish_after,
                              .finish_after = std::chrono::minutes{10}},
      .messages = {"add tests", "update the changelog"},
      .complete_on = core::CompletionPolicy::on_finished,
      .fan_out_enterprise = true};
  ASSERT_EQ(store_->add_job(job, "t", at(0)).value(), AddResult::inserted);
  EXPECT_EQ(get("controlled").definition, job);
  EXPECT_EQ(store_->add_job(job, "t", at(1)).value(), AddResult::unchanged);
  auto changed = job;
  changed.controls.messages.pop_back();
  EXPECT_EQ(store_->add_job(changed, "t", at(2)).value(), AddResult::changed);
  auto send = job;
  send.key = "sender";
  send.controls.on_waiting_for_user = {.action = core::WaitingPolicy::Action::send_message,
                                       .message = "yes, go ahead"};
  ASSERT_TRUE(store_->add_job(send, "t", at(3), std::string{"controlled"}));
  EXPECT_EQ(get("sender").definition, send);
  EXPECT_EQ(get("sender").parent_key, "controlled");
}

TEST_F(JobControlsStoreTest, NotBeforeKeepsAJobOutOfTheClaimUntilItsTime) {
  core::JobDefinition later{.key = "later", .spec = {.prompt = "p"}};
  later.controls.not_before_ms = core::to_epoch_ms(at(1'000));
  ASSERT_TRUE(store_->add_job(later, "t", at(0)));
  EXPECT_TRUE(store_->claimable(at(999), 10).value().empty());
  EXPECT_EQ(store_->claimable(at(1'000), 10).value().size(), 1U);
}

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

TEST_F(JobControlsStoreTest, CancelRetryPauseAndPrune) {
  ASSERT_TRUE(store_->add_job({.key = "waiting", .spec = {.prompt = "p"}}, "t", at(0)));
  ASSERT_TRUE(store_->add_job({.key = "live", .spec = {.prompt = "p"}}, "t", at(0)));
  const auto live = get("live");
  ASSERT_TRUE(store_->commit_intent(live.id, 1, "orch-x-g0", 1, at(1)));
  core::Session session{.session_id = "devin-1", .url = "u", .status = "running"};
  ASSERT_TRUE(store_->commit_session(live.id, session, false, at(2)));

  using Cancel = JobStore::CancelResult;
  EXPECT_EQ(store_->request_cancel("waiting", false, at(3)).value(), Cancel::cancelled);
  EXPECT_EQ(get("waiting").state, core::JobState::cancelled);
  EXPECT_EQ(store_->request_cancel("live", true, at(3)).value(), Cancel::requested);
  EXPECT_EQ(get("live").cancel_requested, 2);
  ASSERT_EQ(store_->cancel_requests().value().size(), 1U);
  EXPECT_EQ(store_->request_cancel("waiting", false, at(4)).value(), Cancel::already_ended);
  EXPECT_EQ(store_->request_cancel("nobody", false, at(4)).value(), Cancel::not_found);

  using Retry = JobStore::RetryResult;
  EXPECT_EQ(store_->retry("live", at(5)).value(), Retry::not_terminal);
  EXPECT_EQ(store_->retry("waiting", at(5)).value(), Retry::requeued);
  const auto again = get("waiting");
  EXPECT_EQ(again.state, core::JobState::queued);
  EXPECT_EQ(again.generation, 1);
  EXPECT_NE(core::creation_tag("waiting", again.generation), core::creation_tag("waiting", 0));
  EXPECT_GE(store_->history(again.id).value().size(), 3U) << "history is kept";

  ASSERT_TRUE(store_->pause_org("org-a", "billing: out_of_credits", "daemon", at(6)));
  ASSERT_TRUE(store_->pause_org("org-a", "again", "cli", at(7)));
  EXPECT_EQ(store_->paused_orgs().value(),
            (std::map<std::string, std::string>{{"org-a", "billing: out_of_credits"}}));
  EXPECT_EQ(store_->resume_org("org-a").value(), 1);
  EXPECT_EQ(store_->resume_org("org-a").value(), 0);

  ASSERT_TRUE(store_->finish(live.id, core::JobState::cancelled, "operator", at(8)));
  EXPECT_EQ(store_->prune(at(8), at(100)).value(), 0) << "finished at the cutoff: kept";
  EXPECT_EQ(store_->prune(at(9), at(100)).value(), 1);
  EXPECT_FALSE(store_->find("live").value().has_value());
  EXPECT_TRUE(store_->find("waiting").value().has_value()) << "queued jobs are never pruned";
}

TEST_F(JobControlsStoreTest, JobsPastTheirDeadlineComeEarliestDeadlineFirst) {
  // Added in the opposite order of their deadlines: the answer follows the deadlines.
  for (const auto& [key, deadline] : {std::pair{"late", 40}, std::pair{"early", 20},
                                      std::pair{"middle", 30}, std::pair{"future", 90}}) {
    core::JobDefinition job{.key = key, .spec = {.prompt = "p"}};
    job.controls.deadline_ms = core::to_epoch_ms(at(deadline));
    ASSERT_TRUE(store_->add_job(job, "t", at(0)));
  }
  EXPECT_EQ(keys(store_->past_deadline(at(50)).value()),
            (std::vector<std::string>{"early", "middle", "late"}));
}

TEST_F(JobControlsStoreTest, DeadlinesAndRuntimeProgress) {
  core::JobDefinition timed{.key = "timed", .spec = {.prompt = "p"}};
  timed.controls.deadline_ms = core::to_epoch_ms(at(50));
  ASSERT_TRUE(store_->add_job(timed, "t", at(0)));
  EXPECT_TRUE(store_->past_deadline(at(49)).value().empty());
  ASSERT_EQ(store_->past_deadline(at(50)).value().size(), 1U);
  const auto id = get("timed").id;
  ASSERT_TRUE(store_->set_waiting_since(id, core::to_epoch_ms(at(10)), at(10)));
  ASSERT_TRUE(store_->record_message(id, 1, "follow-up", at(11)));
  EXPECT_EQ(get("timed").waiting_since_ms, core::to_epoch_ms(at(10)));
  EXPECT_EQ(get("timed").messages_sent, 1);
  ASSERT_TRUE(store_->set_waiting_since(id, std::nullopt, at(12)));
  EXPECT_FALSE(get("timed").waiting_since_ms.has_value());
}

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

TEST(JobStoreMigration, AVersionOneDatabaseIsMigratedWithItsRowsIntact) {
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
  auto store = JobStore::open(StoreOptions{.path = path});
  ASSERT_TRUE(store);
  const auto job = (*store)->find("from-v1").value();
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->definition.spec.prompt, "old");
  EXPECT_EQ(job->definition.controls, core::JobControls{});
  EXPECT_EQ((*store)->claimable(core::wall_now(), 10).value().size(), 1U);
}

TEST(JobStoreMigration, AVersionThreeDatabaseGetsTheCheaperStateConstraint) {
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
  auto store = JobStore::open(StoreOptions{.path = path});
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

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

TEST(JobStoreBatch, AddJobsReportsEachOutcomeInOneTransaction) {
  TempDir dir;
  auto store = JobStore::open(StoreOptions{.path = (dir.path() / "b.db").string()}).value();
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

TEST(JobStoreClaim, APausedOrganisationsBacklogDoesNotStarveTheOthers) {
  TempDir dir;
  auto store = JobStore::open(StoreOptions{.path = (dir.path() / "p.db").string()}).value();
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

}  // namespace
}  // namespace devin_orch::store
