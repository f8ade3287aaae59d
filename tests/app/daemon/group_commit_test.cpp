// Group commit on a real io_context: writes asked for in one turn share a flush, each caller
// gets its own outcome, and a failed flush fails every write in it.
#include "devin_orch/app/daemon/group_commit.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/errc.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

namespace net = boost::asio;
using Commit = GroupCommit<int>;

class GroupCommitTest : public ::testing::Test {
 protected:
  // Writes are ints; odd ones are refused, like a job that moved on.
  Commit::Outcomes flush(std::span<const int> writes) {
    flushes_.emplace_back(writes.begin(), writes.end());
    if (fail_) return boost::system::errc::make_error_code(boost::system::errc::io_error);
    std::vector<result<void>> outcomes;
    for (int write : writes) {
      if (write % 2 != 0) {
        outcomes.emplace_back(boost::system::errc::make_error_code(boost::system::errc::device_or_resource_busy));
      } else {
        outcomes.emplace_back();
      }
    }
    return outcomes;
  }

  void spawn_commit(int write) {
    net::co_spawn(
        io_,
        [this, write]() -> net::awaitable<void> {
          const auto outcome = co_await commit_.commit(write);
          results_[write] = outcome.has_value() ? "ok" : outcome.error().message();
        },
        net::detached);
  }

  net::io_context io_;
  bool fail_ = false;
  std::vector<std::vector<int>> flushes_;
  std::map<int, std::string> results_;
  Commit commit_{io_, [this](std::span<const int> writes) { return flush(writes); }};
};

TEST_F(GroupCommitTest, WritesAskedForTogetherShareOneFlushAndKeepTheirOwnOutcome) {
  for (int write : {2, 3, 4}) spawn_commit(write);
  io_.run();
  ASSERT_EQ(flushes_.size(), 1U);
  EXPECT_EQ(flushes_[0], (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(results_[2], "ok");
  EXPECT_NE(results_[3], "ok");
  EXPECT_EQ(results_[4], "ok");
  EXPECT_EQ(commit_.batches(), 1U);
}

TEST_F(GroupCommitTest, AWriteAskedForAfterAFlushStartsTheNextBatch) {
  spawn_commit(2);
  io_.run();
  io_.restart();
  spawn_commit(4);
  io_.run();
  ASSERT_EQ(flushes_.size(), 2U);
  EXPECT_EQ(flushes_[1], (std::vector<int>{4}));
  EXPECT_EQ(results_[4], "ok");
}

TEST_F(GroupCommitTest, AFailedFlushFailsEveryWriteInIt) {
  fail_ = true;
  for (int write : {2, 4}) spawn_commit(write);
  io_.run();
  ASSERT_EQ(flushes_.size(), 1U);
  EXPECT_NE(results_[2], "ok");
  EXPECT_EQ(results_[2], results_[4]);
}

// With a linger, a write asked for in a later turn (another create answered meanwhile) still
// joins the open batch, which is written once the linger has passed.
TEST_F(GroupCommitTest, WithALingerWritesOfLaterTurnsJoinTheOpenBatch) {
  constexpr auto kLinger = std::chrono::milliseconds{200};
  Commit lingering{io_, [this](std::span<const int> writes) { return flush(writes); },
                   [&] { return kLinger; }};
  const auto started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration waited{};
  const auto commit = [&](int write) -> net::awaitable<void> {
    const auto outcome = co_await lingering.commit(write);
    results_[write] = outcome.has_value() ? "ok" : outcome.error().message();
    waited = std::chrono::steady_clock::now() - started;
  };
  net::co_spawn(io_, commit(2), net::detached);
  // A later turn: posted after the first write has opened the batch.
  net::post(io_, [&] {
    net::post(io_, [&] { net::co_spawn(io_, commit(4), net::detached); });
  });
  io_.run();
  ASSERT_EQ(flushes_.size(), 1U);
  EXPECT_EQ(flushes_[0], (std::vector<int>{2, 4}));
  EXPECT_EQ(results_[2], "ok");
  EXPECT_EQ(results_[4], "ok");
  EXPECT_GE(waited, kLinger);

  // Without writes waiting, the next batch opens with a fresh linger.
  io_.restart();
  net::co_spawn(io_, commit(6), net::detached);
  io_.run();
  ASSERT_EQ(flushes_.size(), 2U);
  EXPECT_EQ(flushes_[1], (std::vector<int>{6}));
}

// Shutting down does not wait out a linger: flush_now() writes the open batch at once.
TEST_F(GroupCommitTest, FlushNowWritesTheOpenBatchWithoutWaitingForItsLinger) {
  Commit lingering{io_, [this](std::span<const int> writes) { return flush(writes); },
                   [] { return std::chrono::milliseconds{60'000}; }};
  net::co_spawn(
      io_,
      [&]() -> net::awaitable<void> {
        const auto outcome = co_await lingering.commit(2);
        results_[2] = outcome.has_value() ? "ok" : outcome.error().message();
      },
      net::detached);
  net::post(io_, [&] { net::post(io_, [&] { lingering.flush_now(); }); });
  const auto started = std::chrono::steady_clock::now();
  io_.run();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{30});
  ASSERT_EQ(flushes_.size(), 1U);
  EXPECT_EQ(results_[2], "ok");
}

}  // namespace
}  // namespace devin_orch::app
