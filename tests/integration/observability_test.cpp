// What operators see: /metrics in valid Prometheus text, /healthz and /readyz, the healthcheck
// subcommand, JSON and journald log formats, and the API key absent from every output.
#include "daemon_fixture.hpp"

#include "server/exposition_validator.hpp"
#include "support/http.hpp"

#include <csignal>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

using Observability = DaemonFixture;

TEST_F(Observability, MetricsHealthAndReadinessWhileRunning) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(3, {"[sim:hold]"}, "held") + generate_jobs(2, {"[sim:exit]"}, "quick"));
  auto daemon = spawn_daemon();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));

  // Wait until the quick jobs ended and the held ones run.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  std::string metrics;
  while (std::chrono::steady_clock::now() < deadline) {
    metrics = http_call(port, "GET", "/metrics").body;
    if (metrics.find("devin_orch_jobs{state=\"finished\"} 2") != std::string::npos &&
        metrics.find("devin_orch_active_sessions 3") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  EXPECT_EQ(server::testing::exposition_problems(metrics), std::vector<std::string>{}) << metrics;
  for (const char* expected :
       {"devin_orch_jobs{state=\"running\"} 3", "devin_orch_jobs{state=\"finished\"} 2",
        "devin_orch_active_sessions 3", "devin_orch_paused_organizations 0",
        "devin_orch_api_requests_total{operation=\"create\",outcome=\"ok\"} 5",
        "devin_orch_sessions_total{origin=\"created\"} 5",
        "devin_orch_jobs_ended_total{state=\"finished\"} 2",
        "devin_orch_api_request_duration_seconds_bucket{operation=\"poll_batch\",le=\"+Inf\"}",
        "devin_orch_queue_wait_seconds_count 5", "devin_orch_session_duration_seconds_count 2",
        "devin_orch_oldest_queued_job_age_seconds 0"}) {
    EXPECT_NE(metrics.find(expected), std::string::npos) << "missing " << expected << "\n" << metrics;
  }
  // No session or job ids as label values.
  EXPECT_EQ(metrics.find("devin-"), std::string::npos);
  EXPECT_EQ(metrics.find("held-"), std::string::npos);

  EXPECT_EQ(http_call(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(http_call(port, "GET", "/readyz").status, 200);
  const auto healthy = run_command(daemon_options(
      {"healthcheck", "--config", dir_.file("config.yaml"), "--port", std::to_string(port)}));
  EXPECT_EQ(healthy.exit_code, 0) << healthy.out << healthy.err;

  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
  const auto gone = run_command(daemon_options(
      {"healthcheck", "--config", dir_.file("config.yaml"), "--port", std::to_string(port)}));
  EXPECT_EQ(gone.exit_code, 1) << gone.out;
}

TEST_F(Observability, TheApiKeyNeverAppearsInLogsDatabaseOrMetrics) {
  start_sim({"--time-factor", "0.005", "--fault-500", "0.2", "--fault-drop-after-create", "0.3"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(6, {"[sim:exit]", "[sim:error]"}));
  auto options = daemon_options(
      {"run", "--config", dir_.file("config.yaml"), "--until-idle", "--log-level", "trace"});
  const auto run = run_command(options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("[trace]"), std::string::npos) << "trace logging was not on";
  EXPECT_EQ(run.err.find(kApiKey), std::string::npos);
  EXPECT_EQ(run.out.find(kApiKey), std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator{dir_.file("state")}) {
    EXPECT_EQ(read_file(entry.path().string()).find(kApiKey), std::string::npos)
        << entry.path();
  }
  const auto status = run_command(daemon_options({"status", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(status.out.find(kApiKey), std::string::npos);
  const auto check = run_command(daemon_options({"check-config", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(check.out.find(kApiKey), std::string::npos);
  EXPECT_EQ(check.err.find(kApiKey), std::string::npos);
}

TEST_F(Observability, SessionSecretValuesReachTheApiButNoOutputOrFile) {
  constexpr const char* kSecret = "sess-secret-value-9d1e77";
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(R"(- key: with-secret
  prompt: "uses a secret [sim:exit]"
  session_secrets:
    - {key: DB_PASSWORD, from_env: DEVIN_ORCH_TEST_DB_PASSWORD}
- key: missing-secret
  prompt: "cannot start [sim:exit]"
  session_secrets:
    - {key: TOKEN, from_env: DEVIN_ORCH_TEST_NOT_SET}
)");
  auto options = daemon_options(
      {"run", "--config", dir_.file("config.yaml"), "--until-idle", "--log-level", "trace"});
  options.env.emplace_back("DEVIN_ORCH_TEST_DB_PASSWORD", kSecret);
  options.unset_env.emplace_back("DEVIN_ORCH_TEST_NOT_SET");
  const auto run = run_command(options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["with-secret"].at("state").as_string(), "finished")
      << "the simulator validates session_secrets: a malformed body would be rejected";
  EXPECT_EQ(jobs["missing-secret"].at("state").as_string(), "dead");
  EXPECT_NE(std::string{jobs["missing-secret"].at("error").as_string()}.find(
                "DEVIN_ORCH_TEST_NOT_SET is not set"),
            std::string::npos);
  EXPECT_EQ(sim_->sessions().size(), 1U);
  EXPECT_EQ(run.err.find(kSecret), std::string::npos);
  EXPECT_EQ(run.out.find(kSecret), std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator{dir_.file("state")}) {
    EXPECT_EQ(read_file(entry.path().string()).find(kSecret), std::string::npos) << entry.path();
  }
  const auto show = run_command(
      daemon_options({"show", "with-secret", "--json", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(show.out.find(kSecret), std::string::npos);
  EXPECT_NE(show.out.find("DEVIN_ORCH_TEST_DB_PASSWORD"), std::string::npos)
      << "the reference is visible, the value is not: " << show.out;
}

TEST_F(Observability, DatabaseIsPrivateToItsOwner) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(1, {"[sim:exit]"}));
  ASSERT_EQ(run_until_idle().exit_code, 0);
  EXPECT_EQ(std::filesystem::status(dir_.file("state")).permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  EXPECT_EQ(std::filesystem::status(dir_.file("state/orch.db")).permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(Observability, JsonLogsAreOneObjectPerLine) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs("- key: \"quote\\\"and\\\\slash\"\n  prompt: \"p [sim:exit]\"\n");
  const auto run = run_command(daemon_options(
      {"run", "--config", dir_.file("config.yaml"), "--until-idle", "--log-format", "json"}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::istringstream lines{run.err};
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    boost::system::error_code ec;
    const auto value = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    ASSERT_TRUE(value.is_object()) << line;
    EXPECT_TRUE(value.as_object().contains("level"));
    EXPECT_TRUE(value.as_object().contains("msg"));
    EXPECT_TRUE(value.as_object().contains("ts"));
    ++parsed;
  }
  EXPECT_GT(parsed, 3);
  EXPECT_NE(run.err.find(R"(quote\"and\\slash)"), std::string::npos) << "message escaping";
}

TEST_F(Observability, NoTimestampsUnderJournald) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(1, {"[sim:exit]"}));
  auto options = daemon_options({"run", "--config", dir_.file("config.yaml"), "--until-idle"});
  options.env.emplace_back("JOURNAL_STREAM", "8:12345");
  options.unset_env.erase(std::remove(options.unset_env.begin(), options.unset_env.end(),
                                      std::string{"JOURNAL_STREAM"}),
                          options.unset_env.end());
  const auto run = run_command(options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::istringstream lines{run.err};
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.rfind("[", 0), 0U) << "expected a bare [level] prefix: " << line;
  }
}

}  // namespace
}  // namespace devin_orch::testing
