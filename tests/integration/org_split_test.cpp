// Daemons splitting the organisations (issue 25): two `devin-orch run` processes on one database
// and jobs of three organisations. Each daemon takes its share of the organisations' leases, so
// both work; when one is SIGKILLed the other takes its organisations within the lapse,
// reconciles their jobs caught mid-create by lookup, and no job ever produces two sessions.
#include "daemon_fixture.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

using Clock = std::chrono::steady_clock;

// org -> owner of each organisation lease unexpired now, as another process reads them.
std::map<std::string, std::string> org_owners(const std::string& db_path) {
  std::map<std::string, std::string> owners;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* stmt = nullptr;
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (sqlite3_prepare_v2(db,
                           "SELECT substr(name, 5), owner FROM leases "
                           "WHERE name LIKE 'org:%' AND epoch > 0 AND expires_at > ?1",
                           -1, &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(stmt, 1, now_ms);
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        owners[reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))] =
            reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return owners;
}

// "host:pid:nonce" -> pid
pid_t owner_pid(const std::string& owner) {
  const auto first = owner.find(':');
  const auto second = owner.find(':', first + 1);
  return static_cast<pid_t>(std::stoi(owner.substr(first + 1, second - first - 1)));
}

class OrgSplit : public DaemonFixture {
 protected:
  std::unique_ptr<Process> spawn_service(int index) {
    auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
    const std::string log = "daemon-" + std::to_string(index) + ".log";
    options.stdout_path = dir_.file(log + ".out");
    options.stderr_path = dir_.file(log);
    logs_.push_back(log);
    return std::make_unique<Process>(options);
  }

  // Waits until `done(owners)` holds for the organisation leases; the last reading.
  template <class Done>
  std::map<std::string, std::string> wait_for_owners(Done done, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    auto owners = org_owners(dir_.file("state/orch.db"));
    while (!done(owners) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
      owners = org_owners(dir_.file("state/orch.db"));
    }
    return owners;
  }

  std::string all_logs() const {
    std::string text;
    for (const auto& log : logs_) text += read_file(dir_.file(log));
    return text;
  }

  std::vector<std::string> logs_;
};

std::set<std::string> distinct(const std::map<std::string, std::string>& owners) {
  std::set<std::string> out;
  for (const auto& [org, owner] : owners) out.insert(owner);
  return out;
}

TEST_F(OrgSplit, TwoDaemonsShareTheOrgsAndTheSurvivorTakesAllWithoutPayingTwice) {
  constexpr int kJobs = 240;
  constexpr auto kTtl = std::chrono::seconds{3};
  const std::vector<std::string> orgs{"org-demo", "org-b", "org-c"};  // org-demo: the default
  start_sim({"--time-factor", "0.004", "--seed", "17", "--fault-drop-after-create", "0.1",
             "--fault-slow", "0.1", "--slow-ms", "300", "--org", "org-demo", "--org", "org-b",
             "--org", "org-c"});
  DaemonSettings settings;
  settings.max_concurrent_creates = 8;
  settings.max_attempts = 20;
  settings.extra = "lease:\n  ttl: 3s\n";
  write_config(settings, {});

  // Work in every organisation before the daemons start (one naming none: the default org's).
  std::ostringstream lines;
  for (int i = 0; i < kJobs; ++i) {
    lines << R"({"key": "job-)" << i << R"(", "prompt": "Task )" << i
          << (i % 3 == 0 ? " [sim:error]" : " [sim:exit]") << '"';
    if (i % 4 != 0) lines << R"(, "org_id": ")" << orgs[static_cast<std::size_t>(i) % 3] << '"';
    lines << "}\n";
  }
  write_file(dir_.file("jobs.jsonl"), lines.str());
  auto enqueue = daemon_options({"enqueue"});
  enqueue.args = {"/bin/sh", "-c", "exec \"$0\" enqueue --config \"$1\" --stdin < \"$2\"",
                  DEVIN_ORCH_BIN, dir_.file("config.yaml"), dir_.file("jobs.jsonl")};
  const auto added = run_command(enqueue);
  ASSERT_EQ(added.exit_code, 0) << added.err;

  std::vector<std::unique_ptr<Process>> daemons;
  daemons.push_back(spawn_service(0));
  daemons.push_back(spawn_service(1));

  // Both work: every org held, by two different daemons (2 + 1).
  const auto shared = wait_for_owners(
      [&](const auto& owners) { return owners.size() == orgs.size() && distinct(owners).size() == 2; },
      std::chrono::seconds{30});
  ASSERT_EQ(shared.size(), orgs.size()) << all_logs();
  ASSERT_EQ(distinct(shared).size(), 2u) << "one daemon holds every org\n" << all_logs();

  // `status` says how many daemons live and who works the default organisation (the others
  // may change hands meanwhile, as organisations run out of work).
  const auto status = run_command(daemon_options({"status", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("queue: 2 live daemon(s)"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("org org-demo: worked by "), std::string::npos) << status.out;

  // SIGKILL the daemon that holds the default org, mid-run.
  std::this_thread::sleep_for(std::chrono::milliseconds{800});
  const auto holders = org_owners(dir_.file("state/orch.db"));
  ASSERT_TRUE(holders.contains("org-demo"));
  const std::string victim_owner = holders.at("org-demo");
  const pid_t pid = owner_pid(victim_owner);
  auto victim = std::find_if(daemons.begin(), daemons.end(),
                             [&](const auto& p) { return p->pid() == pid; });
  ASSERT_NE(victim, daemons.end()) << "the lease names pid " << pid << ", not one of ours";
  std::size_t victims_orgs = 0;
  for (const auto& [org, owner] : holders) victims_orgs += owner == victim_owner ? 1 : 0;
  const auto killed_at = Clock::now();
  (*victim)->signal(SIGKILL);
  ASSERT_TRUE((*victim)->wait_for(std::chrono::seconds{5}).has_value());

  // The survivor holds the default org (always worked) and the victim holds nothing. (An org
  // whose jobs all ended meanwhile may be held by nobody: it needs no daemon.)
  const auto taken = wait_for_owners(
      [&](const auto& owners) {
        return owners.contains("org-demo") && owners.at("org-demo") != victim_owner &&
               !distinct(owners).contains(victim_owner);
      },
      kTtl + std::chrono::seconds{10});
  const double takeover_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
  ASSERT_TRUE(taken.contains("org-demo")) << all_logs();
  EXPECT_NE(taken.at("org-demo"), victim_owner);
  EXPECT_FALSE(distinct(taken).contains(victim_owner));
  EXPECT_EQ(distinct(taken).size(), 1u);
  // Within the lapse (on SQLite the dead holder's lock frees it at once), with room for a
  // loaded machine's scheduling: the figure itself is bench/postgres.py's failover scenario.
  EXPECT_LT(takeover_s, 3.0 + 3.0);
  std::cout << "org split: the survivor took the " << victims_orgs << " org(s) of the killed "
            << "daemon in " << takeover_s << " s (lease ttl " << kTtl.count() << " s)\n";

  const auto deadline = Clock::now() + std::chrono::seconds{240};
  const auto in_progress = [&] {
    std::size_t n = 0;
    for (const auto& row : status_json()) {
      const auto state = row.at("state").as_string();
      if (state == "queued" || state == "creating" || state == "running") ++n;
    }
    return n;
  };
  while (in_progress() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
  for (auto& daemon : daemons) {
    if (daemon->pid() != pid) daemon->signal(SIGTERM);
  }
  for (auto& daemon : daemons) {
    if (daemon->pid() != pid) {
      EXPECT_TRUE(daemon->wait_for(std::chrono::seconds{15}).has_value());
    }
  }

  const auto sessions = sim_->sessions();
  EXPECT_EQ(duplicate_creation_tags(sessions), 0) << "a job produced two sessions";
  EXPECT_EQ(sessions.size(), static_cast<std::size_t>(kJobs));
  // Every organisation's jobs ran in that organisation.
  std::map<std::string, int> per_org;
  for (const auto& session : sessions) ++per_org[std::string{session.at("org_id").as_string()}];
  for (const auto& org : orgs) EXPECT_GT(per_org[org], 0) << org;
  const auto jobs = jobs_by_key();
  std::map<std::string, boost::json::object> by_id;
  for (const auto& session : sessions) {
    by_id[std::string{session.at("session_id").as_string()}] = session.as_object();
  }
  for (int i = 0; i < kJobs; ++i) {
    const auto& job = jobs.at("job-" + std::to_string(i));
    ASSERT_TRUE(job.at("session_id").is_string()) << "job-" << i << " "
                                                   << boost::json::serialize(job);
    const auto& session = by_id.at(std::string{job.at("session_id").as_string()});
    EXPECT_EQ(job.at("state").as_string(), expected_state_for(session)) << "job-" << i;
  }
  // Both daemons did work: each took at least one org's lease and created sessions for it.
  for (const auto& log : logs_) {
    EXPECT_NE(read_file(dir_.file(log)).find("took the lease of org"), std::string::npos) << log;
  }
}

// A daemon that worked an organisation, handed it over idle and takes it back later keeps the
// gate it made the first time: a wait the server announced meanwhile (stored in org_holds, as
// another holder would) must still reach that gate, or the daemon speaks inside the wait.
TEST_F(OrgSplit, AnOrgTakenBackHonoursTheWaitStoredWhileItWasAway) {
  constexpr auto kHold = std::chrono::seconds{6};
  start_sim({"--time-factor", "0.004", "--seed", "3", "--org", "org-demo", "--org", "org-b"});
  DaemonSettings settings;
  settings.extra = "lease:\n  ttl: 3s\n";
  write_config(settings, {});
  const auto enqueue = [&](const std::string& key) {
    const auto added = run_command(daemon_options(
        {"enqueue", "--config", dir_.file("config.yaml"), "--key", key, "--org", "org-b",
         "--prompt", "Task [sim:exit]"}));
    ASSERT_EQ(added.exit_code, 0) << added.err;
  };
  const auto state_of = [&](const std::string& key) -> std::string {
    const auto jobs = jobs_by_key();
    const auto it = jobs.find(key);
    return it == jobs.end() ? "" : std::string{it->second.at("state").as_string()};
  };
  enqueue("first");
  auto daemon = spawn_service(0);
  // The first job runs through org-b's gate, then the idle org is handed back.
  auto deadline = Clock::now() + std::chrono::seconds{60};
  while (state_of("first") != "finished" && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  ASSERT_EQ(state_of("first"), "finished") << all_logs();
  const auto released = wait_for_owners(
      [](const auto& owners) { return !owners.contains("org-b"); }, std::chrono::seconds{30});
  ASSERT_FALSE(released.contains("org-b")) << all_logs();

  // Another holder was told to wait: the wait is stored, as OrgGates::save_hold writes it.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto until_ms = now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(kHold).count();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("state/orch.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  const std::string insert = "INSERT OR REPLACE INTO org_holds (org_id, until_ms, reason, held_at) "
                             "VALUES ('org-b', " + std::to_string(until_ms) +
                             ", 'Retry-After told to another daemon', " + std::to_string(now_ms) +
                             ")";
  ASSERT_EQ(sqlite3_exec(db, insert.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  // New work for org-b: the daemon takes the org back and sends nothing before the wait ends.
  enqueue("second");
  const auto hold_ends = std::chrono::system_clock::time_point{std::chrono::milliseconds{until_ms}};
  for (;;) {
    const auto state = state_of("second");
    // The read took a while on a loaded machine: it speaks of the wait only if it ended inside.
    if (std::chrono::system_clock::now() >= hold_ends - std::chrono::milliseconds{300}) break;
    ASSERT_TRUE(state == "queued" || state == "creating")
        << "a session was created inside the stored wait: " << state << "\n" << all_logs();
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  deadline = Clock::now() + std::chrono::seconds{60};
  while (state_of("second") != "finished" && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  EXPECT_EQ(state_of("second"), "finished") << all_logs();
  EXPECT_NE(all_logs().find("honouring the wait the server announced"), std::string::npos)
      << all_logs();
  daemon->signal(SIGTERM);
  EXPECT_TRUE(daemon->wait_for(std::chrono::seconds{15}).has_value());
  EXPECT_EQ(duplicate_creation_tags(sim_->sessions()), 0);
}

}  // namespace
}  // namespace devin_orch::testing
