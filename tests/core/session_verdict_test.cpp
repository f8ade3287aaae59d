// Tests for judging a session's status: which ones end the job, in which state, and why.
#include "devin_orch/core/session_verdict.hpp"

#include <gtest/gtest.h>

#include <ostream>

namespace devin_orch::core {
namespace {

struct VerdictCase {
  std::string_view status;
  std::optional<std::string_view> detail;
  CompletionPolicy policy;
  bool terminal;
  JobState state;
  std::string_view reason;
  bool billing;
  PauseScope pause = billing ? PauseScope::organization : PauseScope::none;
  bool unknown_detail = false;

  friend std::ostream& operator<<(std::ostream& out, const VerdictCase& c) {
    return out << c.status << "/" << c.detail.value_or("null");
  }
};

class JudgeSession : public testing::TestWithParam<VerdictCase> {};

TEST_P(JudgeSession, MapsStatusToTheJobsFate) {
  const VerdictCase& c = GetParam();
  const SessionVerdict v = judge_session(c.status, c.detail, c.policy);
  EXPECT_EQ(v.terminal, c.terminal);
  EXPECT_EQ(v.billing, c.billing);
  EXPECT_EQ(v.pause, c.pause) << to_string(v.pause);
  EXPECT_EQ(v.unknown_detail, c.unknown_detail);
  if (c.terminal) {
    EXPECT_EQ(v.state, c.state);
    EXPECT_EQ(v.reason, c.reason);
  }
}

constexpr auto kStop = CompletionPolicy::on_stop;
constexpr auto kFinished = CompletionPolicy::on_finished;
constexpr auto kNone = std::nullopt;

INSTANTIATE_TEST_SUITE_P(
    Table, JudgeSession,
    testing::Values(
        VerdictCase{"exit", kNone, kStop, true, JobState::finished, "exit", false},
        VerdictCase{"exit", "finished", kFinished, true, JobState::finished, "exit", false},
        VerdictCase{"error", kNone, kStop, true, JobState::failed, "error", false},
        VerdictCase{"error", "boom", kStop, true, JobState::failed, "error: boom", false},
        VerdictCase{"suspended", "out_of_credits", kStop, true, JobState::suspended,
                    "suspended: out_of_credits", true},
        VerdictCase{"suspended", "out_of_quota", kStop, true, JobState::suspended,
                    "suspended: out_of_quota", true},
        VerdictCase{"suspended", "no_quota_allocation", kStop, true, JobState::suspended,
                    "suspended: no_quota_allocation", true},
        VerdictCase{"suspended", "payment_declined", kStop, true, JobState::suspended,
                    "suspended: payment_declined", true},
        VerdictCase{"suspended", "usage_limit_exceeded", kStop, true, JobState::suspended,
                    "suspended: usage_limit_exceeded", true},
        VerdictCase{"suspended", "org_usage_limit_exceeded", kFinished, true,
                    JobState::suspended, "suspended: org_usage_limit_exceeded", true},
        VerdictCase{"suspended", "total_session_limit_exceeded", kStop, true,
                    JobState::suspended, "suspended: total_session_limit_exceeded", true},
        VerdictCase{"suspended", "error", kStop, true, JobState::failed, "suspended: error",
                    false},
        VerdictCase{"suspended", "inactivity", kStop, true, JobState::finished,
                    "suspended: inactivity", false},
        VerdictCase{"suspended", "user_request", kStop, true, JobState::finished,
                    "suspended: user_request", false},
        VerdictCase{"suspended", kNone, kStop, true, JobState::finished, "suspended: null",
                    false},
        // The user ran out, not the org: only that user's jobs pause.
        VerdictCase{"suspended", "user_usage_limit_exceeded", kStop, true, JobState::suspended,
                    "suspended: user_usage_limit_exceeded", false, PauseScope::user},
        VerdictCase{"suspended", "user_usage_limit_exceeded", kFinished, true,
                    JobState::suspended, "suspended: user_usage_limit_exceeded", false,
                    PauseScope::user},
        // A detail nobody told us about: stopped, not a success, flagged to warn and count.
        VerdictCase{"suspended", "a_new_reason", kStop, true, JobState::suspended,
                    "suspended: a_new_reason", false, PauseScope::none, true},
        VerdictCase{"suspended", "Out_Of_Credits", kFinished, true, JobState::suspended,
                    "suspended: Out_Of_Credits", false, PauseScope::none, true},
        VerdictCase{"suspended", "", kStop, true, JobState::suspended, "suspended: ", false,
                    PauseScope::none, true},
        VerdictCase{"running", "finished", kFinished, true, JobState::finished,
                    "running: finished", false},
        VerdictCase{"running", "finished", kStop, false, JobState::running, "", false},
        VerdictCase{"running", "working", kFinished, false, JobState::running, "", false},
        VerdictCase{"running", "waiting_for_user", kFinished, false, JobState::running, "",
                    false},
        VerdictCase{"running", kNone, kFinished, false, JobState::running, "", false},
        VerdictCase{"new", kNone, kStop, false, JobState::running, "", false},
        VerdictCase{"claimed", kNone, kStop, false, JobState::running, "", false},
        VerdictCase{"resuming", kNone, kStop, false, JobState::running, "", false},
        VerdictCase{"creating", kNone, kStop, false, JobState::running, "", false},
        VerdictCase{"paused_for_maintenance", "out_of_credits", kFinished, false,
                    JobState::running, "", false},
        VerdictCase{"", kNone, kStop, false, JobState::running, "", false},
        VerdictCase{"EXIT", kNone, kStop, false, JobState::running, "", false}));

TEST(IsKnownSuspendedDetail, EveryDetailTheReferenceListsAndNothingElse) {
  for (const auto* detail : {"inactivity", "user_request", "usage_limit_exceeded", "out_of_credits",
                             "out_of_quota", "no_quota_allocation", "payment_declined",
                             "org_usage_limit_exceeded", "total_session_limit_exceeded", "error",
                             "user_usage_limit_exceeded"}) {
    EXPECT_TRUE(is_known_suspended_detail(detail)) << detail;
    // A known detail is never flagged as unknown.
    EXPECT_FALSE(judge_session("suspended", detail, kStop).unknown_detail) << detail;
  }
  EXPECT_FALSE(is_known_suspended_detail("a_new_reason"));
  EXPECT_FALSE(is_known_suspended_detail(""));
}

TEST(IsBillingDetail, KnowsExactlyTheBillingReasons) {
  EXPECT_TRUE(is_billing_detail("out_of_credits"));
  EXPECT_TRUE(is_billing_detail("total_session_limit_exceeded"));
  EXPECT_FALSE(is_billing_detail("inactivity"));
  EXPECT_FALSE(is_billing_detail("error"));
  EXPECT_FALSE(is_billing_detail(""));
  EXPECT_FALSE(is_billing_detail("out_of_credits "));
  EXPECT_FALSE(is_billing_detail("user_usage_limit_exceeded"));  // a user's, not the org's
}

}  // namespace
}  // namespace devin_orch::core
