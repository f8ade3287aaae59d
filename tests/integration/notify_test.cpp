// Notifications end to end: the daemon, devin-sim and Python webhook receivers that check every
// signature with hmac. At-least-once, in order per job, through receiver faults and SIGKILLs;
// a dead receiver holds up neither the working one nor polling and creation.
#include "notify_fixture.hpp"

#include <algorithm>
#include <csignal>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Notifications : public NotifyFixture {};

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

double parse_rfc3339(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
              &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + millis / 1000.0;
}

TEST_F(Notifications, FaultyReceiverAndKilledDaemonLoseNothingAndKeepEachJobsOrder) {
  constexpr int kJobs = 300;
  constexpr int kKills = 5;
  // Slow enough that polls see the sessions that wait for their user (10 s x 0.03) and
  // announce it before their end.
  start_sim({"--time-factor", "0.03", "--seed", "26"});
  auto receiver = start_receiver("faulty", {"--fail-rate", "0.30", "--timeout-rate", "0.05",
                                            "--hold", "3", "--seed", "26"});
  DaemonSettings settings;
  settings.extra = "notify:\n  webhooks:\n" + webhook(receiver) +
                   "  request_timeout: 1s\n  retry_initial: 100ms\n  retry_max: 1s\n"
                   "  max_age: 10m\n";
  write_config(settings);
  // Waiting sessions make two events per job (waiting, then the end), so order matters.
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:error]", "[sim:waiting]", "[sim:finished]"}));

  std::mt19937 random{26};
  std::uniform_int_distribution<int> delay_ms{1500, 4000};  // long enough to deliver some
  std::vector<double> kill_times;
  for (int kill = 0; kill < kKills; ++kill) {
    auto daemon = spawn_daemon("daemon-" + std::to_string(kill) + ".log");
    if (kill == kKills - 1) {
      // The last kill must fall after deliveries began, however slowly a loaded machine runs.
      const auto deadline = std::chrono::steady_clock::now() + 120s;
      const auto any_accepted = [&] {
        const auto entries = receiver.entries();
        return std::any_of(entries.begin(), entries.end(), [](const auto& entry) {
          return entry.at("outcome").as_string() == "accepted";
        });
      };
      while (!any_accepted() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{delay_ms(random)});
    daemon->signal(SIGKILL);
    kill_times.push_back(wall_seconds());
    ASSERT_TRUE(daemon->wait_for(10s).has_value());
  }
  const auto final_run = run_until_idle(600s);
  ASSERT_EQ(final_run.exit_code, 0) << final_run.err;

  // The outbox: every delivery delivered, none pending or dead.
  std::map<std::string, std::vector<std::string>> store_order;  // job -> event ids, by seq
  std::int64_t last_seq = -1;
  for (const auto& value : deliveries()) {
    const auto& d = value.as_object();
    EXPECT_EQ(d.at("state").as_string(), "delivered") << json::serialize(d);
    EXPECT_GT(d.at("seq").as_int64(), last_seq);
    last_seq = d.at("seq").as_int64();
    store_order[std::string{d.at("job_key").as_string()}].emplace_back(d.at("event_id").as_string());
  }
  ASSERT_EQ(store_order.size(), static_cast<std::size_t>(kJobs));  // every job ended, announced

  // What the receiver saw.
  std::map<std::string, std::vector<std::string>> received;  // job -> event ids, first receipts
  std::map<std::string, std::vector<double>> receipts;       // event id -> accepted at
  std::map<std::string, int> outcomes;
  for (const auto& entry : receiver.entries()) {
    const std::string outcome{entry.at("outcome").as_string()};
    ++outcomes[outcome];
    if (outcome != "accepted") continue;
    const std::string id{entry.at("id").as_string()};
    auto& times = receipts[id];
    if (times.empty()) received[std::string{entry.at("job").as_string()}].push_back(id);
    times.push_back(entry.at("received").as_double());
  }
  EXPECT_EQ(outcomes["bad_signature"], 0);  // every request signed right (hmac in Python)
  EXPECT_GT(outcomes["error500"], 0);
  EXPECT_GT(outcomes["timeout"], 0);
  std::size_t events = 0;
  for (const auto& [job, ids] : store_order) {
    events += ids.size();
    // None lost, each job's events in the order they were committed.
    EXPECT_EQ(received[job], ids) << job;
  }
  // Duplicates only where a kill fell between two receipts (the delivery was not recorded).
  int duplicates = 0;
  for (const auto& [id, times] : receipts) {
    for (std::size_t i = 1; i < times.size(); ++i) {
      ++duplicates;
      const bool killed_between = std::any_of(kill_times.begin(), kill_times.end(), [&](double k) {
        return k >= times[0] - 0.5 && k <= times[i] + 0.5;
      });
      EXPECT_TRUE(killed_between) << id << " received again without a kill in between";
    }
  }
  // The kills fell while deliveries were going on, and jobs had more than one event to order.
  const auto before_last_kill = std::count_if(receipts.begin(), receipts.end(), [&](const auto& r) {
    return r.second.front() < kill_times.back();
  });
  EXPECT_GT(before_last_kill, 0);
  EXPECT_GT(events, static_cast<std::size_t>(kJobs));
  std::cout << "notify chaos: jobs " << kJobs << ", events " << events << " (" << before_last_kill
            << " first received before the last kill), kills " << kKills
            << ", requests " << receiver.entries().size() << " (500: " << outcomes["error500"]
            << ", timeouts: " << outcomes["timeout"] << "), duplicates after kills "
            << duplicates << "\n";
}

// Once the jobs are done, a batch run that waits for its notifications says so, and ends when
// they are dead-lettered.
TEST_F(Notifications, ABatchRunNamesTheNotificationsItWaitsFor) {
  start_sim({"--time-factor", "0.004", "--seed", "28"});
  auto failing = start_receiver("failing", {"--fail-rate", "1.0"});
  DaemonSettings settings;
  settings.extra = "notify:\n  webhooks:\n" + webhook(failing) +
                   "  retry_initial: 200ms\n  retry_max: 500ms\n  max_age: 4s\n";
  write_config(settings);
  write_jobs(generate_jobs(3, {"[sim:exit]"}));
  const auto run = run_until_idle(120s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string said = "until idle: waiting for 3 notification(s) not delivered yet";
  const auto waiting = run.err.find(said);
  ASSERT_NE(waiting, std::string::npos) << run.err;
  // Said once: deliveries failing again are not a new reason.
  EXPECT_EQ(run.err.find("notification(s) not delivered yet", waiting + said.size()),
            std::string::npos)
      << run.err;
  int dead = 0;
  for (const auto& value : deliveries()) {
    if (value.as_object().at("state").as_string() == "dead") ++dead;
  }
  EXPECT_EQ(dead, 3);
}

TEST_F(Notifications, ADeadReceiverSlowsNeitherTheWorkingOneNorTheDaemon) {
  constexpr int kJobs = 60;
  start_sim({"--time-factor", "0.004", "--seed", "27"});
  auto good = start_receiver("good", {});
  auto dead = start_receiver("dead", {"--never-answer"});
  const std::string tuning =
      "  request_timeout: 2s\n  retry_initial: 200ms\n  retry_max: 1s\n  max_age: 4s\n"
      "  max_in_flight_per_receiver: 4\n";

  // The same batch twice: with the working receiver alone, then with the dead one beside it.
  const auto batch = [&](const std::string& hooks, const std::string& prefix) {
    DaemonSettings settings;
    settings.extra = "notify:\n  webhooks:\n" + hooks + tuning;
    write_config(settings);
    write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:error]", "[sim:finished]"}, prefix));
    const auto started = wall_seconds();
    const auto run = run_until_idle(300s);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    // When the last job of the batch ended, as recorded: polling and creation's pace.
    double last_end = 0;
    const auto listed = run_command(
        daemon_options({"ls", "--config", dir_.file("config.yaml"), "--json"}));
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    const json::value parsed = json::parse(listed.out);
    for (const auto& value : parsed.as_array()) {
      const auto& job = value.as_object();
      if (std::string_view{job.at("key").as_string()}.rfind(prefix, 0) != 0) continue;
      EXPECT_TRUE(job.at("finished_at").is_string()) << json::serialize(job);
      if (job.at("finished_at").is_string()) {
        last_end = std::max(last_end, parse_rfc3339(std::string{job.at("finished_at").as_string()}));
      }
    }
    return last_end - started;
  };
  const double alone = batch(webhook(good), "alone");
  const double beside_dead = batch(webhook(good) + webhook(dead), "beside");

  // The working receiver got every event of the second batch, soon after it was recorded.
  std::vector<double> lags;
  std::set<std::string> jobs;
  for (const auto& entry : good.entries()) {
    const std::string job{entry.at("job").as_string()};
    if (job.rfind("beside", 0) != 0 || entry.at("outcome").as_string() != "accepted") continue;
    jobs.insert(job);
    lags.push_back(entry.at("received").as_double() -
                   parse_rfc3339(std::string{entry.at("created_at").as_string()}));
  }
  EXPECT_EQ(jobs.size(), static_cast<std::size_t>(kJobs));
  const double p50 = percentile(lags, 0.5);
  const double p99 = percentile(lags, 0.99);
  // The dead one's deliveries were dead-lettered after max_age, not waited for forever.
  int dead_letters = 0;
  for (const auto& value : deliveries()) {
    const auto& d = value.as_object();
    if (d.at("receiver").as_string() == dead.url()) {
      EXPECT_EQ(d.at("state").as_string(), "dead");
      ++dead_letters;
    }
  }
  EXPECT_EQ(dead_letters, kJobs);
  std::cout << "notify dead receiver: jobs " << kJobs << "; last job end after " << alone
            << " s alone vs " << beside_dead << " s beside a dead receiver; working receiver "
            << "lag p50 " << p50 << " s, p99 " << p99 << " s\n";
  EXPECT_LT(p99, 2.0);
  EXPECT_LT(beside_dead, alone * 1.5 + 2.0);
}

}  // namespace
}  // namespace devin_orch::testing
