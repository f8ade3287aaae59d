// Incremental status polls against every reading of `updated_after` a server might take:
// inclusive, exclusive, ignored, or rejected alongside session_ids. Whatever the reading, no
// status change goes unrecorded and every job ends as its session did.
#include "daemon_fixture.hpp"

#include <gmock/gmock.h>

#include <string>
#include <vector>

namespace devin_orch::testing {
namespace {

using IncrementalPolls = DaemonFixture;
using ::testing::IsSupersetOf;

constexpr int kJobs = 8;

class ByReading : public DaemonFixture, public ::testing::WithParamInterface<const char*> {
 protected:
  // Statuses in a job's history, as "status" or "status/detail".
  std::vector<std::string> statuses_of(const std::string& key) {
    const auto shown = run_command(
        daemon_options({"show", key, "--config", dir_.file("config.yaml"), "--json"}));
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    const auto detail = boost::json::parse(shown.out);
    std::vector<std::string> statuses;
    for (const auto& entry : detail.at("history").as_array()) {
      if (entry.at("event").as_string() != "status") continue;
      std::string status{entry.at("status").as_string()};
      if (entry.at("status_detail").is_string()) {
        status += "/" + std::string{entry.at("status_detail").as_string()};
      }
      statuses.push_back(std::move(status));
    }
    return statuses;
  }
};

// Phases last seconds (time factor 0.1: working 3 s, finished 1 s) while polls come every
// 100-400 ms: every phase must be in the history, though updated_at has whole seconds only.
TEST_P(ByReading, EveryStatusChangeIsRecorded) {
  start_sim({"--time-factor", "0.1", "--updated-after-mode", GetParam(), "--log-requests"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(kJobs, {"[sim:exit]"}, "exit"));
  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_consistent_with_sim(kJobs);
  for (int i = 0; i < kJobs; ++i) {
    const auto key = "exit-" + std::to_string(i);
    EXPECT_THAT(statuses_of(key), IsSupersetOf({"running/working", "running/finished", "exit"}))
        << key;
  }
  EXPECT_NE(sim_->log().find("updated_after="), std::string::npos)
      << "no incremental poll was made";
}

INSTANTIATE_TEST_SUITE_P(UpdatedAfter, ByReading,
                         ::testing::Values("inclusive", "exclusive", "ignored"));

TEST_F(IncrementalPolls, AServerThatRejectsTheCombinationGetsFullPolls) {
  start_sim({"--time-factor", "0.1", "--updated-after-mode", "rejected-with-ids",
             "--log-requests"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(kJobs, {"[sim:exit]"}, "exit"));
  const auto run = run_until_idle();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_consistent_with_sim(kJobs);
  EXPECT_THAT(run.err, ::testing::HasSubstr("the API rejected updated_after with session_ids"));
  // Turned off at the first rejection: only batches already on their way can meet a 422.
  const auto log = sim_->log();
  std::size_t rejected = 0;
  for (auto at = log.find("-> 422"); at != std::string::npos; at = log.find("-> 422", at + 1)) {
    ++rejected;
  }
  EXPECT_GE(rejected, 1U);
  EXPECT_LE(rejected, 3U) << log;
}

}  // namespace
}  // namespace devin_orch::testing
