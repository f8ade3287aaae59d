// Waits the server asks for and pauses that end by themselves, end to end against devin-sim:
// Retry-After on 5xx answers (also across a restart), a key rejected then fixed, and a user's
// quota that pauses only that user's jobs.
#include "daemon_fixture.hpp"

#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

using ServerWaits = DaemonFixture;
using Clock = std::chrono::steady_clock;

std::int64_t stat(const boost::json::value& stats, const char* name) {
  return stats.at(name).as_int64();
}

std::string rfc3339_in(std::chrono::seconds from_now) {
  const std::time_t at = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() +
                                                              from_now);
  std::tm utc{};
  gmtime_r(&at, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// 5xx answers that announce a wait: the daemon never speaks inside one, and every job still
// ends exactly once.
TEST_F(ServerWaits, NoRequestInsideAWaitAnnouncedByA5xx) {
  constexpr int kJobs = 100;
  start_sim({"--time-factor", "0.01", "--seed", "23", "--fault-503", "0.04", "--fault-500",
             "0.02", "--fault-retry-after-ms", "700", "--fault-retry-after-mode", "both"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:finished]"}));
  const auto result = run_until_idle(std::chrono::seconds{240});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto stats = sim_->stats();
  std::cout << "windows announced: " << stat(stats, "retry_after_windows")
            << ", requests: " << stat(stats, "requests_total") << "\n";
  EXPECT_GT(stat(stats, "retry_after_windows"), 0);
  EXPECT_EQ(stat(stats, "early_requests_in_retry_after"), 0);
  EXPECT_EQ(stat(stats, "duplicate_tag_groups"), 0);
  expect_consistent_with_sim(kJobs);
}

// A long wait announced just before a SIGTERM holds the next daemon too: it reads the wait from
// the database and sends nothing to the org until it ends.
TEST_F(ServerWaits, AWaitAnnouncedBeforeARestartHoldsTheNextDaemon) {
  constexpr int kJobs = 20;
  start_sim({"--time-factor", "0.01", "--seed", "5"});
  DaemonSettings settings;
  settings.max_concurrent_creates = 2;
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]"}));
  auto first = spawn_daemon("daemon-1.log");
  const auto deadline = Clock::now() + std::chrono::seconds{20};
  while (Clock::now() < deadline && stat(sim_->stats(), "sessions_created") < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  ASSERT_GE(stat(sim_->stats(), "sessions_created"), 2) << read_file(dir_.file("daemon-1.log"));
  // Every answer is a 503 asking for 20 s until the daemon has heard one, then none.
  sim_->configure(R"({"fault_503": 1.0, "fault_retry_after_ms": 20000,
                      "fault_retry_after_mode": "both"})");
  const auto asked_at = Clock::now();
  while (Clock::now() < asked_at + std::chrono::seconds{10} &&
         stat(sim_->stats(), "retry_after_windows") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  ASSERT_GT(stat(sim_->stats(), "retry_after_windows"), 0);
  sim_->configure(R"({"fault_503": 0.0})");
  std::this_thread::sleep_for(std::chrono::milliseconds{300});  // the hold is written
  first->signal(SIGTERM);
  ASSERT_TRUE(first->wait_for(std::chrono::seconds{10}).has_value());

  auto second = spawn_daemon("daemon-2.log");
  std::this_thread::sleep_for(std::chrono::seconds{5});
  EXPECT_EQ(stat(sim_->stats(), "early_requests_in_retry_after"), 0)
      << read_file(dir_.file("daemon-2.log"));
  const auto status = second->wait_for(std::chrono::seconds{120});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon-2.log"));
  // It did not end before the wait did, and never spoke inside it.
  EXPECT_GE(Clock::now() - asked_at, std::chrono::seconds{19});
  EXPECT_EQ(stat(sim_->stats(), "early_requests_in_retry_after"), 0);
  EXPECT_NE(read_file(dir_.file("daemon-2.log")).find("honouring the wait"), std::string::npos);
}

// A wrong key pauses the org and says so, naming where the key came from; a restart with the
// right key checks it (GET /v3/self), lifts that pause by itself, and runs the queued jobs.
TEST_F(ServerWaits, ACorrectedKeyLiftsTheUnauthorizedPauseAtTheNextStart) {
  constexpr int kJobs = 6;
  start_sim({"--time-factor", "0.01", "--seed", "6"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(kJobs, {"[sim:exit]"}));
  auto wrong = daemon_options({"run", "--config", dir_.file("config.yaml"), "--until-idle"});
  wrong.env = {{"DEVIN_API_KEY", "cog_integration_test_key_wrong"}};
  const auto refused = run_command(wrong, std::chrono::seconds{60});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("the API key from DEVIN_API_KEY is rejected"), std::string::npos)
      << refused.err;
  const auto paused = run_command(
      daemon_options({"pause", "--config", dir_.file("config.yaml"), "--list", "--json"}),
      std::chrono::seconds{30});
  EXPECT_NE(paused.out.find("API key rejected (401)"), std::string::npos) << paused.out;

  const auto fixed = run_until_idle(std::chrono::seconds{120});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  EXPECT_NE(fixed.err.find("the API key works again"), std::string::npos) << fixed.err;
  expect_consistent_with_sim(kJobs);
}

// A session of alice suspended for her own quota: alice's other jobs wait, bob's and the jobs
// created as nobody run; `resume --user` lets hers go.
TEST_F(ServerWaits, AUsersQuotaPausesOnlyThatUsersJobs) {
  start_sim({"--time-factor", "0.01", "--seed", "7"});
  write_config(DaemonSettings{});
  std::ostringstream yaml;
  yaml << "- key: alice-first\n  prompt: \"spend [sim:suspend=user_usage_limit_exceeded]\"\n"
       << "  create_as_user_id: alice\n  priority: 10\n";
  // Later, so the first one's suspension is seen before they are claimed.
  for (int i = 0; i < 3; ++i) {
    yaml << "- key: alice-" << i << "\n  prompt: \"more [sim:exit]\"\n"
         << "  create_as_user_id: alice\n  not_before: " << rfc3339_in(std::chrono::seconds{6})
         << "\n";
    yaml << "- key: bob-" << i << "\n  prompt: \"work [sim:exit]\"\n"
         << "  create_as_user_id: bob\n  not_before: " << rfc3339_in(std::chrono::seconds{6})
         << "\n";
    yaml << "- key: nobody-" << i << "\n  prompt: \"work [sim:exit]\"\n";
  }
  write_jobs(yaml.str());
  const auto first = run_until_idle(std::chrono::seconds{120});
  // Only alice's jobs are left, all held back by her pause: the batch run says so and ends.
  EXPECT_EQ(first.exit_code, 1) << first.err;
  EXPECT_NE(first.err.find("org-demo jobs created as alice"), std::string::npos) << first.err;
  auto jobs = jobs_by_key();
  EXPECT_EQ(jobs.at("alice-first").at("state").as_string(), "suspended");
  for (int i = 0; i < 3; ++i) {
    const auto n = std::to_string(i);
    EXPECT_EQ(jobs.at("alice-" + n).at("state").as_string(), "queued");
    EXPECT_EQ(jobs.at("bob-" + n).at("state").as_string(), "finished");
    EXPECT_EQ(jobs.at("nobody-" + n).at("state").as_string(), "finished");
  }
  const auto listed = run_command(
      daemon_options({"pause", "--config", dir_.file("config.yaml"), "--list"}),
      std::chrono::seconds{30});
  EXPECT_NE(listed.out.find("alice"), std::string::npos) << listed.out;

  const auto resumed = run_command(
      daemon_options({"resume", "--config", dir_.file("config.yaml"), "--user", "alice"}),
      std::chrono::seconds{30});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resumed user alice"), std::string::npos) << resumed.out;
  const auto second = run_until_idle(std::chrono::seconds{120});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  jobs = jobs_by_key();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(jobs.at("alice-" + std::to_string(i)).at("state").as_string(), "finished");
  }
}

}  // namespace
}  // namespace devin_orch::testing
