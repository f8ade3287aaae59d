// Contract: what concurrency groups count. The daemon counts the jobs of each limited key in
// creating and running from in_state (the key is the spec's concurrency_key), and `ls` from
// list_jobs' summaries; both must carry the key, on every connection (a restarted daemon). A
// claim carrying its group limit is refused (group_full) when the group is full, counted in the
// claim's own transaction, so that two daemons cannot both take the last place.
#include "contract.hpp"

#include <gtest/gtest.h>

#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using core::JobState;

class ConcurrencyContract : public StoreContract {
 protected:
  void add(const std::string& key, std::optional<std::string> concurrency_key) {
    auto definition = job(key);
    definition.spec.concurrency_key = std::move(concurrency_key);
    ASSERT_EQ(intake().add_job(definition, "test", at(1)).value(), AddResult::inserted);
  }

  // Drives an added job to running.
  std::int64_t run(const std::string& key) {
    const std::int64_t id = id_of(key);
    EXPECT_TRUE(commit_intent(queue(), id, 1, core::creation_tag(key, 0), 2, at(2)));
    EXPECT_TRUE(commit_session(queue(), id, session("s-" + key, "running"), false, at(3)));
    return id;
  }

  // The first intent of a job (a claim from queued), with its group limit when there is one.
  static IntentWrite claim_of(std::int64_t job_id, const std::string& key,
                              std::optional<GroupLimit> group) {
    return IntentWrite{.job_id = job_id,
                       .attempt = 1,
                       .claim = true,
                       .tag = core::creation_tag(key, 0),
                       .intent_at_ms = 5,
                       .group = std::move(group)};
  }
  StoreResult<void> claim(QueueStore& store, const std::string& key,
                          std::optional<GroupLimit> group) {
    const IntentWrite intent = claim_of(id_of(key), key, std::move(group));
    auto outcomes = store.commit_intents(std::span{&intent, 1}, at(5));
    if (!outcomes) return outcomes.error();
    return outcomes->front();
  }

  // What the dispatcher counts: the keys of the jobs creating or running.
  static std::map<std::string, int> active_by_key(QueueStore& store) {
    std::map<std::string, int> counts;
    for (const auto state : {JobState::creating, JobState::running}) {
      for (const auto& job : store.in_state(state).value()) {
        if (job.definition.spec.concurrency_key) ++counts[*job.definition.spec.concurrency_key];
      }
    }
    return counts;
  }
};

TEST_P(ConcurrencyContract, TheActiveJobsOfAKeyAreCountedFromTheStore) {
  add("b-creating", "repo:acme/backend");
  add("b-running", "repo:acme/backend");
  add("b-queued", "repo:acme/backend");
  add("b-ended", "repo:acme/backend");
  add("w-running", "repo:acme/web");
  add("none", std::nullopt);
  ASSERT_TRUE(commit_intent(queue(), id_of("b-creating"), 1, core::creation_tag("b-creating", 0),
                            10, at(10)));
  (void)run("b-running");
  (void)run("w-running");
  const std::int64_t ended = run("b-ended");
  ASSERT_TRUE(queue().finish(ended, JobState::finished, {}, at(20)));
  (void)run("none");

  const std::map<std::string, int> expected{{"repo:acme/backend", 2}, {"repo:acme/web", 1}};
  EXPECT_EQ(active_by_key(queue()), expected);
  // A restarted daemon (another connection) counts the same.
  auto other = connect();
  EXPECT_EQ(active_by_key(*other), expected);

  // `ls` reads the key from the listing's summaries.
  std::map<std::string, std::optional<std::string>> listed;
  for (const auto& summary : other->operators().list_jobs({}).value()) {
    listed[summary.key] = summary.concurrency_key;
  }
  EXPECT_EQ(listed.at("b-queued"), "repo:acme/backend");
  EXPECT_EQ(listed.at("w-running"), "repo:acme/web");
  EXPECT_EQ(listed.at("none"), std::nullopt);
}

TEST_P(ConcurrencyContract, AClaimIntoAFullGroupIsRefusedWhicheverConnectionHoldsTheOther) {
  add("backend-1", "repo:acme/backend");
  add("backend-2", "repo:acme/backend");
  add("web-1", "repo:acme/web");
  add("unkeyed", std::nullopt);
  const GroupLimit backend{.key = "repo:acme/backend", .max_active = 1};
  // Two daemons, each holding another organisation's jobs of one group: the first claim takes
  // the group's only place, the second daemon's claim is refused although it counted nothing.
  auto other = connect();
  ASSERT_TRUE(claim(queue(), "backend-1", backend));
  const auto refused = claim(other->queue(), "backend-2", backend);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::group_full);
  EXPECT_EQ(refused.error().message(), "the job's concurrency group is full");
  // The claim did not happen: the job is queued as before, with no attempt and no intent.
  const core::JobRecord waiting = record("backend-2");
  EXPECT_EQ(waiting.state, JobState::queued);
  EXPECT_EQ(waiting.attempts, 0);
  EXPECT_TRUE(waiting.creation_tag.empty());
  EXPECT_EQ(events(operators(), waiting.id), std::vector<std::string>{"queued"});

  // Only that claim of a batch is refused: another key's and an unkeyed job's go through.
  const std::vector<IntentWrite> batch{
      claim_of(id_of("backend-2"), "backend-2", backend),
      claim_of(id_of("web-1"), "web-1", GroupLimit{.key = "repo:acme/web", .max_active = 1}),
      claim_of(id_of("unkeyed"), "unkeyed", std::nullopt)};
  auto outcomes = other->queue().commit_intents(batch, at(6));
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(outcomes->size(), 3U);
  ASSERT_FALSE((*outcomes)[0]);
  EXPECT_EQ((*outcomes)[0].error(), errc::group_full);
  EXPECT_TRUE((*outcomes)[1]);
  EXPECT_TRUE((*outcomes)[2]);
  EXPECT_EQ(record("backend-2").state, JobState::queued);
  EXPECT_EQ(record("web-1").state, JobState::creating);
  EXPECT_EQ(record("unkeyed").state, JobState::creating);

  // A job that cannot be claimed anyway says why, full group or not.
  const auto again = claim(other->queue(), "backend-1", backend);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::conflict);

  // A running job holds its place too; once it ends, the waiting claim goes through.
  ASSERT_TRUE(commit_session(queue(), id_of("backend-1"), session("s-1", "running"), false,
                             at(7)));
  EXPECT_EQ(claim(other->queue(), "backend-2", backend).error(), errc::group_full);
  ASSERT_TRUE(queue().finish(id_of("backend-1"), JobState::finished, {}, at(8)));
  EXPECT_TRUE(claim(other->queue(), "backend-2", backend));
  EXPECT_EQ(record("backend-2").state, JobState::creating);
}

TEST_P(ConcurrencyContract, ABatchCountsItsOwnEarlierClaims) {
  add("backend-1", "repo:acme/backend");
  add("backend-2", "repo:acme/backend");
  add("backend-3", "repo:acme/backend");
  const GroupLimit two{.key = "repo:acme/backend", .max_active = 2};
  const std::vector<IntentWrite> batch{claim_of(id_of("backend-1"), "backend-1", two),
                                       claim_of(id_of("backend-2"), "backend-2", two),
                                       claim_of(id_of("backend-3"), "backend-3", two)};
  auto outcomes = queue().commit_intents(batch, at(5));
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(outcomes->size(), 3U);
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_TRUE((*outcomes)[1]);
  ASSERT_FALSE((*outcomes)[2]);
  EXPECT_EQ((*outcomes)[2].error(), errc::group_full);
  EXPECT_EQ(record("backend-3").state, JobState::queued);
}

// Two daemons claiming at the same instant: each round, two jobs of a fresh group of one place,
// claimed at once from two connections. Exactly one may win, however the two interleave.
TEST_P(ConcurrencyContract, SimultaneousClaimsFromTwoConnectionsTakeOnePlace) {
  constexpr int kRounds = 12;
  auto first = connect();
  auto second = connect();
  for (int round = 0; round < kRounds; ++round) {
    const std::string group = "race:" + std::to_string(round);
    const std::string a = "race-a-" + std::to_string(round);
    const std::string b = "race-b-" + std::to_string(round);
    add(a, group);
    add(b, group);
    const GroupLimit limit{.key = group, .max_active = 1};
    const IntentWrite claim_a = claim_of(id_of(a), a, limit);
    const IntentWrite claim_b = claim_of(id_of(b), b, limit);
    std::latch start{2};
    StoreResult<std::vector<StoreResult<void>>> outcome_a{errc::cancelled};
    StoreResult<std::vector<StoreResult<void>>> outcome_b{errc::cancelled};
    std::thread racer_a{[&] {
      start.arrive_and_wait();
      outcome_a = first->queue().commit_intents(std::span{&claim_a, 1}, at(5));
    }};
    std::thread racer_b{[&] {
      start.arrive_and_wait();
      outcome_b = second->queue().commit_intents(std::span{&claim_b, 1}, at(5));
    }};
    racer_a.join();
    racer_b.join();
    ASSERT_TRUE(outcome_a) << outcome_a.error();
    ASSERT_TRUE(outcome_b) << outcome_b.error();
    const StoreResult<void>& won_a = outcome_a->front();
    const StoreResult<void>& won_b = outcome_b->front();
    ASSERT_NE(won_a.has_value(), won_b.has_value()) << "round " << round;
    const StoreResult<void>& lost = won_a ? won_b : won_a;
    EXPECT_EQ(lost.error(), errc::group_full) << "round " << round;
    EXPECT_EQ(record(won_a ? b : a).state, JobState::queued);
    EXPECT_EQ(record(won_a ? a : b).state, JobState::creating);
  }
}

DEVIN_ORCH_STORE_CONTRACT(ConcurrencyContract);

}  // namespace
}  // namespace devin_orch::store::contract
