// The spending guard against devin-sim (docs/spending.md): with 10 ACUs a day and jobs of
// max_acu_limit 3, three sessions start and the rest wait, with the reason in `ls`, through a
// restart; the next day they go. The day rolls by moving the jobs' charge (their create
// intents) back one day in the database while the daemon is stopped: the daemon reads its
// figures from there and from the real clock alone. Also: a budget per concurrency key across
// two organisations, and an organisation with a larger budget of its own.
#include "spending_fixture.hpp"

#include <chrono>
#include <csignal>
#include <ctime>
#include <map>
#include <thread>

namespace devin_orch::testing {
namespace {

using namespace std::chrono_literals;

void sqlite(const std::string& database, const std::string& sql) {
  const auto result = run_command(
      ProcessOptions{.args = {"/usr/bin/sqlite3", "-cmd", ".timeout 10000", database, sql}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

// Waits until the simulator holds `count` sessions (or 20 s pass); the count it saw.
std::size_t wait_for_sessions(const SimHarness& sim, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline && sim.sessions().size() < count) {
    std::this_thread::sleep_for(50ms);
  }
  return sim.sessions().size();
}

// The committed figure a reason names just before `tail` (-1 without `tail`): at least the
// reservations, more once the polls bring what the held sessions used (the simulator does not
// stop a session at its max_acu_limit).
double committed_before(const std::string& reason, const std::string& tail) {
  const auto at = reason.find(tail);
  if (at == std::string::npos || at == 0) return -1;
  const auto start = reason.rfind(' ', at - 1);
  if (start == std::string::npos) return -1;
  return std::stod(reason.substr(start + 1, at - start - 1));
}

std::string next_utc_midnight() {
  const auto now = std::chrono::system_clock::now();
  const auto midnight = std::chrono::floor<std::chrono::days>(now) + std::chrono::days{1};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(midnight);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace

void SpendingFixture::budget_scenario(DaemonSettings settings,
                                      const std::function<void(const std::string&)>& run_sql) {
  wait_clear_of_utc_midnight();

  start_sim({"--time-factor", "0.005"});
  settings.extra = "spending:\n  acus_per_day: 10\n";
  write_config(settings);
  std::string jobs;
  for (int i = 0; i < 5; ++i) {
    jobs += "- key: costly-" + std::to_string(i) +
            "\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n";
  }
  write_jobs(jobs);

  auto daemon = spawn_service();
  EXPECT_EQ(wait_for_sessions(*sim_, 3), 3U);
  std::this_thread::sleep_for(2s);  // several dispatches: none may start a fourth
  EXPECT_EQ(sim_->sessions().size(), 3U) << read_file(dir_.file("daemon.log"));

  const auto listing = [&] {
    const auto ls = run_command(
        daemon_options({"ls", "--state", "queued", "--json", "--config", dir_.file("config.yaml")}));
    EXPECT_EQ(ls.exit_code, 0) << ls.err;
    return boost::json::parse(ls.out).as_array();
  };
  auto queued = listing();
  ASSERT_EQ(queued.size(), 2U);
  for (const auto& row : queued) {
    EXPECT_EQ(row.at("reason_code").as_string(), "acu_budget") << boost::json::serialize(row);
    EXPECT_EQ(row.at("reason_until").as_string(), next_utc_midnight());
    const std::string reason{row.at("reason").as_string()};
    EXPECT_GE(committed_before(reason, " of 10 ACUs committed today, the job reserves 3 "
                                       "(spending.acus_per_day)"),
              9.0)
        << reason;
  }
  const std::string log = read_file(dir_.file("daemon.log"));
  EXPECT_NE(log.find("creates wait for the ACU budget"), std::string::npos) << log;

  // A restart reads the same figures from the database: still three.
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(20s).has_value());
  daemon = spawn_service("daemon-2.log");
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(sim_->sessions().size(), 3U) << read_file(dir_.file("daemon-2.log"));
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(20s).has_value());

  // The next day: what was charged is yesterday's.
  run_sql("UPDATE jobs SET intent_at = intent_at - 86400000 WHERE intent_at IS NOT NULL");
  daemon = spawn_service("daemon-3.log");
  EXPECT_EQ(wait_for_sessions(*sim_, 5), 5U) << read_file(dir_.file("daemon-3.log"));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && !listing().empty()) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(listing().empty());
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(20s).has_value());
}

namespace {

using Spending = SpendingFixture;

TEST_F(Spending, TenAcusADayStartThreeJobsOfThreeAndTheRestGoTheNextDay) {
  budget_scenario(DaemonSettings{}, [&](const std::string& sql) {
    sqlite(dir_.file("state/orch.db"), sql);
  });
}

class SpendingBudgets : public SpendingFixture {
 protected:
  // Queued jobs as `ls --json` shows them, by key.
  std::map<std::string, boost::json::object> queued_jobs() {
    const auto ls = run_command(daemon_options(
        {"ls", "--state", "queued", "--json", "--config", dir_.file("config.yaml")}));
    EXPECT_EQ(ls.exit_code, 0) << ls.err;
    std::map<std::string, boost::json::object> rows;
    const auto parsed = boost::json::parse(ls.out);
    for (const auto& row : parsed.as_array()) {
      rows.emplace(std::string{row.at("key").as_string()}, row.as_object());
    }
    return rows;
  }
};

// 6 ACUs a day for each key matching repo:*, jobs of 3: two of repo:a's four start, over both
// organisations; the other two wait, named by `ls`, while repo:b's job and an unkeyed one go.
// The next day they go.
TEST_F(SpendingBudgets, AKeyBudgetHoldsTheKeysJobsInEveryOrganisationUntilTheNextDay) {
  wait_clear_of_utc_midnight();

  start_sim({"--time-factor", "0.005", "--org", "org-demo", "--org", "org-b"});
  DaemonSettings settings;
  settings.extra = "spending:\n  concurrency_keys:\n    - key: \"repo:*\"\n      acus_per_day: 6\n";
  write_config(settings);
  std::string jobs;
  for (int i = 0; i < 4; ++i) {
    jobs += "- key: keyed-" + std::to_string(i) +
            "\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n  concurrency_key: repo:a\n" +
            (i % 2 == 1 ? "  org_id: org-b\n" : "");
  }
  jobs += "- key: other-repo\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n"
          "  concurrency_key: repo:b\n  org_id: org-b\n";
  jobs += "- key: unkeyed\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n";
  write_jobs(jobs);

  auto daemon = spawn_service();
  EXPECT_EQ(wait_for_sessions(*sim_, 4), 4U) << read_file(dir_.file("daemon.log"));
  std::this_thread::sleep_for(2s);  // several dispatches: none may start a fifth
  EXPECT_EQ(sim_->sessions().size(), 4U) << read_file(dir_.file("daemon.log"));

  auto queued = queued_jobs();
  ASSERT_EQ(queued.size(), 2U);
  for (const auto& [key, row] : queued) {
    EXPECT_TRUE(key.starts_with("keyed-")) << key;
    EXPECT_EQ(row.at("reason_code").as_string(), "acu_budget") << boost::json::serialize(row);
    EXPECT_EQ(row.at("reason_until").as_string(), next_utc_midnight());
    const std::string reason{row.at("reason").as_string()};
    EXPECT_NE(reason.find("of key repo:a: "), std::string::npos) << reason;
    EXPECT_GE(committed_before(reason, " of 6 ACUs committed today, the job reserves 3 "
                                       "(spending.concurrency_keys \"repo:*\" acus_per_day)"),
              6.0)
        << reason;
  }
  const std::string log = read_file(dir_.file("daemon.log"));
  EXPECT_NE(log.find("concurrency key repo:a: creates wait for the key's ACU budget"),
            std::string::npos)
      << log;
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(20s).has_value());

  // The next day: what was charged is yesterday's.
  sqlite(dir_.file("state/orch.db"),
         "UPDATE jobs SET intent_at = intent_at - 86400000 WHERE intent_at IS NOT NULL");
  daemon = spawn_service("daemon-2.log");
  EXPECT_EQ(wait_for_sessions(*sim_, 6), 6U) << read_file(dir_.file("daemon-2.log"));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && !queued_jobs().empty()) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(queued_jobs().empty());
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(20s).has_value());
}

// 3 ACUs a day by default, 9 for org-big: of four jobs of 3 each, org-big starts three and the
// default organisation one; `ls` names the budget that holds each.
TEST_F(SpendingBudgets, AnOrganisationsOwnLargerBudgetStartsMoreJobs) {
  wait_clear_of_utc_midnight();

  start_sim({"--time-factor", "0.005", "--org", "org-demo", "--org", "org-big"});
  DaemonSettings settings;
  settings.extra = "spending:\n  acus_per_day: 3\n  organizations:\n"
                   "    org-big: {acus_per_day: 9}\n";
  write_config(settings);
  std::string jobs;
  for (int i = 0; i < 4; ++i) {
    jobs += "- key: default-" + std::to_string(i) +
            "\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n";
    jobs += "- key: big-" + std::to_string(i) +
            "\n  prompt: \"work [sim:hold]\"\n  max_acu_limit: 3\n  org_id: org-big\n";
  }
  write_jobs(jobs);

  auto daemon = spawn_service();
  EXPECT_EQ(wait_for_sessions(*sim_, 4), 4U) << read_file(dir_.file("daemon.log"));
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(sim_->sessions().size(), 4U) << read_file(dir_.file("daemon.log"));

  const auto queued = queued_jobs();
  int default_held = 0;
  int big_held = 0;
  for (const auto& [key, row] : queued) {
    EXPECT_EQ(row.at("reason_code").as_string(), "acu_budget") << boost::json::serialize(row);
    const std::string reason{row.at("reason").as_string()};
    if (key.starts_with("big-")) {
      ++big_held;
      EXPECT_GE(committed_before(reason, " of 9 ACUs committed today, the job reserves 3 "
                                         "(spending.organizations.org-big.acus_per_day)"),
                9.0)
          << reason;
    } else {
      ++default_held;
      EXPECT_GE(committed_before(reason, " of 3 ACUs committed today, the job reserves 3 "
                                         "(spending.acus_per_day)"),
                3.0)
          << reason;
    }
  }
  EXPECT_EQ(big_held, 1);
  EXPECT_EQ(default_held, 3);
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(20s).has_value());
}

}  // namespace
}  // namespace devin_orch::testing
