// Contract: what concurrency groups count. The daemon counts the jobs of each limited key in
// creating and running from in_state (the key is the spec's concurrency_key), and `ls` from
// list_jobs' summaries; both must carry the key, on every connection (a restarted daemon).
#include "contract.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

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

DEVIN_ORCH_STORE_CONTRACT(ConcurrencyContract);

}  // namespace
}  // namespace devin_orch::store::contract
