// What a CI pipeline relies on, against devin-sim: `wait KEY...` beside a daemon in another
// process (finished, failed, timed out, unknown key), `run --until-idle --fail-on`, the lines a
// batch run logs while it waits (a job scheduled for later, a paused organisation, progress),
// and JSON log lines whose fields say which job, session, organisation and state they are about.
#include "daemon_fixture.hpp"

#include <chrono>
#include <ctime>
#include <regex>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

std::string rfc3339_in(std::chrono::milliseconds from_now) {
  const auto at = std::chrono::system_clock::now() + from_now;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class CiRuns : public DaemonFixture {
 protected:
  void SetUp() override {
    start_sim({"--time-factor", "0.005"});
    write_config(DaemonSettings{}, {});
  }

  ProcessOptions cli_options(const std::string& command, std::vector<std::string> args) const {
    args.insert(args.begin(), {command, "--config", dir_.file("config.yaml")});
    return daemon_options(std::move(args));
  }
  RunResult cli(const std::string& command, std::vector<std::string> args = {},
                std::chrono::seconds timeout = std::chrono::seconds{60}) {
    return run_command(cli_options(command, std::move(args)), timeout);
  }
  void enqueue(const std::string& key, const std::string& prompt,
               std::vector<std::string> more = {}) {
    std::vector<std::string> args{"--key", key, "--prompt", prompt};
    args.insert(args.end(), more.begin(), more.end());
    const auto added = cli("enqueue", std::move(args));
    ASSERT_EQ(added.exit_code, 0) << added.err;
  }
  RunResult run_batch(std::vector<std::string> extra) {
    std::vector<std::string> args{"--until-idle"};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli("run", std::move(args), std::chrono::seconds{60});
  }
};

// ---- wait -----------------------------------------------------------------------------------

TEST_F(CiRuns, WaitBlocksUntilADaemonInAnotherProcessEndsTheJobsThenExitsZero) {
  enqueue("first", "one [sim:exit]");
  enqueue("second", "two [sim:exit]");
  auto options = cli_options("wait", {"second", "first", "first", "--timeout", "60s", "--json"});
  options.stdout_path = dir_.file("wait.out");
  options.stderr_path = dir_.file("wait.err");
  Process waiting{options};
  std::this_thread::sleep_for(std::chrono::milliseconds{500});
  ASSERT_TRUE(waiting.running()) << "no daemon runs yet: the jobs are queued\n"
                                 << read_file(dir_.file("wait.err"));
  auto daemon = spawn_daemon();
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds{60}), 0) << read_file(dir_.file("wait.err"));
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{30}), 0) << read_file(dir_.file("daemon.log"));

  const auto rows = boost::json::parse(read_file(dir_.file("wait.out"))).as_array();
  ASSERT_EQ(rows.size(), 2U) << "each key once, in the order given";
  EXPECT_EQ(rows[0].at("key").as_string(), "second");
  EXPECT_EQ(rows[1].at("key").as_string(), "first");
  for (const auto& row : rows) {
    EXPECT_EQ(row.at("state").as_string(), "finished") << boost::json::serialize(row);
    EXPECT_EQ(row.at("status").as_string(), "exit");
    EXPECT_TRUE(row.at("session_id").is_string());
    EXPECT_TRUE(row.at("finished_at").is_string());
    EXPECT_EQ(row.at("org_id").as_string(), "org-demo");
  }
  const auto err = read_file(dir_.file("wait.err"));
  EXPECT_NE(err.find("no daemon works the queue now"), std::string::npos) << err;
  EXPECT_NE(err.find("devin-orch wait: first ended finished"), std::string::npos) << err;
  EXPECT_NE(err.find("devin-orch wait: second ended finished"), std::string::npos) << err;
}

TEST_F(CiRuns, WaitExitsFiveWhenAJobEndedBadlyAndPrintsTheLsColumns) {
  enqueue("good", "fine [sim:exit]");
  enqueue("bad", "broken [sim:error]");
  ASSERT_EQ(run_batch({}).exit_code, 0);

  const auto waited = cli("wait", {"good", "bad"});
  EXPECT_EQ(waited.exit_code, 5) << waited.out << waited.err;
  std::istringstream lines{waited.out};
  std::string header;
  std::getline(lines, header);
  EXPECT_TRUE(std::regex_match(
      header, std::regex{"KEY +STATE +ORG +SESSION +STATUS +AGE +DURATION +ACUS +REASON +ERROR"}))
      << header;
  EXPECT_TRUE(std::regex_search(waited.out, std::regex{"\ngood +finished +org-demo +devin-"}))
      << waited.out;
  EXPECT_TRUE(std::regex_search(waited.out, std::regex{"\nbad +failed +org-demo +devin-"}))
      << waited.out;
  EXPECT_NE(waited.err.find("bad (failed)"), std::string::npos) << waited.err;
  EXPECT_EQ(waited.err.find("good ("), std::string::npos) << waited.err;

  EXPECT_EQ(cli("wait", {"good"}).exit_code, 0);
  const auto not_counted = cli("wait", {"good", "bad", "--fail-on", "dead,lost"});
  EXPECT_EQ(not_counted.exit_code, 0) << "failed is not a --fail-on state here: "
                                      << not_counted.err;
  EXPECT_EQ(cli("wait", {"bad", "--fail-on", "failed"}).exit_code, 5);
}

TEST_F(CiRuns, WaitExitsSixWhenTheTimeoutPassesFirst) {
  enqueue("never-run", "nobody works the queue [sim:exit]");
  const auto started = std::chrono::steady_clock::now();
  const auto waited = cli("wait", {"never-run", "--timeout", "1500ms", "--json"});
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(waited.exit_code, 6) << waited.err;
  EXPECT_GE(took, std::chrono::milliseconds{1500});
  EXPECT_LT(took, std::chrono::seconds{10});
  const auto rows = boost::json::parse(waited.out).as_array();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].at("state").as_string(), "queued") << "printed as it stands";
  EXPECT_TRUE(rows[0].at("finished_at").is_null());
  EXPECT_EQ(rows[0].at("reason_code").as_string(), "no_daemon") << "why it waits, as ls says";
  EXPECT_NE(waited.err.find("timed out after 1500ms; not ended: never-run (queued)"),
            std::string::npos)
      << waited.err;
  EXPECT_EQ(cli("wait", {"never-run", "--timeout", "0s"}).exit_code, 6) << "0s looks once";
}

TEST_F(CiRuns, WaitExitsThreeForAnUnknownKeyWithoutWaiting) {
  enqueue("known", "here [sim:exit]");
  const auto started = std::chrono::steady_clock::now();
  const auto waited = cli("wait", {"known", "nope", "--timeout", "30s"});
  EXPECT_EQ(waited.exit_code, 3) << waited.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{10});
  EXPECT_NE(waited.err.find("devin-orch wait: no job has the key 'nope'"), std::string::npos)
      << waited.err;
  EXPECT_EQ(waited.err.find("'known'"), std::string::npos) << waited.err;
}

TEST_F(CiRuns, WaitRejectsBadUsage) {
  EXPECT_EQ(cli("wait").exit_code, 2);
  EXPECT_EQ(cli("wait", {"k", "--timeout", "soon"}).exit_code, 2);
  const auto not_ended = cli("wait", {"k", "--fail-on", "failed,running"});
  EXPECT_EQ(not_ended.exit_code, 2);
  EXPECT_NE(not_ended.err.find("'running' is not an ended state"), std::string::npos)
      << not_ended.err;
  EXPECT_EQ(cli("wait", {"k", "--fail-on", "failed,bogus"}).exit_code, 2);
}

// ---- run --until-idle -------------------------------------------------------------------------

TEST_F(CiRuns, FailOnMakesTheBatchRunExitFiveForTheJobsOfThisRunOnly) {
  enqueue("fine", "ok [sim:exit]");
  enqueue("broken", "oops [sim:error]");
  const auto run = run_batch({"--fail-on", "failed,dead"});
  EXPECT_EQ(run.exit_code, 5) << run.err;
  EXPECT_NE(run.err.find("job 'broken' ended failed"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("job 'fine' ended"), std::string::npos) << run.err;
  // Times in the text log are UTC and say so.
  std::istringstream lines{run.err};
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_search(
        line, std::regex{R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[)"}))
        << line;
  }

  // Nothing ended in the next run: the failure of the one before is not this run's.
  const auto again = run_batch({"--fail-on", "failed,dead"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  // Without --fail-on the outcomes do not change the exit code.
  enqueue("broken-too", "oops [sim:error]");
  EXPECT_EQ(run_batch({}).exit_code, 0);

  EXPECT_EQ(run_batch({"--fail-on", "running"}).exit_code, 2);
  EXPECT_EQ(cli("run", {"--fail-on", "failed"}).exit_code, 2) << "needs --until-idle";
}

TEST_F(CiRuns, ABatchRunSaysOnceThatItWaitsForAScheduledJobAndLogsProgress) {
  // Far enough ahead that a loaded machine, slow to enqueue and to start the batch run, still
  // leaves the run seconds of waiting to report.
  enqueue("later", "scheduled [sim:exit]", {"--not-before", rfc3339_in(std::chrono::seconds{20})});
  const auto run = run_batch({"--progress-every", "1s"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const std::regex waiting{
      R"(until idle: waiting for 1 job\(s\) scheduled for later, the next \('later'\) at )"
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"};
  EXPECT_TRUE(std::regex_search(run.err, waiting)) << run.err;
  EXPECT_EQ(count_of(run.err, "until idle: waiting for"), 1U) << "said once: " << run.err;
  EXPECT_GE(count_of(run.err, "progress: 1 job(s): 1 queued"), 2U) << run.err;
}

TEST_F(CiRuns, ABatchRunSaysItWaitsForAPausedOrganisationThenExitsOne) {
  enqueue("elsewhere", "held [sim:exit]", {"--org", "org-b"});
  enqueue("here", "runs [sim:exit]");
  ASSERT_EQ(cli("pause", {"--org", "org-b", "--reason", "budget review"}).exit_code, 0);
  const auto run = run_batch({});
  EXPECT_EQ(run.exit_code, 1) << "the paused organisation's job cannot start: " << run.err;
  const auto said = run.err.find("until idle: waiting for paused: org-b (budget review)");
  ASSERT_NE(said, std::string::npos) << run.err;
  const auto stuck = run.err.find("1 job(s) cannot start: paused: org-b (budget review)");
  ASSERT_NE(stuck, std::string::npos) << run.err;
  EXPECT_LT(said, stuck) << "said while the other job ran, before giving up";
  EXPECT_EQ(count_of(run.err, "until idle: waiting for"), 1U) << run.err;
}

TEST_F(CiRuns, ABatchRunSaysItWaitsForAWaitTheServerAnnounced) {
  enqueue("patient", "waits its turn [sim:exit]");
  // Every answer is a 503 asking for 4 s, until the daemon has heard one.
  sim_->configure(R"({"fault_503": 1.0, "fault_retry_after_ms": 4000})");
  auto options = cli_options("run", {"--until-idle"});
  options.stderr_path = dir_.file("daemon.log");
  Process daemon{options};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline &&
         sim_->stats().at("retry_after_windows").as_int64() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  sim_->configure(R"({"fault_503": 0.0})");
  ASSERT_EQ(daemon.wait_for(std::chrono::seconds{60}), 0) << read_file(dir_.file("daemon.log"));
  const auto log = read_file(dir_.file("daemon.log"));
  EXPECT_TRUE(std::regex_search(
      log, std::regex{R"(until idle: waiting for org org-demo: the server asked for no request )"
                      R"(until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z)"}))
      << log;
  EXPECT_EQ(count_of(log, "until idle: waiting for"), 1U) << log;
}

// ---- JSON logs ------------------------------------------------------------------------------

TEST_F(CiRuns, JsonLogLinesCarryTheJobSessionOrgAndStateAsFields) {
  enqueue("ok-job", "fine [sim:exit]");
  enqueue("bad-job", "broken [sim:error]");
  const auto run = run_batch({"--log-format", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto jobs = jobs_by_key();
  const std::string ok_session{jobs.at("ok-job").at("session_id").as_string()};
  const std::string bad_session{jobs.at("bad-job").at("session_id").as_string()};

  std::map<std::string, std::vector<boost::json::object>> by_event;
  std::istringstream lines{run.err};
  std::string line;
  while (std::getline(lines, line)) {
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    auto& object = value.as_object();
    EXPECT_TRUE(std::string{object.at("ts").as_string()}.ends_with("Z")) << line;
    if (const auto* event = object.if_contains("event")) {
      by_event[std::string{event->as_string()}].push_back(object);
    }
  }
  const auto find = [&](const std::string& event, const std::string& key) {
    for (const auto& object : by_event[event]) {
      if (const auto* k = object.if_contains("key"); k && k->as_string() == key) return object;
    }
    ADD_FAILURE() << "no " << event << " line for " << key << " in\n" << run.err;
    return boost::json::object{};
  };
  const auto created = find("session_created", "ok-job");
  EXPECT_EQ(created.at("session_id").as_string(), ok_session);
  EXPECT_EQ(created.at("org_id").as_string(), "org-demo");
  EXPECT_NE(std::string{created.at("msg").as_string()}.find(ok_session), std::string::npos)
      << "the message still says it in words";

  const auto ended_ok = find("job_ended", "ok-job");
  EXPECT_EQ(ended_ok.at("state").as_string(), "finished");
  EXPECT_EQ(ended_ok.at("status").as_string(), "exit");
  EXPECT_EQ(ended_ok.at("session_id").as_string(), ok_session);
  const auto ended_bad = find("job_ended", "bad-job");
  EXPECT_EQ(ended_bad.at("level").as_string(), "info");
  EXPECT_EQ(ended_bad.at("state").as_string(), "failed");
  EXPECT_EQ(ended_bad.at("status").as_string(), "error");
  EXPECT_EQ(ended_bad.at("session_id").as_string(), bad_session);
  EXPECT_EQ(ended_bad.at("org_id").as_string(), "org-demo");
  EXPECT_EQ(by_event["idle"].size(), 1U) << run.err;
}

}  // namespace
}  // namespace devin_orch::testing
