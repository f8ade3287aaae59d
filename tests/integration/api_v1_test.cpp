// The daemon on the legacy v1 API (api.version: v1, issue 29) against devin-sim: the demo jobs
// end as they do on v3, jobs using v3-only fields are refused at load with their place in the
// file, and SIGKILLs with dropped create answers and 5xx leave no job with two sessions.
#include "daemon_fixture.hpp"

#include <csignal>
#include <filesystem>
#include <random>
#include <thread>

namespace devin_orch::testing {
namespace {

using ApiV1 = DaemonFixture;

// What a job ended as: its state, and for a job not `finished` the status and detail too. A
// finished job's status depends on when a poll caught it (running/finished lasts 50 ms here
// before suspended/inactivity), on either API; the state does not.
std::map<std::string, std::string> outcomes(const std::map<std::string, boost::json::object>& jobs) {
  std::map<std::string, std::string> out;
  for (const auto& [key, job] : jobs) {
    const std::string state{job.at("state").as_string()};
    const auto detail = job.at("status_detail");
    out[key] = state == "finished" ? state
                                   : state + " / " + std::string{job.at("status").as_string()} +
                                         " / " +
                                         (detail.is_string() ? std::string{detail.as_string()}
                                                             : "null");
  }
  return out;
}

// The demo (scripts/demo.sh: config/demo.yaml completes on `finished`) over the example jobs:
// examples/jobs.yaml on v3, examples/jobs-v1.yaml (the same jobs without v3-only fields) on v1.
TEST_F(ApiV1, TheDemoJobsEndAsOnV3) {
  const std::string source = DEVIN_ORCH_SOURCE_DIR;
  DaemonSettings settings;
  settings.extra = "  complete_on: finished\n";
  std::map<std::string, std::map<std::string, std::string>> by_version;
  for (const std::string version : {"v3", "v1"}) {
    api_version_ = version;
    std::filesystem::remove_all(dir_.file("state"));
    sim_.reset();  // a fresh simulator, whose port file is not the last one's
    std::filesystem::remove(dir_.file("sim.port"));
    start_sim({"--time-factor", "0.005", "--seed", "7"});
    write_config(settings, {source + (version == "v1" ? "/examples/jobs-v1.yaml"
                                                      : "/examples/jobs.yaml")});
    const auto run = run_until_idle();
    ASSERT_EQ(run.exit_code, 0) << version << ": " << run.err;
    by_version[version] = outcomes(jobs_by_key());
    EXPECT_EQ(duplicate_creation_tags(sim_->sessions()), 0) << version;
    const auto stats = sim_->stats();
    const auto& requests = stats.at("requests").as_object();
    if (version == "v1") {
      EXPECT_TRUE(requests.contains("POST /v1/sessions")) << boost::json::serialize(requests);
      EXPECT_TRUE(requests.contains("GET /v1/session/{session_id}"))
          << boost::json::serialize(requests);
      for (const auto& [route, counts] : requests) {
        EXPECT_TRUE(route.starts_with("GET /v1/") || route.starts_with("POST /v1/") ||
                    route.starts_with("DELETE /v1/"))
            << "v1 daemon called " << route;
      }
    } else {
      EXPECT_FALSE(requests.contains("POST /v1/sessions"));
    }
  }
  EXPECT_EQ(by_version["v1"], by_version["v3"]);
  EXPECT_EQ(by_version["v1"].size(), 6U);
  EXPECT_EQ(by_version["v1"]["dependency-bump"], "failed / error / null");
  EXPECT_EQ(by_version["v1"]["big-migration"], "suspended / suspended / out_of_credits");
  EXPECT_EQ(by_version["v1"]["flaky-test-triage"], "finished");
  EXPECT_EQ(by_version["v1"]["docs-typo-fix"], "finished");
}

TEST_F(ApiV1, V3OnlyFieldsAreRefusedAtLoadWithFileLineAndField) {
  api_version_ = "v1";
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(R"(- key: plain
  prompt: "fine on v1 [sim:exit]"
  tags: [a]
- key: impersonates
  prompt: "p [sim:exit]"
  create_as_user_id: user-alice
- key: fast
  prompt: "p [sim:exit]"
  devin_mode: fast
)");
  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("jobs.yaml:6:"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("jobs[1].create_as_user_id"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("jobs[2].devin_mode"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("api.version v1"), std::string::npos) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["plain"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["impersonates"].at("state").as_string(), "invalid");
  EXPECT_EQ(jobs["fast"].at("state").as_string(), "invalid");
  EXPECT_EQ(sim_->sessions().size(), 1U);  // nothing was sent for the refused jobs
}

// A job that reached the queue without the v1 check (enqueued before the switch, or by a tool
// that does not know the API version) is not sent on v1: the same validation ends it `invalid`
// when its turn comes, before any request. `enqueue` itself refuses such a job on v1.
TEST_F(ApiV1, AQueuedJobWithAV3OnlyFieldEndsInvalidBeforeAnythingIsSent) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});  // v3: the job is queued before the switch to v1
  write_jobs("");
  const auto enqueue = [&](const std::string& key) {
    return run_command(
        daemon_options({"enqueue", "--config", dir_.file("config.yaml"), "--key", key,
                        "--prompt", "p [sim:exit]", "--devin-mode", "fast"}),
        std::chrono::seconds{30});
  };
  const auto enqueued = enqueue("queued-v3");
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.err;
  api_version_ = "v1";
  write_config(DaemonSettings{});
  const auto refused = enqueue("refused-on-v1");
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--devin-mode: is not available with api.version v1"),
            std::string::npos)
      << refused.err;
  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_EQ(jobs["queued-v3"].at("state").as_string(), "invalid");
  EXPECT_NE(boost::json::serialize(jobs["queued-v3"].at("error")).find("devin_mode"),
            std::string::npos)
      << boost::json::serialize(jobs["queued-v3"]);
  EXPECT_TRUE(sim_->sessions().empty());
}

// The chaos test of CrashRecovery on v1: SIGKILLs at random moments while the simulator drops
// answers after creating sessions, resets connections and answers 5xx. Idempotent creates and
// the tag lookup through the v1 list must leave every job with exactly one session.
TEST_F(ApiV1, RandomKillsWithDroppedCreatesNeverDuplicateOnV1) {
  constexpr int kJobs = 200;
  constexpr int kKills = 6;
  api_version_ = "v1";
  start_sim({"--time-factor", "0.004", "--seed", "29", "--fault-drop-after-create", "0.15",
             "--fault-reset", "0.05", "--fault-500", "0.02", "--fault-503", "0.02",
             "--fault-slow", "0.3", "--slow-ms", "1500"});
  // Many slow answers keep creates in flight long enough for kills to land among them.
  DaemonSettings settings;
  settings.max_concurrent_creates = 24;
  settings.create_timeout = "3s";
  write_config(settings);
  // The generated jobs without create_as_user_id, which v1 has not.
  std::string jobs = generate_jobs(kJobs, {"[sim:exit]", "[sim:error]", "[sim:finished]",
                                           "[sim:waiting]", "[sim:suspend=inactivity]"});
  for (auto at = jobs.find("  create_as_user_id:"); at != std::string::npos;
       at = jobs.find("  create_as_user_id:", at)) {
    jobs.erase(at, jobs.find('\n', at) - at + 1);
  }
  write_jobs(jobs);
  std::mt19937 random{20261206};
  std::uniform_int_distribution<int> delay_ms{300, 1500};
  const auto any_creating = [&] {
    for (const auto& [key, job] : jobs_by_key()) {
      if (job.at("state").as_string() == "creating") return true;
    }
    return false;
  };
  for (int kill = 0; kill < kKills; ++kill) {
    auto daemon = spawn_daemon("daemon-" + std::to_string(kill) + ".log");
    std::this_thread::sleep_for(std::chrono::milliseconds{delay_ms(random)});
    // The first kills wait for a create in flight, so that restarts surely reconcile some.
    for (int wait = 0; kill < 2 && wait < 50 && !any_creating(); ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    daemon->signal(SIGKILL);
    ASSERT_TRUE(daemon->wait_for(std::chrono::seconds{10}).has_value());
  }
  const auto final_run = run_until_idle(std::chrono::seconds{600});
  EXPECT_EQ(final_run.exit_code, 0) << final_run.err;
  const auto stats = sim_->stats();
  EXPECT_GT(stats.at("faults").at("drop_after_create").as_int64(), 0);
  EXPECT_GT(stats.at("faults").at("500").as_int64() + stats.at("faults").at("503").as_int64(), 0);
  EXPECT_EQ(stats.at("duplicate_tag_groups").as_int64(), 0);
  expect_consistent_with_sim(kJobs);
  for (const auto& [key, job] : jobs_by_key()) {
    EXPECT_NE(job.at("state").as_string(), "dead") << key << ": " << boost::json::serialize(job);
  }
  // The run exercised what it claims to: sessions adopted by the tag lookup through the v1
  // list after their create answer was lost, and restarts that found jobs mid-create.
  std::string logs = final_run.err;
  for (int kill = 0; kill < kKills; ++kill) {
    logs += read_file(dir_.file("daemon-" + std::to_string(kill) + ".log"));
  }
  EXPECT_NE(logs.find("adopting it"), std::string::npos);
  EXPECT_NE(logs.find("was being created when the daemon stopped"), std::string::npos);
  const auto& requests = stats.at("requests").as_object();
  EXPECT_TRUE(requests.contains("GET /v1/sessions")) << boost::json::serialize(requests);
  EXPECT_FALSE(requests.contains("GET /v3/organizations/{org_id}/sessions"));
}

}  // namespace
}  // namespace devin_orch::testing
