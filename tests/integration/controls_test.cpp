// Job controls against devin-sim: deadlines terminate sessions, scheduled starts wait,
// waiting-for-user policies and follow-up messages, per-job completion, operator cancellation
// of a running job, a billing pause that persists until resumed, and enterprise fan-out.
#include "daemon_fixture.hpp"

#include "support/http.hpp"

#include <chrono>
#include <csignal>
#include <ctime>
#include <thread>

namespace devin_orch::testing {
namespace {

using Controls = DaemonFixture;

std::string rfc3339_in(std::chrono::milliseconds from_now) {
  const auto at = std::chrono::system_clock::now() + from_now;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

// The user messages the simulator received for a session, in order.
std::vector<std::string> messages_of(const SimHarness& sim, const std::string& session_id) {
  const auto reply =
      http_call(sim.port(), "GET",
                "/v3/organizations/org-demo/sessions/" + session_id + "/messages",
                {}, {{"Authorization", std::string{"Bearer "} + kApiKey}});
  std::vector<std::string> out;
  const auto parsed = boost::json::parse(reply.body);  // kept alive for the loop below
  for (const auto& item : parsed.at("items").as_array()) {
    out.emplace_back(item.at("message").as_string());
  }
  return out;
}

// Like any producer, waits for the daemon's write lock instead of failing on it.
void sqlite(const std::string& database, const std::string& sql) {
  const auto result = run_command(
      ProcessOptions{.args = {"/usr/bin/sqlite3", "-cmd", ".timeout 10000", database, sql}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

TEST_F(Controls, DeadlinesTerminateRunningSessionsAndStopQueuedJobs) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  // Far enough ahead that a sanitizer build's start-up on a loaded machine has created the
  // session before it passes (the test is about terminating a running session).
  write_jobs("- key: overdue-running\n  prompt: \"forever [sim:hold]\"\n  deadline: " +
             rfc3339_in(std::chrono::seconds{8}) + "\n" +
             "- key: overdue-queued\n  prompt: \"late [sim:exit]\"\n  deadline: " +
             rfc3339_in(-std::chrono::seconds{60}) + "\n");
  const auto run = run_until_idle(std::chrono::seconds{30});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["overdue-running"].at("state").as_string(), "timed_out");
  EXPECT_EQ(jobs["overdue-running"].at("status").as_string(), "exit") << "the session was terminated";
  EXPECT_EQ(jobs["overdue-queued"].at("state").as_string(), "timed_out");
  EXPECT_FALSE(jobs["overdue-queued"].at("session_id").is_string());
  ASSERT_EQ(sim_->sessions().size(), 1U);
  EXPECT_EQ(sim_->sessions().front().at("status").as_string(), "exit");
}

TEST_F(Controls, NotBeforeHoldsTheStartUntilItsTime) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  const auto started = std::chrono::system_clock::now();
  write_jobs("- key: scheduled\n  prompt: \"later [sim:exit]\"\n  not_before: " +
             rfc3339_in(std::chrono::seconds{3}) + "\n");
  const auto run = run_until_idle(std::chrono::seconds{30});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto sessions = sim_->sessions();
  ASSERT_EQ(sessions.size(), 1U);
  // The simulator stamps creation in epoch seconds; the job asked for >= ~2-3 s from now.
  const auto created = sessions.front().at("created_at").as_int64();
  EXPECT_GE(created, std::chrono::duration_cast<std::chrono::seconds>(
                         started.time_since_epoch()).count() + 2);
}

TEST_F(Controls, WaitingForUserFinishAfterEndsTheJobWhileTheSessionWaits) {
  start_sim({"--time-factor", "0.2"});  // the waiting phase lasts about 2 s
  write_config(DaemonSettings{});
  write_jobs("- key: patient\n  prompt: \"ask me [sim:waiting]\"\n"
             "  on_waiting_for_user: {finish_after: 500ms}\n");
  const auto run = run_until_idle(std::chrono::seconds{60});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["patient"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["patient"].at("status_detail").as_string(), "waiting_for_user")
      << "ended by the policy, not by the session";
}

TEST_F(Controls, WaitingForUserSendMessageAnswersOnce) {
  start_sim({"--time-factor", "0.1"});  // waiting for the user lasts about 1 s
  write_config(DaemonSettings{});
  write_jobs("- key: answered\n  prompt: \"ask me [sim:waiting]\"\n"
             "  on_waiting_for_user: {send_message: \"Yes, go ahead.\"}\n");
  const auto run = run_until_idle(std::chrono::seconds{60});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto job = jobs_by_key()["answered"];
  EXPECT_EQ(job.at("state").as_string(), "finished");
  EXPECT_EQ(messages_of(*sim_, std::string{job.at("session_id").as_string()}),
            std::vector<std::string>{"Yes, go ahead."});
}

TEST_F(Controls, FollowUpMessagesAreSentInOrderEachTimeTheSessionGoesIdle) {
  start_sim({"--time-factor", "0.02"});
  write_config(DaemonSettings{});
  write_jobs("- key: iterative\n  prompt: \"build it [sim:finished]\"\n"
             "  messages: [\"Now add tests.\", \"Now update the changelog.\"]\n");
  const auto run = run_until_idle(std::chrono::seconds{90});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto job = jobs_by_key()["iterative"];
  EXPECT_EQ(job.at("state").as_string(), "finished");
  EXPECT_EQ(messages_of(*sim_, std::string{job.at("session_id").as_string()}),
            (std::vector<std::string>{"Now add tests.", "Now update the changelog."}));
}

TEST_F(Controls, CompleteOnFinishedIsPerJob) {
  start_sim({"--time-factor", "0.05"});
  write_config(DaemonSettings{});
  write_jobs("- key: early\n  prompt: \"quick [sim:finished]\"\n  complete_on: finished\n");
  const auto run = run_until_idle(std::chrono::seconds{60});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto job = jobs_by_key()["early"];
  EXPECT_EQ(job.at("state").as_string(), "finished");
  EXPECT_EQ(job.at("status").as_string(), "running");
  EXPECT_EQ(job.at("status_detail").as_string(), "finished");
}

TEST_F(Controls, AnOperatorCancelTerminatesTheRunningSession) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(1, {"[sim:hold]"}, "doomed"));
  auto daemon = spawn_daemon();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline && sim_->sessions().empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  ASSERT_EQ(sim_->sessions().size(), 1U);
  const auto cancel = run_command(daemon_options(
      {"cancel", "doomed-0", "--archive", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_NE(cancel.out.find("cancellation requested"), std::string::npos) << cancel.out;
  const auto status = daemon->wait_for(std::chrono::seconds{20});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
  const auto job = jobs_by_key()["doomed-0"];
  EXPECT_EQ(job.at("state").as_string(), "cancelled");
  const auto session = sim_->sessions().front();
  EXPECT_EQ(session.at("status").as_string(), "exit");
  EXPECT_TRUE(session.at("is_archived").as_bool()) << "--archive was requested";
}

TEST_F(Controls, ABillingSuspensionPausesTheOrgUntilAnOperatorResumesIt) {
  start_sim({"--time-factor", "0.005"});
  DaemonSettings settings;
  settings.max_concurrent_creates = 1;
  settings.max_active_sessions = 1;
  write_config(settings);
  write_jobs("- key: broke\n  prompt: \"costly [sim:suspend=out_of_credits]\"\n  priority: 10\n" +
             generate_jobs(2, {"[sim:exit]"}, "after"));
  const auto first = run_until_idle();
  EXPECT_EQ(first.exit_code, 1) << "jobs are left that cannot start";
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["broke"].at("state").as_string(), "suspended");
  EXPECT_EQ(jobs["after-0"].at("state").as_string(), "queued");
  // The pause survives a restart...
  const auto second = run_until_idle();
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("paused"), std::string::npos) << second.err;
  EXPECT_EQ(sim_->sessions().size(), 1U);
  // ...until an operator lifts it.
  sqlite(dir_.file("state/orch.db"), "DELETE FROM org_pauses WHERE org_id = 'org-demo'");
  const auto third = run_until_idle();
  EXPECT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(jobs_by_key()["after-1"].at("state").as_string(), "finished");
}

TEST_F(Controls, AnOperatorPauseStopsNewSessionsUntilResumed) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(2, {"[sim:exit]"}));
  const auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--config", dir_.file("config.yaml")});
    return run_command(daemon_options(std::move(args)));
  };
  ASSERT_EQ(cli({"pause", "--reason", "maintenance window"}).exit_code, 0);
  const auto held = run_until_idle();
  EXPECT_EQ(held.exit_code, 1) << held.err;
  EXPECT_NE(held.err.find("maintenance window"), std::string::npos) << held.err;
  EXPECT_EQ(sim_->sessions().size(), 0U);
  ASSERT_EQ(cli({"resume"}).exit_code, 0);
  const auto resumed = run_until_idle();
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_consistent_with_sim(2);
}

TEST_F(Controls, APausedOrganisationsBacklogDoesNotHoldBackOtherOrganisations) {
  start_sim({"--time-factor", "0.005", "--org", "org-demo", "--org", "org-b"});
  DaemonSettings settings;
  settings.max_concurrent_creates = 1;  // the smallest claim window
  write_config(settings);
  std::string jobs;
  for (int i = 0; i < 20; ++i) {
    jobs += "- key: backlog-" + std::to_string(i) +
            "\n  prompt: \"p [sim:exit]\"\n  priority: 10\n";
  }
  jobs += "- key: elsewhere\n  prompt: \"p [sim:exit]\"\n  org_id: org-b\n";
  write_jobs(jobs);
  ASSERT_EQ(run_command(daemon_options({"pause", "--reason", "budget review", "--config",
                                        dir_.file("config.yaml")}))
                .exit_code,
            0);
  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 1) << "the paused organisation's jobs remain";
  EXPECT_NE(run.err.find("budget review"), std::string::npos) << run.err;
  auto states = jobs_by_key();
  EXPECT_EQ(states["elsewhere"].at("state").as_string(), "finished");
  EXPECT_EQ(states["backlog-0"].at("state").as_string(), "queued");
  EXPECT_EQ(sim_->sessions().size(), 1U);
}

TEST_F(Controls, FanOutCreatesOneChildJobPerOrganisationAcrossPages) {
  start_sim({"--time-factor", "0.005", "--enterprise-orgs", "204"});
  DaemonSettings settings;
  settings.max_concurrent_creates = 64;
  write_config(settings);
  write_jobs("- key: everywhere\n  prompt: \"audit [sim:exit]\"\n  fan_out: enterprise\n");
  const auto run = run_until_idle(std::chrono::seconds{120});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto jobs = jobs_by_key();
  ASSERT_EQ(jobs.size(), 1U + 205U) << "org-demo plus 204 enterprise organisations";
  EXPECT_EQ(jobs.at("everywhere").at("state").as_string(), "finished");
  EXPECT_FALSE(jobs.at("everywhere").at("session_id").is_string());
  EXPECT_EQ(jobs.at("everywhere@org-e0204").at("org_id").as_string(), "org-e0204");
  EXPECT_EQ(jobs.at("everywhere@org-e0204").at("state").as_string(), "finished");
  EXPECT_EQ(sim_->sessions().size(), 205U);
  EXPECT_EQ(duplicate_creation_tags(sim_->sessions()), 0);
}

}  // namespace
}  // namespace devin_orch::testing
