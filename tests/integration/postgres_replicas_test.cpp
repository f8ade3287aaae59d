// Daemons on one PostgreSQL database (issue 25): the whole pipeline on the second backend, and
// the replica chaos run: three daemons, a producer on another connection, create answers
// dropped and 5xx faults, SIGKILLs of random daemons and one crash of the database server
// itself. Zero duplicate sessions, zero lost jobs, every outcome the simulator's. The server is
// this test's own (scripts/pg-cluster.sh), since it is killed mid-run.
#include "daemon_fixture.hpp"
#include "support/pg_database.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kClusterScript = std::string(DEVIN_ORCH_SOURCE_DIR) + "/scripts/pg-cluster.sh";

RunResult cluster(const std::string& action, const std::string& dir) {
  return run_command({.args = {"/bin/bash", kClusterScript, action, dir}}, std::chrono::seconds{90});
}

// The long run (scripts/pg-chaos.sh) sets more jobs, kills and server crashes.
int env_or(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

std::string psql(const std::string& url, const std::string& sql) {
  const auto run = run_command(
      {.args = {"/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return run.out;
}

class PostgresReplicas : public DaemonFixture {
 protected:
  std::unique_ptr<Process> spawn_service(int index) {
    auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
    const std::string log = "daemon-" + std::to_string(index) + ".log";
    options.stdout_path = dir_.file(log + ".out");
    options.stderr_path = dir_.file(log);
    logs_.push_back(log);
    return std::make_unique<Process>(options);
  }

  std::string all_logs() const {
    std::string text;
    for (const auto& log : logs_) text += read_file(dir_.file(log));
    return text;
  }

  std::vector<std::string> logs_;
};

// The daemon, the CLI and the job files against PostgreSQL, end to end.
TEST_F(PostgresReplicas, TheWholePipelineRunsOnPostgres) {
  PgDatabase database;
  start_sim({"--time-factor", "0.005", "--seed", "7"});
  DaemonSettings settings;
  settings.database_url = database.url();
  write_config(settings);
  write_jobs(generate_jobs(20, {"[sim:exit]", "[sim:error]", "[sim:finished]"}));
  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_consistent_with_sim(20);
  // Nothing was written beside the configuration: the SQLite file was never made.
  EXPECT_FALSE(std::filesystem::exists(dir_.file("state/orch.db")));
  const auto ls = run_command(daemon_options({"ls", "--config", dir_.file("config.yaml")}));
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("job-19"), std::string::npos) << ls.out;
}

TEST_F(PostgresReplicas, ThreeDaemonsKillsAndAServerCrashLoseNothingAndPayOnce) {
  const int kJobs = env_or("PG_CHAOS_JOBS", 500);
  const int kKills = env_or("PG_CHAOS_KILLS", 10);
  const int kServerCrashes = env_or("PG_CHAOS_SERVER_CRASHES", 1);
  TempDir server_dir;
  const std::string cluster_dir = server_dir.file("cluster");
  // The server runs as the unprivileged user `postgres` when the tests run as root.
  std::filesystem::permissions(server_dir.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  const auto started = cluster("start", cluster_dir);
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string url = started.out;
  url.erase(url.find_last_not_of("\n") + 1);
  struct StopCluster {
    std::string dir;
    ~StopCluster() { cluster("stop", dir); }
  } stop_cluster{cluster_dir};

  start_sim({"--time-factor", "0.004", "--seed", "41", "--fault-drop-after-create", "0.1",
             "--fault-500", "0.03", "--fault-503", "0.03", "--fault-slow", "0.05",
             "--slow-ms", "300", "--org", "org-demo", "--org", "org-b", "--org", "org-c",
             "--org", "org-d"});
  DaemonSettings settings;
  settings.database_url = url;
  settings.max_concurrent_creates = 16;
  settings.max_attempts = 30;
  settings.extra = "lease:\n  ttl: 3s\n";
  write_config(settings, {});
  std::vector<std::unique_ptr<Process>> daemons;
  for (int i = 0; i < 3; ++i) daemons.push_back(spawn_service(i));
  // The first daemon to start migrates; wait until the table exists.
  for (int i = 0; i < 200; ++i) {
    if (run_command({.args = {"/usr/bin/psql", "-X", "-q", "-d", url, "-c",
                              "SELECT 1 FROM jobs LIMIT 1"}})
            .exit_code == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }

  // 500 jobs from a producer on its own connection, in one transaction, in four organisations
  // (a quarter naming none: the default's), so the daemons split them and every kill moves
  // some organisations to the survivors.
  std::ostringstream insert;
  insert << "INSERT INTO jobs (key, org_id, spec) VALUES ";
  const std::array<const char*, 3> orgs{"'org-b'", "'org-c'", "'org-d'"};
  for (int i = 0; i < kJobs; ++i) {
    insert << (i > 0 ? "," : "") << "('job-" << i << "', "
           << (i % 4 == 0 ? "NULL" : orgs[static_cast<std::size_t>(i) % 3]) << ", '{\"prompt\": \"Task "
           << i << (i % 3 == 0 ? " [sim:error]" : " [sim:exit]") << "\"}')";
  }
  psql(url, insert.str());

  std::mt19937 random{static_cast<unsigned>(env_or("PG_CHAOS_SEED", 25))};
  const auto started_at = Clock::now();
  const auto in_progress = [&] {
    return std::stoi(psql(url, "SELECT count(*) FROM jobs WHERE state IN "
                               "('queued', 'creating', 'running')"));
  };
  int crashes = 0;
  for (int kill = 0; kill < kKills; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds{600 + 200 * (kill % 4)});
    if (crashes < kServerCrashes && kill == (crashes + 1) * kKills / (kServerCrashes + 1)) {
      ++crashes;
      // The database server crashes mid-run and comes back: the daemons wait, reconnect and
      // go on.
      EXPECT_GT(in_progress(), 0) << "the crash would not be mid-run";
      ASSERT_EQ(cluster("kill", cluster_dir).exit_code, 0);
      std::this_thread::sleep_for(std::chrono::seconds{2});
      const auto restarted = cluster("restart", cluster_dir);
      ASSERT_EQ(restarted.exit_code, 0) << restarted.err;
    }
    auto& victim = daemons[random() % daemons.size()];
    victim->signal(SIGKILL);
    ASSERT_TRUE(victim->wait_for(std::chrono::seconds{5}).has_value());
    victim = spawn_service(static_cast<int>(logs_.size()));
  }

  const auto deadline = Clock::now() + std::chrono::seconds{env_or("PG_CHAOS_SECONDS", 150)};
  while (in_progress() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started_at).count();
  for (auto& daemon : daemons) daemon->signal(SIGTERM);
  for (auto& daemon : daemons) EXPECT_TRUE(daemon->wait_for(std::chrono::seconds{15}).has_value());

  const auto sessions = sim_->sessions();
  EXPECT_EQ(duplicate_creation_tags(sessions), 0) << "a job produced two sessions";
  EXPECT_EQ(sessions.size(), static_cast<std::size_t>(kJobs));
  const auto jobs = jobs_by_key();
  ASSERT_EQ(jobs.size(), static_cast<std::size_t>(kJobs)) << "a job was lost";
  std::map<std::string, boost::json::object> by_id;
  for (const auto& session : sessions) {
    by_id[std::string{session.at("session_id").as_string()}] = session.as_object();
  }
  for (int i = 0; i < kJobs; ++i) {
    const auto& job = jobs.at("job-" + std::to_string(i));
    ASSERT_TRUE(job.at("session_id").is_string())
        << "job-" << i << " " << boost::json::serialize(job) << "\n" << all_logs().substr(0, 4000);
    const auto& session = by_id.at(std::string{job.at("session_id").as_string()});
    EXPECT_EQ(job.at("state").as_string(), expected_state_for(session)) << "job-" << i;
  }
  EXPECT_GT(sim_->stats().at("faults").at("drop_after_create").as_int64(), 0);
  // The daemons did see the server go away (and everything above finished after it).
  EXPECT_NE(all_logs().find("cannot connect to PostgreSQL"), std::string::npos);
  // The organisations were split: several daemons took organisation leases, and some were
  // handed over from one daemon to another.
  int daemons_that_worked = 0;
  for (const auto& log : logs_) {
    daemons_that_worked += read_file(dir_.file(log)).find("took the lease of org") !=
                                   std::string::npos
                               ? 1
                               : 0;
  }
  EXPECT_GT(daemons_that_worked, 3) << "the organisations were not spread";
  EXPECT_NE(all_logs().find("handing org"), std::string::npos) << "no organisation was handed over";
  std::cout << "postgres replicas: " << kJobs << " jobs, " << kKills << " SIGKILLs and "
            << crashes << " server crash(es), done in " << seconds << " s\n";
}

}  // namespace
}  // namespace devin_orch::testing
