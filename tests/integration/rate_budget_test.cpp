// One shared budget per organisation: the daemon under a rate-limited simulator, a thousand
// live sessions polled in batches, and the concurrent-session cap holding creates only.
#include "daemon_fixture.hpp"

#include <cmath>
#include <csignal>
#include <iostream>
#include <thread>

namespace devin_orch::testing {
namespace {

using RateBudget = DaemonFixture;

std::int64_t total_429(const boost::json::value& stats) {
  return stats.at("rate_limited_total").as_int64() + stats.at("concurrency_limited_total").as_int64();
}

TEST_F(RateBudget, FinishesUnderAnUnknownLimitWithoutHammeringIt) {
  // The simulator allows 120 requests/min; the daemon's ceiling is five times that, so it has
  // to find the real budget from the 429s it gets.
  constexpr int kJobs = 300;
  start_sim({"--time-factor", "0.01", "--seed", "4", "--rate-limit-rpm", "120",
             "--rate-limit-burst", "5"});
  DaemonSettings settings;
  settings.requests_per_minute = 600;
  settings.burst = 5;
  settings.poll_initial = "2s";
  settings.poll_max = "5s";
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:finished]", "[sim:error]"}));

  auto daemon = spawn_daemon();
  std::this_thread::sleep_for(std::chrono::seconds{60});
  const auto after_first_minute = sim_->stats();
  const auto status = daemon->wait_for(std::chrono::minutes{8});
  ASSERT_TRUE(status.has_value()) << "did not finish";
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
  const auto final_stats = sim_->stats();

  EXPECT_EQ(final_stats.at("early_requests_after_429").as_int64(), 0);
  const auto requests = final_stats.at("requests_total").as_int64() -
                        after_first_minute.at("requests_total").as_int64();
  const auto limited = total_429(final_stats) - total_429(after_first_minute);
  std::cout << "after the first minute: " << requests << " requests, " << limited << " 429s\n";
  EXPECT_LE(limited * 100, requests) << "more than 1% of requests after the first minute got 429";
  // While creates wait for tokens, polls wait until their sessions are late by poll.max_delay
  // and share requests, so nearly every request is a create.
  const auto status_requests = final_stats.at("list_requests_with_session_ids").as_int64();
  std::cout << "status requests: " << status_requests << " for " << kJobs << " jobs\n";
  EXPECT_LE(status_requests, kJobs / 10);
  expect_consistent_with_sim(kJobs);
}

TEST_F(RateBudget, ThousandLiveSessionsArePolledInBatchesOfTwoHundred) {
  constexpr int kJobs = 1000;
  start_sim({"--time-factor", "0.01", "--seed", "9"});
  DaemonSettings settings;
  settings.max_active_sessions = kJobs;
  settings.max_concurrent_creates = 64;
  settings.poll_initial = "1s";
  settings.poll_max = "1s";
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:hold]"}));

  auto daemon = spawn_daemon();
  // Wait until every session exists and has been polled a few times.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (std::chrono::steady_clock::now() < deadline &&
         sim_->stats().at("sessions_created").as_int64() < kJobs) {
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  ASSERT_EQ(sim_->stats().at("sessions_created").as_int64(), kJobs);
  std::this_thread::sleep_for(std::chrono::seconds{4});

  constexpr int kCycles = 10;
  const auto before = sim_->stats().at("list_requests_with_session_ids").as_int64();
  std::this_thread::sleep_for(std::chrono::seconds{kCycles});
  const auto after = sim_->stats().at("list_requests_with_session_ids").as_int64();
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(std::chrono::seconds{15}).has_value());

  const auto per_cycle = static_cast<double>(after - before) / kCycles;
  const double bound = std::ceil(kJobs / 200.0) + 1;
  std::cout << "status list requests per 1 s poll cycle for " << kJobs
            << " sessions: " << per_cycle << " (bound " << bound << ")\n";
  EXPECT_GE(per_cycle, 4.0) << "sessions are not being polled every cycle";
  EXPECT_LE(per_cycle, bound);
  // Every status request was a batched list call: no per-session GETs in steady state.
  const auto final_stats = sim_->stats();
  const auto& routes = final_stats.at("requests").as_object();
  const auto single = routes.find("GET /v3/organizations/{org_id}/sessions/{devin_id}");
  EXPECT_TRUE(single == routes.end() || single->value().as_object().empty() ||
              single->value().as_object().at("200").as_int64() == 0);
}

TEST_F(RateBudget, ConcurrencyCapHoldsCreatesWhilePollsContinue) {
  constexpr int kJobs = 12;
  start_sim({"--time-factor", "0.01", "--seed", "2", "--max-concurrent-sessions", "3"});
  DaemonSettings settings;
  settings.extra = "rate:\n  concurrency_hold: 2s\n";
  settings.extra.clear();
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:error]"}));
  const auto run = run_until_idle(std::chrono::seconds{180});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto stats = sim_->stats();
  EXPECT_GT(stats.at("concurrency_limited_total").as_int64(), 0) << "the cap never bit";
  // Held, not hammered: a handful of refused creates per job at most.
  EXPECT_LE(stats.at("concurrency_limited_total").as_int64(), kJobs * 3);
  expect_consistent_with_sim(kJobs);
}

}  // namespace
}  // namespace devin_orch::testing
