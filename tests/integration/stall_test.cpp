// Stalled sessions against devin-sim (docs/stalls.md): a session held in running/working, whose
// updated_at never moves, is reported (log, `ls`, history, job.stalled, metrics), messaged once
// per stall even across a restart of the daemon, or terminated with its job ending `stalled`.
#include "daemon_fixture.hpp"
#include "scraped_metrics.hpp"

#include "support/http.hpp"

#include <chrono>
#include <csignal>
#include <functional>
#include <thread>

namespace devin_orch::testing {
namespace {

namespace json = boost::json;
using Stalls = DaemonFixture;

// Generous: a sanitizer build on a loaded machine. Only ever a limit on waiting for a
// condition, never an assertion about how fast it came.
constexpr auto kPatience = std::chrono::seconds{90};

bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  return condition();
}

// The user messages the simulator received for a session, in order.
std::vector<std::string> messages_of(const SimHarness& sim, const std::string& session_id) {
  const auto reply =
      http_call(sim.port(), "GET",
                "/v3/organizations/org-demo/sessions/" + session_id + "/messages", {},
                {{"Authorization", std::string{"Bearer "} + kApiKey}});
  std::vector<std::string> out;
  const auto parsed = json::parse(reply.body);
  for (const auto& item : parsed.at("items").as_array()) {
    out.emplace_back(item.at("message").as_string());
  }
  return out;
}

class StallFixture : public Stalls {
 protected:
  void configure(const std::string& stall_section, const std::string& jobs) {
    // The session reaches running/working quickly and stays there: its updated_at stops.
    start_sim({"--time-factor", "0.01"});
    DaemonSettings settings;
    settings.extra = stall_section;
    write_config(settings);
    write_jobs(jobs);
  }

  json::object show(const std::string& key) {
    const auto shown =
        run_command(daemon_options({"show", key, "--json", "--config", dir_.file("config.yaml")}));
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    return json::parse(shown.out).as_object();
  }

  // The job's history rows with this event name.
  std::size_t history_count(const std::string& key, std::string_view event) {
    std::size_t count = 0;
    const json::object shown = show(key);  // outlives the loop over its history
    for (const auto& entry : shown.at("history").as_array()) {
      if (entry.at("event").as_string() == event) ++count;
    }
    return count;
  }

  std::string error_of(const std::string& key) {
    auto job = jobs_by_key()[key];
    return job.contains("error") && job.at("error").is_string()
               ? std::string{job.at("error").as_string()}
               : std::string{};
  }

  std::string session_of(const std::string& key) {
    auto job = jobs_by_key()[key];
    return job.contains("session_id") && job.at("session_id").is_string()
               ? std::string{job.at("session_id").as_string()}
               : std::string{};
  }

  std::string status_of(const std::string& key) {
    auto jobs = jobs_by_key();
    const auto found = jobs.find(key);
    if (found == jobs.end()) return {};
    const auto* status = found->second.if_contains("status");
    return status != nullptr && status->is_string() ? std::string{status->as_string()} : "";
  }

  std::optional<double> metric(int port, std::string_view name, SampleLabels labels = {}) {
    return parse_scrape(http_call(port, "GET", "/metrics").body).value(name, std::move(labels));
  }

  void stop(std::unique_ptr<Process>& daemon) {
    daemon->signal(SIGTERM);
    const auto status = daemon->wait_for(std::chrono::seconds{60});
    ASSERT_TRUE(status.has_value()) << "the daemon did not stop";
    EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
    daemon.reset();
  }
};

TEST_F(StallFixture, AStalledSessionIsReportedOnceInTheLogLsHistoryAndMetrics) {
  configure("stall:\n  after: 2s\n  action: report\n",
            "- key: stuck\n  prompt: \"think forever [sim:hold]\"\n");
  auto daemon = spawn_service();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));

  ASSERT_TRUE(eventually([&] { return error_of("stuck").starts_with("stalled: no progress since "); }))
      << read_file(dir_.file("daemon.log"));
  EXPECT_NE(error_of("stuck").find("(stall_after 2s)"), std::string::npos) << error_of("stuck");
  ASSERT_TRUE(eventually([&] { return metric(port, "devin_orch_sessions_stalled") == 1.0; }));
  EXPECT_EQ(metric(port, "devin_orch_stalls_total", {{"action", "report"}}), 1.0);

  const auto listed =
      run_command(daemon_options({"ls", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("stalled: no progress since"), std::string::npos) << listed.out;
  EXPECT_NE(read_file(dir_.file("daemon.log")).find("stalled: no progress since"),
            std::string::npos)
      << "a warning in the log";

  // Still stalled at later polls: reported once, the job still running.
  const auto polls_before = metric(port, "devin_orch_status_polls_total", {{"kind", "incremental"}})
                                .value_or(0) +
                            metric(port, "devin_orch_status_polls_total", {{"kind", "full"}})
                                .value_or(0);
  ASSERT_TRUE(eventually([&] {
    return metric(port, "devin_orch_status_polls_total", {{"kind", "incremental"}}).value_or(0) +
               metric(port, "devin_orch_status_polls_total", {{"kind", "full"}}).value_or(0) >=
           polls_before + 5;
  }));
  EXPECT_EQ(history_count("stuck", "stalled"), 1U);
  EXPECT_EQ(metric(port, "devin_orch_stalls_total", {{"action", "report"}}), 1.0);
  EXPECT_EQ(jobs_by_key()["stuck"].at("state").as_string(), "running");
  stop(daemon);
}

// Devin writing messages is progress though updated_at stands still: around a quiet spell the
// daemon counts them (GET .../messages), and a session whose count moves is not stalled.
TEST_F(StallFixture, ASessionWhoseDevinKeepsWritingIsNotStalled) {
  configure("stall:\n  after: 2s\n  action: report\n",
            "- key: stuck\n  prompt: \"think forever [sim:hold]\"\n"
            "- key: talking\n  prompt: \"think aloud forever [sim:hold] [sim:chatty]\"\n");
  auto daemon = spawn_service();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));
  ASSERT_TRUE(eventually([&] { return error_of("stuck").starts_with("stalled: no progress since "); }))
      << read_file(dir_.file("daemon.log"));
  // Three more stall delays, with the counts read at least twice each.
  const auto counted = [&] {
    return metric(port, "devin_orch_api_requests_total",
                  {{"operation", "list_messages"}, {"outcome", "ok"}})
        .value_or(0);
  };
  const double counted_before = counted();
  ASSERT_TRUE(eventually([&] { return counted() >= counted_before + 6; }))
      << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(history_count("talking", "stalled"), 0U) << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(error_of("talking"), "");
  EXPECT_EQ(history_count("stuck", "stalled"), 1U);
  EXPECT_EQ(metric(port, "devin_orch_sessions_stalled"), 1.0);
  EXPECT_GE(messages_of(*sim_, session_of("talking")).size(), 3U) << "Devin wrote";
  stop(daemon);
}

TEST_F(StallFixture, TheMessageIsSentOnceAndNotAgainAfterARestart) {
  configure("stall:\n  after: 2s\n  action: message\n  message: \"Still there?\"\n",
            "- key: nudged\n  prompt: \"think forever [sim:hold]\"\n");
  auto daemon = spawn_service();
  ASSERT_TRUE(eventually([&] { return !session_of("nudged").empty(); }))
      << read_file(dir_.file("daemon.log"));
  const std::string session = session_of("nudged");
  ASSERT_TRUE(eventually([&] { return messages_of(*sim_, session).size() == 1; }))
      << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(messages_of(*sim_, session), std::vector<std::string>{"Still there?"});
  stop(daemon);

  // A new daemon finds the session still stalled: it knows the stall (the gauge says so) and
  // does not report or message it again.
  daemon = spawn_service("daemon2.log");
  const int port = wait_for_metrics_port(dir_.file("daemon2.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon2.log"));
  ASSERT_TRUE(eventually([&] { return metric(port, "devin_orch_sessions_stalled") == 1.0; }))
      << read_file(dir_.file("daemon2.log"));
  // Several more polls of the stalled session by the new daemon.
  const auto polls = [&] {
    return metric(port, "devin_orch_status_polls_total", {{"kind", "incremental"}}).value_or(0) +
           metric(port, "devin_orch_status_polls_total", {{"kind", "full"}}).value_or(0);
  };
  const double before = polls();
  ASSERT_TRUE(eventually([&] { return polls() >= before + 5; }));
  EXPECT_EQ(messages_of(*sim_, session), std::vector<std::string>{"Still there?"})
      << "the stall's message went again after the restart";
  EXPECT_EQ(metric(port, "devin_orch_stalls_total", {{"action", "message"}}), 0.0)
      << "the new daemon reported the known stall again";
  EXPECT_EQ(history_count("nudged", "stalled"), 1U);
  EXPECT_TRUE(error_of("nudged").starts_with("stalled: ")) << error_of("nudged");
  stop(daemon);
}

TEST_F(StallFixture, AStallThatBeganBeforeARestartIsFoundByTheNewDaemon) {
  // The first daemon does not watch for stalls; the second, configured to, finds the session
  // stalled since before it started: the rule reads the API's updated_at, not a memory.
  configure("", "- key: later\n  prompt: \"think forever [sim:hold]\"\n");
  auto daemon = spawn_service();
  ASSERT_TRUE(eventually([&] { return status_of("later") == "running"; }))
      << read_file(dir_.file("daemon.log"));
  const std::string session = session_of("later");
  stop(daemon);
  ASSERT_TRUE(messages_of(*sim_, session).empty());

  DaemonSettings settings;
  settings.extra = "stall:\n  after: 2s\n  action: message\n  message: \"Still there?\"\n";
  write_config(settings);
  daemon = spawn_service("daemon2.log");
  ASSERT_TRUE(eventually([&] { return messages_of(*sim_, session).size() == 1; }))
      << read_file(dir_.file("daemon2.log"));
  EXPECT_EQ(history_count("later", "stalled"), 1U);
  stop(daemon);
}

TEST_F(StallFixture, TerminateEndsTheSessionAndTheJobStalledPerJob) {
  // Off globally; the job asks for it, and a neighbour without it runs on.
  configure("",
            "- key: doomed\n  prompt: \"think forever [sim:hold]\"\n"
            "  stall_after: 2s\n  stall_action: terminate\n");
  const auto run = run_until_idle(kPatience);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto job = jobs_by_key()["doomed"];
  EXPECT_EQ(job.at("state").as_string(), "stalled");
  EXPECT_EQ(job.at("status").as_string(), "exit") << "the session was terminated";
  ASSERT_EQ(sim_->sessions().size(), 1U);
  EXPECT_EQ(sim_->sessions().front().at("status").as_string(), "exit");
  EXPECT_NE(std::string{job.at("error").as_string()}.find("stalled: no progress for 2s"),
            std::string::npos)
      << json::serialize(job);
  EXPECT_EQ(history_count("doomed", "stalled"), 2U) << "the report, then the end";
}

}  // namespace
}  // namespace devin_orch::testing
