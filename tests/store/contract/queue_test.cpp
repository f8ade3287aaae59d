// Contract: the queue's operations as the daemon and the producers use them: adding jobs,
// claiming, every transition and its history, and the batch writes with per-write outcomes.
#include "contract.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using core::JobState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using QueueContract = StoreContract;

// A burst of creates shares one fsynced transaction; a job that moved on meanwhile is refused
// on its own and the others still take.
TEST_P(QueueContract, IntentsOfSeveralJobsCommitTogetherWithTheirOwnOutcomes) {
  for (const char* key : {"a", "b", "c"}) ASSERT_TRUE(store_->add_job(job(key), "test", at(0)));
  ASSERT_EQ(store_->request_cancel("b", false, at(1)).value(), CancelResult::cancelled);
  const std::vector<IntentWrite> intents{
      {.job_id = record("a").id, .attempt = 1, .tag = "orch-a-g0", .intent_at_ms = 2},
      {.job_id = record("b").id, .attempt = 1, .tag = "orch-b-g0", .intent_at_ms = 2},
      {.job_id = record("c").id, .attempt = 1, .tag = "orch-c-g0", .intent_at_ms = 2}};
  const auto outcomes = store_->commit_intents(intents, at(2));
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(outcomes->size(), 3U);
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_EQ((*outcomes)[1].error(), errc::conflict);
  EXPECT_TRUE((*outcomes)[2]);
  EXPECT_EQ(record("a").state, core::JobState::creating);
  EXPECT_EQ(record("a").creation_tag, "orch-a-g0");
  EXPECT_EQ(record("b").state, core::JobState::cancelled);
  EXPECT_EQ(record("c").state, core::JobState::creating);
  EXPECT_EQ(record("c").intent_at_ms, 2);
}

// Sessions answered close together are recorded in one transaction; a job that moved on
// meanwhile is refused alone.
TEST_P(QueueContract, SessionsOfSeveralJobsCommitTogetherWithTheirOwnOutcomes) {
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->add_job(job(key), "test", at(0)));
    ASSERT_TRUE(commit_intent(*store_, record(key).id, 1, std::string("orch-") + key, 1, at(1)));
  }
  ASSERT_TRUE(store_->finish(record("b").id, core::JobState::dead, "gave up", at(2)));
  const std::vector<SessionWrite> writes{
      {.job_id = record("a").id, .session = {.session_id = "devin-a", .status = "running"}},
      {.job_id = record("b").id, .session = {.session_id = "devin-b", .status = "running"}},
      {.job_id = record("c").id,
       .session = {.session_id = "devin-c", .status = "running"},
       .adopted = true}};
  const auto outcomes = store_->commit_sessions(writes, at(3));
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(outcomes->size(), 3U);
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_EQ((*outcomes)[1].error(), errc::conflict);
  EXPECT_TRUE((*outcomes)[2]);
  EXPECT_EQ(record("a").state, core::JobState::running);
  EXPECT_EQ(record("a").session_id, "devin-a");
  EXPECT_EQ(record("b").state, core::JobState::dead);
  EXPECT_EQ(record("c").session_id, "devin-c");
}

TEST_P(QueueContract, AddJobInsertsOnceAndReportsChangesWithoutApplyingThem) {
  core::JobDefinition original = job("k", 3);
  original.org_id = "org-a";
  EXPECT_EQ(store_->add_job(original, "file:jobs.yaml", at(100)).value(), AddResult::inserted);
  EXPECT_EQ(store_->add_job(original, "file:jobs.yaml", at(200)).value(), AddResult::unchanged);

  core::JobDefinition other_priority = original;
  other_priority.priority = 4;
  core::JobDefinition other_org = original;
  other_org.org_id = std::nullopt;
  core::JobDefinition other_spec = original;
  other_spec.spec.tags = {"new"};
  for (const auto& changed : {other_priority, other_org, other_spec}) {
    EXPECT_EQ(store_->add_job(changed, "file:jobs.yaml", at(300)).value(), AddResult::changed);
  }

  const core::JobRecord stored = record("k");
  EXPECT_EQ(stored.definition, original);
  EXPECT_EQ(stored.state, JobState::queued);
  EXPECT_EQ(stored.created_at_ms, 100);
  EXPECT_EQ(stored.updated_at_ms, 100);
  auto entries = store_->history(stored.id);
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 1U);
  EXPECT_EQ((*entries)[0].event, "queued");
  EXPECT_EQ((*entries)[0].state, "queued");
  EXPECT_EQ((*entries)[0].message, "file:jobs.yaml");
  EXPECT_EQ((*entries)[0].at_ms, 100);
}

TEST_P(QueueContract, KeyLengthIsCheckedInCharacters) {
  std::string longest;
  for (int i = 0; i < 512; ++i) longest += "\xC3\xBC";  // 512 characters, 1024 bytes
  EXPECT_EQ(store_->add_job(job(longest), "test", at(1)).value(), AddResult::inserted);
  auto too_long = store_->add_job(job(longest + "x"), "test", at(1));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error(), errc::invalid_argument);
  auto empty = store_->add_job(job(""), "test", at(1));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), errc::invalid_argument);
}

TEST_P(QueueContract, AddInvalidRecordsTheReasonOnce) {
  EXPECT_EQ(store_
                ->add_invalid("bad", "file:jobs.yaml", "field 'tags': expected an array of strings",
                              at(10))
                .value(),
            AddResult::inserted);
  const core::JobRecord stored = record("bad");
  EXPECT_EQ(stored.state, JobState::invalid);
  EXPECT_EQ(stored.last_error, "field 'tags': expected an array of strings");
  EXPECT_EQ(store_->outcome(stored.id).value().finished_at_ms, 10);
  EXPECT_THAT(events(*store_, stored.id), ElementsAre("invalid"));

  EXPECT_EQ(store_->add_invalid("bad", "file:jobs.yaml", "other", at(11)).value(),
            AddResult::unchanged);
  ASSERT_TRUE(store_->add_job(job("good"), "test", at(1)));
  EXPECT_EQ(store_->add_invalid("good", "file:jobs.yaml", "r", at(12)).value(),
            AddResult::unchanged);
  EXPECT_EQ(record("good").state, JobState::queued);
  EXPECT_EQ(record("bad").last_error, "field 'tags': expected an array of strings");
}

// --- mending an invalid job (issue 24) -----------------------------------------------------

// A typo leaves a job `invalid`; its corrected definition, from whichever producer, replaces it
// and the job runs. The history keeps both the reason and what the correction changed.
TEST_P(QueueContract, ACorrectedDefinitionMendsAnInvalidJob) {
  ASSERT_EQ(store_
                ->add_invalid("typo", "file:jobs.yaml",
                              "jobs.yaml:4:3: jobs[1].promt: unknown field 'promt'", at(10))
                .value(),
            AddResult::inserted);
  core::JobDefinition corrected = job("typo", 2);
  corrected.spec.tags = {"docs"};
  corrected.controls.max_attempts = 3;
  EXPECT_EQ(store_->add_job(corrected, "cli", at(20)).value(), AddResult::mended);

  const core::JobRecord stored = record("typo");
  EXPECT_EQ(stored.state, JobState::queued);
  EXPECT_EQ(stored.definition, corrected);
  EXPECT_EQ(stored.last_error, std::nullopt);
  EXPECT_EQ(stored.created_at_ms, 10) << "the same job, not a new one";
  EXPECT_EQ(stored.updated_at_ms, 20);
  EXPECT_EQ(stored.generation, 0);
  EXPECT_EQ(stored.attempts, 0);
  EXPECT_EQ(store_->outcome(stored.id).value().finished_at_ms, std::nullopt);
  EXPECT_EQ(store_->job_source(stored.id).value(), "cli");
  const auto entries = store_->history(stored.id).value();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].event, "invalid");
  EXPECT_EQ(entries[1].event, "mended");
  EXPECT_EQ(entries[1].state, "queued");
  EXPECT_EQ(entries[1].at_ms, 20);
  EXPECT_EQ(entries[1].message,
            "definition replaced by cli: priority, prompt, tags, max_attempts differ");
  EXPECT_THAT(keys(store_->claimable(at(30), 10).value()), ElementsAre("typo"));

  // Mended once: from now on the job keeps its definition like any other.
  EXPECT_EQ(store_->add_job(corrected, "cli", at(40)).value(), AddResult::unchanged);
  core::JobDefinition again = corrected;
  again.spec.prompt = "something else";
  EXPECT_EQ(store_->add_job(again, "cli", at(50)).value(), AddResult::changed);
  EXPECT_EQ(store_->add_invalid("typo", "file:jobs.yaml", "broken again", at(60)).value(),
            AddResult::unchanged);
  EXPECT_EQ(record("typo").definition, corrected);
  EXPECT_EQ(record("typo").state, JobState::queued);
  EXPECT_THAT(events(*store_, stored.id), ElementsAre("invalid", "mended"));
}

// Every other state keeps its definition: a key is a job's identity, and a job that ran (or
// could be running) must never have its definition swapped under it.
TEST_P(QueueContract, OnlyAnInvalidJobIsMended) {
  ASSERT_TRUE(store_->add_job(job("queued"), "test", at(1)));
  running_job("running");
  ASSERT_TRUE(store_->add_job(job("dead"), "test", at(1)));
  ASSERT_TRUE(store_->finish(record("dead").id, JobState::dead, "rejected", at(4)));
  ASSERT_TRUE(store_->add_job(job("cancelled"), "test", at(1)));
  ASSERT_EQ(store_->request_cancel("cancelled", false, at(4)).value(), CancelResult::cancelled);
  const std::int64_t finished = running_job("finished");
  const StatusUpdate ended{.job_id = finished,
                           .session = session("s-finished", "exit"),
                           .new_state = JobState::finished};
  ASSERT_TRUE(store_->record_statuses(std::span{&ended, 1}, at(5)));

  for (const char* key : {"queued", "running", "dead", "cancelled", "finished"}) {
    const core::JobRecord before = record(key);
    core::JobDefinition changed = job(key);
    changed.spec.prompt = "a different task";
    EXPECT_EQ(store_->add_job(changed, "test", at(10)).value(), AddResult::changed) << key;
    const core::JobRecord after = record(key);
    EXPECT_EQ(after.definition, before.definition) << key;
    EXPECT_EQ(after.state, before.state) << key;
    EXPECT_THAT(events(*store_, after.id), ::testing::Not(::testing::Contains("mended"))) << key;
  }
}

// A job file is stored in one transaction: a mend shares it with the file's new jobs.
TEST_P(QueueContract, AJobFilesBatchMendsAndInsertsTogether) {
  ASSERT_TRUE(store_->add_invalid("typo", "file:jobs.yaml", "bad", at(1)));
  ASSERT_TRUE(store_->add_job(job("kept"), "file:jobs.yaml", at(1)));
  const std::vector<core::JobDefinition> file{job("kept"), job("typo"), job("new")};
  EXPECT_EQ(store_->add_jobs(file, "file:jobs.yaml", at(2)).value(),
            (std::vector<AddResult>{AddResult::unchanged, AddResult::mended,
                                    AddResult::inserted}));
  EXPECT_EQ(record("typo").state, JobState::queued);
  const auto entries = store_->history(record("typo").id).value();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[1].message, "definition replaced by file:jobs.yaml: prompt differs");
}

// Retention's batches: at most `limit` jobs each, the earliest ends first, ended jobs only,
// until none ended before the cutoff is left.
TEST_P(QueueContract, PruneEndedRemovesAtMostALimitEarliestEndsFirst) {
  for (int i = 1; i <= 5; ++i) {
    const std::string key = "ended-" + std::to_string(i);
    ASSERT_TRUE(store_->add_job(job(key), "test", at(0)));
    // Ended out of key order, so the order of removal is the order of the ends.
    ASSERT_TRUE(store_->finish(record(key).id, JobState::dead, "r", at(1'000 * (6 - i))));
  }
  ASSERT_TRUE(store_->add_job(job("late"), "test", at(0)));
  ASSERT_TRUE(store_->finish(record("late").id, JobState::failed, "r", at(9'000)));
  ASSERT_TRUE(store_->add_job(job("waiting"), "test", at(0)));
  running_job("busy");

  EXPECT_EQ(store_->prune_ended(at(6'000), at(10'000), 0).value(), 0);
  EXPECT_EQ(store_->prune_ended(at(6'000), at(10'000), 2).value(), 2);
  EXPECT_THAT(keys(store_->all_jobs().value()),
              ElementsAre("ended-1", "ended-2", "ended-3", "late", "waiting", "busy"))
      << "ended-5 (at 1000) and ended-4 (at 2000) went first";
  EXPECT_EQ(store_->prune_ended(at(6'000), at(10'000), 2).value(), 2);
  EXPECT_EQ(store_->prune_ended(at(6'000), at(10'000), 2).value(), 1);
  EXPECT_EQ(store_->prune_ended(at(6'000), at(10'000), 2).value(), 0);
  EXPECT_THAT(keys(store_->all_jobs().value()), ElementsAre("late", "waiting", "busy"));
  EXPECT_EQ(store_->prune_ended(at(100'000), at(100'000), 100).value(), 1)
      << "only late: a queued or running job is never pruned";
  EXPECT_THAT(keys(store_->all_jobs().value()), ElementsAre("waiting", "busy"));
}

// --- round trips --------------------------------------------------------------------------

TEST_P(QueueContract, FullLifecycleIsRecordedInOrder) {
  ASSERT_EQ(store_->add_job(job("life"), "cli", at(1'000)).value(), AddResult::inserted);
  auto ready = store_->claimable(at(1'500), 10);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->size(), 1U);
  const std::int64_t id = (*ready)[0].id;
  const std::string tag = core::creation_tag("life", 0);

  ASSERT_TRUE(commit_intent(*store_, id, 1, tag, 2'000, at(2'000)));
  // A retried create keeps the first intent time: lookups search from there.
  ASSERT_TRUE(commit_intent(*store_, id, 2, tag, 2'500, at(2'500)));
  core::JobRecord creating = record("life");
  EXPECT_EQ(creating.state, JobState::creating);
  EXPECT_EQ(creating.attempts, 2);
  EXPECT_EQ(creating.creation_tag, tag);
  EXPECT_EQ(creating.intent_at_ms, 2'000);
  EXPECT_TRUE(store_->claimable(at(2'600), 10).value().empty());

  core::Session created = session("devin-1", "running", "working");
  created.pull_requests = {{.pr_url = "https://github.com/o/r/pull/1"}};
  ASSERT_TRUE(commit_session(*store_, id, created, false, at(3'000)));
  core::JobRecord running = record("life");
  EXPECT_EQ(running.state, JobState::running);
  EXPECT_EQ(running.session_id, "devin-1");
  EXPECT_EQ(running.session_url, "https://app.devin.ai/sessions/devin-1");
  EXPECT_EQ(running.status_detail, "working");
  EXPECT_EQ(store_->outcome(id).value().started_at_ms, 3'000);
  EXPECT_EQ(running.started_at_ms, 3'000);  // a restart re-attaches with the real start

  core::Session done = session("devin-1", "exit", "finished");
  done.acus_consumed = 4.5;
  done.structured_output = R"({"ok":true})";
  const StatusUpdate update{
      .job_id = id, .session = done, .new_state = JobState::finished, .reason = "session exited"};
  ASSERT_TRUE(store_->record_statuses({&update, 1}, at(4'000)));

  const core::JobRecord finished = record("life");
  EXPECT_EQ(finished.state, JobState::finished);
  EXPECT_EQ(finished.status, "exit");
  EXPECT_EQ(finished.last_error, "session exited");
  EXPECT_EQ(finished.updated_at_ms, 4'000);
  const Outcome out = store_->outcome(id).value();
  EXPECT_EQ(out.finished_at_ms, 4'000);
  EXPECT_DOUBLE_EQ(out.acus_consumed, 4.5);
  EXPECT_EQ(out.structured_output, R"({"ok":true})");
  EXPECT_TRUE(out.pull_requests.empty());

  auto entries = store_->history(id);
  ASSERT_TRUE(entries);
  EXPECT_THAT(events(*store_, id),
              ElementsAre("queued", "intent", "intent", "created", "status", "finished"));
  EXPECT_EQ((*entries)[1].message, "attempt 1");
  EXPECT_EQ((*entries)[2].message, "attempt 2");
  EXPECT_EQ((*entries)[3].state, "running");
  EXPECT_EQ((*entries)[3].status, "running");
  EXPECT_EQ((*entries)[4].status, "exit");
  EXPECT_EQ((*entries)[4].status_detail, "finished");
  EXPECT_EQ((*entries)[5].state, "finished");
  EXPECT_EQ((*entries)[5].message, "session exited");
  std::vector<std::int64_t> times;
  for (const auto& e : *entries) times.push_back(e.at_ms);
  EXPECT_THAT(times, ElementsAre(1'000, 2'000, 2'500, 3'000, 4'000, 4'000));
}

TEST_P(QueueContract, TransitionsFromTheWrongStateAreConflicts) {
  ASSERT_TRUE(store_->add_job(job("q"), "test", at(1)));
  const std::int64_t queued = id_of("q");
  auto early = commit_session(*store_, queued, session("s", "running"), false, at(2));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error(), errc::conflict);
  EXPECT_EQ(record("q").state, JobState::queued);
  EXPECT_FALSE(record("q").session_id.has_value());
  EXPECT_THAT(events(*store_, queued), ElementsAre("queued"));

  const std::int64_t running = running_job("r");
  EXPECT_EQ(commit_intent(*store_, running, 2, "t", 5, at(5)).error(), errc::conflict);
  EXPECT_EQ(commit_session(*store_, running, session("s2", "running"), true, at(5)).error(),
            errc::conflict);
  EXPECT_EQ(store_->requeue(running, 1, "no", at(5)).error(), errc::conflict);
  EXPECT_EQ(record("r").session_id, "s-r");

  ASSERT_TRUE(store_->finish(running, JobState::cancelled, "operator", at(6)));
  EXPECT_EQ(store_->finish(running, JobState::failed, "late", at(7)).error(), errc::conflict);
  EXPECT_EQ(record("r").state, JobState::cancelled);

  EXPECT_EQ(store_->finish(queued, JobState::running, "x", at(7)).error(), errc::invalid_argument);
  EXPECT_EQ(commit_session(*store_, 9999, session("s", "running"), false, at(2)).error(),
            errc::not_found);
  EXPECT_EQ(commit_intent(*store_, 9999, 1, "t", 1, at(2)).error(), errc::not_found);
  EXPECT_EQ(store_->note_error(9999, "e", at(2)).error(), errc::not_found);
  EXPECT_EQ(store_->outcome(9999).error(), errc::not_found);
}

// A poll's answer is about one session: it lands only on the job that runs on it. A job whose
// session commit was lost (a crashed database server) or that follows another session since
// must not end with a status and no session.
TEST_P(QueueContract, AStatusLandsOnlyOnTheJobRunningOnThatSession) {
  ASSERT_TRUE(store_->add_job(job("lost-commit"), "test", at(1)));
  const std::int64_t creating = id_of("lost-commit");
  ASSERT_TRUE(commit_intent(*store_, creating, 1, core::creation_tag("lost-commit", 0), 2, at(2)));
  const std::int64_t running = running_job("other-session");
  const std::vector<StatusUpdate> updates{
      {.job_id = creating, .session = session("s-lost", "exit"), .new_state = JobState::finished},
      {.job_id = running, .session = session("s-stale", "exit"), .new_state = JobState::finished},
      {.job_id = running, .session = session("s-stale", "blocked")}};
  ASSERT_TRUE(store_->record_statuses(updates, at(5)));
  EXPECT_EQ(record("lost-commit").state, JobState::creating);
  EXPECT_FALSE(record("lost-commit").status.has_value());
  EXPECT_THAT(events(*store_, creating), ElementsAre("queued", "intent"));
  EXPECT_EQ(record("other-session").state, JobState::running);
  EXPECT_EQ(record("other-session").status, "running");
  EXPECT_THAT(events(*store_, running), ElementsAre("queued", "intent", "created"));

  const StatusUpdate own{.job_id = running, .session = session("s-other-session", "exit"),
                         .new_state = JobState::finished};
  ASSERT_TRUE(store_->record_statuses(std::span{&own, 1}, at(6)));
  EXPECT_EQ(record("other-session").state, JobState::finished);
  EXPECT_EQ(record("other-session").session_id, "s-other-session");
}

// A session commit whose answer was lost although it went through is tried again: the job runs
// on that session already, which is success and no second event; another session is a conflict.
TEST_P(QueueContract, CommittingTheSameSessionAgainIsNotAConflict) {
  const std::int64_t id = running_job("twice");
  EXPECT_TRUE(commit_session(*store_, id, session("s-twice", "running"), false, at(4)));
  EXPECT_THAT(events(*store_, id), ElementsAre("queued", "intent", "created"));
  EXPECT_EQ(commit_session(*store_, id, session("s-another", "running"), true, at(5)).error(),
            errc::conflict);
  EXPECT_EQ(record("twice").session_id, "s-twice");
}

TEST_P(QueueContract, RequeueReturnsACreatingJobToTheQueue) {
  ASSERT_TRUE(store_->add_job(job("rq"), "test", at(1)));
  const std::int64_t id = id_of("rq");
  ASSERT_TRUE(commit_intent(*store_, id, 1, "tag", 2, at(2)));
  ASSERT_TRUE(store_->requeue(id, 1, "connect failed", at(3)));
  const core::JobRecord requeued = record("rq");
  EXPECT_EQ(requeued.state, JobState::queued);
  EXPECT_EQ(requeued.attempts, 1);
  EXPECT_EQ(requeued.last_error, "connect failed");
  EXPECT_EQ(requeued.intent_at_ms, 2);
  EXPECT_THAT(events(*store_, id), ElementsAre("queued", "intent", "requeued"));
  EXPECT_EQ(keys(store_->claimable(at(4), 5).value()), std::vector<std::string>{"rq"});
}

TEST_P(QueueContract, NoteErrorKeepsTheState) {
  const std::int64_t id = running_job("n");
  ASSERT_TRUE(store_->note_error(id, "poll timed out", at(9)));
  const core::JobRecord noted = record("n");
  EXPECT_EQ(noted.state, JobState::running);
  EXPECT_EQ(noted.last_error, "poll timed out");
  EXPECT_EQ(noted.updated_at_ms, 9);
  EXPECT_THAT(events(*store_, id), ElementsAre("queued", "intent", "created"));
}

TEST_P(QueueContract, RecordStatusesWritesHistoryOnlyOnChange) {
  const std::int64_t same = running_job("same");
  const std::int64_t moved = running_job("moved");
  const std::int64_t detail = running_job("detail");

  core::Session same_status = session("s-same", "running");
  same_status.acus_consumed = 2.0;
  core::Session new_status = session("s-moved", "suspended", "inactivity");
  core::Session new_detail = session("s-detail", "running", "waiting_for_user");
  new_detail.pull_requests = {{.pr_url = "https://github.com/o/r/pull/7", .pr_state = "open"}};
  const std::vector<StatusUpdate> batch{
      {.job_id = same, .session = same_status},
      {.job_id = moved, .session = new_status},
      {.job_id = detail, .session = new_detail},
  };
  ASSERT_TRUE(store_->record_statuses(batch, at(50)));

  EXPECT_THAT(events(*store_, same), ElementsAre("queued", "intent", "created"));
  EXPECT_THAT(events(*store_, moved), ElementsAre("queued", "intent", "created", "status"));
  EXPECT_THAT(events(*store_, detail), ElementsAre("queued", "intent", "created", "status"));
  // Fields are written whether or not the status changed.
  EXPECT_DOUBLE_EQ(store_->outcome(same).value().acus_consumed, 2.0);
  EXPECT_EQ(record("same").updated_at_ms, 50);
  EXPECT_EQ(record("moved").status_detail, "inactivity");
  EXPECT_EQ(record("moved").state, JobState::running);
  EXPECT_EQ(store_->outcome(detail).value().pull_requests, new_detail.pull_requests);

  // The same batch again is no change at all.
  ASSERT_TRUE(store_->record_statuses(batch, at(60)));
  EXPECT_EQ(events(*store_, moved).size(), 4U);
  EXPECT_EQ(events(*store_, detail).size(), 4U);

  // A detail cleared to null is a change too.
  const StatusUpdate cleared{.job_id = detail, .session = session("s-detail", "running")};
  ASSERT_TRUE(store_->record_statuses({&cleared, 1}, at(70)));
  auto entries = store_->history(detail).value();
  ASSERT_EQ(entries.size(), 5U);
  EXPECT_FALSE(entries.back().status_detail.has_value());
}

TEST_P(QueueContract, RecordStatusesLeavesTerminalJobsAlone) {
  const std::int64_t cancelled = running_job("cancelled");
  const std::int64_t live = running_job("live");
  ASSERT_TRUE(store_->finish(cancelled, JobState::cancelled, "operator", at(10)));

  const std::vector<StatusUpdate> batch{
      {.job_id = cancelled,
       .session = session("s-cancelled", "exit"),
       .new_state = JobState::finished},
      {.job_id = 424242, .session = session("gone", "exit")},
      {.job_id = live, .session = session("s-live", "blocked")},
  };
  ASSERT_TRUE(store_->record_statuses(batch, at(20)));
  EXPECT_EQ(record("cancelled").state, JobState::cancelled);
  EXPECT_EQ(record("cancelled").status, "running");
  EXPECT_THAT(events(*store_, cancelled), ElementsAre("queued", "intent", "created", "cancelled"));
  EXPECT_EQ(record("live").status, "blocked");
}

TEST_P(QueueContract, ChildSessionsAreRecordedWheneverAnAnswerCarriesThem) {
  const std::int64_t id = running_job("family");
  EXPECT_TRUE(store_->outcome(id).value().child_session_ids.empty());

  core::Session parent = session("s-family", "running");
  parent.child_session_ids = {"c-1", "c-2"};
  const StatusUpdate with_children{.job_id = id, .session = parent};
  ASSERT_TRUE(store_->record_statuses({&with_children, 1}, at(10)));
  EXPECT_EQ(store_->outcome(id).value().child_session_ids,
            (std::vector<std::string>{"c-1", "c-2"}));

  // An answer without them (null in the API) keeps the ones on record.
  const StatusUpdate without{.job_id = id, .session = session("s-family", "blocked")};
  ASSERT_TRUE(store_->record_statuses({&without, 1}, at(20)));
  EXPECT_EQ(store_->outcome(id).value().child_session_ids,
            (std::vector<std::string>{"c-1", "c-2"}));

  // The children's ACUs, and later ones after the job ended: the children outlive it.
  const ChildrenUpdate polled{.job_id = id, .child_session_ids = {"c-1", "c-2", "c-3"},
                              .children_acus = 1.5};
  ASSERT_TRUE(store_->record_children({&polled, 1}, at(30)));
  core::Session ended = session("s-family", "error");
  ended.acus_consumed = 2.0;
  const StatusUpdate finish{.job_id = id, .session = ended, .new_state = JobState::failed};
  ASSERT_TRUE(store_->record_statuses({&finish, 1}, at(40)));
  const ChildrenUpdate last{.job_id = id, .children_acus = 3.25};
  const ChildrenUpdate gone{.job_id = 424242, .children_acus = 1.0};
  const std::vector<ChildrenUpdate> final_batch{last, gone};
  ASSERT_TRUE(store_->record_children(final_batch, at(50)));
  const Outcome out = store_->outcome(id).value();
  EXPECT_EQ(out.child_session_ids, (std::vector<std::string>{"c-1", "c-2", "c-3"}))
      << "an update without ids keeps them";
  EXPECT_DOUBLE_EQ(out.children_acus, 3.25);
  EXPECT_DOUBLE_EQ(out.acus_consumed, 2.0) << "the session's own figure is kept apart";
  EXPECT_EQ(record("family").state, JobState::failed);
  EXPECT_EQ(record("family").child_session_ids, (std::vector<std::string>{"c-1", "c-2", "c-3"}))
      << "the record the dispatcher terminates from has them too";

  // A retry starts a new generation without the old session's family.
  ASSERT_EQ(store_->retry("family", at(60)).value(), RetryResult::requeued);
  EXPECT_TRUE(store_->outcome(id).value().child_session_ids.empty());
  EXPECT_EQ(store_->outcome(id).value().children_acus, 0.0);
}

TEST_P(QueueContract, ACreatedSessionRecordsItsChildren) {
  ASSERT_TRUE(store_->add_job(job("born"), "test", at(1)));
  const std::int64_t id = id_of("born");
  ASSERT_TRUE(commit_intent(*store_, id, 1, core::creation_tag("born", 0), 2, at(2)));
  core::Session created = session("s-born", "running");
  created.child_session_ids = {"c-9"};
  ASSERT_TRUE(commit_session(*store_, id, created, false, at(3)));
  EXPECT_EQ(store_->outcome(id).value().child_session_ids, (std::vector<std::string>{"c-9"}));
}

TEST_P(QueueContract, RecordStatusesRejectsANonTerminalNewState) {
  const std::int64_t id = running_job("x");
  const StatusUpdate update{
      .job_id = id, .session = session("s-x", "exit"), .new_state = JobState::queued};
  EXPECT_EQ(store_->record_statuses({&update, 1}, at(5)).error(), errc::invalid_argument);
  EXPECT_EQ(record("x").status, "running");
}

// --- claiming and producers ---------------------------------------------------------------

TEST_P(QueueContract, ClaimableOrdersByPriorityThenAgeAndHonoursTheLimit) {
  for (const auto& [key, priority] : std::vector<std::pair<std::string, int>>{
           {"a0", 0}, {"b5", 5}, {"c0", 0}, {"d5", 5}, {"e10", 10}, {"f-1", -1}}) {
    ASSERT_TRUE(store_->add_job(job(key, priority), "test", at(1)));
  }
  ASSERT_TRUE(commit_intent(*store_, id_of("d5"), 1, "t", 1, at(2)));  // no longer queued

  EXPECT_EQ(keys(store_->claimable(at(3), 10).value()),
            (std::vector<std::string>{"e10", "b5", "a0", "c0", "f-1"}));
  EXPECT_EQ(keys(store_->claimable(at(3), 3).value()),
            (std::vector<std::string>{"e10", "b5", "a0"}));
  EXPECT_TRUE(store_->claimable(at(3), 0).value().empty());
}

TEST_P(QueueContract, CountByStateReportsZeros) {
  ASSERT_TRUE(store_->add_job(job("a"), "test", at(1)));
  ASSERT_TRUE(store_->add_job(job("b"), "test", at(1)));
  running_job("c");
  const auto counts = store_->count_by_state().value();
  EXPECT_EQ(counts.size(), 12U);
  EXPECT_EQ(counts.at(JobState::queued), 2);
  EXPECT_EQ(counts.at(JobState::running), 1);
  EXPECT_EQ(counts.at(JobState::timed_out), 0);
}

TEST_P(QueueContract, InStateAndAllJobsAreOrderedById) {
  for (const char* key : {"z", "y", "x"}) ASSERT_TRUE(store_->add_job(job(key), "test", at(1)));
  running_job("w");
  EXPECT_EQ(keys(store_->all_jobs().value()), (std::vector<std::string>{"z", "y", "x", "w"}));
  EXPECT_EQ(keys(store_->in_state(JobState::queued).value()),
            (std::vector<std::string>{"z", "y", "x"}));
  EXPECT_EQ(keys(store_->in_state(JobState::running).value()), std::vector<std::string>{"w"});
  EXPECT_FALSE(store_->find("missing").value().has_value());
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(QueueContract);

}  // namespace devin_orch::store::contract
