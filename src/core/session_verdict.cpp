// Maps a session's (status, status_detail) to the job's fate. Unknown statuses keep the job
// polling: the API has added statuses before, and stopping early would abandon a live session.
// An unknown detail of `suspended` ends the job as `suspended`: the session has stopped, and a
// stop we cannot explain must not be counted as work done.
#include "devin_orch/core/session_verdict.hpp"

#include <array>
#include <string>

namespace devin_orch::core {
namespace {

constexpr std::array<std::string_view, 7> kBillingDetails{
    "out_of_credits",        "out_of_quota",          "no_quota_allocation",
    "payment_declined",      "usage_limit_exceeded",  "org_usage_limit_exceeded",
    "total_session_limit_exceeded",
};

constexpr std::string_view kUserLimitDetail = "user_usage_limit_exceeded";

// Suspended details that end the work normally (inactivity: the agent went to sleep after its
// turn; user_request: someone put it to sleep, e.g. an archive) or in failure (error).
constexpr std::array<std::string_view, 3> kOrdinaryDetails{"inactivity", "user_request", "error"};

SessionVerdict terminal(JobState state, std::string reason,
                        PauseScope pause = PauseScope::none) {
  return SessionVerdict{.terminal = true,
                        .state = state,
                        .reason = std::move(reason),
                        .billing = pause == PauseScope::organization,
                        .pause = pause};
}

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& known, std::string_view detail) noexcept {
  for (std::string_view k : known) {
    if (k == detail) return true;
  }
  return false;
}

}  // namespace

std::string_view to_string(PauseScope scope) noexcept {
  switch (scope) {
    case PauseScope::none: return "none";
    case PauseScope::organization: return "organization";
    case PauseScope::user: return "user";
  }
  return "none";
}

bool is_billing_detail(std::string_view detail) noexcept { return one_of(kBillingDetails, detail); }

bool is_known_suspended_detail(std::string_view detail) noexcept {
  return is_billing_detail(detail) || detail == kUserLimitDetail ||
         one_of(kOrdinaryDetails, detail);
}

SessionVerdict judge_session(std::string_view status, std::optional<std::string_view> detail,
                             CompletionPolicy policy) {
  if (status == "exit") return terminal(JobState::finished, "exit");
  if (status == "error") {
    return terminal(JobState::failed, detail ? "error: " + std::string{*detail} : "error");
  }
  if (status == "suspended") {
    const std::string reason = "suspended: " + std::string{detail.value_or("null")};
    // Null: get/list fill the detail in, so a null one is a reader's gap (or a create-time
    // rendering), not a stop of a new kind; the session went to sleep as after its turn.
    if (!detail || *detail == "inactivity" || *detail == "user_request") {
      return terminal(JobState::finished, reason);
    }
    if (*detail == "error") return terminal(JobState::failed, reason);
    if (is_billing_detail(*detail)) {
      return terminal(JobState::suspended, reason, PauseScope::organization);
    }
    if (*detail == kUserLimitDetail) return terminal(JobState::suspended, reason, PauseScope::user);
    auto unknown = terminal(JobState::suspended, reason);
    unknown.unknown_detail = true;
    return unknown;
  }
  if (status == "running" && detail && *detail == "finished" &&
      policy == CompletionPolicy::on_finished) {
    return terminal(JobState::finished, "running: finished");
  }
  return SessionVerdict{};
}

}  // namespace devin_orch::core
