// Shared set-up for end-to-end tests: a devin-sim process, a config and job file for the
// daemon, and helpers to run `devin-orch` and read its `status --json`.
#pragma once

#include "support/process.hpp"
#include "support/sim_harness.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace devin_orch::testing {

inline constexpr const char* kApiKey = "cog_integration_test_key_5f2c";
// The legacy v1 API's key (reference §1): the simulator takes it on /v1/ routes only.
inline constexpr const char* kV1ApiKey = "apk_integration_test_key_9b41";

struct DaemonSettings {
  std::string poll_initial = "100ms";
  std::string poll_max = "400ms";
  std::string poll_full_every = "5m";  // the daemon's default: most polls are incremental
  double requests_per_minute = 60000;
  double burst = 200;
  int max_active_sessions = 500;
  int max_concurrent_creates = 16;
  int max_attempts = 5;
  std::string request_timeout = "2s";
  std::string create_timeout = "2s";
  std::string settle_delay = "100ms";
  std::string settle_window = "1s";  // short: most tests' lists show sessions at once
  std::string drain_timeout = "5s";
  std::string database_url;  // PostgreSQL (postgresql://...) instead of state/orch.db
  std::string extra;  // appended verbatim to the YAML
};

class DaemonFixture : public ::testing::Test {
 protected:
  void start_sim(std::vector<std::string> flags);
  // Writes config.yaml pointing at the simulator and at `jobs_files` (relative to the dir).
  void write_config(const DaemonSettings& settings, std::vector<std::string> jobs_files = {"jobs.yaml"});
  void write_jobs(const std::string& yaml, const std::string& name = "jobs.yaml");

  ProcessOptions daemon_options(std::vector<std::string> args) const;
  RunResult run_until_idle(std::chrono::seconds timeout = std::chrono::seconds{120});
  std::unique_ptr<Process> spawn_daemon(const std::string& log_name = "daemon.log");
  // As a service (no --until-idle): it runs until signalled, whatever the queue holds.
  std::unique_ptr<Process> spawn_service(const std::string& log_name = "daemon.log");
  boost::json::array status_json();
  std::map<std::string, boost::json::object> jobs_by_key();

  // Checks every job is terminal, its session exists in the simulator, the job's state agrees
  // with the session's final status, and no creation tag is on two sessions.
  void expect_consistent_with_sim(std::size_t expected_jobs);

  TempDir dir_;
  std::unique_ptr<SimHarness> sim_;
  // The API the daemon is configured for (api.version) and whose key it is given.
  std::string api_version_ = "v3";
};

// A job file with `count` jobs; prompts cycle through the given simulator markers.
std::string generate_jobs(int count, const std::vector<std::string>& markers,
                          const std::string& key_prefix = "job");

// Waits (up to 20 s) for a daemon to log its metrics port in `log_path`; 0 if it never does.
int wait_for_metrics_port(const std::string& log_path);

// The job state a session's final simulator status implies (default completion policy).
std::string expected_state_for(const boost::json::object& session);

}  // namespace devin_orch::testing
