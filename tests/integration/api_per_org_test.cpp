// api.organizations (issue 29) against devin-sim: one daemon serves an organisation on the
// legacy v1 API (its own apk_ key) and one on v3 (the global key). Each organisation's sessions
// are created through its own API, every job ends as its session did, a SIGKILL in the middle
// leaves no job with two sessions, and the v1 key is never logged.
#include "daemon_fixture.hpp"

#include <csignal>
#include <filesystem>
#include <thread>

#include <sys/stat.h>

namespace devin_orch::testing {
namespace {

using ApiPerOrg = DaemonFixture;

// The generated jobs for one organisation: `org_id` set when given, without
// create_as_user_id (which v1 has not).
std::string jobs_for(int count, const std::string& prefix, const std::string& org_id) {
  std::string jobs = generate_jobs(count, {"[sim:exit]", "[sim:error]", "[sim:finished]",
                                           "[sim:waiting]", "[sim:suspend=inactivity]"},
                                   prefix);
  for (auto at = jobs.find("  create_as_user_id:"); at != std::string::npos;
       at = jobs.find("  create_as_user_id:", at)) {
    jobs.erase(at, jobs.find('\n', at) - at + 1);
  }
  if (org_id.empty()) return jobs;
  const std::string item = "- key: ";
  for (auto at = jobs.find(item); at != std::string::npos; at = jobs.find(item, at + 1)) {
    jobs.replace(at, item.size(), "- org_id: " + org_id + "\n  key: ");
  }
  return jobs;
}

TEST_F(ApiPerOrg, EachOrganisationIsServedThroughItsOwnApiAcrossARestart) {
  constexpr int kJobsPerOrg = 30;
  // org-legacy first: the simulator's v1 key acts on its first organisation (reference §8).
  // Some create answers are lost and some are slow, so that the restart finds creates in
  // flight on both APIs and reconciles them through each one's own list.
  start_sim({"--time-factor", "0.004", "--seed", "29", "--org", "org-legacy", "--org",
             "org-demo", "--fault-drop-after-create", "0.1", "--fault-slow", "0.2",
             "--slow-ms", "600"});
  const std::string v1_key_file = dir_.file("legacy.key");
  write_file(v1_key_file, std::string{kV1ApiKey} + "\n");
  ASSERT_EQ(::chmod(v1_key_file.c_str(), 0600), 0);
  write_config(DaemonSettings{}, {"jobs-v3.yaml", "jobs-v1.yaml"});
  // The organisations' entries go into the api section the fixture wrote.
  std::string config = read_file(dir_.file("config.yaml"));
  const std::string version_line = "  version: v3\n";
  const auto at = config.find(version_line);
  ASSERT_NE(at, std::string::npos);
  config.insert(at + version_line.size(),
                "  organizations:\n    org-legacy:\n      version: v1\n      api_key_file: "
                "legacy.key\n");
  write_file(dir_.file("config.yaml"), config);
  write_jobs(jobs_for(kJobsPerOrg, "on-v3", ""), "jobs-v3.yaml");
  write_jobs(jobs_for(kJobsPerOrg, "on-v1", "org-legacy"), "jobs-v1.yaml");

  // A restart in the middle: SIGKILL once both organisations have sessions.
  auto daemon = spawn_daemon("first.log");
  const auto has_sessions_in_both = [&] {
    bool legacy = false;
    bool demo = false;
    for (const auto& session : sim_->sessions()) {
      legacy = legacy || session.at("org_id").as_string() == "org-legacy";
      demo = demo || session.at("org_id").as_string() == "org-demo";
    }
    return legacy && demo;
  };
  for (int wait = 0; wait < 500 && !has_sessions_in_both(); ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  EXPECT_TRUE(has_sessions_in_both());
  daemon->signal(SIGKILL);
  ASSERT_TRUE(daemon->wait_for(std::chrono::seconds{10}).has_value());

  const auto run = run_until_idle(std::chrono::seconds{300});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The restart found the v1 organisation's work in flight and took it up through v1.
  EXPECT_NE(run.err.find("org org-legacy: recovered"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("org org-legacy: recovered 0 running and 0 creating"),
            std::string::npos)
      << "the kill came too late to matter: " << run.err;
  expect_consistent_with_sim(2 * kJobsPerOrg);

  // Each job's session is in its own organisation: the v1 jobs' in org-legacy, which only the
  // v1 routes with the apk_ key reach (the simulator takes apk_ keys on v1 only, cog_ on v3).
  std::map<std::string, std::string> org_of_session;
  for (const auto& session : sim_->sessions()) {
    org_of_session[std::string{session.at("session_id").as_string()}] =
        std::string{session.at("org_id").as_string()};
  }
  for (const auto& [key, job] : jobs_by_key()) {
    ASSERT_TRUE(job.at("session_id").is_string()) << key;
    EXPECT_EQ(org_of_session[std::string{job.at("session_id").as_string()}],
              key.starts_with("on-v1") ? "org-legacy" : "org-demo")
        << key;
  }
  const auto stats = sim_->stats();
  const auto& requests = stats.at("requests").as_object();
  // Created through each API; v1 sessions polled one by one, v3 ones in batches.
  for (const char* route : {"POST /v1/sessions", "GET /v1/session/{session_id}",
                            "GET /v1/sessions", "POST /v3/organizations/{org_id}/sessions",
                            "GET /v3/organizations/{org_id}/sessions"}) {
    EXPECT_TRUE(requests.contains(route)) << route << " not called: "
                                          << boost::json::serialize(requests);
  }
  EXPECT_EQ(stats.at("duplicate_tag_groups").as_int64(), 0);
  EXPECT_GT(stats.at("faults").at("drop_after_create").as_int64(), 0);

  const std::string logs = read_file(dir_.file("first.log")) + run.err;
  EXPECT_NE(logs.find("org org-legacy: API v1 with the key from "
                      "api.organizations.org-legacy.api_key_file"),
            std::string::npos)
      << logs;
  EXPECT_EQ(logs.find(kV1ApiKey), std::string::npos) << "the v1 key was logged";
  EXPECT_EQ(logs.find(kApiKey), std::string::npos) << "the v3 key was logged";
}

// A v1 organisation's jobs are checked against v1 at load (file, line, field), while the same
// field is fine for the v3 organisation; nothing is sent for the refused job.
TEST_F(ApiPerOrg, V3OnlyFieldsAreRefusedForTheV1OrganisationOnly) {
  start_sim({"--time-factor", "0.005", "--org", "org-legacy", "--org", "org-demo"});
  const std::string v1_key_file = dir_.file("legacy.key");
  write_file(v1_key_file, std::string{kV1ApiKey} + "\n");
  ASSERT_EQ(::chmod(v1_key_file.c_str(), 0600), 0);
  DaemonSettings settings;
  write_config(settings);
  std::string config = read_file(dir_.file("config.yaml"));
  config.insert(config.find("  version: v3\n") + 14,
                "  organizations:\n    org-legacy:\n      version: v1\n      api_key_file: "
                "legacy.key\n");
  write_file(dir_.file("config.yaml"), config);
  write_jobs(R"(- key: fast-on-v3
  prompt: "p [sim:exit]"
  devin_mode: fast
- key: fast-on-v1
  org_id: org-legacy
  prompt: "p [sim:exit]"
  devin_mode: fast
- key: plain-on-v1
  org_id: org-legacy
  prompt: "p [sim:exit]"
)");
  // enqueue checks against the organisation's API too.
  const auto enqueued = run_command(
      daemon_options({"enqueue", "--config", dir_.file("config.yaml"), "--key", "queued-v1",
                      "--org", "org-legacy", "--prompt", "p [sim:exit]", "--devin-mode", "fast"}),
      std::chrono::seconds{30});
  EXPECT_EQ(enqueued.exit_code, 2) << enqueued.out << enqueued.err;
  EXPECT_NE(enqueued.err.find("--devin-mode"), std::string::npos) << enqueued.err;
  EXPECT_NE(enqueued.err.find("api.version v1"), std::string::npos) << enqueued.err;

  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("jobs.yaml:7:"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("jobs[1].devin_mode"), std::string::npos) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs.size(), 3U);
  EXPECT_EQ(jobs["fast-on-v3"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["plain-on-v1"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["fast-on-v1"].at("state").as_string(), "invalid");
  EXPECT_EQ(sim_->sessions().size(), 2U);
}

// A v1 organisation whose key file cannot be read stops the daemon at start, naming the
// setting: nothing is sent for any organisation.
TEST_F(ApiPerOrg, AnUnreadableOrganisationKeyFileStopsTheStart) {
  start_sim({"--time-factor", "0.005", "--org", "org-legacy", "--org", "org-demo"});
  write_config(DaemonSettings{});
  std::string config = read_file(dir_.file("config.yaml"));
  config.insert(config.find("  version: v3\n") + 14,
                "  organizations:\n    org-legacy:\n      version: v1\n      api_key_file: "
                "missing.key\n");
  write_file(dir_.file("config.yaml"), config);
  write_jobs(generate_jobs(2, {"[sim:exit]"}));
  const auto run = run_until_idle(std::chrono::seconds{60});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("api.organizations.org-legacy.api_key_file"), std::string::npos)
      << run.err;
  EXPECT_EQ(sim_->stats().at("requests_total").as_int64(), 0);
}

}  // namespace
}  // namespace devin_orch::testing
