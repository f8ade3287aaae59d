// Input that never loses a job (issue 24), with the real binaries against devin-sim: a job file
// reloaded with a typo fixed mends the job the typo left `invalid`, and the daemon then runs it
// to the end; retention (retention.ended_after) prunes ended jobs while the daemon runs, and
// keeps their outcomes.
#include "daemon_fixture.hpp"

#include <sqlite3.h>

#include <gmock/gmock.h>

#include <csignal>
#include <thread>

namespace devin_orch::testing {
namespace {

using ::testing::HasSubstr;

class Input : public DaemonFixture {
 protected:
  // Polls `done` every 50 ms for up to 30 s.
  template <class Done>
  bool eventually(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return true;
  }
  std::string state_of(const std::string& key) {
    const auto jobs = jobs_by_key();
    const auto it = jobs.find(key);
    return it == jobs.end() ? "<none>" : std::string{it->second.at("state").as_string()};
  }
  std::int64_t count_rows(const std::string& sql) {
    sqlite3* db = nullptr;
    std::int64_t count = -1;
    if (sqlite3_open_v2(dir_.file("state/orch.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        count = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return count;
  }
  std::unique_ptr<Process> run_daemon() {
    auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
    options.stderr_path = dir_.file("daemon.log");
    return std::make_unique<Process>(options);
  }
};

// Before: the typo's job ended `invalid`, `retry` refused it, and every reload of the fixed file
// logged "differs from the stored definition; the stored one is kept".
TEST_F(Input, AReloadOfTheFixedJobFileMendsTheInvalidJobAndTheDaemonRunsIt) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(
      "- key: fine\n"
      "  prompt: \"Already right [sim:exit]\"\n"
      "- key: typo\n"
      "  promt: \"Check the docs [sim:exit]\"\n"
      "  tags: [docs]\n");
  auto daemon = run_daemon();
  ASSERT_TRUE(eventually([&] { return state_of("fine") == "finished"; }))
      << read_file(dir_.file("daemon.log"));
  ASSERT_EQ(state_of("typo"), "invalid");
  EXPECT_EQ(sim_->sessions().size(), 1U);

  write_jobs(
      "- key: fine\n"
      "  prompt: \"Already right [sim:exit]\"\n"
      "- key: typo\n"
      "  prompt: \"Check the docs [sim:exit]\"\n"
      "  tags: [docs]\n");
  daemon->signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return state_of("typo") == "finished"; }))
      << read_file(dir_.file("daemon.log"));
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);

  const auto log = read_file(dir_.file("daemon.log"));
  EXPECT_THAT(log, HasSubstr("job 'typo' was invalid; this definition replaces it and it is "
                             "queued again"));
  EXPECT_EQ(log.find("differs from"), std::string::npos) << log;
  ASSERT_EQ(sim_->sessions().size(), 2U) << "one session each, the fine job's not again";
  EXPECT_EQ(duplicate_creation_tags(sim_->sessions()), 0);

  const auto shown =
      run_command(daemon_options({"show", "--config", dir_.file("config.yaml"), "typo", "--json"}));
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const auto detail = boost::json::parse(shown.out);
  std::vector<std::string> events;
  std::string mended_message;
  for (const auto& entry : detail.at("history").as_array()) {
    events.emplace_back(entry.at("event").as_string());
    if (events.back() == "mended") mended_message = entry.at("message").as_string();
  }
  ASSERT_GE(events.size(), 3U);
  EXPECT_EQ(events[0], "invalid");
  EXPECT_EQ(events[1], "mended");
  EXPECT_EQ(events.back(), "finished");
  EXPECT_EQ(mended_message,
            "definition replaced by file:" + dir_.file("jobs.yaml") + ": prompt, tags differ");
  EXPECT_EQ(detail.at("definition").at("tags").at(0).as_string(), "docs");
}

// retention.ended_after: ended jobs go (their outcomes kept) while the daemon runs, in batches
// of 100; a job still running stays.
TEST_F(Input, RetentionPrunesEndedJobsWhileTheDaemonRuns) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{.extra = "retention:\n  ended_after: 1s\n"});
  write_jobs(generate_jobs(150, {"[sim:exit]"}, "short") +
             generate_jobs(1, {"[sim:hold]"}, "long"));
  auto daemon = run_daemon();
  EXPECT_TRUE(eventually([&] {
    return count_rows("SELECT count(*) FROM outcomes") == 150 &&
           count_rows("SELECT count(*) FROM jobs") == 1;
  })) << read_file(dir_.file("daemon.log"));
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);

  const auto jobs = jobs_by_key();
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_EQ(jobs.begin()->first, "long-0");
  EXPECT_EQ(count_rows("SELECT count(*) FROM outcomes WHERE state = 'finished' AND "
                       "session_id IS NOT NULL AND key LIKE 'short-%'"),
            150);
  EXPECT_EQ(count_rows("SELECT count(*) FROM job_events WHERE job_id NOT IN "
                       "(SELECT id FROM jobs)"),
            0)
      << "the history goes with its job";
  const auto log = read_file(dir_.file("daemon.log"));
  EXPECT_THAT(log, HasSubstr("retention: pruned "));
  EXPECT_THAT(log, HasSubstr("(outcomes kept)"));
}

}  // namespace
}  // namespace devin_orch::testing
