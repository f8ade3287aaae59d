// Contract: the waits the server announced (org_holds) and the pauses of one user's jobs
// (user_pauses): stored, read back, fenced like the daemon's other writes, and kept out of the
// claim query.
#include "contract.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using core::JobState;

class HoldsContract : public StoreContract {
 protected:
  static core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(1'800'000'000'000 + ms); }
  static std::int64_t ms(std::int64_t offset) { return core::to_epoch_ms(at(offset)); }

  void add(std::string key, std::optional<std::string> user,
           std::optional<std::string> org = std::nullopt) {
    auto definition = job(std::move(key));
    definition.spec.create_as_user_id = std::move(user);
    definition.org_id = std::move(org);
    ASSERT_EQ(intake().add_job(definition, "test", at(0)).value(), AddResult::inserted);
  }
  std::vector<std::string> claimable_keys(const ClaimFilter& filter) {
    std::vector<std::string> keys;
    for (const auto& record : queue().claimable(at(1'000), 100, filter).value()) {
      keys.push_back(record.definition.key);
    }
    return keys;
  }
};

TEST_P(HoldsContract, AHoldIsReadBackUntilItEndsAndNeverShortens) {
  ASSERT_TRUE(queue().hold_org("org-a", at(20'000), "503: Retry-After 20 s", at(0)));
  // A shorter wait announced later does not cut the stored one short.
  ASSERT_TRUE(queue().hold_org("org-a", at(5'000), "503: Retry-After 4 s", at(1'000)));
  ASSERT_TRUE(queue().hold_org("org-b", at(3'000), "429: Retry-After 3 s", at(0)));

  const auto holds = queue().org_holds(at(2'000)).value();
  ASSERT_EQ(holds.size(), 2u);
  EXPECT_EQ(holds[0].org_id, "org-a");
  EXPECT_EQ(holds[0].until_ms, ms(20'000));
  EXPECT_EQ(holds[0].reason, "503: Retry-After 20 s");
  EXPECT_EQ(holds[0].held_at_ms, ms(0));
  EXPECT_EQ(holds[1].org_id, "org-b");

  // A longer one replaces it.
  ASSERT_TRUE(queue().hold_org("org-a", at(40'000), "503: Retry-After 30 s", at(10'000)));
  // Holds that ended are not in force.
  const auto later = queue().org_holds(at(20'000)).value();
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].until_ms, ms(40'000));
  EXPECT_EQ(later[0].held_at_ms, ms(10'000));
  EXPECT_TRUE(queue().org_holds(at(40'000)).value().empty());
  // Another connection (the next daemon after a restart) sees them.
  EXPECT_EQ(connect()->org_holds(at(2'000)).value().size(), 2u);
}

TEST_P(HoldsContract, APausedUsersJobsAreNotClaimableWhileOthersOfTheOrgAre) {
  add("as-alice", "alice");
  add("as-bob", "bob");
  add("as-nobody", std::nullopt);
  add("alice-elsewhere", "alice", "org-b");

  ASSERT_TRUE(queue().pause_user("org-a", "alice", "user_usage_limit_exceeded", at(10)));
  ASSERT_TRUE(queue().pause_user("org-a", "alice", "again", at(20)));  // keeps the first
  const auto paused = queue().paused_users().value();
  ASSERT_EQ(paused.size(), 1u);
  EXPECT_EQ(paused[0].org_id, "org-a");
  EXPECT_EQ(paused[0].user_id, "alice");
  EXPECT_EQ(paused[0].reason, "user_usage_limit_exceeded");
  EXPECT_EQ(paused[0].paused_at_ms, ms(10));
  EXPECT_EQ(operators().paused_users().value().size(), 1u);

  // The filter names the pair; a job naming no org counts as the default org.
  const ClaimFilter filter{.default_org = "org-a", .paused_users = {{"org-a", "alice"}}};
  EXPECT_THAT(claimable_keys(filter),
              testing::ElementsAre("as-bob", "as-nobody", "alice-elsewhere"));
  // Combined with a paused organisation.
  const ClaimFilter both{.paused_orgs = {"org-b"},
                         .default_org = "org-a",
                         .paused_users = {{"org-a", "alice"}}};
  EXPECT_THAT(claimable_keys(both), testing::ElementsAre("as-bob", "as-nobody"));
  // Without it, every job.
  EXPECT_EQ(claimable_keys(ClaimFilter{.default_org = "org-a"}).size(), 4u);

  EXPECT_EQ(operators().resume_user("org-a", "alice").value(), 1);
  EXPECT_EQ(operators().resume_user("org-a", "alice").value(), 0);
  EXPECT_TRUE(queue().paused_users().value().empty());
}

TEST_P(HoldsContract, TheDaemonLiftsOnlyItsOwnPauseWithTheSameReason) {
  ASSERT_TRUE(queue().pause_org("org-a", "API key rejected (401): bad key", "daemon", at(0)));
  ASSERT_TRUE(queue().pause_org("org-b", "API key rejected (401): bad key", "cli", at(0)));
  EXPECT_EQ(queue().lift_daemon_pause("org-a", "billing: out_of_credits").value(), 0);
  EXPECT_EQ(queue().lift_daemon_pause("org-b", "API key rejected (401): bad key").value(), 0);
  EXPECT_EQ(queue().lift_daemon_pause("org-a", "API key rejected (401): bad key").value(), 1);
  const auto left = queue().paused_orgs().value();
  EXPECT_FALSE(left.contains("org-a"));
  EXPECT_TRUE(left.contains("org-b"));
}

TEST_P(HoldsContract, AStaleOwnerCanNeitherHoldNorPause) {
  auto other = connect();
  ASSERT_TRUE(queue().acquire_lease("queue", "a", core::Duration{15'000}, at(0))->granted);
  queue().set_fence(Fence{.name = "queue", .owner = "a", .epoch = 1});
  ASSERT_TRUE(queue().hold_org("org-a", at(5'000), "503", at(0)));
  ASSERT_TRUE(other->acquire_lease("queue", "b", core::Duration{15'000}, at(16'000))->granted);

  EXPECT_EQ(queue().hold_org("org-a", at(90'000), "stale", at(16'500)).error(),
            errc::lease_lost);
  EXPECT_EQ(queue().pause_user("org-a", "alice", "stale", at(16'500)).error(),
            errc::lease_lost);
  ASSERT_TRUE(other->pause_org("org-a", "unauthorized: x", "daemon", at(16'400)));
  EXPECT_EQ(queue().lift_daemon_pause("org-a", "unauthorized: x").error(), errc::lease_lost);
  EXPECT_EQ(other->paused_orgs().value().size(), 1u);
  EXPECT_EQ(other->org_holds(at(1'000)).value().at(0).until_ms, ms(5'000));
  EXPECT_TRUE(other->paused_users().value().empty());
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(HoldsContract);

}  // namespace devin_orch::store::contract
