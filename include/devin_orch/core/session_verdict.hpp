// What a session's status means for its job: keep polling, or the job ends in which state, and
// whose creates a suspension pauses.
#pragma once

#include "devin_orch/core/job.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::core {

// Whose future sessions a suspension says cannot run either.
enum class PauseScope {
  none,          // nothing beyond this job
  organization,  // a billing/quota stop of the org: pause every create for it
  user,          // user_usage_limit_exceeded: pause only jobs created as the same
                 // create_as_user_id (the session's user); other jobs go on
};

std::string_view to_string(PauseScope scope) noexcept;

struct SessionVerdict {
  bool terminal = false;
  JobState state = JobState::running;  // the job's state when terminal
  std::string reason;                  // e.g. "suspended: out_of_credits"
  bool billing = false;                // pause == organization (kept for existing callers)
  PauseScope pause = PauseScope::none;
  // A suspended session whose status_detail is set and unknown to us. The job ends
  // `suspended` (never `finished`: an unknown stop must not read as success) with the detail in
  // `reason`; the caller warns and counts it, since it may be a new billing or quota stop.
  bool unknown_detail = false;
};

// Unknown statuses are never terminal. A suspended session is always terminal; see
// judge_suspended_detail for which details mean what.
SessionVerdict judge_session(std::string_view status, std::optional<std::string_view> detail,
                             CompletionPolicy policy);

// Organisation-level billing/quota details (not user_usage_limit_exceeded).
bool is_billing_detail(std::string_view detail) noexcept;

// The details of `suspended` that the reference lists (§3, §12), billing or not.
bool is_known_suspended_detail(std::string_view detail) noexcept;

}  // namespace devin_orch::core
