// Maps a session's (status, status_detail) to the job's fate. Unknown values keep the job
// polling: the API has added statuses before, and stopping early would abandon a live session.
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

SessionVerdict terminal(JobState state, std::string reason, bool billing = false) {
  return SessionVerdict{.terminal = true, .state = state, .reason = std::move(reason),
                        .billing = billing};
}

}  // namespace

bool is_billing_detail(std::string_view detail) noexcept {
  for (std::string_view known : kBillingDetails) {
    if (known == detail) return true;
  }
  return false;
}

SessionVerdict judge_session(std::string_view status, std::optional<std::string_view> detail,
                             CompletionPolicy policy) {
  if (status == "exit") return terminal(JobState::finished, "exit");
  if (status == "error") {
    return terminal(JobState::failed, detail ? "error: " + std::string{*detail} : "error");
  }
  if (status == "suspended") {
    const std::string reason = "suspended: " + std::string{detail.value_or("null")};
    if (detail && is_billing_detail(*detail)) return terminal(JobState::suspended, reason, true);
    if (detail && *detail == "error") return terminal(JobState::failed, reason);
    // inactivity, user_request, null or a detail we do not know: the session stopped on its own
    // terms, which for a batch job means its work is over.
    return terminal(JobState::finished, reason);
  }
  if (status == "running" && detail && *detail == "finished" &&
      policy == CompletionPolicy::on_finished) {
    return terminal(JobState::finished, "running: finished");
  }
  return SessionVerdict{};
}

}  // namespace devin_orch::core
