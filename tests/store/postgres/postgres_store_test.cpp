// What only the PostgreSQL store has, beyond the contract suite: its URL rules, migrations under
// a lock, producers' raw rows and their notifications, and reconnecting after the server dropped
// the connection. Each test has a database of its own on the test cluster.
#include "devin_orch/store/store.hpp"

#include "support/pg_database.hpp"

#include <gtest/gtest.h>

#include <poll.h>

#include <string>
#include <thread>
#include <vector>

namespace devin_orch::store {
namespace {

core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(ms); }

core::JobDefinition job(std::string key) {
  return core::JobDefinition{.key = std::move(key), .spec = core::JobSpec{.prompt = "p"}};
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto opened = open_store(StoreOptions{.url = database_.url()});
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message());
    return opened ? std::move(*opened) : nullptr;
  }

  devin_orch::testing::PgDatabase database_;
};

TEST(PostgresUrl, APasswordInTheUrlIsRefusedBeforeAnyConnection) {
  for (const std::string url : {"postgresql://orch:secret@127.0.0.1:1/db",
                                "postgresql://orch@127.0.0.1:1/db?password=secret"}) {
    auto opened = open_store(StoreOptions{.url = url});
    ASSERT_FALSE(opened) << url;
    EXPECT_EQ(opened.error(), errc::invalid_argument) << url;
    EXPECT_NE(opened.error().detail.find("password file"), std::string::npos)
        << opened.error().detail;
    EXPECT_EQ(opened.error().detail.find("secret"), std::string::npos) << "the password leaked";
  }
  auto not_a_url = open_store(StoreOptions{.url = "host=localhost dbname=x"});
  ASSERT_FALSE(not_a_url);
  EXPECT_EQ(not_a_url.error(), errc::invalid_argument);
}

TEST(PostgresUrl, AServerThatIsNotThereIsAStorageErrorWithTheAddressButNoSecret) {
  auto opened = open_store(StoreOptions{.url = "postgresql://orch@127.0.0.1:1/nothing",
                                        .connect_timeout = core::Duration{2'000}});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), errc::storage_io);
  EXPECT_NE(opened.error().detail.find("127.0.0.1:1/nothing"), std::string::npos)
      << opened.error().detail;
}

TEST_F(PostgresStoreTest, ProcessesStartingTogetherMigrateAFreshDatabaseOnce) {
  std::vector<std::thread> threads;
  std::vector<int> opened(6, 0);
  for (std::size_t i = 0; i < opened.size(); ++i) {
    threads.emplace_back([this, &opened, i] {
      opened[i] = open_store(StoreOptions{.url = database_.url()}).has_value() ? 1 : 0;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(opened, std::vector<int>(opened.size(), 1));
  EXPECT_EQ(database_.sql("SELECT count(*), max(version) FROM devin_orch_schema"), "5|5\n");
}

TEST_F(PostgresStoreTest, AVersion2DatabaseGainsTheOutboxAndKeepsItsJobs) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->add_job(job("before-v3"), "t", at(1)));
  }
  // As a build before the outbox left it.
  database_.sql("DROP TABLE job_attachments; DROP TABLE notify_deliveries; "
                "DROP TABLE notify_events; ALTER TABLE jobs DROP COLUMN stalled_since; "
                "DELETE FROM devin_orch_schema WHERE version >= 3");
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(database_.sql("SELECT max(version) FROM devin_orch_schema"), "5\n");
  const auto found = store->find("before-v3").value();
  ASSERT_TRUE(found);
  ASSERT_TRUE(store->finish(found->id, core::JobState::dead, "rejected", at(2)));
  const auto events = store->outbox().unrouted_events(10).value();
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].job_key, "before-v3");
  EXPECT_EQ(events[0].type, core::EventType::job_dead);
}

TEST_F(PostgresStoreTest, ADatabaseNewerThanThisBuildIsRefused) {
  ASSERT_TRUE(open());
  database_.sql("INSERT INTO devin_orch_schema VALUES (99, 0)");
  auto opened = open_store(StoreOptions{.url = database_.url()});
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().detail.find("newer than this devin-orch supports"), std::string::npos)
      << opened.error().detail;
}

// The producer contract (docs/queue.md): a plain INSERT of key and spec from another connection
// is a job, and its commit wakes a daemon waiting on the notification socket.
TEST_F(PostgresStoreTest, AProducersInsertIsClaimableAndWakesTheWaitingDaemon) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto before = store->change_mark();
  ASSERT_TRUE(before);
  const int fd = store->notification_descriptor();
  ASSERT_GE(fd, 0);
  pollfd idle{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&idle, 1, 0), 0) << "readable before anything happened";

  database_.sql(R"(INSERT INTO jobs (key, spec, org_id, priority) VALUES ('raw', '{"prompt": "from a producer"}', 'org-x', 5))");
  pollfd woken{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&woken, 1, 5'000), 1) << "no notification arrived";
  EXPECT_NE(store->change_mark().value(), *before);

  const auto ready = store->claimable(core::wall_now(), 10);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->size(), 1U);
  EXPECT_EQ(ready->front().definition.key, "raw");
  EXPECT_EQ(ready->front().definition.spec.prompt, "from a producer");
  EXPECT_EQ(ready->front().definition.org_id, "org-x");
  EXPECT_EQ(ready->front().definition.priority, 5);
  EXPECT_GT(ready->front().created_at_ms, 0);
}

TEST_F(PostgresStoreTest, ABrokenSpecIsMovedToInvalidAndDoesNotCrowdOutGoodRows) {
  auto store = open();
  ASSERT_TRUE(store);
  database_.sql(R"(INSERT INTO jobs (key, spec, priority) VALUES ('broken-1', 'not json', 9), ('broken-2', '{"prompt": 3}', 8), ('good', '{"prompt": "ok"}', 0))");
  const auto ready = store->claimable(core::wall_now(), 1);
  ASSERT_TRUE(ready) << ready.error().message();
  ASSERT_EQ(ready->size(), 1U);
  EXPECT_EQ(ready->front().definition.key, "good");
  for (const char* key : {"broken-1", "broken-2"}) {
    const auto broken = store->find(key).value();
    ASSERT_TRUE(broken);
    EXPECT_EQ(broken->state, core::JobState::invalid) << key;
    EXPECT_TRUE(broken->last_error && broken->last_error->starts_with("invalid spec: ")) << key;
  }
}

// A paused user's jobs are skipped in the query even when a spec in the window is not JSON.
TEST_F(PostgresStoreTest, APausedUserFilterSurvivesASpecThatIsNotJson) {
  auto store = open();
  ASSERT_TRUE(store);
  database_.sql(R"(INSERT INTO jobs (key, spec, org_id) VALUES ('bad', '{', 'o'), ('alice', '{"prompt": "a", "create_as_user_id": "alice"}', 'o'), ('bob', '{"prompt": "b", "create_as_user_id": "bob"}', 'o'))");
  ClaimFilter filter{.default_org = "o", .paused_users = {{"o", "alice"}}};
  const auto ready = store->claimable(core::wall_now(), 10, filter);
  ASSERT_TRUE(ready) << ready.error().message();
  ASSERT_EQ(ready->size(), 1U);
  EXPECT_EQ(ready->front().definition.key, "bob");
}

// Issue 24 through the documented producer path (docs/queue.md): the script that inserted a bad
// row is fixed and run again, with the same INSERT ... ON CONFLICT (key) DO NOTHING. That mends
// the invalid job (schema v2's trigger), wakes the daemon, and the daemon then runs it.
TEST_F(PostgresStoreTest, AProducersCorrectedRowMendsItsInvalidJob) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto insert = [&](const std::string& spec, int priority) {
    database_.sql("INSERT INTO jobs (key, spec, priority, source) VALUES ('ext', '" + spec +
                  "', " + std::to_string(priority) + ", 'enqueue.py') ON CONFLICT (key) DO NOTHING");
  };
  insert(R"({"prompt":"p","tags":"ci"})", 1);
  ASSERT_TRUE(store->claimable(at(10), 5));
  const core::JobRecord invalid = store->find("ext").value().value();
  ASSERT_EQ(invalid.state, core::JobState::invalid);
  // The same broken row again changes nothing: a producer retrying its script does not make
  // the job flip between invalid and queued.
  insert(R"({"prompt":"p","tags":"ci"})", 1);
  EXPECT_EQ(store->find("ext").value()->state, core::JobState::invalid);

  ASSERT_TRUE(store->change_mark());
  const int fd = store->notification_descriptor();
  insert(R"({"prompt":"p","tags":["ci"]})", 2);
  pollfd woken{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&woken, 1, 5'000), 1) << "the mended job woke nobody";
  const core::JobRecord mended = store->find("ext").value().value();
  EXPECT_EQ(mended.id, invalid.id);
  EXPECT_EQ(mended.state, core::JobState::queued);
  EXPECT_EQ(mended.definition.spec.tags, std::vector<std::string>{"ci"});
  EXPECT_EQ(mended.definition.priority, 2);
  EXPECT_EQ(mended.last_error, std::nullopt);
  EXPECT_EQ(store->outcome(mended.id).value().finished_at_ms, std::nullopt);
  const auto entries = store->history(mended.id).value();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].event, "invalid");
  EXPECT_EQ(entries[1].event, "mended");
  EXPECT_EQ(entries[1].state, "queued");
  EXPECT_EQ(entries[1].message, "definition replaced by enqueue.py: priority, spec differ");
  EXPECT_EQ(database_.sql("SELECT count(*) FROM jobs"), "1\n");
  const auto ready = store->claimable(core::wall_now(), 5).value();
  ASSERT_EQ(ready.size(), 1U);
  EXPECT_EQ(ready.front().definition.key, "ext");

  // Only an invalid job: now queued, another row under its key is dropped as before.
  insert(R"({"prompt":"other"})", 2);
  EXPECT_EQ(store->find("ext").value()->definition.spec.prompt, "p");
  EXPECT_EQ(store->history(mended.id).value().size(), 2U);
}

// A plain INSERT of an existing key fails, and the mend fails with it: nothing changes.
TEST_F(PostgresStoreTest, AFailedProducerInsertMendsNothing) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->add_invalid("typo", "file:jobs.yaml", "unknown field 'promt'", at(1)));
  EXPECT_THROW(database_.sql(R"(INSERT INTO jobs (key, spec) VALUES ('typo', '{"prompt":"p"}'))"),
               std::runtime_error);
  const core::JobRecord typo = store->find("typo").value().value();
  EXPECT_EQ(typo.state, core::JobState::invalid);
  EXPECT_EQ(store->history(typo.id).value().size(), 1U);
}

// add_invalid inserts under the key too: it must not mend a producer's invalid job with its
// empty definition (the trigger mends only queued rows).
TEST_F(PostgresStoreTest, AnotherInvalidDefinitionLeavesAnInvalidJobAlone) {
  auto store = open();
  ASSERT_TRUE(store);
  database_.sql("INSERT INTO jobs (key, spec) VALUES ('bad', 'not json')");
  ASSERT_TRUE(store->claimable(at(10), 5));
  ASSERT_EQ(store->find("bad").value()->state, core::JobState::invalid);
  EXPECT_EQ(store->add_invalid("bad", "file:jobs.yaml", "unknown field", at(20)).value(),
            AddResult::unchanged);
  EXPECT_EQ(database_.sql("SELECT state, spec FROM jobs WHERE key = 'bad'"), "invalid|not json\n");
  EXPECT_EQ(store->history(store->find("bad").value()->id).value().size(), 1U);
}

// `delete` and retention keep what prune keeps: the outcome, in the archive.
TEST_F(PostgresStoreTest, DeleteAndRetentionArchiveTheOutcome) {
  auto store = open();
  ASSERT_TRUE(store);
  for (const char* key : {"deleted", "retired"}) ASSERT_TRUE(store->add_job(job(key), "t", at(1)));
  database_.sql("UPDATE jobs SET state = 'failed', session_id = 's-' || key, finished_at = 5");
  ASSERT_EQ(store->delete_job("deleted", at(6)).value(), DeleteResult::deleted);
  ASSERT_EQ(store->prune_ended(at(6), at(7), 100).value(), 1);
  EXPECT_EQ(database_.sql("SELECT string_agg(key || ':' || state || ':' || session_id || ':' || "
                          "pruned_at, ' ' ORDER BY id) FROM outcomes"),
            "deleted:failed:s-deleted:6 retired:failed:s-retired:7\n");
  EXPECT_EQ(database_.sql("SELECT count(*) FROM jobs"), "0\n");
  EXPECT_EQ(database_.sql("SELECT count(*) FROM job_events"), "0\n");
}

// Retention's batches (prune_ended) and the CLI's prune can read the ended jobs through their
// index, so a batch need not read the whole table.
TEST_F(PostgresStoreTest, EndedJobLookupCanUseItsIndex) {
  ASSERT_TRUE(open());
  for (const std::string query :
       {"SELECT id FROM jobs WHERE state NOT IN ('queued', 'creating', 'running') AND "
        "coalesce(finished_at, updated_at) < 5 ORDER BY coalesce(finished_at, updated_at) "
        "LIMIT 100",
        "SELECT count(*) FROM jobs WHERE state NOT IN ('queued', 'creating', 'running') AND "
        "coalesce(finished_at, updated_at) < 5"}) {
    const std::string plan = database_.sql("SET enable_seqscan = off; EXPLAIN " + query);
    EXPECT_NE(plan.find("jobs_ended"), std::string::npos) << plan;
  }
}

TEST_F(PostgresStoreTest, ReconnectsAfterTheServerDroppedItsConnections) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->add_job(job("before"), "test", at(1)));
  const auto mark = store->change_mark().value();
  database_.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'devin-orch'");
  // The first call may learn of the loss (a storage error a retry waits out); the next works.
  auto first = store->add_job(job("after"), "test", at(2));
  if (!first) {
    EXPECT_EQ(first.error(), errc::storage_io) << first.error().message();
    ASSERT_TRUE(store->add_job(job("after"), "test", at(2)));
  }
  EXPECT_TRUE(store->find("after").value().has_value());
  // Notifications sent while the listener was away are lost: the reconnection counts as one.
  auto moved = store->change_mark();
  if (!moved) moved = store->change_mark();
  ASSERT_TRUE(moved);
  EXPECT_NE(*moved, mark);
}

}  // namespace
}  // namespace devin_orch::store
