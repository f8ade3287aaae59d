// The mapping from job end states to events, and event ids.
#include "devin_orch/core/notify_event.hpp"

#include <cstdio>

namespace devin_orch::core {

std::optional<EventType> end_event(JobState state) noexcept {
  switch (state) {
    case JobState::finished: return EventType::job_finished;
    case JobState::failed: return EventType::job_failed;
    case JobState::suspended: return EventType::job_suspended;
    case JobState::dead: return EventType::job_dead;
    case JobState::lost: return EventType::job_lost;
    case JobState::timed_out: return EventType::job_timed_out;
    case JobState::cancelled: return EventType::job_cancelled;
    case JobState::stalled: return EventType::job_stalled;
    case JobState::queued:
    case JobState::creating:
    case JobState::running:
    case JobState::invalid: return std::nullopt;
  }
  return std::nullopt;
}

bool waits_for_user(std::string_view status, const std::optional<std::string>& detail) noexcept {
  return status == "running" && detail && *detail == "waiting_for_user";
}

std::string new_event_id(Random& random) {
  char text[4 + 32 + 1];
  std::snprintf(text, sizeof text, "evt_%016llx%016llx",
                static_cast<unsigned long long>(random.next()),
                static_cast<unsigned long long>(random.next()));
  return text;
}

}  // namespace devin_orch::core
