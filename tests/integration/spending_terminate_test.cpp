// spending.terminate_over_budget against devin-sim (docs/spending.md, "The hard limit"): once
// the ACUs the live sessions consumed pass the day's budget, they are terminated and their jobs
// end `suspended` with the reason, while a job still queued keeps waiting for the budget.
#include "spending_fixture.hpp"
#include "scraped_metrics.hpp"

#include "support/http.hpp"

#include <chrono>
#include <csignal>
#include <functional>
#include <thread>

namespace devin_orch::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

using SpendingHardLimit = DaemonFixture;

TEST_F(SpendingHardLimit, SessionsPastTheDaysBudgetAreTerminatedAndTheirJobsEndSuspended) {
  wait_clear_of_utc_midnight();

  // At this time factor a held session consumes about 2 ACUs a second: two jobs reserving 2
  // each fit a budget of 4, and pass it within a few seconds.
  start_sim({"--time-factor", "0.005"});
  DaemonSettings settings;
  // ACUs do not move updated_at, so incremental polls never carry them: the full polls do.
  settings.poll_full_every = "1s";
  settings.extra = "spending:\n  acus_per_day: 4\n  terminate_over_budget: true\n";
  write_config(settings);
  std::string jobs;
  for (const char* key : {"over-1", "over-2", "later"}) {
    jobs += std::string{"- key: "} + key + "\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 2\n";
  }
  write_jobs(jobs);
  auto daemon = spawn_service();
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  ASSERT_NE(port, 0) << read_file(dir_.file("daemon.log"));

  const auto state_of = [&](const std::string& key) -> std::string {
    auto all = jobs_by_key();
    const auto found = all.find(key);
    return found == all.end() ? "" : std::string{found->second.at("state").as_string()};
  };
  ASSERT_TRUE(eventually([&] { return state_of("over-1") == "suspended" &&
                                      state_of("over-2") == "suspended"; }))
      << read_file(dir_.file("daemon.log"));
  auto all = jobs_by_key();
  for (const char* key : {"over-1", "over-2"}) {
    const auto& job = all[key];
    ASSERT_TRUE(job.at("error").is_string()) << json::serialize(job);
    EXPECT_NE(std::string{job.at("error").as_string()}.find("ACU budget spent"), std::string::npos)
        << json::serialize(job);
    EXPECT_TRUE(job.at("session_id").is_string()) << json::serialize(job);
  }
  // The sessions were ended at the API, not only in the daemon's books.
  ASSERT_TRUE(eventually([&] {
    int ended = 0;
    for (const auto& session : sim_->sessions()) {
      if (session.at("status").as_string() == "exit") ++ended;
    }
    return ended == 2;
  }));
  EXPECT_EQ(sim_->sessions().size(), 2U) << "the third job must not start: the day is spent";
  EXPECT_EQ(state_of("later"), "queued");
  const auto scrape = parse_scrape(http_call(port, "GET", "/metrics").body);
  EXPECT_EQ(scrape.value("devin_orch_spending_terminations_total"), 2.0);
  EXPECT_NE(read_file(dir_.file("daemon.log")).find("ACU budget is spent"), std::string::npos);

  daemon->signal(SIGTERM);
  const auto status = daemon->wait_for(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
}

}  // namespace
}  // namespace devin_orch::testing
