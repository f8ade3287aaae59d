// Exactly-once against a list that shows new sessions late: the lookups after an ambiguous
// create keep looking over the settle window, and when the lag outlasts the window, the
// duplicate a re-create made is found by the job's tag and terminated, the job following the
// older session.
#include "daemon_fixture.hpp"

#include <iostream>
#include <map>
#include <set>

namespace devin_orch::testing {
namespace {

std::map<std::string, std::vector<boost::json::object>> sessions_by_job_tag(
    const boost::json::array& sessions) {
  std::map<std::string, std::vector<boost::json::object>> by_tag;
  for (const auto& value : sessions) {
    const auto& session = value.as_object();
    if (session.contains("parent_session_id") && session.at("parent_session_id").is_string()) {
      continue;
    }
    for (const auto& tag : session.at("tags").as_array()) {
      const std::string text{tag.as_string()};
      if (text.starts_with("orch-")) by_tag[text].push_back(session);
    }
  }
  return by_tag;
}

class ListLag : public DaemonFixture {};

TEST_F(ListLag, LookupsOverTheSettleWindowMakeNoDuplicateWhenTheListLagsFiveSeconds) {
  constexpr int kJobs = 200;
  start_sim({"--time-factor", "0.01", "--seed", "23", "--list-lag-ms", "5000",
             "--fault-drop-after-create", "0.2"});
  DaemonSettings settings;
  settings.settle_delay = "1s";
  settings.settle_window = "8s";
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:finished]", "[sim:error]"}));
  const auto result = run_until_idle(std::chrono::seconds{240});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto stats = sim_->stats();
  std::cout << "list lag 5 s, 20 % drop-after-create: "
            << boost::json::serialize(stats.at("duplicate_tag_groups")) << " duplicate tag groups, "
            << sim_->sessions().size() << " sessions for " << kJobs << " jobs\n";
  EXPECT_EQ(stats.at("duplicate_tag_groups").as_int64(), 0);
  expect_consistent_with_sim(kJobs);
}

TEST_F(ListLag, WhenTheLagOutlastsTheWindowEveryDuplicateIsTerminatedAndTheJobFollowsTheOlder) {
  constexpr int kJobs = 30;
  // Sessions live about 25 s; the list shows them after 6 s; the window is 1 s.
  start_sim({"--time-factor", "0.5", "--seed", "5", "--list-lag-ms", "6000",
             "--fault-drop-after-create", "0.4"});
  DaemonSettings settings;
  settings.settle_delay = "200ms";
  settings.settle_window = "1s";
  settings.poll_initial = "500ms";
  settings.poll_max = "1s";
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:finished]"}));
  const auto result = run_until_idle(std::chrono::seconds{240});
  ASSERT_EQ(result.exit_code, 0) << result.err;

  const auto sessions = sim_->sessions();
  const auto by_tag = sessions_by_job_tag(sessions);
  const auto jobs = jobs_by_key();
  ASSERT_EQ(jobs.size(), static_cast<std::size_t>(kJobs));
  std::set<std::string> kept;
  for (const auto& [key, job] : jobs) {
    ASSERT_TRUE(job.at("session_id").is_string()) << key;
    kept.insert(std::string{job.at("session_id").as_string()});
  }
  int duplicates = 0;
  for (const auto& [tag, group] : by_tag) {
    if (group.size() < 2) continue;
    // The job kept the oldest session of its tag, and every other one was terminated and
    // archived by the daemon.
    const auto oldest = std::min_element(group.begin(), group.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.at("created_at").as_int64(), a.at("session_id").as_string()) <
             std::make_pair(b.at("created_at").as_int64(), b.at("session_id").as_string());
    });
    EXPECT_TRUE(kept.contains(std::string{oldest->at("session_id").as_string()}))
        << "the job of tag " << tag << " does not follow its oldest session";
    for (const auto& session : group) {
      if (&session == &*oldest) continue;
      ++duplicates;
      EXPECT_TRUE(session.at("is_archived").as_bool())
          << "duplicate " << session.at("session_id").as_string() << " of " << tag
          << " was not terminated and archived: " << boost::json::serialize(session);
    }
  }
  std::cout << "list lag 6 s beyond a 1 s window: " << duplicates
            << " duplicate sessions created, all terminated\n";
  EXPECT_GT(duplicates, 0) << "the test made no duplicate: it proves nothing";
  // Each job's outcome is its kept session's.
  std::map<std::string, boost::json::object> by_id;
  for (const auto& value : sessions) {
    by_id[std::string{value.at("session_id").as_string()}] = value.as_object();
  }
  for (const auto& [key, job] : jobs) {
    const auto& session = by_id.at(std::string{job.at("session_id").as_string()});
    EXPECT_EQ(std::string{job.at("state").as_string()}, expected_state_for(session)) << key;
  }
  EXPECT_NE(result.err.find("carry its tag"), std::string::npos) << "no warning was logged";
}

}  // namespace
}  // namespace devin_orch::testing
