// End-to-end fixture implementation.
#include "daemon_fixture.hpp"

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace devin_orch::testing {

void DaemonFixture::start_sim(std::vector<std::string> flags) {
  flags.insert(flags.end(), {"--api-key", kApiKey, "--v1-api-key", kV1ApiKey});
  sim_ = std::make_unique<SimHarness>(dir_, std::move(flags));
}

void DaemonFixture::write_config(const DaemonSettings& s, std::vector<std::string> jobs_files) {
  std::ostringstream yaml;
  yaml << "api:\n"
       << "  base_url: " << sim_->base_url() << "\n"
       << "  org_id: org-demo\n"
       << "  version: " << api_version_ << "\n"
       << "  request_timeout: " << s.request_timeout << "\n"
       << "  create_timeout: " << s.create_timeout << "\n"
       << "  connect_timeout: 2s\n"
       << "rate:\n"
       << "  requests_per_minute: " << s.requests_per_minute << "\n"
       << "  burst: " << s.burst << "\n"
       << "poll:\n"
       << "  initial_delay: " << s.poll_initial << "\n"
       << "  max_delay: " << s.poll_max << "\n"
       << "  full_every: " << s.poll_full_every << "\n"
       << "  multiplier: 1.5\n"
       << "  jitter: 0.1\n"
       << "create:\n"
       << "  max_attempts: " << s.max_attempts << "\n"
       << "  retry_initial: 50ms\n"
       << "  retry_max: 500ms\n"
       << "  settle_delay: " << s.settle_delay << "\n"
       << "  settle_window: " << s.settle_window << "\n"
       << "  max_active_sessions: " << s.max_active_sessions << "\n"
       << "  max_concurrent_creates: " << s.max_concurrent_creates << "\n"
       << "database:\n"
       << "  path: state/orch.db\n"
       << (s.database_url.empty() ? "" : "  url: " + s.database_url + "\n")
       << "metrics:\n"
       << "  port: 0\n"
       << "shutdown:\n"
       << "  drain_timeout: " << s.drain_timeout << "\n"
       << "jobs:\n"
       << "  files:\n";
  for (const auto& file : jobs_files) yaml << "    - " << file << "\n";
  yaml << s.extra;
  write_file(dir_.file("config.yaml"), yaml.str());
}

void DaemonFixture::write_jobs(const std::string& yaml, const std::string& name) {
  write_file(dir_.file(name), yaml);
}

ProcessOptions DaemonFixture::daemon_options(std::vector<std::string> args) const {
  ProcessOptions options;
  options.args = {DEVIN_ORCH_BIN};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.env = {{"DEVIN_API_KEY", api_version_ == "v1" ? kV1ApiKey : kApiKey}};
  options.unset_env = {"CREDENTIALS_DIRECTORY", "DEVIN_ORCH_BASE_URL", "DEVIN_ORCH_ORG_ID", "DEVIN_ORCH_API_VERSION",
                       "DEVIN_ORCH_DATABASE", "JOURNAL_STREAM", "NOTIFY_SOCKET"};
  return options;
}

RunResult DaemonFixture::run_until_idle(std::chrono::seconds timeout) {
  return run_command(
      daemon_options({"run", "--config", dir_.file("config.yaml"), "--until-idle"}), timeout);
}

std::unique_ptr<Process> DaemonFixture::spawn_daemon(const std::string& log_name) {
  auto options = daemon_options({"run", "--config", dir_.file("config.yaml"), "--until-idle"});
  options.stdout_path = dir_.file(log_name + ".out");
  options.stderr_path = dir_.file(log_name);
  return std::make_unique<Process>(options);
}

std::unique_ptr<Process> DaemonFixture::spawn_service(const std::string& log_name) {
  auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
  options.stdout_path = dir_.file(log_name + ".out");
  options.stderr_path = dir_.file(log_name);
  return std::make_unique<Process>(options);
}

boost::json::array DaemonFixture::status_json() {
  const auto result =
      run_command(daemon_options({"status", "--config", dir_.file("config.yaml"), "--json"}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return boost::json::parse(result.out).as_array();
}

std::map<std::string, boost::json::object> DaemonFixture::jobs_by_key() {
  std::map<std::string, boost::json::object> jobs;
  for (const auto& row : status_json()) {
    jobs[std::string{row.at("key").as_string()}] = row.as_object();
  }
  return jobs;
}

int wait_for_metrics_port(const std::string& log_path) {
  const std::regex pattern{R"(metrics listening on http://127\.0\.0\.1:(\d+)/metrics)"};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch match;
    const auto text = read_file(log_path);
    if (std::regex_search(text, match, pattern)) return std::stoi(match[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return 0;
}

std::string expected_state_for(const boost::json::object& session) {
  const std::string status{session.at("status").as_string()};
  const auto& detail_value = session.at("status_detail");
  const std::string detail = detail_value.is_string() ? std::string{detail_value.as_string()} : "";
  if (status == "exit") return "finished";
  if (status == "error") return "failed";
  if (status == "suspended") {
    // Asleep after its turn (or put to sleep): done. Any other detail, billing, the user's
    // quota or one nobody knows, is a stop that must not read as success.
    if (detail.empty() || detail == "inactivity" || detail == "user_request") return "finished";
    return detail == "error" ? "failed" : "suspended";
  }
  return "running";
}

void DaemonFixture::expect_consistent_with_sim(std::size_t expected_jobs) {
  const auto sessions = sim_->sessions();
  std::map<std::string, boost::json::object> by_id;
  for (const auto& session : sessions) {
    by_id[std::string{session.at("session_id").as_string()}] = session.as_object();
  }
  EXPECT_EQ(duplicate_creation_tags(sessions), 0) << "a job produced two sessions";
  const auto jobs = status_json();
  EXPECT_EQ(jobs.size(), expected_jobs);
  std::size_t with_session = 0;
  for (const auto& value : jobs) {
    const auto& job = value.as_object();
    const std::string key{job.at("key").as_string()};
    const std::string state{job.at("state").as_string()};
    if (!job.at("session_id").is_string()) {
      ADD_FAILURE() << "job " << key << " has no session (state " << state << ", error "
                    << boost::json::serialize(job.at("error")) << ")";
      continue;
    }
    ++with_session;
    const std::string id{job.at("session_id").as_string()};
    const auto it = by_id.find(id);
    if (it == by_id.end()) {
      ADD_FAILURE() << "job " << key << " names session " << id << " unknown to the simulator";
      continue;
    }
    EXPECT_EQ(state, expected_state_for(it->second))
        << "job " << key << " vs session " << boost::json::serialize(it->second);
    EXPECT_EQ(job.at("status").as_string(), it->second.at("status").as_string()) << key;
  }
  EXPECT_EQ(with_session, expected_jobs);
  // Every session the simulator holds belongs to exactly one job.
  EXPECT_EQ(sessions.size(), expected_jobs);
}

std::string generate_jobs(int count, const std::vector<std::string>& markers,
                          const std::string& key_prefix) {
  std::ostringstream yaml;
  for (int i = 0; i < count; ++i) {
    yaml << "- key: " << key_prefix << "-" << i << "\n"
         << "  prompt: \"Task number " << i << " " << markers[i % markers.size()] << "\"\n"
         << "  create_as_user_id: user-" << (i % 3) << "\n"
         << "  tags: [batch]\n";
  }
  return yaml.str();
}

}  // namespace devin_orch::testing
