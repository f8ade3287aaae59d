// The stall rule (stall_rule.hpp): progress is a newer updated_at or a changed message count.
#include "devin_orch/core/stall_rule.hpp"

#include <algorithm>

namespace devin_orch::core {

std::string_view to_string(StallAction action) noexcept {
  switch (action) {
    case StallAction::report: return "report";
    case StallAction::message: return "message";
    case StallAction::terminate: return "terminate";
  }
  return "report";
}

std::optional<StallAction> parse_stall_action(std::string_view text) noexcept {
  for (const auto action : {StallAction::report, StallAction::message, StallAction::terminate}) {
    if (to_string(action) == text) return action;
  }
  return std::nullopt;
}

bool stall_applies(std::string_view status, const std::optional<std::string>& detail) noexcept {
  if (status != "running") return false;
  return !detail || (*detail != "waiting_for_user" && *detail != "waiting_for_approval" &&
                     *detail != "finished");
}

StallPolicy stall_policy_for(const StallPolicy& configured, const StallOverride& job) {
  StallPolicy policy = configured;
  if (job.after) policy.stall_after = *job.after;
  if (job.action) policy.action = *job.action;
  return policy;
}

bool StallWatch::wants_message_count(TimePoint updated_at, TimePoint now) const noexcept {
  if (!policy_.stall_after) return false;
  const TimePoint since = since_ ? std::max(*since_, updated_at) : updated_at;
  const Duration quiet = now - since;
  const Duration half = *policy_.stall_after / 2;
  if (quiet < half) return false;
  if (!counted_at_ || *counted_at_ < since) return true;  // the spell's baseline
  if (quiet < *policy_.stall_after) return false;
  // Due to be called a stall: only on a count read since it became due, however late the
  // baseline came.
  if (!reported_) return *counted_at_ < since + *policy_.stall_after;
  return now - *counted_at_ >= half;
}

StallWatch::Step StallWatch::observe(const ProgressMark& mark, TimePoint now) {
  bool moved = !since_ || mark.updated_at > *since_;
  TimePoint since = since_ ? std::max(*since_, mark.updated_at) : mark.updated_at;
  if (mark.message_count) {
    counted_at_ = now;
    if (messages_ && *mark.message_count != *messages_) {
      moved = true;
      since = std::max(since, now);
    }
    messages_ = mark.message_count;
  }
  since_ = since;
  if (moved) reported_ = false;
  if (!policy_.stall_after || now - since < *policy_.stall_after) {
    reported_ = false;
    return Step::progressing;
  }
  if (reported_) return Step::still_stalled;
  reported_ = true;
  return Step::stalled;
}

}  // namespace devin_orch::core
