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
  EXPECT_EQ(database_.sql("SELECT count(*), max(version) FROM devin_orch_schema"), "1|1\n");
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
