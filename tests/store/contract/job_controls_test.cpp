// Contract: a job's controls (not_before, deadline, max_attempts, the waiting policy, ...) as
// stored and read back, and the operator's controls (cancel, retry, pause, prune).
#include "contract.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using core::JobState;

class JobControlsContract : public StoreContract {
 protected:
  core::JobRecord get(const std::string& key) { return store_->find(key).value().value(); }
  // Times far from zero, as a real clock gives them.
  static core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(1'800'000'000'000 + ms); }
};

TEST_P(JobControlsContract, ControlsRoundTripAndCountAsPartOfTheDefinition) {
  core::JobDefinition job{.key = "controlled", .spec = {.prompt = "p"}};
  job.controls = core::JobControls{
      .not_before_ms = 5, .deadline_ms = 9'000, .max_attempts = 2,
      .on_waiting_for_user = {.action = core::WaitingPolicy::Action::finish_after,
                              .finish_after = std::chrono::minutes{10}},
      .messages = {"add tests", "update the changelog"},
      .complete_on = core::CompletionPolicy::on_finished,
      .fan_out_enterprise = true};
  ASSERT_EQ(store_->add_job(job, "t", at(0)).value(), AddResult::inserted);
  EXPECT_EQ(get("controlled").definition, job);
  EXPECT_EQ(store_->add_job(job, "t", at(1)).value(), AddResult::unchanged);
  auto changed = job;
  changed.controls.messages.pop_back();
  EXPECT_EQ(store_->add_job(changed, "t", at(2)).value(), AddResult::changed);
  auto send = job;
  send.key = "sender";
  send.controls.on_waiting_for_user = {.action = core::WaitingPolicy::Action::send_message,
                                       .message = "yes, go ahead"};
  ASSERT_TRUE(store_->add_job(send, "t", at(3), std::string{"controlled"}));
  EXPECT_EQ(get("sender").definition, send);
  EXPECT_EQ(get("sender").parent_key, "controlled");
}

TEST_P(JobControlsContract, NotBeforeKeepsAJobOutOfTheClaimUntilItsTime) {
  core::JobDefinition later{.key = "later", .spec = {.prompt = "p"}};
  later.controls.not_before_ms = core::to_epoch_ms(at(1'000));
  ASSERT_TRUE(store_->add_job(later, "t", at(0)));
  EXPECT_TRUE(store_->claimable(at(999), 10).value().empty());
  EXPECT_EQ(store_->claimable(at(1'000), 10).value().size(), 1U);
}

// The queue's age (the gauge an alert watches) counts what is stuck: jobs that could start now.
// A job scheduled for later is not late until its not_before; paused jobs wait for an operator.
TEST_P(JobControlsContract, TheQueueAgeCountsOnlyJobsThatCouldStartNow) {
  const auto ms = [](std::int64_t offset) { return core::to_epoch_ms(at(offset)); };
  const ClaimFilter none{.default_org = "org-a"};
  EXPECT_EQ(store_->oldest_startable_since_ms(at(0), none).value(), std::nullopt);

  core::JobDefinition scheduled{.key = "scheduled", .spec = {.prompt = "p"}};
  scheduled.controls.not_before_ms = ms(50'000);
  ASSERT_TRUE(store_->add_job(scheduled, "t", at(0)));
  core::JobDefinition as_alice{.key = "as-alice",
                               .spec = {.prompt = "p", .create_as_user_id = "alice"}};
  ASSERT_TRUE(store_->add_job(as_alice, "t", at(1'000)));
  ASSERT_TRUE(store_->add_job({.key = "elsewhere", .org_id = "org-b", .spec = {.prompt = "p"}},
                              "t", at(2'000)));
  ASSERT_TRUE(store_->add_job({.key = "plain", .spec = {.prompt = "p"}}, "t", at(3'000)));

  // The scheduled job was submitted first but is not due: the oldest due one counts.
  EXPECT_EQ(store_->oldest_startable_since_ms(at(10'000), none).value(), ms(1'000));
  const ClaimFilter alice_paused{.default_org = "org-a", .paused_users = {{"org-a", "alice"}}};
  EXPECT_EQ(store_->oldest_startable_since_ms(at(10'000), alice_paused).value(), ms(2'000));
  const ClaimFilter both_paused{.paused_orgs = {"org-b"},
                                .default_org = "org-a",
                                .paused_users = {{"org-a", "alice"}}};
  EXPECT_EQ(store_->oldest_startable_since_ms(at(10'000), both_paused).value(), ms(3'000));

  // Once only the scheduled job could start, it has waited since its not_before, not since
  // its submission.
  ASSERT_TRUE(store_->finish(get("plain").id, JobState::cancelled, "t", at(20'000)));
  EXPECT_EQ(store_->oldest_startable_since_ms(at(40'000), both_paused).value(), std::nullopt);
  EXPECT_EQ(store_->oldest_startable_since_ms(at(60'000), both_paused).value(), ms(50'000));
  // A job that is no longer queued does not count.
  ASSERT_TRUE(commit_intent(*store_, get("as-alice").id, 1, "orch-a-g0", ms(61'000), at(61'000)));
  EXPECT_EQ(store_->oldest_startable_since_ms(at(62'000), none).value(), ms(2'000));
}

TEST_P(JobControlsContract, CancelRetryPauseAndPrune) {
  ASSERT_TRUE(store_->add_job({.key = "waiting", .spec = {.prompt = "p"}}, "t", at(0)));
  ASSERT_TRUE(store_->add_job({.key = "live", .spec = {.prompt = "p"}}, "t", at(0)));
  const auto live = get("live");
  ASSERT_TRUE(commit_intent(*store_, live.id, 1, "orch-x-g0", 1, at(1)));
  core::Session session{.session_id = "devin-1", .url = "u", .status = "running"};
  ASSERT_TRUE(commit_session(*store_, live.id, session, false, at(2)));

  using Cancel = CancelResult;
  EXPECT_EQ(store_->request_cancel("waiting", false, at(3)).value(), Cancel::cancelled);
  EXPECT_EQ(get("waiting").state, core::JobState::cancelled);
  EXPECT_EQ(store_->request_cancel("live", true, at(3)).value(), Cancel::requested);
  EXPECT_EQ(get("live").cancel_requested, 2);
  ASSERT_EQ(store_->cancel_requests().value().size(), 1U);
  EXPECT_EQ(store_->request_cancel("waiting", false, at(4)).value(), Cancel::already_ended);
  EXPECT_EQ(store_->request_cancel("nobody", false, at(4)).value(), Cancel::not_found);

  using Retry = RetryResult;
  EXPECT_EQ(store_->retry("live", at(5)).value(), Retry::not_terminal);
  EXPECT_EQ(store_->retry("waiting", at(5)).value(), Retry::requeued);
  const auto again = get("waiting");
  EXPECT_EQ(again.state, core::JobState::queued);
  EXPECT_EQ(again.generation, 1);
  EXPECT_NE(core::creation_tag("waiting", again.generation), core::creation_tag("waiting", 0));
  EXPECT_GE(store_->history(again.id).value().size(), 3U) << "history is kept";

  ASSERT_TRUE(store_->pause_org("org-a", "billing: out_of_credits", "daemon", at(6)));
  ASSERT_TRUE(store_->pause_org("org-a", "again", "cli", at(7)));
  EXPECT_EQ(store_->paused_orgs().value(),
            (std::map<std::string, std::string>{{"org-a", "billing: out_of_credits"}}));
  EXPECT_EQ(store_->resume_org("org-a").value(), 1);
  EXPECT_EQ(store_->resume_org("org-a").value(), 0);

  ASSERT_TRUE(store_->finish(live.id, core::JobState::cancelled, "operator", at(8)));
  EXPECT_EQ(store_->prune(at(8), at(100)).value(), 0) << "finished at the cutoff: kept";
  EXPECT_EQ(store_->prune(at(9), at(100)).value(), 1);
  EXPECT_FALSE(store_->find("live").value().has_value());
  EXPECT_TRUE(store_->find("waiting").value().has_value()) << "queued jobs are never pruned";
}

TEST_P(JobControlsContract, JobsPastTheirDeadlineComeEarliestDeadlineFirst) {
  // Added in the opposite order of their deadlines: the answer follows the deadlines.
  for (const auto& [key, deadline] : {std::pair{"late", 40}, std::pair{"early", 20},
                                      std::pair{"middle", 30}, std::pair{"future", 90}}) {
    core::JobDefinition job{.key = key, .spec = {.prompt = "p"}};
    job.controls.deadline_ms = core::to_epoch_ms(at(deadline));
    ASSERT_TRUE(store_->add_job(job, "t", at(0)));
  }
  EXPECT_EQ(keys(store_->past_deadline(at(50)).value()),
            (std::vector<std::string>{"early", "middle", "late"}));
}

TEST_P(JobControlsContract, DeadlinesAndRuntimeProgress) {
  core::JobDefinition timed{.key = "timed", .spec = {.prompt = "p"}};
  timed.controls.deadline_ms = core::to_epoch_ms(at(50));
  ASSERT_TRUE(store_->add_job(timed, "t", at(0)));
  EXPECT_TRUE(store_->past_deadline(at(49)).value().empty());
  ASSERT_EQ(store_->past_deadline(at(50)).value().size(), 1U);
  const auto id = get("timed").id;
  ASSERT_TRUE(store_->set_waiting_since(id, core::to_epoch_ms(at(10)), at(10)));
  ASSERT_TRUE(store_->record_message(id, 1, "follow-up", at(11)));
  EXPECT_EQ(get("timed").waiting_since_ms, core::to_epoch_ms(at(10)));
  EXPECT_EQ(get("timed").messages_sent, 1);
  ASSERT_TRUE(store_->set_waiting_since(id, std::nullopt, at(12)));
  EXPECT_FALSE(get("timed").waiting_since_ms.has_value());
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(JobControlsContract);

}  // namespace devin_orch::store::contract
