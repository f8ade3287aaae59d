// Contract: the operator's queries (list_jobs, job_source, list_pauses, count_prunable) and
// delete_job: each filter alone and combined, the orders promised, and the errors.
#include "contract.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using core::JobState;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class OperatorQueries : public StoreContract {
 protected:
  void add(const std::string& key, std::int64_t created_ms, std::vector<std::string> tags = {},
           std::optional<std::string> org = std::nullopt, std::string source = "test") {
    const core::JobDefinition definition{
        .key = key, .org_id = std::move(org), .spec = {.prompt = "do " + key, .tags = std::move(tags)}};
    ASSERT_EQ(store_->add_job(definition, source, at(created_ms)).value(), AddResult::inserted);
  }
  std::int64_t id_of(const std::string& key) { return store_->find(key).value().value().id; }
  void end(const std::string& key, JobState state, std::int64_t at_ms) {
    ASSERT_TRUE(store_->finish(id_of(key), state, "ended by the test", at(at_ms)));
  }

  std::vector<std::string> keys(const JobFilter& filter) {
    const auto jobs = store_->list_jobs(filter);
    EXPECT_TRUE(jobs) << (jobs ? "" : jobs.error().message());
    std::vector<std::string> out;
    if (jobs) {
      for (const auto& job : *jobs) out.push_back(job.key);
    }
    return out;
  }

  // Four jobs created at 1000, 2000, 3000, 4000 ms; "beta" names its own organisation.
  void add_mixed() {
    add("alpha", 1000, {"ci"});
    add("beta", 2000, {"nightly"}, "org-b");
    add("gamma", 3000, {"ci", "flaky"});
    add("delta", 4000);
    end("gamma", JobState::failed, 5000);
  }

};

TEST_P(OperatorQueries, ListsEveryJobInTheOrderItWasAdded) {
  add_mixed();
  EXPECT_THAT(keys({}), ElementsAre("alpha", "beta", "gamma", "delta"));
  EXPECT_THAT(keys({.limit = 2}), ElementsAre("alpha", "beta"));
  EXPECT_THAT(keys({.limit = 0}), IsEmpty());
}

TEST_P(OperatorQueries, ASummaryCarriesWhatAListingShows) {
  add_mixed();
  const auto jobs = store_->list_jobs({.default_org = "org-default"});
  ASSERT_TRUE(jobs);
  ASSERT_EQ(jobs->size(), 4U);
  const JobSummary& alpha = (*jobs)[0];
  EXPECT_EQ(alpha.id, id_of("alpha"));
  EXPECT_EQ(alpha.state, JobState::queued);
  EXPECT_EQ(alpha.org_id, "org-default") << "a job naming no organisation has the default";
  EXPECT_EQ(alpha.created_at_ms, 1000);
  EXPECT_EQ(alpha.finished_at_ms, std::nullopt);
  EXPECT_EQ(alpha.session_id, std::nullopt);
  EXPECT_EQ((*jobs)[1].org_id, "org-b");
  const JobSummary& gamma = (*jobs)[2];
  EXPECT_EQ(gamma.state, JobState::failed);
  EXPECT_EQ(gamma.finished_at_ms, 5000);
  EXPECT_EQ(gamma.last_error, "ended by the test");
}

TEST_P(OperatorQueries, EachFilterNarrowsTheListing) {
  add_mixed();
  EXPECT_THAT(keys({.states = {JobState::failed}}), ElementsAre("gamma"));
  EXPECT_THAT(keys({.states = {JobState::queued, JobState::failed}}),
              ElementsAre("alpha", "beta", "gamma", "delta"));
  EXPECT_THAT(keys({.states = {JobState::running}}), IsEmpty());
  EXPECT_THAT(keys({.org_id = "org-b", .default_org = "org-a"}), ElementsAre("beta"));
  EXPECT_THAT(keys({.org_id = "org-a", .default_org = "org-a"}),
              ElementsAre("alpha", "gamma", "delta"));
  EXPECT_THAT(keys({.tag = "ci"}), ElementsAre("alpha", "gamma"));
  EXPECT_THAT(keys({.tag = "c"}), IsEmpty()) << "whole tags only";
  EXPECT_THAT(keys({.created_before_ms = 3000}), ElementsAre("alpha", "beta"));
  EXPECT_THAT(keys({.created_after_ms = 3000}), ElementsAre("delta"));
}

TEST_P(OperatorQueries, FiltersCombineAndTheLimitCountsMatchesOnly) {
  add_mixed();
  EXPECT_THAT(keys({.tag = "ci", .limit = 1}), ElementsAre("alpha"));
  EXPECT_THAT(keys({.states = {JobState::queued}, .org_id = "org-a", .default_org = "org-a",
                    .created_after_ms = 1500, .limit = 5}),
              ElementsAre("delta"));
  EXPECT_THAT(keys({.tag = "flaky", .created_before_ms = 3000}), IsEmpty());
}

// `ls --sort`: each order, ties by id, `descending` reversing all of it, the limit taking the
// first N of the order.
TEST_P(OperatorQueries, ListsInTheOrderAsked) {
  add("b-first", 2000);
  add("a-second", 1000);  // created earlier, added later
  add("c-third", 2000);
  end("a-second", JobState::failed, 5000);
  ASSERT_TRUE(commit_intent(queue(), id_of("c-third"), 1, "tag-c", 3000, at(3000)));
  EXPECT_THAT(keys({.order = JobOrder::added}), ElementsAre("b-first", "a-second", "c-third"));
  EXPECT_THAT(keys({.order = JobOrder::added, .descending = true}),
              ElementsAre("c-third", "a-second", "b-first"));
  EXPECT_THAT(keys({.order = JobOrder::created}), ElementsAre("a-second", "b-first", "c-third"));
  EXPECT_THAT(keys({.order = JobOrder::created, .descending = true}),
              ElementsAre("c-third", "b-first", "a-second"))
      << "b-first and c-third were created together: the later added goes first";
  EXPECT_THAT(keys({.order = JobOrder::updated, .descending = true}),
              ElementsAre("a-second", "c-third", "b-first"));
  EXPECT_THAT(keys({.order = JobOrder::key}), ElementsAre("a-second", "b-first", "c-third"));
  // By lifecycle: queued, creating, ..., failed.
  EXPECT_THAT(keys({.order = JobOrder::state}), ElementsAre("b-first", "c-third", "a-second"));
  EXPECT_THAT(keys({.order = JobOrder::state, .descending = true}),
              ElementsAre("a-second", "c-third", "b-first"));
  EXPECT_THAT(keys({.limit = 2, .order = JobOrder::created, .descending = true}),
              ElementsAre("c-third", "b-first"));
  EXPECT_THAT(keys({.tag = "none", .limit = 1, .order = JobOrder::key}), IsEmpty());
}

// What `ls` shows beyond the row's identity: times, the session's ACUs, and what may hold a
// queued job (its not_before, its user).
TEST_P(OperatorQueries, ASummaryCarriesTimesAcusAndWhatHoldsAQueuedJob) {
  core::JobDefinition later{.key = "later",
                            .spec = {.prompt = "p", .create_as_user_id = "bob"},
                            .controls = {.not_before_ms = 9000}};
  ASSERT_EQ(store_->add_job(later, "test", at(1000)).value(), AddResult::inserted);
  const std::int64_t id = running_job("ran");
  core::Session done = session("s-ran", "exit");
  done.acus_consumed = 0.4;
  const StatusUpdate update{.job_id = id, .session = done, .new_state = JobState::finished};
  ASSERT_TRUE(queue().record_statuses(std::span{&update, 1}, at(7000)));
  const ChildrenUpdate children{.job_id = id, .child_session_ids = {"s-c"}, .children_acus = 1.5};
  ASSERT_TRUE(queue().record_children(std::span{&children, 1}, at(8000)));

  const auto jobs = store_->list_jobs({.order = JobOrder::key});
  ASSERT_TRUE(jobs);
  ASSERT_EQ(jobs->size(), 2U);
  const JobSummary& queued = (*jobs)[0];
  EXPECT_EQ(queued.key, "later");
  EXPECT_EQ(queued.not_before_ms, 9000);
  EXPECT_EQ(queued.create_as_user_id, "bob");
  EXPECT_EQ(queued.started_at_ms, std::nullopt);
  EXPECT_EQ(queued.acus_consumed, std::nullopt) << "no session, no figure";
  EXPECT_EQ(queued.updated_at_ms, 1000);
  const JobSummary& ran = (*jobs)[1];
  EXPECT_EQ(ran.started_at_ms, 3);
  EXPECT_EQ(ran.finished_at_ms, 7000);
  EXPECT_EQ(ran.updated_at_ms, 8000);
  EXPECT_EQ(ran.acus_consumed, 0.4);
  EXPECT_EQ(ran.children_acus, 1.5);
}

// The server's waits, as the operator sees them: only those still in force.
TEST_P(OperatorQueries, OrgHoldsInForceAreReadable) {
  ASSERT_TRUE(queue().hold_org("org-a", at(5000), "HTTP 429", at(1000)));
  ASSERT_TRUE(queue().hold_org("org-b", at(2000), "HTTP 503", at(1000)));
  const auto holds = operators().org_holds(at(3000));
  ASSERT_TRUE(holds);
  ASSERT_EQ(holds->size(), 1U);
  EXPECT_EQ((*holds)[0].org_id, "org-a");
  EXPECT_EQ((*holds)[0].until_ms, 5000);
  EXPECT_EQ((*holds)[0].reason, "HTTP 429");
}

TEST_P(OperatorQueries, JobSourceSaysWhereAJobCameFrom) {
  add("by-hand", 1000, {}, std::nullopt, "cli");
  add("from-file", 1000, {}, std::nullopt, "file:jobs.yaml");
  EXPECT_EQ(store_->job_source(id_of("by-hand")).value(), "cli");
  EXPECT_EQ(store_->job_source(id_of("from-file")).value(), "file:jobs.yaml");
  const auto unknown = store_->job_source(987654);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), make_error_code(errc::not_found));
}

TEST_P(OperatorQueries, ListsPausesByOrganisationWithTheirSourceAndTime) {
  EXPECT_THAT(store_->list_pauses().value(), IsEmpty());
  ASSERT_TRUE(store_->pause_org("org-z", "maintenance", "cli", at(2000)));
  ASSERT_TRUE(store_->pause_org("*", "incident", "daemon", at(1000)));
  const auto pauses = store_->list_pauses();
  ASSERT_TRUE(pauses);
  ASSERT_EQ(pauses->size(), 2U);
  EXPECT_EQ((*pauses)[0].org_id, "*");
  EXPECT_EQ((*pauses)[0].reason, "incident");
  EXPECT_EQ((*pauses)[0].source, "daemon");
  EXPECT_EQ((*pauses)[0].paused_at_ms, 1000);
  EXPECT_EQ((*pauses)[1].org_id, "org-z");
  EXPECT_EQ((*pauses)[1].source, "cli");
  ASSERT_EQ(store_->resume_org("*").value(), 1);
  EXPECT_EQ(store_->list_pauses().value().size(), 1U);
}

// A dry run must promise exactly what prune then does.
TEST_P(OperatorQueries, CountPrunableCountsWhatPruneRemoves) {
  add_mixed();                              // gamma ended at 5000
  end("alpha", JobState::cancelled, 7000);  // ended after the cutoff below
  end("delta", JobState::finished, 2000);
  EXPECT_EQ(store_->count_prunable(at(6000)).value(), 2) << "gamma and delta, not alpha or beta";
  EXPECT_EQ(store_->count_prunable(at(1000)).value(), 0);
  EXPECT_EQ(store_->count_prunable(at(6000)).value(), 2) << "counting writes nothing";
  EXPECT_EQ(store_->prune(at(6000), at(8000)).value(), 2);
  EXPECT_EQ(store_->count_prunable(at(6000)).value(), 0);
  EXPECT_EQ(store_->count_prunable(at(9000)).value(), 1) << "alpha is next";
}

// `devin-orch delete`: one ended job and its history go; a job in progress is refused.
TEST_P(OperatorQueries, DeleteRemovesOneEndedJobAndItsHistory) {
  add_mixed();  // gamma failed at 5000; alpha, beta, delta queued
  end("delta", JobState::finished, 6000);
  ASSERT_TRUE(store_->add_invalid("typo", "file:jobs.yaml", "unknown field 'promt'", at(7000)));
  const std::int64_t gamma = id_of("gamma");
  ASSERT_FALSE(store_->history(gamma).value().empty());

  EXPECT_EQ(store_->delete_job("gamma", at(8000)).value(), DeleteResult::deleted);
  EXPECT_FALSE(store_->find("gamma").value().has_value());
  EXPECT_THAT(store_->history(gamma).value(), IsEmpty());
  EXPECT_EQ(store_->delete_job("gamma", at(8000)).value(), DeleteResult::not_found);
  EXPECT_EQ(store_->delete_job("typo", at(8000)).value(), DeleteResult::deleted);
  EXPECT_EQ(store_->delete_job("nobody", at(8000)).value(), DeleteResult::not_found);

  EXPECT_EQ(store_->delete_job("alpha", at(8000)).value(), DeleteResult::not_ended);
  ASSERT_TRUE(commit_intent(*store_, id_of("beta"), 1, "orch-beta-g0", 8000, at(8000)));
  EXPECT_EQ(store_->delete_job("beta", at(8000)).value(), DeleteResult::not_ended) << "creating";
  ASSERT_TRUE(commit_session(*store_, id_of("beta"), session("s-beta", "running"), false,
                             at(8000)));
  EXPECT_EQ(store_->delete_job("beta", at(8000)).value(), DeleteResult::not_ended) << "running";
  EXPECT_THAT(keys({}), ElementsAre("alpha", "beta", "delta"));

  // The key is free again.
  add("gamma", 9000);
  EXPECT_EQ(store_->find("gamma").value()->state, JobState::queued);
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(OperatorQueries);

}  // namespace devin_orch::store::contract
