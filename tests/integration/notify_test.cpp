// Notifications end to end: the daemon, devin-sim and Python webhook receivers that check every
// signature with hmac. At-least-once, in order per job, through receiver faults and SIGKILLs;
// a dead receiver holds up neither the working one nor polling and creation.
#include "daemon_fixture.hpp"

#include <sys/stat.h>

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

constexpr const char* kSecret = "whsec_integration_5b1f0c";

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One receiver process and what it logged.
struct Receiver {
  std::unique_ptr<Process> process;
  std::string log_path;
  int port = 0;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
  std::vector<json::object> entries() const {
    std::vector<json::object> out;
    std::istringstream lines{read_file(log_path)};
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) out.push_back(json::parse(line).as_object());
    }
    return out;
  }
};

class Notifications : public DaemonFixture {
 protected:
  void SetUp() override {
    write_file(dir_.file("webhook.secret"), std::string{kSecret} + "\n");
    ::chmod(dir_.file("webhook.secret").c_str(), 0600);
  }

  Receiver start_receiver(const std::string& name, std::vector<std::string> flags) {
    Receiver receiver;
    receiver.log_path = dir_.file(name + ".jsonl");
    const std::string port_file = dir_.file(name + ".port");
    ProcessOptions options;
    options.args = {"/usr/bin/python3", std::string{DEVIN_ORCH_SOURCE_DIR} + "/tests/integration/webhook_receiver.py",
                    "--port-file", port_file, "--log", receiver.log_path,
                    "--secret-file", dir_.file("webhook.secret")};
    options.args.insert(options.args.end(), flags.begin(), flags.end());
    options.stderr_path = dir_.file(name + ".err");
    receiver.process = std::make_unique<Process>(options);
    for (int i = 0; i < 200 && receiver.port == 0; ++i) {
      std::this_thread::sleep_for(50ms);
      const std::string text = read_file(port_file);
      if (!text.empty()) receiver.port = std::stoi(text);
    }
    EXPECT_NE(receiver.port, 0) << read_file(dir_.file(name + ".err"));
    return receiver;
  }

  static std::string webhook(const Receiver& receiver, const std::string& secret_path) {
    return "    - url: " + receiver.url() + "\n      secret_file: " + secret_path + "\n";
  }

  // The outbox as `events ls --json` shows it.
  json::array deliveries() {
    const auto result = run_command(
        daemon_options({"events", "ls", "--config", dir_.file("config.yaml"), "--json"}));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return json::parse(result.out).as_array();
  }
};

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
  settings.extra = "notify:\n  webhooks:\n" + webhook(receiver, dir_.file("webhook.secret")) +
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
  const std::string secret = dir_.file("webhook.secret");
  const double alone = batch(webhook(good, secret), "alone");
  const double beside_dead = batch(webhook(good, secret) + webhook(dead, secret), "beside");

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
