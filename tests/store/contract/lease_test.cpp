// Contract: the ownership lease and the fence. Two connections to one database play two
// daemons; the lease and the fence decide which of them may write.
#include "contract.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace devin_orch::store::contract {
namespace {

using core::JobState;

constexpr core::Duration kTtl{15'000};

// Two connections to one database play two daemons.
class LeaseContract : public StoreContract {
 protected:
  void SetUp() override {
    StoreContract::SetUp();
    if (HasFatalFailure()) return;  // no database: the failure says why
    a_ = connect();
    b_ = connect();
    ASSERT_TRUE(a_ && b_);
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    StoreContract::TearDown();
  }

  std::int64_t add(Store& store, const std::string& key) {
    core::JobDefinition definition{.key = key};
    definition.spec.prompt = "do " + key;
    EXPECT_TRUE(store.add_job(definition, "test", at(1)));
    return store.find(key).value()->id;
  }

  std::unique_ptr<Store> a_;
  std::unique_ptr<Store> b_;
};

TEST_P(LeaseContract, TheFirstAskerGetsEpochOneAndTheSecondIsTold) {
  const auto first = a_->acquire_lease("queue", "a", kTtl, at(1'000));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->granted);
  EXPECT_EQ(first->holder, (core::LeaseHolder{.owner = "a", .epoch = 1, .expires_at_ms = 16'000}));

  const auto second = b_->acquire_lease("queue", "b", kTtl, at(2'000));
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->granted);
  EXPECT_EQ(second->holder.owner, "a");
  EXPECT_EQ(second->holder.epoch, 1);
  EXPECT_EQ(b_->read_lease("queue").value(), first->holder);
}

TEST_P(LeaseContract, TheHolderAskingAgainKeepsItsEpoch) {
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  const auto again = a_->acquire_lease("queue", "a", kTtl, at(30'000));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->granted);
  EXPECT_EQ(again->holder.epoch, 1);
  EXPECT_EQ(again->holder.expires_at_ms, 45'000);
}

TEST_P(LeaseContract, ALapsedLeaseGoesToTheNextAskerWithANewEpoch) {
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  EXPECT_FALSE(b_->acquire_lease("queue", "b", kTtl, at(15'999))->granted);
  const auto taken = b_->acquire_lease("queue", "b", kTtl, at(16'000));
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->granted);
  EXPECT_EQ(taken->holder.epoch, 2);
  // The old holder's renewal is refused and names the successor.
  const auto renewed = a_->renew_lease("queue", "a", 1, kTtl, at(16'500));
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(renewed->granted);
  EXPECT_EQ(renewed->holder.owner, "b");
  EXPECT_EQ(renewed->holder.epoch, 2);
}

TEST_P(LeaseContract, RenewalExtendsEvenAfterExpiryWhenNobodyTookIt) {
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  const auto renewed = a_->renew_lease("queue", "a", 1, kTtl, at(40'000));
  ASSERT_TRUE(renewed);
  EXPECT_TRUE(renewed->granted);
  EXPECT_EQ(renewed->holder.expires_at_ms, 55'000);
  EXPECT_FALSE(b_->acquire_lease("queue", "b", kTtl, at(41'000))->granted);
}

TEST_P(LeaseContract, AReleasedLeaseIsFreeAtOnce) {
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  ASSERT_TRUE(a_->release_lease("queue", "a", 1, at(2'000)));
  const auto taken = b_->acquire_lease("queue", "b", kTtl, at(2'001));
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->granted);
  EXPECT_EQ(taken->holder.epoch, 2);
  // A release by a holder that no longer holds it changes nothing.
  ASSERT_TRUE(a_->release_lease("queue", "a", 1, at(2'002)));
  EXPECT_EQ(b_->read_lease("queue").value()->owner, "b");
  EXPECT_EQ(b_->read_lease("queue").value()->expires_at_ms, 17'001);
}

TEST_P(LeaseContract, AStaleOwnersWritesAreRefusedAndWriteNothing) {
  const std::int64_t id = add(*a_, "job-1");
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  a_->set_fence(Fence{.name = "queue", .owner = "a", .epoch = 1});
  ASSERT_TRUE(commit_intent(*a_, id, 1, "orch-tag-g0", 1'000, at(1'000)));

  // a stalls; its lease lapses and b takes the queue.
  ASSERT_TRUE(b_->acquire_lease("queue", "b", kTtl, at(17'000))->granted);
  b_->set_fence(Fence{.name = "queue", .owner = "b", .epoch = 2});

  const auto stale_intent = commit_intent(*a_, id, 2, "orch-tag-g0", 1'000, at(17'500));
  ASSERT_FALSE(stale_intent);
  EXPECT_EQ(stale_intent.error(), errc::lease_lost);
  EXPECT_EQ(a_->finish(id, JobState::dead, "stale", at(17'500)).error(), errc::lease_lost);
  EXPECT_EQ(a_->pause_org("org", "stale", "daemon", at(17'500)).error(), errc::lease_lost);
  EXPECT_EQ(a_->note_error(id, "stale", at(17'500)).error(), errc::lease_lost);
  EXPECT_EQ(a_->prune_ended(at(17'500), at(17'500), 100).error(), errc::lease_lost);

  const auto job = b_->find("job-1").value();
  EXPECT_EQ(job->state, JobState::creating);
  EXPECT_EQ(job->attempts, 1);
  EXPECT_FALSE(job->last_error);
  EXPECT_TRUE(b_->paused_orgs().value().empty());
  // The new owner's writes go through.
  EXPECT_TRUE(commit_intent(*b_, id, 2, "orch-tag-g0", 1'000, at(18'000)));
}

// The store judges expiry by the asker's clock. A standby whose clock runs an hour ahead takes
// the lease early, but the holder's next write is refused, so the two never both write.
TEST_P(LeaseContract, AClockJumpCanMoveTheLeaseButNeverLetsTwoOwnersWrite) {
  const std::int64_t id = add(*a_, "job-1");
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  a_->set_fence(Fence{.name = "queue", .owner = "a", .epoch = 1});
  ASSERT_TRUE(b_->acquire_lease("queue", "b", kTtl, at(3'601'000))->granted);
  EXPECT_EQ(commit_intent(*a_, id, 1, "t", 2'000, at(2'000)).error(), errc::lease_lost);
  // a's renewal, with its own clock, is refused too, and names b.
  const auto renewed = a_->renew_lease("queue", "a", 1, kTtl, at(2'500));
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(renewed->granted);
  EXPECT_EQ(renewed->holder.owner, "b");
  // And a clock that jumps back does not let a take the lease back from b.
  EXPECT_FALSE(a_->acquire_lease("queue", "a", kTtl, at(3'000))->granted);
}

TEST_P(LeaseContract, ProducersWriteWithoutTheLease) {
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  ASSERT_TRUE(b_->acquire_lease("queue", "b", kTtl, at(17'000))->granted);
  a_->set_fence(Fence{.name = "queue", .owner = "a", .epoch = 1});
  // A standby loading its job files, or an operator's CLI, is not acting on the queue.
  core::JobDefinition definition{.key = "from-file"};
  definition.spec.prompt = "p";
  EXPECT_TRUE(a_->add_job(definition, "file:jobs.yaml", at(17'100)));
  EXPECT_TRUE(a_->add_invalid("broken", "file:jobs.yaml", "bad", at(17'100)));
  // Mending an invalid job is a producer's write too.
  core::JobDefinition corrected{.key = "broken"};
  corrected.spec.prompt = "p";
  EXPECT_EQ(a_->add_job(corrected, "file:jobs.yaml", at(17'200)).value(), AddResult::mended);
}

// A claim moves a job only from queued, and only from the attempts its claimer read: two
// processes working from one reading of a job cannot both commit an intent for it.
TEST_P(LeaseContract, AnIntentNeedsTheStateAndAttemptsItWasBasedOn) {
  const std::int64_t id = add(*a_, "job-1");
  const IntentWrite claim{.job_id = id, .attempt = 1, .claim = true, .tag = "t", .intent_at_ms = 1};
  auto first = a_->commit_intents(std::span{&claim, 1}, at(1'000));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->front());
  // The same claim again (a second daemon that read the job as queued) is refused.
  auto again = b_->commit_intents(std::span{&claim, 1}, at(1'001));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->front().error(), errc::conflict);
  // A claim of attempt 2 is refused too: the job is creating, not queued.
  const IntentWrite claim_two{.job_id = id, .attempt = 2, .claim = true, .tag = "t", .intent_at_ms = 1};
  EXPECT_EQ(b_->commit_intents(std::span{&claim_two, 1}, at(1'002))->front().error(),
            errc::conflict);
  // A further attempt from the attempts it was based on goes through, once.
  const IntentWrite next{.job_id = id, .attempt = 2, .claim = false, .tag = "t", .intent_at_ms = 1};
  EXPECT_TRUE(a_->commit_intents(std::span{&next, 1}, at(1'003))->front());
  EXPECT_EQ(b_->commit_intents(std::span{&next, 1}, at(1'004))->front().error(), errc::conflict);
  EXPECT_EQ(a_->find("job-1").value()->attempts, 2);
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(LeaseContract);

}  // namespace devin_orch::store::contract
