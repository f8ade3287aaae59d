// Session lifecycle timelines: markers, default path weights, runs and ACU accrual.
#include "devin_orch/sim/lifecycle.hpp"

#include <gtest/gtest.h>

#include <map>

namespace devin_orch::sim {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

struct Expect {
  TimeMs at_ms;  // after the run origin, at time factor 1
  std::string_view status;
  std::optional<std::string_view> detail;
};

void expect_timeline(const Path& path, const std::vector<Expect>& expected, double factor = 1.0,
                     bool creating = false) {
  const SessionRun run{.kind = RunKind::initial, .origin = kT0, .creating = creating};
  for (const auto& e : expected) {
    const auto at = kT0 + static_cast<TimeMs>(static_cast<double>(e.at_ms) * factor);
    const auto phase = phase_at(run, path, factor, at);
    EXPECT_EQ(phase.status, e.status) << "at +" << e.at_ms << " ms";
    EXPECT_EQ(phase.detail, e.detail) << "at +" << e.at_ms << " ms";
  }
}

TEST(Lifecycle, MarkersChooseTheEnding) {
  EXPECT_EQ(choose_path(1, "do it [sim:exit]").ending, Ending::exit);
  EXPECT_EQ(choose_path(1, "[sim:finished] x").ending, Ending::finished_then_inactivity);
  EXPECT_EQ(choose_path(1, "[sim:waiting]").ending, Ending::waiting_then_inactivity);
  EXPECT_EQ(choose_path(1, "[sim:error]").ending, Ending::error);
  EXPECT_EQ(choose_path(1, "[sim:hold]").ending, Ending::hold);
  const auto suspend = choose_path(1, "pay [sim:suspend=out_of_credits] now");
  EXPECT_EQ(suspend.ending, Ending::suspend);
  EXPECT_EQ(suspend.suspend_detail, "out_of_credits");
}

TEST(Lifecycle, DefaultPathIsDeterministicAndFollowsTheWeights) {
  std::map<Ending, int> counts;
  for (int i = 0; i < 20'000; ++i) {
    const auto prompt = "task " + std::to_string(i);
    const auto path = choose_path(7, prompt);
    EXPECT_EQ(path.ending, choose_path(7, prompt).ending);
    ++counts[path.ending];
    if (path.ending == Ending::suspend) {
      EXPECT_EQ(path.suspend_detail, "out_of_credits");
    }
  }
  EXPECT_NEAR(counts[Ending::finished_then_inactivity], 8000, 400);
  EXPECT_NEAR(counts[Ending::exit], 6000, 400);
  EXPECT_NEAR(counts[Ending::waiting_then_inactivity], 3000, 300);
  EXPECT_NEAR(counts[Ending::error], 2000, 250);
  EXPECT_NEAR(counts[Ending::suspend], 1000, 200);
  EXPECT_EQ(counts[Ending::hold], 0);
}

TEST(Lifecycle, SeedChangesTheDefaultPath) {
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const auto prompt = "p" + std::to_string(i);
    differ += choose_path(1, prompt).ending != choose_path(2, prompt).ending ? 1 : 0;
  }
  EXPECT_GT(differ, 20);
}

TEST(Lifecycle, ExitPathAtFullSpeed) {
  expect_timeline({Ending::exit, {}}, {{0, "new", std::nullopt},
                                       {1'999, "new", std::nullopt},
                                       {2'000, "claimed", std::nullopt},
                                       {6'999, "claimed", std::nullopt},
                                       {7'000, "running", "working"},
                                       {36'999, "running", "working"},
                                       {37'000, "running", "finished"},
                                       {47'000, "exit", std::nullopt},
                                       {10'000'000, "exit", std::nullopt}});
}

TEST(Lifecycle, TimeFactorScalesEveryPhase) {
  for (const double factor : {0.01, 0.5, 3.0}) {
    expect_timeline({Ending::finished_then_inactivity, {}},
                    {{1'000, "new", std::nullopt},
                     {3'000, "claimed", std::nullopt},
                     {8'000, "running", "working"},
                     {38'000, "running", "finished"},
                     {48'000, "suspended", "inactivity"}},
                    factor);
  }
}

TEST(Lifecycle, WaitingErrorSuspendAndHoldPaths) {
  expect_timeline({Ending::waiting_then_inactivity, {}},
                  {{37'500, "running", "waiting_for_user"}, {47'500, "suspended", "inactivity"}});
  expect_timeline({Ending::error, {}}, {{36'000, "running", "working"}, {37'000, "error", std::nullopt}});
  expect_timeline({Ending::suspend, "usage_limit_exceeded"},
                  {{37'000, "suspended", "usage_limit_exceeded"}});
  expect_timeline({Ending::hold, {}}, {{7'000, "running", "working"}, {100'000'000, "running", "working"}});
}

TEST(Lifecycle, SuspendBeforeWorkSkipsTheWorkAndItsAcus) {
  const Path quota{.ending = Ending::suspend, .suspend_detail = "user_usage_limit_exceeded",
                   .before_work = true};
  expect_timeline(quota, {{6'999, "claimed", std::nullopt},
                          {7'000, "suspended", "user_usage_limit_exceeded"},
                          {500'000, "suspended", "user_usage_limit_exceeded"}});
  // Even a run held at work does not work past an exhausted quota.
  const SessionRun held{.kind = RunKind::initial, .origin = kT0, .hold = true};
  const auto phase = phase_at(held, quota, 1.0, kT0 + 60'000);
  EXPECT_EQ(phase.status, "suspended");
  EXPECT_DOUBLE_EQ(phase.acus, 0.0);
}

TEST(Lifecycle, CreatingPhaseSitsBetweenNewAndClaimed) {
  expect_timeline({Ending::exit, {}},
                  {{1'000, "new", std::nullopt},
                   {2'500, "creating", std::nullopt},
                   {4'000, "claimed", std::nullopt},
                   {9'000, "running", "working"}},
                  1.0, true);
}

TEST(Lifecycle, HoldFlagKeepsAnyPathWorking) {
  const SessionRun run{.kind = RunKind::initial, .origin = kT0, .hold = true};
  EXPECT_EQ(phase_at(run, {Ending::error, {}}, 1.0, kT0 + 1'000'000).detail, "working");
}

TEST(Lifecycle, UpdatedAtIsTheLastChange) {
  const SessionRun run{.kind = RunKind::initial, .origin = kT0};
  const Path path{Ending::exit, {}};
  EXPECT_EQ(phase_at(run, path, 1.0, kT0 + 500).since, kT0);
  EXPECT_EQ(phase_at(run, path, 1.0, kT0 + 20'000).since, kT0 + 7'000);
  EXPECT_EQ(phase_at(run, path, 1.0, kT0 + 99'000).since, kT0 + 47'000);
}

TEST(Lifecycle, AcusGrowOnlyWhileRunningInBaseSeconds) {
  const SessionRun run{.kind = RunKind::initial, .origin = kT0};
  const Path path{Ending::exit, {}};
  for (const double factor : {1.0, 0.01}) {
    auto at = [&](TimeMs ms) { return kT0 + static_cast<TimeMs>(static_cast<double>(ms) * factor); };
    EXPECT_DOUBLE_EQ(phase_at(run, path, factor, at(6'000)).acus, 0.0);
    EXPECT_NEAR(phase_at(run, path, factor, at(17'000)).acus, 10 * kAcusPerRunningSecond, 1e-9);
    EXPECT_NEAR(phase_at(run, path, factor, at(500'000)).acus, 40 * kAcusPerRunningSecond, 1e-9);
  }
}

TEST(Lifecycle, ReachedFinishedOnlyOnPathsThroughFinished) {
  const SessionRun run{.kind = RunKind::initial, .origin = kT0};
  EXPECT_FALSE(phase_at(run, {Ending::exit, {}}, 1.0, kT0 + 36'000).reached_finished);
  EXPECT_TRUE(phase_at(run, {Ending::exit, {}}, 1.0, kT0 + 37'000).reached_finished);
  EXPECT_TRUE(phase_at(run, {Ending::finished_then_inactivity, {}}, 1.0, kT0 + 90'000).reached_finished);
  EXPECT_FALSE(phase_at(run, {Ending::waiting_then_inactivity, {}}, 1.0, kT0 + 90'000).reached_finished);
}

TEST(Lifecycle, ResumeAndContinueRuns) {
  const Path path{Ending::finished_then_inactivity, {}};
  const SessionRun resume{.kind = RunKind::resume, .origin = kT0};
  EXPECT_EQ(phase_at(resume, path, 1.0, kT0).status, "resuming");
  EXPECT_EQ(phase_at(resume, path, 1.0, kT0 + 5'000).detail, "working");
  EXPECT_EQ(phase_at(resume, path, 1.0, kT0 + 46'000).detail, "inactivity");
  const SessionRun resumed_more{.kind = RunKind::continue_working, .origin = kT0};
  EXPECT_EQ(phase_at(resumed_more, path, 1.0, kT0).detail, "working");
  EXPECT_EQ(phase_at(resumed_more, path, 1.0, kT0 + 30'000).detail, "finished");
}

TEST(Lifecycle, PinnedRunNeverMoves) {
  const SessionRun run{.kind = RunKind::pinned, .origin = kT0, .pinned_status = "suspended",
                .pinned_detail = "user_request"};
  const auto phase = phase_at(run, {Ending::exit, {}}, 1.0, kT0 + 1'000'000);
  EXPECT_EQ(phase.status, "suspended");
  EXPECT_EQ(phase.detail, "user_request");
  EXPECT_EQ(phase.since, kT0);
}

TEST(Lifecycle, ActiveStatuses) {
  for (const auto* s : {"new", "creating", "claimed", "running", "resuming"}) EXPECT_TRUE(is_active_status(s));
  for (const auto* s : {"exit", "error", "suspended"}) EXPECT_FALSE(is_active_status(s));
}

}  // namespace
}  // namespace devin_orch::sim
