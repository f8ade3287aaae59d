// Notifications from a daemon on PostgreSQL: the outbox in that store (schema v3), end to end
// through the daemon, the CLI's `events ls` and a receiver that checks every signature with
// Python's hmac and fails some requests, so deliveries are retried and recorded there too.
#include "notify_fixture.hpp"
#include "support/pg_database.hpp"

#include <map>
#include <set>

namespace devin_orch::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class PostgresNotifications : public NotifyFixture {};

TEST_F(PostgresNotifications, ADaemonOnPostgresDeliversEveryJobsEnd) {
  constexpr int kJobs = 20;
  PgDatabase database;
  start_sim({"--time-factor", "0.005", "--seed", "31"});
  auto receiver = start_receiver("pg", {"--fail-rate", "0.25", "--seed", "31"});
  DaemonSettings settings;
  settings.database_url = database.url();
  settings.extra = "notify:\n  webhooks:\n" + webhook(receiver) +
                   "  request_timeout: 1s\n  retry_initial: 100ms\n  retry_max: 500ms\n"
                   "  max_age: 2m\n";
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:error]", "[sim:finished]"}));
  const auto run = run_until_idle(300s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_consistent_with_sim(kJobs);

  // The outbox, read through the CLI from PostgreSQL: one end event per job, all delivered.
  const auto jobs = jobs_by_key();
  std::map<std::string, std::string> event_of;  // job -> event id
  for (const auto& value : deliveries()) {
    const auto& d = value.as_object();
    EXPECT_EQ(d.at("state").as_string(), "delivered") << json::serialize(d);
    const std::string key{d.at("job_key").as_string()};
    EXPECT_TRUE(event_of.emplace(key, std::string{d.at("event_id").as_string()}).second)
        << key << " announced twice";
    // The event names the state the job ended in.
    const std::string type{d.at("type").as_string()};
    EXPECT_EQ(type, "job." + std::string{jobs.at(key).at("state").as_string()}) << key;
  }
  EXPECT_EQ(event_of.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(database.sql("SELECT count(*) FROM notify_events WHERE routed_at IS NULL"), "0\n");

  // The receiver got each of them, signed right, some after a 500.
  std::set<std::string> accepted;
  int failed = 0;
  for (const auto& entry : receiver.entries()) {
    const std::string outcome{entry.at("outcome").as_string()};
    EXPECT_NE(outcome, "bad_signature");
    if (outcome == "error500") ++failed;
    if (outcome == "accepted") accepted.insert(std::string{entry.at("id").as_string()});
  }
  for (const auto& [key, id] : event_of) EXPECT_TRUE(accepted.contains(id)) << key;
  EXPECT_GT(failed, 0) << "no attempt failed: the retry path was not exercised";
}

}  // namespace
}  // namespace devin_orch::testing
