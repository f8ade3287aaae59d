// What operators see: /metrics in valid Prometheus text, /healthz and /readyz, the healthcheck
// subcommand, JSON and journald log formats, and the API key absent from every output.
#include "daemon_fixture.hpp"
#include "scraped_metrics.hpp"

#include "server/exposition_validator.hpp"
#include "support/http.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
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

// increase() over a series that appears at its first event misses that event: every counter
// whose label values are known is there at 0 before anything happened.
TEST_F(Observability, CountersAndTheBuildAreExportedBeforeAnyEvent) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{}, {});
  auto daemon = spawn_service();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));
  const auto text = http_call(port, "GET", "/metrics").body;
  const auto scrape = parse_scrape(text);
  const std::vector<std::pair<std::string, SampleLabels>> zeros{
      {"devin_orch_rate_limited_total", {{"kind", "rate"}}},
      {"devin_orch_rate_limited_total", {{"kind", "concurrency_cap"}}},
      {"devin_orch_create_lookups_total", {{"result", "found"}}},
      {"devin_orch_create_lookups_total", {{"result", "absent"}}},
      {"devin_orch_create_lookups_total", {{"result", "failed"}}},
      {"devin_orch_server_waits_total", {{"status", "503"}}},
      {"devin_orch_server_waits_total", {{"status", "other"}}},
      {"devin_orch_store_errors_total", {{"kind", "disk_full"}}},
      {"devin_orch_sessions_total", {{"origin", "adopted"}}},
      {"devin_orch_jobs_ended_total", {{"state", "dead"}}},
      {"devin_orch_duplicate_sessions_total", {{"result", "terminated"}}},
      {"devin_orch_status_polls_total", {{"kind", "incremental"}}},
      {"devin_orch_api_requests_total", {{"operation", "create"}, {"outcome", "rate_limited"}}},
      {"devin_orch_acus_consumed_total", {{"org_id", "org-demo"}}},
      {"devin_orch_unknown_suspensions_total", {}},
      {"devin_orch_queue_wait_seconds_count", {}},
      {"devin_orch_api_request_duration_seconds_count", {{"operation", "create"}}},
  };
  for (const auto& [name, labels] : zeros) {
    EXPECT_EQ(scrape.value(name, labels), 0.0) << name << " " << ::testing::PrintToString(labels)
                                               << "\n" << text;
  }

  const auto version = run_command(daemon_options({"version"}));
  ASSERT_EQ(version.exit_code, 0);
  const auto info = std::find_if(scrape.samples.begin(), scrape.samples.end(),
                                 [](const auto& s) { return s.name == "devin_orch_build_info"; });
  ASSERT_NE(info, scrape.samples.end()) << text;
  EXPECT_EQ(info->value, 1.0);
  std::map<std::string, std::string> labels{info->labels.begin(), info->labels.end()};
  EXPECT_EQ("devin-orch " + labels["version"] + "\n", version.out);
  EXPECT_TRUE(std::regex_match(labels["git_commit"], std::regex{"[0-9a-f]{40}(-dirty)?|unknown"}))
      << labels["git_commit"];
  EXPECT_TRUE(
      std::regex_match(labels["compiler"], std::regex{"(gcc|clang) [0-9]+\\.[0-9]+\\.[0-9]+"}))
      << labels["compiler"];
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
}

// The documented alert (oldest queued job older than an hour) means work is stuck: a job
// scheduled for later, or one held by a pause, must not fire it; a job that could start but
// waits for a slot must.
TEST_F(Observability, TheQueueAgeCountsOnlyJobsThatCouldStartNow) {
  start_sim({"--time-factor", "0.005"});
  DaemonSettings settings;
  settings.max_active_sessions = 1;
  write_config(settings, {});
  // Creates the database; the pause is the operator's.
  const auto paused = run_command(daemon_options(
      {"pause", "--org", "org-paused", "--config", dir_.file("config.yaml")}));
  ASSERT_EQ(paused.exit_code, 0) << paused.err;

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("state/orch.db").c_str(), &db), SQLITE_OK);
  const auto run_sql = [db](const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error ? error : "";
    sqlite3_free(error);
    return rc == SQLITE_OK ? std::string{} : message;
  };
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto two_hours_ago = std::to_string(now_ms - 7'200'000);
  // Jobs submitted two hours ago that cannot start now: scheduled for tomorrow, of a paused
  // organisation, created as a paused user.
  ASSERT_EQ(run_sql("INSERT INTO jobs (key, spec, created_at, not_before) VALUES ('tomorrow', "
                    "'{\"prompt\": \"later [sim:exit]\"}', " + two_hours_ago + ", " +
                    std::to_string(now_ms + 86'400'000) + ")"), "");
  ASSERT_EQ(run_sql("INSERT INTO jobs (key, org_id, spec, created_at) VALUES ('org-paused-job', "
                    "'org-paused', '{\"prompt\": \"p [sim:exit]\"}', " + two_hours_ago + ")"), "");
  ASSERT_EQ(run_sql("INSERT INTO jobs (key, spec, created_at) VALUES ('as-alice', "
                    "'{\"prompt\": \"p [sim:exit]\", \"create_as_user_id\": \"alice\"}', " +
                    two_hours_ago + ")"), "");
  ASSERT_EQ(run_sql("INSERT INTO user_pauses (org_id, user_id, reason, paused_at) VALUES "
                    "('org-demo', 'alice', 'user_usage_limit_exceeded', " + two_hours_ago + ")"),
            "");
  // And one that runs, taking the only slot.
  ASSERT_EQ(
      run_sql("INSERT INTO jobs (key, spec) VALUES ('holder', '{\"prompt\": \"h [sim:hold]\"}')"),
      "");

  auto daemon = spawn_service();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));
  const auto scrape_when = [&](const std::string& name, double wanted) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
    Scrape scrape;
    while (std::chrono::steady_clock::now() < deadline) {
      scrape = parse_scrape(http_call(port, "GET", "/metrics").body);
      if (scrape.value(name) == wanted) break;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return scrape;
  };
  auto scrape = scrape_when("devin_orch_active_sessions", 1);
  ASSERT_EQ(scrape.value("devin_orch_active_sessions"), 1.0) << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(scrape.value("devin_orch_jobs", {{"state", "queued"}}), 3.0);
  EXPECT_EQ(scrape.value("devin_orch_oldest_queued_job_age_seconds"), 0.0);
  EXPECT_EQ(scrape.value("devin_orch_paused_organizations"), 1.0);
  EXPECT_EQ(scrape.value("devin_orch_paused_users"), 1.0);

  // A job that could start but waits for the slot: this is the queue not draining.
  const auto an_hour_ago = std::to_string(now_ms - 3'600'000);
  ASSERT_EQ(run_sql("INSERT INTO jobs (key, spec, created_at) VALUES ('waiting', "
                    "'{\"prompt\": \"w [sim:exit]\"}', " + an_hour_ago + ")"),
            "");
  sqlite3_close(db);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  std::optional<double> age;
  while (std::chrono::steady_clock::now() < deadline) {
    age = parse_scrape(http_call(port, "GET", "/metrics").body)
              .value("devin_orch_oldest_queued_job_age_seconds");
    if (age > 0.0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  ASSERT_TRUE(age.has_value());
  EXPECT_GE(*age, 3600.0);
  EXPECT_LT(*age, 3600.0 + 120.0);
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
}

// The ACU counter adds up what the jobs recorded: each session's own figure and its children's,
// each ACU once, by organisation.
TEST_F(Observability, TheAcuCounterAddsUpWhatTheJobsRecorded) {
  start_sim({"--time-factor", "0.005", "--child-sessions", "2"});
  write_config(DaemonSettings{});
  write_jobs("- key: family\n  prompt: \"with helpers [sim:exit]\"\n"
             "  child_playbook_id: playbook-helpers\n" +
             generate_jobs(3, {"[sim:exit]", "[sim:error]"}));
  const std::vector<std::string> keys{"family", "job-0", "job-1", "job-2"};
  auto daemon = spawn_service();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));

  // The children's last figures come after their parent's end: until the counter and the
  // records agree, or the deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  double recorded = -1;
  std::optional<double> counted;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto scrape = parse_scrape(http_call(port, "GET", "/metrics").body);
    counted = scrape.value("devin_orch_acus_consumed_total", {{"org_id", "org-demo"}});
    if (scrape.value("devin_orch_jobs", {{"state", "queued"}}) == 0.0 &&
        scrape.value("devin_orch_jobs", {{"state", "creating"}}) == 0.0 &&
        scrape.value("devin_orch_jobs", {{"state", "running"}}) == 0.0) {
      recorded = 0;
      for (const auto& key : keys) {
        const auto show = run_command(
            daemon_options({"show", key, "--json", "--config", dir_.file("config.yaml")}));
        ASSERT_EQ(show.exit_code, 0) << show.err;
        const auto shown = boost::json::parse(show.out);
        recorded += shown.at("outcome").at("acus_consumed").to_number<double>();
      }
      if (counted && std::abs(*counted - recorded) < 1e-9) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  ASSERT_TRUE(counted.has_value());
  EXPECT_GT(recorded, 0.0);
  EXPECT_NEAR(*counted, recorded, 1e-9);
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
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
