// Contract: the notification outbox. Each state change that announces something writes its
// event in its own transaction (and a refused change writes none); routing, pending deliveries,
// attempts, dead letters, the operator's retry and pruning; the fence on the daemon's writes.
#include "contract.hpp"

#include "devin_orch/store/spec_codec.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

namespace json = boost::json;
using core::EventType;
using core::JobState;

class OutboxContract : public StoreContract {
 protected:
  OutboxStore& outbox() { return store_->outbox(); }

  std::vector<OutboxEvent> unrouted() { return outbox().unrouted_events(1000).value(); }
  std::vector<std::string> types() {
    std::vector<std::string> out;
    for (const auto& event : unrouted()) out.emplace_back(core::to_string(event.type));
    return out;
  }
  void end_with(std::int64_t id, const core::Session& session, JobState state) {
    const StatusUpdate update{.job_id = id, .session = session, .new_state = state};
    ASSERT_TRUE(queue().record_statuses(std::span{&update, 1}, at(10)));
  }
  std::vector<Delivery> operators_dead() {
    return outbox().list_deliveries({.states = {DeliveryState::dead}}).value();
  }
  static DeliveryRoute route(std::string url) {
    return DeliveryRoute{.sink = "webhook " + url, .target = {.url = std::move(url)}};
  }
};

TEST_P(OutboxContract, AJobThatEndsWritesItsEventWithTheOutcome) {
  core::JobDefinition tagged = job("build-1");
  tagged.spec.tags = {"ci", "team-a"};
  tagged.controls.notify = {{.url = "https://ci.example.com/hook", .secret_file = "/etc/s"}};
  ASSERT_EQ(intake().add_job(tagged, "jobs.yaml", at(1)).value(), AddResult::inserted);
  const std::int64_t id = id_of("build-1");
  ASSERT_TRUE(commit_intent(queue(), id, 1, core::creation_tag("build-1", 0), 2, at(2)));
  ASSERT_TRUE(commit_session(queue(), id, session("s-1", "running"), false, at(3)));
  EXPECT_TRUE(unrouted().empty());  // nothing announced while it runs

  core::Session ended = session("s-1", "exit");
  ended.acus_consumed = 2.5;
  ended.pull_requests = {{.pr_url = "https://github.com/o/r/pull/7", .pr_state = "open"}};
  ended.structured_output = R"({"result":"ok"})";
  end_with(id, ended, JobState::finished);

  const auto events = unrouted();
  ASSERT_EQ(events.size(), 1U);
  const OutboxEvent& event = events[0];
  EXPECT_EQ(event.type, EventType::job_finished);
  EXPECT_EQ(event.job_key, "build-1");
  EXPECT_THAT(event.tags, ::testing::ElementsAre("ci", "team-a"));
  EXPECT_EQ(event.job_targets, tagged.controls.notify);
  EXPECT_EQ(event.created_at_ms, 10);
  EXPECT_TRUE(event.id.starts_with("evt_"));
  const json::object body = json::parse(event.body).as_object();
  EXPECT_EQ(body.at("id").as_string(), event.id);
  EXPECT_EQ(body.at("type").as_string(), "job.finished");
  const json::object& j = body.at("job").as_object();
  EXPECT_EQ(j.at("key").as_string(), "build-1");
  EXPECT_EQ(j.at("source").as_string(), "jobs.yaml");
  EXPECT_EQ(j.at("state").as_string(), "finished");
  EXPECT_EQ(j.at("status").as_string(), "exit");
  EXPECT_EQ(j.at("session_id").as_string(), "s-1");
  EXPECT_EQ(j.at("session_url").as_string(), "https://app.devin.ai/sessions/s-1");
  EXPECT_DOUBLE_EQ(j.at("acus_consumed").to_number<double>(), 2.5);
  EXPECT_EQ(j.at("pull_requests").as_array().at(0).as_object().at("url").as_string(),
            "https://github.com/o/r/pull/7");
  EXPECT_EQ(j.at("structured_output").as_object().at("result").as_string(), "ok");
  EXPECT_EQ(j.at("tags").as_array().size(), 2U);
  // The receivers' configuration is not part of what they receive.
  EXPECT_EQ(event.body.find("secret_file"), std::string::npos);
}

TEST_P(OutboxContract, EveryEndAnnouncesOnceAndARefusedChangeNothing) {
  const std::int64_t a = running_job("a");
  end_with(a, session("s-a", "error"), JobState::failed);
  // Already ended: the update is skipped, and so is its event.
  end_with(a, session("s-a", "exit"), JobState::finished);
  ASSERT_TRUE(intake().add_job(job("b"), "t", at(1)));
  ASSERT_TRUE(queue().finish(id_of("b"), JobState::dead, "rejected", at(4)));
  EXPECT_FALSE(queue().finish(id_of("b"), JobState::lost, "again", at(5)));
  ASSERT_TRUE(intake().add_job(job("c"), "t", at(1)));
  EXPECT_EQ(operators().request_cancel("c", false, at(6)).value(), CancelResult::cancelled);
  // A status that ends nothing announces nothing.
  const std::int64_t d = running_job("d");
  const StatusUpdate update{.job_id = d, .session = session("s-d", "running", "working")};
  ASSERT_TRUE(queue().record_statuses(std::span{&update, 1}, at(7)));
  EXPECT_THAT(types(), ::testing::ElementsAre("job.failed", "job.dead", "job.cancelled"));
  const auto events = unrouted();
  EXPECT_EQ(json::parse(events[1].body).at("job").at("detail").as_string(), "rejected");
  EXPECT_LT(events[0].seq, events[1].seq);
  EXPECT_LT(events[1].seq, events[2].seq);
}

// A stall is reported once (job.stalled, a history row, last_error, stalled_since), cleared when
// the session moves again; a stall ended by termination is the job's end (job.stalled again).
TEST_P(OutboxContract, AStallIsRecordedAnnouncedAndClearedAndCanEndTheJob) {
  const std::int64_t id = running_job("st");
  const std::string note = "stalled: no progress since 1970-01-01T00:00:00.005Z (stall_after 1s)";
  ASSERT_TRUE(queue().record_stall(id, 5, note, at(1005)));
  auto record = store_->find("st").value().value();
  EXPECT_EQ(record.stalled_since_ms, 5);
  EXPECT_EQ(record.last_error, note);
  EXPECT_EQ(record.state, core::JobState::running);
  const auto history = operators().history(id).value();
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history.back().event, "stalled");
  EXPECT_EQ(history.back().message, note);
  EXPECT_THAT(types(), ::testing::ElementsAre("job.stalled"));

  ASSERT_TRUE(queue().record_stall(id, std::nullopt, "", at(1006)));  // it moves again
  record = store_->find("st").value().value();
  EXPECT_FALSE(record.stalled_since_ms);
  EXPECT_FALSE(record.last_error) << "the stall's note goes with it";
  EXPECT_EQ(types().size(), 1U) << "moving again announces nothing";

  ASSERT_TRUE(queue().record_stall(id, 2000, note, at(3000)));
  ASSERT_TRUE(queue().finish(id, core::JobState::stalled, "stalled: terminated", at(3001)));
  EXPECT_EQ(store_->find("st").value().value().state, core::JobState::stalled);
  EXPECT_THAT(types(), ::testing::ElementsAre("job.stalled", "job.stalled", "job.stalled"));
  // Ended: a late report changes nothing.
  ASSERT_TRUE(queue().record_stall(id, 4000, note, at(4000)));
  EXPECT_EQ(types().size(), 3U);
  EXPECT_EQ(store_->find("st").value().value().stalled_since_ms, 2000);
}

TEST_P(OutboxContract, WaitingDuplicatesAndPausesAreAnnouncedOnce) {
  const std::int64_t id = running_job("w");
  const auto seen = [&](std::optional<std::string> detail, std::int64_t ms) {
    const StatusUpdate update{.job_id = id, .session = session("s-w", "running", detail)};
    ASSERT_TRUE(queue().record_statuses(std::span{&update, 1}, at(ms)));
  };
  seen("waiting_for_user", 8);
  seen("waiting_for_user", 9);  // still waiting: said already
  ASSERT_TRUE(queue().set_waiting_since(id, 100, at(9)));  // a control's mark announces nothing
  seen("working", 10);
  const std::vector<std::string> terminated{"s-other"};
  ASSERT_TRUE(queue().record_duplicates(id, "s-w", session("s-w", "running"), terminated, at(11)));
  ASSERT_TRUE(queue().pause_org("org-1", "billing", "daemon", at(12)));
  ASSERT_TRUE(operators().pause_org("org-1", "again", "cli", at(13)));  // paused already
  EXPECT_EQ(operators().resume_org("org-1").value(), 1);
  EXPECT_EQ(operators().resume_org("org-1").value(), 0);
  ASSERT_TRUE(queue().pause_org("org-2", "key rejected", "daemon", at(14)));
  EXPECT_EQ(queue().lift_daemon_pause("org-2", "key rejected").value(), 1);
  EXPECT_THAT(types(), ::testing::ElementsAre("job.waiting_for_user", "job.duplicate_terminated",
                                              "org.paused", "org.resumed", "org.paused",
                                              "org.resumed"));
  seen("waiting_for_user", 15);  // a new wait: announced again
  EXPECT_EQ(types().back(), "job.waiting_for_user");
  const auto events = unrouted();
  const auto duplicate = json::parse(events[1].body).at("job").at("duplicate");
  EXPECT_EQ(duplicate.at("terminated_session_ids").as_array().at(0).as_string(), "s-other");
  const auto org = json::parse(events[2].body).at("org");
  EXPECT_EQ(org.at("id").as_string(), "org-1");
  EXPECT_EQ(org.at("reason").as_string(), "billing");
  EXPECT_EQ(events[2].org_id, "org-1");
  EXPECT_FALSE(events[2].job_key);
}

TEST_P(OutboxContract, RoutingMakesOneDeliveryPerReceiverOnce) {
  const std::int64_t a = running_job("a");
  end_with(a, session("s-a", "exit"), JobState::finished);
  const auto event = unrouted().at(0);
  const std::vector<DeliveryRoute> routes{route("https://one.example/h"),
                                          route("https://two.example/h")};
  ASSERT_TRUE(outbox().route_event(event.seq, routes, at(20)));
  EXPECT_TRUE(unrouted().empty());
  ASSERT_TRUE(outbox().route_event(event.seq, routes, at(21)));  // routed already: nothing
  const auto pending = outbox().pending_deliveries(100).value();
  ASSERT_EQ(pending.size(), 2U);
  EXPECT_EQ(pending[0].event_id, event.id);
  EXPECT_EQ(pending[0].body, event.body);
  EXPECT_EQ(pending[0].job_key, "a");
  EXPECT_EQ(pending[0].target.url, "https://one.example/h");
  EXPECT_EQ(pending[0].next_attempt_at_ms, 20);
  EXPECT_EQ(pending[0].age_from_ms, 10);
  EXPECT_EQ(pending[0].attempts, 0);
  const auto counts = outbox().outbox_counts().value();
  EXPECT_EQ(counts.unrouted, 0);
  EXPECT_EQ(counts.pending, 2);

  // An event nobody wants is routed to nobody and counts as settled.
  const std::int64_t b = running_job("b");
  end_with(b, session("s-b", "exit"), JobState::finished);
  ASSERT_TRUE(outbox().route_event(unrouted().at(0).seq, {}, at(22)));
  EXPECT_EQ(outbox().outbox_counts().value().unrouted, 0);
  EXPECT_EQ(outbox().pending_deliveries(100).value().size(), 2U);
}

TEST_P(OutboxContract, PendingDeliveriesAreTheFirstOfEachReceiver) {
  for (int i = 0; i < 4; ++i) {
    const std::string key = "job-" + std::to_string(i);
    end_with(running_job(key), session("s-" + key, "exit"), JobState::finished);
  }
  for (const auto& event : unrouted()) {
    const std::vector<DeliveryRoute> routes{route("https://slow.example/h"),
                                            route("https://fast.example/h")};
    ASSERT_TRUE(outbox().route_event(event.seq, routes, at(30)));
  }
  const auto first = outbox().pending_deliveries(2).value();
  ASSERT_EQ(first.size(), 4U);  // two per receiver, the earliest
  const auto all = outbox().pending_deliveries(100).value();
  ASSERT_EQ(all.size(), 8U);
  EXPECT_EQ(first[0].seq, all[0].seq);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LE(all[i - 1].seq, all[i].seq);
}

TEST_P(OutboxContract, AttemptsDeadLettersRetryAndPrune) {
  end_with(running_job("a"), session("s-a", "exit"), JobState::finished);
  end_with(running_job("b"), session("s-b", "error"), JobState::failed);
  const auto events = unrouted();
  for (const auto& event : events) {
    const std::vector<DeliveryRoute> routes{route("https://r.example/h")};
    ASSERT_TRUE(outbox().route_event(event.seq, routes, at(40)));
  }
  const std::string sink = "webhook https://r.example/h";
  ASSERT_TRUE(outbox().record_attempt({.seq = events[0].seq, .sink = sink,
                                       .state = DeliveryState::delivered, .attempts = 1},
                                      at(41)));
  ASSERT_TRUE(outbox().record_attempt({.seq = events[1].seq, .sink = sink,
                                       .state = DeliveryState::pending, .attempts = 1,
                                       .next_attempt_at_ms = 5'000, .error = "HTTP 500"},
                                      at(42)));
  auto pending = outbox().pending_deliveries(10).value();
  ASSERT_EQ(pending.size(), 1U);
  EXPECT_EQ(pending[0].attempts, 1);
  EXPECT_EQ(pending[0].next_attempt_at_ms, 5'000);
  EXPECT_EQ(pending[0].last_error, "HTTP 500");
  ASSERT_TRUE(outbox().record_attempt({.seq = events[1].seq, .sink = sink,
                                       .state = DeliveryState::dead, .attempts = 2,
                                       .error = "HTTP 500"},
                                      at(43)));
  // A delivery no longer pending is not changed by a late attempt.
  ASSERT_TRUE(outbox().record_attempt({.seq = events[0].seq, .sink = sink,
                                       .state = DeliveryState::dead, .attempts = 9}, at(44)));
  EXPECT_TRUE(outbox().pending_deliveries(10).value().empty());
  const auto counts = outbox().outbox_counts().value();
  EXPECT_EQ(counts.delivered, 1);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.pending, 0);

  const auto dead = operators_dead();
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0].event_id, events[1].id);
  const auto delivered = outbox().list_deliveries({.event_id = events[0].id}).value();
  ASSERT_EQ(delivered.size(), 1U);
  EXPECT_EQ(delivered[0].state, DeliveryState::delivered);
  EXPECT_EQ(delivered[0].delivered_at_ms, 41);
  EXPECT_EQ(outbox().list_deliveries({.job_key = "b"}).value().size(), 1U);

  // The operator's retry: dead back to pending, due now.
  EXPECT_EQ(outbox().retry_deliveries(events[1].id, at(50)).value(), 1);
  EXPECT_EQ(outbox().retry_deliveries(std::nullopt, at(51)).value(), 0);
  pending = outbox().pending_deliveries(10).value();
  ASSERT_EQ(pending.size(), 1U);
  EXPECT_EQ(pending[0].age_from_ms, 50);  // the maximum age starts again
  EXPECT_EQ(pending[0].next_attempt_at_ms, 50);
  // Prune: the settled event goes; the pending one stays.
  EXPECT_EQ(outbox().prune_events(at(1'000)).value(), 1);
  EXPECT_EQ(outbox().list_deliveries({}).value().size(), 1U);
}

TEST_P(OutboxContract, OnlyTheLeaseHolderRoutesAndRecords) {
  end_with(running_job("a"), session("s-a", "exit"), JobState::finished);
  const auto event = unrouted().at(0);
  auto other = connect();
  const core::Duration ttl{15'000};
  ASSERT_TRUE(queue().acquire_lease("queue", "me", ttl, at(100)).value().granted);
  const auto mine = queue().read_lease("queue").value().value();
  queue().set_fence(Fence{.name = "queue", .owner = "me", .epoch = mine.epoch});
  // Another daemon takes the lease after it lapsed: this one may no longer deliver.
  ASSERT_TRUE(other->acquire_lease("queue", "them", ttl, at(100'000)).value().granted);
  const std::vector<DeliveryRoute> routes{route("https://r.example/h")};
  const auto refused = outbox().route_event(event.seq, routes, at(100'001));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::lease_lost);
  EXPECT_EQ(outbox().outbox_counts().value().unrouted, 1);
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(OutboxContract);

}  // namespace devin_orch::store::contract
