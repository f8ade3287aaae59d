// A raised ACU budget lets held jobs go without a restart: SIGHUP reads the spending section
// again (docs/spending.md), and a configuration with errors leaves the budgets as they were.
#include "spending_fixture.hpp"

#include <chrono>
#include <csignal>
#include <functional>
#include <thread>

namespace devin_orch::testing {
namespace {

using namespace std::chrono_literals;

using SpendingReload = DaemonFixture;

TEST_F(SpendingReload, SighupAppliesARaisedBudgetAndKeepsItWhenTheConfigIsBroken) {
  wait_clear_of_utc_midnight();

  start_sim({"--time-factor", "0.005"});
  DaemonSettings settings;
  settings.extra = "spending:\n  acus_per_day: 3\n";
  write_config(settings);
  std::string jobs;
  for (int i = 0; i < 3; ++i) {
    jobs += "- key: job-" + std::to_string(i) + "\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n";
  }
  write_jobs(jobs);
  auto daemon = spawn_service();
  ASSERT_TRUE(eventually([&] { return sim_->sessions().size() == 1; }))
      << read_file(dir_.file("daemon.log"));
  std::this_thread::sleep_for(2s);  // several dispatches: the budget holds the other two
  ASSERT_EQ(sim_->sessions().size(), 1U);

  // A broken file changes nothing.
  const std::string good = read_file(dir_.file("config.yaml"));
  write_file(dir_.file("config.yaml"), good + "spending_typo: 1\n");
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return read_file(dir_.file("daemon.log")).find("the ACU budgets stay as they were") !=
           std::string::npos;
  })) << read_file(dir_.file("daemon.log"));
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(sim_->sessions().size(), 1U);

  // Raised (well past what the held session keeps using): the two held jobs go, without a
  // restart.
  std::string raised = good;
  const auto at = raised.find("acus_per_day: 3");
  ASSERT_NE(at, std::string::npos) << raised;
  raised.replace(at, std::string{"acus_per_day: 3"}.size(), "acus_per_day: 1000");
  write_file(dir_.file("config.yaml"), raised);
  daemon->signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return sim_->sessions().size() == 3; }))
      << read_file(dir_.file("daemon.log"));
  EXPECT_NE(read_file(dir_.file("daemon.log")).find("SIGHUP: ACU budgets applied"),
            std::string::npos);

  daemon->signal(SIGTERM);
  const auto status = daemon->wait_for(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << read_file(dir_.file("daemon.log"));
}

}  // namespace
}  // namespace devin_orch::testing
