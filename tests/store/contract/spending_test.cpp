// Contract: what the spending guard reads (spending_since): the jobs whose first create intent
// is at or after a moment, with their state, organisation, ACU figures, max_acu_limit and
// concurrency_key, on
// every connection (a restarted daemon, the CLI).
#include "contract.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devin_orch::store::contract {
namespace {

using core::JobState;

class SpendingContract : public StoreContract {
 protected:
  std::int64_t intended(const std::string& key, std::int64_t intent_at_ms,
                        std::optional<std::int64_t> limit, std::optional<std::string> org,
                        std::optional<std::string> concurrency_key = std::nullopt) {
    auto definition = job(key);
    definition.spec.max_acu_limit = limit;
    definition.spec.concurrency_key = std::move(concurrency_key);
    definition.org_id = std::move(org);
    EXPECT_EQ(intake().add_job(definition, "test", at(1)).value(), AddResult::inserted);
    const std::int64_t id = id_of(key);
    EXPECT_TRUE(commit_intent(queue(), id, 1, core::creation_tag(key, 0), intent_at_ms,
                              at(intent_at_ms)));
    return id;
  }
};

TEST_P(SpendingContract, JobsAreChargedFromTheirFirstIntentWithTheirFiguresAndLimit) {
  (void)intended("yesterday", 500, 3, std::nullopt);
  const std::int64_t creating = intended("creating", 1'000, 3, std::nullopt);
  const std::int64_t running = intended("running", 1'500, std::nullopt, "org-b", "repo:a");
  ASSERT_TRUE(commit_session(queue(), running, session("s-running", "running"), false, at(1'600)));
  const std::int64_t ended = intended("ended", 2'000, 5, std::nullopt);
  ASSERT_TRUE(commit_session(queue(), ended, session("s-ended", "running"), false, at(2'100)));
  auto final_session = session("s-ended", "exit");
  final_session.acus_consumed = 1.75;
  const StatusUpdate update{.job_id = ended, .session = final_session,
                            .new_state = JobState::finished};
  ASSERT_TRUE(queue().record_statuses(std::span{&update, 1}, at(2'500)));
  const ChildrenUpdate children{.job_id = ended, .child_session_ids = {"c-1"},
                                .children_acus = 0.5};
  ASSERT_TRUE(queue().record_children(std::span{&children, 1}, at(2'600)));
  // Queued, never intended: not charged.
  ASSERT_EQ(intake().add_job(job("queued"), "test", at(1)).value(), AddResult::inserted);

  const auto rows = queue().spending_since(at(1'000)).value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].job_id, creating);
  EXPECT_EQ(rows[0].state, JobState::creating);
  EXPECT_EQ(rows[0].intent_at_ms, 1'000);
  EXPECT_EQ(rows[0].max_acu_limit, 3);
  EXPECT_FALSE(rows[0].org_id);
  EXPECT_FALSE(rows[0].acus_consumed);
  EXPECT_EQ(rows[1].job_id, running);
  EXPECT_EQ(rows[1].state, JobState::running);
  EXPECT_EQ(rows[1].org_id, "org-b");
  EXPECT_FALSE(rows[1].max_acu_limit);
  EXPECT_EQ(rows[1].concurrency_key, "repo:a") << "a key budget charges the key's jobs";
  EXPECT_FALSE(rows[0].concurrency_key);
  EXPECT_EQ(rows[2].job_id, ended);
  EXPECT_EQ(rows[2].state, JobState::finished);
  EXPECT_EQ(rows[2].intent_at_ms, 2'000);
  ASSERT_TRUE(rows[2].acus_consumed);
  EXPECT_DOUBLE_EQ(*rows[2].acus_consumed, 1.75);
  EXPECT_DOUBLE_EQ(rows[2].children_acus, 0.5);
  EXPECT_EQ(rows[2].max_acu_limit, 5);

  // Another connection (a restarted daemon, the CLI) reads the same.
  auto other = connect();
  EXPECT_EQ(other->spending_since(at(1'000)).value().size(), 3u);
  EXPECT_EQ(other->operators().spending_since(at(0)).value().size(), 4u);
  EXPECT_TRUE(other->spending_since(at(2'001)).value().empty());
}

TEST_P(SpendingContract, ListingsCarryAQueuedJobsLimit) {
  auto definition = job("limited");
  definition.spec.max_acu_limit = 7;
  ASSERT_EQ(intake().add_job(definition, "test", at(1)).value(), AddResult::inserted);
  const auto jobs = operators().list_jobs({}).value();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].max_acu_limit, 7);
}

DEVIN_ORCH_STORE_CONTRACT(SpendingContract);

}  // namespace
}  // namespace devin_orch::store::contract
