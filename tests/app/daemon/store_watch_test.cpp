// The store watch against real files: another connection's commit raises a notice, writes to
// unrelated files in the same directory do not, a WAL created later is followed, and a stopped
// watch stays quiet.
#include "devin_orch/app/daemon/store_watch.hpp"

#include "support/process.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace devin_orch::app {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

void exec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

// Runs the loop until `notices` reaches `want` or `limit` passes.
void run_until(boost::asio::io_context& io, const int& notices, int want,
               std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (notices < want && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_for(10ms);
  }
}

class StoreWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    exec(db_path_, "PRAGMA journal_mode = WAL; CREATE TABLE jobs (key TEXT)");
  }

  TempDir dir_;
  const std::string db_path_ = dir_.file("orch.db");
  boost::asio::io_context io_;
  int notices_ = 0;
};

TEST_F(StoreWatchTest, AnotherConnectionsCommitRaisesANotice) {
  auto watch = StoreWatch::start(io_, db_path_, [this] { ++notices_; });
  ASSERT_TRUE(watch) << watch.error().message();
  exec(db_path_, "INSERT INTO jobs VALUES ('a')");
  run_until(io_, notices_, 1, 5s);
  EXPECT_GE(notices_, 1);
}

TEST_F(StoreWatchTest, OtherFilesInTheDirectoryAreIgnored) {
  auto watch = StoreWatch::start(io_, db_path_, [this] { ++notices_; });
  ASSERT_TRUE(watch);
  std::ofstream{dir_.file("jobs.yaml")} << "- key: x\n";
  std::ofstream{dir_.file("orch.db.bak")} << "copy";
  // The notice that matters comes after the ignored ones: once it is in, they were read too.
  exec(db_path_, "INSERT INTO jobs VALUES ('b')");
  run_until(io_, notices_, 1, 5s);
  ASSERT_GE(notices_, 1);
  const int after_commit = notices_;
  std::ofstream{dir_.file("notes.txt")} << "more";
  run_until(io_, notices_, after_commit + 1, 300ms);
  EXPECT_EQ(notices_, after_commit);
}

// The daemon's own way of writing: one connection kept open, so the WAL it creates stays. The
// watch started before that WAL existed and must follow every later write to it.
TEST_F(StoreWatchTest, AWalCreatedAfterTheWatchStartedIsWatchedToo) {
  ASSERT_FALSE(std::filesystem::exists(db_path_ + "-wal"));
  auto watch = StoreWatch::start(io_, db_path_, [this] { ++notices_; });
  ASSERT_TRUE(watch);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  for (int write = 1; write <= 3; ++write) {
    const int before = notices_;
    ASSERT_EQ(sqlite3_exec(db, "INSERT INTO jobs VALUES ('w')", nullptr, nullptr, nullptr),
              SQLITE_OK);
    run_until(io_, notices_, before + 1, 5s);
    EXPECT_GT(notices_, before) << "write " << write;
    // Let every event of this write arrive, so the next write's notice is its own.
    io_.restart();
    io_.run_for(50ms);
  }
  ASSERT_TRUE(std::filesystem::exists(db_path_ + "-wal"));
  sqlite3_close(db);
}

// What the daemon does right after each write of its own: the notices are taken, so the loop
// never sees them.
TEST_F(StoreWatchTest, TakenNoticesNeverReachTheLoop) {
  auto watch = StoreWatch::start(io_, db_path_, [this] { ++notices_; });
  ASSERT_TRUE(watch);
  EXPECT_FALSE((*watch)->take_pending()) << "nothing written yet";
  exec(db_path_, "INSERT INTO jobs VALUES ('t')");
  EXPECT_TRUE((*watch)->take_pending());
  EXPECT_FALSE((*watch)->take_pending()) << "all taken at once";
  io_.restart();
  io_.run_for(200ms);
  EXPECT_EQ(notices_, 0);
  // The watch goes on: the next write is noticed as usual.
  exec(db_path_, "INSERT INTO jobs VALUES ('u')");
  run_until(io_, notices_, 1, 5s);
  EXPECT_GE(notices_, 1);
  (*watch)->stop();
  EXPECT_FALSE((*watch)->take_pending()) << "a stopped watch has nothing to take";
}

TEST_F(StoreWatchTest, AStoppedWatchIsQuietAndLetsTheLoopEnd) {
  auto watch = StoreWatch::start(io_, db_path_, [this] { ++notices_; });
  ASSERT_TRUE(watch);
  (*watch)->stop();
  exec(db_path_, "INSERT INTO jobs VALUES ('c')");
  io_.restart();
  io_.run_for(300ms);
  EXPECT_TRUE(io_.stopped());  // nothing left pending: run() would return on its own
  EXPECT_EQ(notices_, 0);
}

// SQLite writes the WAL beside the symlink's target, so that is the directory to watch.
TEST_F(StoreWatchTest, ADatabaseReachedThroughASymlinkIsWatchedWhereItLives) {
  TempDir elsewhere;
  const std::string link = elsewhere.file("linked.db");
  std::filesystem::create_symlink(db_path_, link);
  auto watch = StoreWatch::start(io_, link, [this] { ++notices_; });
  ASSERT_TRUE(watch);
  exec(link, "INSERT INTO jobs VALUES ('d')");
  run_until(io_, notices_, 1, 5s);
  EXPECT_GE(notices_, 1);
}

TEST(StoreWatch, AMissingDirectoryIsAnErrorNotACrash) {
  boost::asio::io_context io;
  auto watch = StoreWatch::start(io, "/nonexistent-devin-orch/dir/orch.db", [] {});
  ASSERT_FALSE(watch);
  EXPECT_EQ(watch.error(), boost::system::errc::no_such_file_or_directory);
}

}  // namespace
}  // namespace devin_orch::app
