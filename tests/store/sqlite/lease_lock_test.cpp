// SQLite only: the lease's epoch lock, a kernel lock on a file beside the database, frees a
// dead holder's lease at once on this machine (PostgreSQL has no such lock; its leases lapse).
#include "devin_orch/store/sqlite/sqlite_store.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace devin_orch::store {
namespace {

core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(ms); }
constexpr core::Duration kTtl{15'000};

class SqliteLeaseLock : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteStore> open() {
    auto store = SqliteStore::open(StoreOptions{.path = dir_.file("orch.db")});
    EXPECT_TRUE(store);
    return store ? std::move(*store) : nullptr;
  }

  devin_orch::testing::TempDir dir_;
  std::unique_ptr<SqliteStore> a_ = open();
  std::unique_ptr<SqliteStore> b_ = open();
};

// The holder of an epoch keeps a lock that the kernel drops when it dies (here: its store is
// closed without releasing, as a SIGKILL would leave it): a restart need not wait for the lapse.
TEST_F(SqliteLeaseLock, AHolderThatDiedOnThisMachineIsReplacedAtOnce) {
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  EXPECT_FALSE(b_->acquire_lease("queue", "b", kTtl, at(2'000))->granted);
  a_.reset();
  const auto taken = b_->acquire_lease("queue", "b", kTtl, at(2'001));
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->granted);
  EXPECT_EQ(taken->holder.epoch, 2);
  // And b's own lock now keeps a third process out until b's lease lapses.
  auto c = open();
  EXPECT_FALSE(c->acquire_lease("queue", "c", kTtl, at(2'002))->granted);
}

// A daemon holds several leases at once (each organisation's, its registry row): taking one
// must not drop the lock of another, or a live holder would look dead to the others.
TEST_F(SqliteLeaseLock, EveryLeaseHeldKeepsItsOwnLock) {
  ASSERT_TRUE(a_->acquire_lease("org:x", "a", kTtl, at(1'000))->granted);
  ASSERT_TRUE(a_->acquire_lease("org:y", "a", kTtl, at(1'000))->granted);
  ASSERT_TRUE(a_->acquire_lease("daemon:a", "a", kTtl, at(1'000))->granted);
  ASSERT_TRUE(a_->renew_lease("org:y", "a", 1, kTtl, at(1'500))->granted);
  EXPECT_FALSE(b_->acquire_lease("org:x", "b", kTtl, at(2'000))->granted);
  EXPECT_FALSE(b_->acquire_lease("org:y", "b", kTtl, at(2'000))->granted);
  // Releasing one frees that one only.
  ASSERT_TRUE(a_->release_lease("org:y", "a", 1, at(2'100)));
  EXPECT_TRUE(b_->acquire_lease("org:y", "b", kTtl, at(2'200))->granted);
  EXPECT_FALSE(b_->acquire_lease("org:x", "b", kTtl, at(2'200))->granted);
  // Once a dies, both of its remaining leases are free at once.
  a_.reset();
  EXPECT_TRUE(b_->acquire_lease("org:x", "b", kTtl, at(2'300))->granted);
}

}  // namespace
}  // namespace devin_orch::store
