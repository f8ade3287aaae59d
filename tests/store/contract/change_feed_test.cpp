// Contract: how the daemon learns that another process committed (ChangeFeed): the change mark
// moves for other connections' commits only, the write hooks run around this store's own write
// transactions only, and no commit is reported in flight elsewhere once others are done.
#include "contract.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using ChangeFeedContract = StoreContract;

TEST_P(ChangeFeedContract, TheMarkMovesForAnotherConnectionsCommitNotForOurOwn) {
  const auto initial = changes().change_mark();
  ASSERT_TRUE(initial);
  ASSERT_TRUE(store_->add_job(job("own"), "test", at(1)));
  EXPECT_EQ(changes().change_mark().value(), *initial) << "our own commit moved the mark";
  auto producer = connect();
  ASSERT_TRUE(producer->intake().add_job(job("theirs"), "producer", at(2)));
  EXPECT_NE(changes().change_mark().value(), *initial)
      << "another connection's commit did not move the mark";
}

TEST_P(ChangeFeedContract, ReadsDoNotMoveTheMark) {
  const auto initial = changes().change_mark().value();
  ASSERT_TRUE(queue().claimable(at(1), 10));
  ASSERT_TRUE(operators().all_jobs());
  EXPECT_EQ(changes().change_mark().value(), initial);
}

TEST_P(ChangeFeedContract, WriteHooksRunAroundOwnWriteTransactionsOnly) {
  std::vector<std::string> calls;
  changes().set_write_hooks({.before = [&] { calls.push_back("before"); },
                             .after = [&] { calls.push_back("after"); }});
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  EXPECT_EQ(calls, (std::vector<std::string>{"before", "after"}));
  calls.clear();
  ASSERT_TRUE(queue().claimable(at(2), 10));
  ASSERT_TRUE(changes().change_mark());
  auto producer = connect();
  ASSERT_TRUE(producer->intake().add_job(job("theirs"), "producer", at(3)));
  EXPECT_TRUE(calls.empty()) << "a read or another connection's write ran this store's hooks";
  changes().set_write_hooks({});
  ASSERT_TRUE(store_->add_job(job("b"), "test", at(4)));
  EXPECT_TRUE(calls.empty()) << "cleared hooks still ran";
}

TEST_P(ChangeFeedContract, NoCommitIsInFlightElsewhereOnceOthersAreDone) {
  auto producer = connect();
  ASSERT_TRUE(producer->intake().add_job(job("theirs"), "producer", at(1)));
  const auto in_flight = changes().commit_in_flight_elsewhere();
  ASSERT_TRUE(in_flight);
  EXPECT_FALSE(*in_flight);
  ASSERT_TRUE(store_->add_job(job("own"), "test", at(2)));
  EXPECT_FALSE(changes().commit_in_flight_elsewhere().value()) << "our own write counted";
}

DEVIN_ORCH_STORE_CONTRACT(ChangeFeedContract);

}  // namespace
}  // namespace devin_orch::store::contract
