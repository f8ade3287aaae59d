// Other processes feeding the queue: the documented Python and sqlite3-shell examples run as
// written against a live daemon (a second run of the Python one mends the job its first left
// invalid), rows are picked up fast (p99 on the daemon's own timestamps), and bad rows end
// `invalid` with a reason while good ones run.
#include "daemon_fixture.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sqlite3.h>
#include <thread>

namespace devin_orch::testing {
namespace {

using Queue = DaemonFixture;

// The code block that follows `<!-- example: NAME -->` in docs/queue.md.
std::string doc_example(const std::string& name) {
  const auto doc = read_file(std::string{DEVIN_ORCH_SOURCE_DIR} + "/docs/queue.md");
  const auto marker = doc.find("<!-- example: " + name + " -->");
  if (marker == std::string::npos) throw std::runtime_error("no example " + name);
  const auto open = doc.find('\n', doc.find("```", marker)) + 1;
  const auto close = doc.find("\n```", open);
  return doc.substr(open, close - open + 1);
}

// Runs a daemon without --until-idle (the queue starts empty); returns once it has recovered,
// which means its database exists and is migrated.
std::unique_ptr<Process> spawn_queue_daemon(const TempDir& dir, ProcessOptions options) {
  options.stderr_path = dir.file("daemon.log");
  auto daemon = std::make_unique<Process>(options);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline &&
         read_file(dir.file("daemon.log")).find("recovered") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return daemon;
}

bool wait_until_terminal(std::size_t jobs, const std::function<boost::json::array()>& status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (std::chrono::steady_clock::now() < deadline) {
    const auto rows = status();
    const auto done = std::count_if(rows.begin(), rows.end(), [](const boost::json::value& row) {
      const auto state = row.at("state").as_string();
      return state != "queued" && state != "creating" && state != "running";
    });
    if (rows.size() == jobs && static_cast<std::size_t>(done) == jobs) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  return false;
}

TEST_F(Queue, TheDocumentedExamplesEnqueueJobsTheDaemonRuns) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{}, {});
  auto daemon = spawn_queue_daemon(dir_,
                                   daemon_options({"run", "--config", dir_.file("config.yaml")}));
  const auto database = dir_.file("state/orch.db");
  ASSERT_TRUE(std::filesystem::exists(database)) << read_file(dir_.file("daemon.log"));

  write_file(dir_.file("enqueue.py"), doc_example("enqueue.py"));
  const auto python = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/python3", dir_.file("enqueue.py"), database});
    return run_command(ProcessOptions{.args = args});
  };
  const auto first = python({"from-python", "Fix the flaky test [sim:exit]", "ci", "flaky"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, "queued from-python\n");
  const auto again = python({"from-python", "a second submission of the same key"});
  EXPECT_EQ(again.out, "exists from-python\n") << "a key is never queued twice";

  write_file(dir_.file("enqueue.sh"), doc_example("enqueue.sh"));
  const auto shell = run_command(ProcessOptions{
      .args = {"/bin/sh", dir_.file("enqueue.sh")}, .env = {{"DATABASE", database}}});
  EXPECT_EQ(shell.exit_code, 0) << shell.err;

  EXPECT_TRUE(wait_until_terminal(2, [&] { return status_json(); }));
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);

  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["from-python"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["nightly-docs-check"].at("state").as_string(), "finished");
  for (const auto& session : sim_->sessions()) {
    const auto& tags = session.at("tags").as_array();
    const bool from_python = std::find(tags.begin(), tags.end(), boost::json::value("flaky")) != tags.end();
    const bool from_shell = std::find(tags.begin(), tags.end(), boost::json::value("nightly")) != tags.end();
    EXPECT_TRUE(from_python || from_shell) << boost::json::serialize(session);
  }
  EXPECT_EQ(sim_->sessions().size(), 2U);
}

// Issue 24 through the documented producer: the same script, run again with the mistake fixed,
// mends the job its first run left `invalid` (docs/queue.md, "Mending an invalid job").
TEST_F(Queue, TheDocumentedInsertRunAgainMendsAnInvalidJob) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{}, {});
  auto daemon = spawn_queue_daemon(dir_,
                                   daemon_options({"run", "--config", dir_.file("config.yaml")}));
  const auto database = dir_.file("state/orch.db");
  write_file(dir_.file("enqueue.py"), doc_example("enqueue.py"));
  const auto python = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/python3", dir_.file("enqueue.py"), database});
    return run_command(ProcessOptions{.args = args});
  };
  ASSERT_EQ(python({"mend-me", "   "}).out, "queued mend-me\n");
  ASSERT_TRUE(wait_until_terminal(1, [&] { return status_json(); }));
  auto jobs = jobs_by_key();
  ASSERT_EQ(jobs["mend-me"].at("state").as_string(), "invalid");

  const auto fixed = python({"mend-me", "Now there is a task [sim:exit]", "mended"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.err;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (jobs_by_key()["mend-me"].at("state").as_string() != "finished" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
  jobs = jobs_by_key();
  EXPECT_EQ(jobs["mend-me"].at("state").as_string(), "finished")
      << read_file(dir_.file("daemon.log"));
  const auto sessions = sim_->sessions();
  ASSERT_EQ(sessions.size(), 1U);
  const auto& tags = sessions.at(0).at("tags").as_array();
  EXPECT_NE(std::find(tags.begin(), tags.end(), boost::json::value("mended")), tags.end());
  const auto shown = run_command(
      daemon_options({"show", "--config", dir_.file("config.yaml"), "mend-me", "--json"}));
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  std::vector<std::string> messages;
  const auto detail = boost::json::parse(shown.out);
  for (const auto& entry : detail.at("history").as_array()) {
    if (entry.at("event").as_string() == "mended") {
      messages.emplace_back(entry.at("message").as_string());
    }
  }
  EXPECT_EQ(messages, std::vector<std::string>{"definition replaced by enqueue.py: spec differs"});
}

TEST_F(Queue, RowsFromAnotherProcessArePickedUpWhileTheDaemonRuns) {
  constexpr int kRows = 200;
  start_sim({"--time-factor", "0.002"});
  DaemonSettings settings;
  settings.max_active_sessions = 1000;
  settings.max_concurrent_creates = 64;
  write_config(settings, {});
  auto daemon = spawn_queue_daemon(dir_,
                                   daemon_options({"run", "--config", dir_.file("config.yaml")}));
  const auto database = dir_.file("state/orch.db");
  // The producer: a separate Python process committing one row at a time at random intervals.
  write_file(dir_.file("producer.py"), R"py(import json, random, sqlite3, sys, time
database, count = sys.argv[1], int(sys.argv[2])
random.seed(7)
connection = sqlite3.connect(database, timeout=10, isolation_level=None)
connection.execute("PRAGMA busy_timeout = 10000")
for i in range(count):
    time.sleep(random.expovariate(1 / 0.02))
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO jobs (key, spec) VALUES (?, ?)",
                       ("row-%d" % i, json.dumps({"prompt": "row %d [sim:exit]" % i})))
    connection.execute("COMMIT")
)py");
  const auto produced = run_command(ProcessOptions{.args = {"/usr/bin/python3", dir_.file("producer.py"), database,
                                                            std::to_string(kRows)}},
                                    std::chrono::seconds{60});
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  ASSERT_TRUE(wait_until_terminal(kRows, [&] { return status_json(); }));
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);

  // Pickup = the daemon's intent record (written right before the create request) minus the
  // row's created_at (set by SQLite inside the producer's transaction).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT min(e.at) - j.created_at FROM jobs j JOIN job_events e "
                               "ON e.job_id = j.id AND e.event = 'intent' GROUP BY j.id",
                               -1, &statement, nullptr),
            SQLITE_OK);
  std::vector<std::int64_t> latencies;
  while (sqlite3_step(statement) == SQLITE_ROW) latencies.push_back(sqlite3_column_int64(statement, 0));
  sqlite3_finalize(statement);
  sqlite3_close(db);
  ASSERT_EQ(latencies.size(), static_cast<std::size_t>(kRows));
  std::sort(latencies.begin(), latencies.end());
  const auto p50 = latencies[latencies.size() / 2];
  const auto p99 = latencies[latencies.size() * 99 / 100];
  std::cout << "pickup latency over " << kRows << " rows: p50 " << p50 << " ms, p99 " << p99
            << " ms, max " << latencies.back() << " ms\n";
  // Every row was picked up, none before it existed. How fast is a figure, not a verdict on a
  // shared machine: bench/pickup.py measures it (docs/benchmarks.md, scenario 3).
  EXPECT_GE(latencies.front(), 0);
}

TEST_F(Queue, BadRowsEndInvalidWithAReasonAndGoodRowsRun) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{}, {});
  auto daemon = spawn_queue_daemon(dir_,
                                   daemon_options({"run", "--config", dir_.file("config.yaml")}));
  const auto database = dir_.file("state/orch.db");
  write_file(dir_.file("rows.sql"), R"sql(PRAGMA busy_timeout = 10000;
BEGIN IMMEDIATE;
INSERT INTO jobs (key, spec) VALUES ('good', '{"prompt": "fine [sim:exit]"}');
INSERT INTO jobs (key, spec) VALUES ('prompt-not-text', '{"prompt": 5}');
INSERT INTO jobs (key, spec) VALUES ('misspelt', '{"prompt": "p", "tgas": ["x"]}');
INSERT INTO jobs (key, spec) VALUES ('not-json', 'prompt: yaml is not json');
INSERT INTO jobs (key, spec) VALUES ('quote''s; DROP TABLE jobs; --', '{"prompt": "sql [sim:exit]"}');
COMMIT;
)sql");
  const auto inserted = run_command(ProcessOptions{
      .args = {"/bin/sh", "-c", "sqlite3 '" + database + "' < '" + dir_.file("rows.sql") + "'"}});
  ASSERT_EQ(inserted.exit_code, 0) << inserted.err;
  // STRICT refuses a wrong type at insert time: the producer hears about it at once.
  const auto refused = run_command(ProcessOptions{
      .args = {"/usr/bin/sqlite3", "-cmd", ".timeout 10000", database,
               "INSERT INTO jobs (key, spec, priority) VALUES ('typed', '{}', 'high')"}});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("cannot store TEXT value in INTEGER column"), std::string::npos)
      << refused.err;

  ASSERT_TRUE(wait_until_terminal(5, [&] { return status_json(); }));
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs["good"].at("state").as_string(), "finished");
  EXPECT_EQ(jobs["quote's; DROP TABLE jobs; --"].at("state").as_string(), "finished");
  for (const char* key : {"prompt-not-text", "misspelt", "not-json"}) {
    EXPECT_EQ(jobs[key].at("state").as_string(), "invalid") << key;
    EXPECT_TRUE(jobs[key].at("error").is_string()) << key;
  }
  EXPECT_NE(std::string{jobs["misspelt"].at("error").as_string()}.find("tgas"), std::string::npos);
  EXPECT_NE(std::string{jobs["prompt-not-text"].at("error").as_string()}.find("prompt"),
            std::string::npos);
  EXPECT_EQ(sim_->sessions().size(), 2U);
}

// With the watch off (a filesystem without change events) the daemon polls PRAGMA
// data_version instead, without the warning kept for a watch that could not start.
TEST_F(Queue, WithoutTheWatchPollingPicksUpRows) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{.extra = "  queue_watch: false\n  queue_check_interval: 20ms\n"}, {});
  auto daemon = spawn_queue_daemon(dir_,
                                   daemon_options({"run", "--config", dir_.file("config.yaml")}));
  const auto enqueued = run_command(ProcessOptions{
      .args = {"/usr/bin/sqlite3", "-cmd", ".timeout 10000", dir_.file("state/orch.db"),
               "INSERT INTO jobs (key, spec) VALUES ('polled', '{\"prompt\": \"p [sim:exit]\"}')"}});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.err;
  ASSERT_TRUE(wait_until_terminal(1, [&] { return status_json(); }));
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
  EXPECT_EQ(jobs_by_key()["polled"].at("state").as_string(), "finished");
  EXPECT_EQ(read_file(dir_.file("daemon.log")).find("cannot watch"), std::string::npos);
}

}  // namespace
}  // namespace devin_orch::testing
