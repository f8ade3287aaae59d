// Concurrency groups against devin-sim (docs/concurrency.md): six jobs of one key with
// max_active 2 and two of another key. Never more than two of the first key hold a session
// (checked in the store through `ls` and in the simulator's session list at every look), the
// other key's jobs go ahead, the held ones say why in `ls`, and a restart in the middle keeps
// the limit: the daemon counts the active jobs from the database. Two daemons holding different
// organisations whose jobs share one key keep the limit too: the store counts inside each intent.
#include "daemon_fixture.hpp"

#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <set>
#include <string>
#include <thread>

namespace devin_orch::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kMaxActive = 2;
const std::string kBackend = "repo:acme/backend";

// The distinct holders of the organisation leases unexpired now, as another process reads them.
std::size_t org_lease_holders(const std::string& db_path) {
  std::set<std::string> owners;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* stmt = nullptr;
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (sqlite3_prepare_v2(db,
                           "SELECT owner FROM leases "
                           "WHERE name LIKE 'org:%' AND epoch > 0 AND expires_at > ?1",
                           -1, &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(stmt, 1, now_ms);
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        owners.insert(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return owners.size();
}

class ConcurrencyGroups : public DaemonFixture {
 protected:
  int max_active_ = kMaxActive;  // what look() allows of the backend key

  struct Counts {
    int backend_active = 0;   // creating or running
    int backend_queued = 0;
    int backend_ended = 0;
    int web_active = 0;
    std::vector<std::string> backend_running;  // keys, to cancel one
  };

  boost::json::array listing() {
    const auto ls =
        run_command(daemon_options({"ls", "--json", "--config", dir_.file("config.yaml")}));
    EXPECT_EQ(ls.exit_code, 0) << ls.err;
    return boost::json::parse(ls.out).as_array();
  }

  // One look at the store and at the simulator; fails the test if either shows more than
  // kMaxActive of the backend key at once.
  Counts look() {
    Counts counts;
    for (const auto& value : listing()) {
      const auto& row = value.as_object();
      const std::string key{row.at("key").as_string()};
      const std::string state{row.at("state").as_string()};
      const bool active = state == "creating" || state == "running";
      if (key.starts_with("backend-")) {
        if (active) ++counts.backend_active;
        if (state == "queued") ++counts.backend_queued;
        if (!active && state != "queued") ++counts.backend_ended;
        if (state == "running") counts.backend_running.push_back(key);
      } else if (key.starts_with("web-") && active) {
        ++counts.web_active;
      }
    }
    EXPECT_LE(counts.backend_active, max_active_) << "the store shows too many active";
    int sim_active = 0;
    for (const auto& value : sim_->sessions()) {
      const auto& session = value.as_object();
      const auto* title = session.if_contains("title");
      if (title == nullptr || !title->is_string() ||
          !std::string{title->as_string()}.starts_with("backend-")) {
        continue;
      }
      const std::string status{session.at("status").as_string()};
      if (status != "exit" && status != "error" && status != "suspended") ++sim_active;
    }
    EXPECT_LE(sim_active, max_active_) << "the simulator holds too many live sessions";
    return counts;
  }

  // Looks until `done` says so (generous: a loaded machine), checking the limit at each look.
  template <class Done>
  Counts look_until(Done done, std::chrono::seconds timeout = 90s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Counts counts = look();
    while (!done(counts) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(200ms);
      counts = look();
    }
    return counts;
  }

  // Looks for `period`, checking the limit each time; the last look.
  Counts watch(std::chrono::seconds period) {
    const auto until = std::chrono::steady_clock::now() + period;
    Counts counts = look();
    while (std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(200ms);
      counts = look();
    }
    return counts;
  }

  void cancel(const std::string& key) {
    const auto result =
        run_command(daemon_options({"cancel", key, "--config", dir_.file("config.yaml")}));
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }
};

TEST_F(ConcurrencyGroups, AFullGroupWaitsOtherKeysGoAheadAndARestartKeepsTheLimit) {
  start_sim({"--time-factor", "0.005"});
  DaemonSettings settings;
  settings.extra = "concurrency:\n  - key: \"repo:*\"\n    max_active: " +
                   std::to_string(kMaxActive) + "\n";
  write_config(settings);
  std::string jobs;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "backend-" + std::to_string(i);
    jobs += "- key: " + name + "\n  title: " + name +
            "\n  prompt: \"work [sim:hold]\"\n  concurrency_key: " + kBackend + "\n";
  }
  for (int i = 0; i < 2; ++i) {
    const std::string name = "web-" + std::to_string(i);
    jobs += "- key: " + name + "\n  title: " + name +
            "\n  prompt: \"work [sim:hold]\"\n  concurrency_key: repo:acme/web\n";
  }
  write_jobs(jobs);

  auto daemon = spawn_service();
  auto counts = look_until([](const Counts& c) {
    return c.backend_active == kMaxActive && c.web_active == 2;
  });
  ASSERT_EQ(counts.backend_active, kMaxActive) << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(counts.web_active, 2) << "the other key's jobs go ahead";
  // Several dispatches: none may start a third of the key.
  counts = watch(3s);
  EXPECT_EQ(counts.backend_queued, 4);

  int held = 0;
  for (const auto& value : listing()) {
    const auto& row = value.as_object();
    if (row.at("state").as_string() != "queued") continue;
    ++held;
    EXPECT_EQ(row.at("reason_code").as_string(), "concurrency_group") << boost::json::serialize(row);
    EXPECT_NE(std::string{row.at("reason").as_string()}.find(
                  "concurrency:repo:acme/backend 2/2"),
              std::string::npos)
        << row.at("reason").as_string();
  }
  EXPECT_EQ(held, 4);
  const auto text_ls =
      run_command(daemon_options({"ls", "--state", "queued", "--config", dir_.file("config.yaml")}));
  EXPECT_NE(text_ls.out.find("concurrency:repo:acme/backend 2/2"), std::string::npos)
      << text_ls.out;

  // One ends: exactly one more starts.
  ASSERT_FALSE(counts.backend_running.empty());
  cancel(counts.backend_running.front());
  counts = look_until([](const Counts& c) {
    return c.backend_ended == 1 && c.backend_active == kMaxActive;
  });
  ASSERT_EQ(counts.backend_ended, 1) << read_file(dir_.file("daemon.log"));
  ASSERT_EQ(counts.backend_active, kMaxActive) << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(counts.backend_queued, 3);

  // A restart in the middle: the new daemon counts the two active ones from the database.
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(30s).has_value());
  daemon = spawn_service("daemon-2.log");
  // Its dispatch met the held jobs (it logs the full group), then several more dispatches.
  const auto logged = std::chrono::steady_clock::now() + 90s;
  while (read_file(dir_.file("daemon-2.log")).find("concurrency group repo:acme/backend is full") ==
             std::string::npos &&
         std::chrono::steady_clock::now() < logged) {
    look();
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_NE(read_file(dir_.file("daemon-2.log")).find("concurrency group repo:acme/backend is full"),
            std::string::npos)
      << read_file(dir_.file("daemon-2.log"));
  counts = watch(3s);
  EXPECT_EQ(counts.backend_active, kMaxActive);
  EXPECT_EQ(counts.backend_queued, 3) << read_file(dir_.file("daemon-2.log"));

  // The rest go two at a time as their predecessors end.
  for (int ended = 2; ended <= 4; ++ended) {
    ASSERT_FALSE(counts.backend_running.empty()) << read_file(dir_.file("daemon-2.log"));
    cancel(counts.backend_running.front());
    counts = look_until([ended](const Counts& c) {
      return c.backend_ended == ended && c.backend_active == kMaxActive;
    });
    ASSERT_EQ(counts.backend_ended, ended) << read_file(dir_.file("daemon-2.log"));
    ASSERT_EQ(counts.backend_active, kMaxActive) << read_file(dir_.file("daemon-2.log"));
    EXPECT_EQ(counts.backend_queued, 4 - ended);
  }
  EXPECT_EQ(counts.backend_queued, 0);
  daemon->signal(SIGTERM);
  ASSERT_TRUE(daemon->wait_for(30s).has_value());
}

// Two daemons, each holding one organisation, and one key of one place whose jobs are in both.
// Each daemon counts the group before its intents, so when a place frees both may go for it at
// once; the store counts again inside the intent's transaction and refuses the late claim
// (concurrency_refused), whose job stays queued and starts when the place is free again. Each
// job's attachment is uploaded between the count and the intent, and every answer is slow, so
// that both daemons are inside that window together: without the store's count both start.
TEST_F(ConcurrencyGroups, TwoDaemonsHoldingOtherOrganisationsKeepOneLimit) {
  constexpr int kJobs = 6;
  max_active_ = 1;
  start_sim({"--time-factor", "0.005", "--org", "org-demo", "--org", "org-b", "--fault-slow",
             "1", "--slow-ms", "500"});
  DaemonSettings settings;
  settings.extra = "lease:\n  ttl: 3s\nconcurrency:\n  - key: \"repo:*\"\n    max_active: 1\n";
  write_config(settings);
  write_file(dir_.file("notes.txt"), "what the session should know\n");
  std::string jobs;
  for (int i = 0; i < kJobs; ++i) {
    const std::string name = "backend-" + std::to_string(i);
    jobs += "- key: " + name + "\n  title: " + name +
            "\n  prompt: \"work [sim:hold]\"\n  org_id: " + (i % 2 == 0 ? "org-demo" : "org-b") +
            "\n  concurrency_key: " + kBackend + "\n  attachments: [notes.txt]\n";
  }
  write_jobs(jobs);

  auto first = spawn_service("daemon-a.log");
  auto second = spawn_service("daemon-b.log");
  const auto logs = [this] {
    return read_file(dir_.file("daemon-a.log")) + read_file(dir_.file("daemon-b.log"));
  };
  // Both daemons work: the organisations are split between them.
  const auto split_by = std::chrono::steady_clock::now() + 60s;
  while (org_lease_holders(dir_.file("state/orch.db")) < 2 &&
         std::chrono::steady_clock::now() < split_by) {
    look();
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(org_lease_holders(dir_.file("state/orch.db")), 2U) << logs();

  // One at a time, across both daemons: each cancel frees the place for both to go for.
  for (int ended = 0; ended < kJobs; ++ended) {
    auto counts = look_until([ended](const Counts& c) {
      return c.backend_ended == ended && c.backend_active == 1 && !c.backend_running.empty();
    });
    ASSERT_EQ(counts.backend_ended, ended) << logs();
    ASSERT_EQ(counts.backend_active, 1) << logs();
    ASSERT_EQ(counts.backend_queued, kJobs - ended - 1) << logs();
    ASSERT_FALSE(counts.backend_running.empty()) << logs();
    cancel(counts.backend_running.front());
  }
  const auto counts = look_until([](const Counts& c) { return c.backend_ended == kJobs; });
  EXPECT_EQ(counts.backend_ended, kJobs) << logs();
  // The race this is about did happen: a daemon's claim was refused for the full group.
  EXPECT_NE(logs().find("concurrency group repo:acme/backend is full; the job waits"),
            std::string::npos)
      << logs();
  // A refused claim never ends its job: every one ran and was cancelled.
  for (const auto& value : listing()) {
    EXPECT_EQ(value.as_object().at("state").as_string(), "cancelled")
        << boost::json::serialize(value);
  }
  first->signal(SIGTERM);
  second->signal(SIGTERM);
  EXPECT_TRUE(first->wait_for(30s).has_value());
  EXPECT_TRUE(second->wait_for(30s).has_value());
}

}  // namespace
}  // namespace devin_orch::testing
