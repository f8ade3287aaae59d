// What a session's status means for its job: keep polling, or the job ends in which state.
#pragma once

#include "devin_orch/core/job.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::core {


struct SessionVerdict {
  bool terminal = false;
  JobState state = JobState::running;  // the job's state when terminal
  std::string reason;                  // e.g. "suspended: out_of_credits"
  bool billing = false;                // a billing/quota suspension: pause the org's creates
};

// Unknown statuses and details are never terminal.
SessionVerdict judge_session(std::string_view status, std::optional<std::string_view> detail,
                             CompletionPolicy policy);

bool is_billing_detail(std::string_view detail) noexcept;

}  // namespace devin_orch::core
