// Which state change makes which notification event, and the unique id every event carries.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/notify_target.hpp"
#include "devin_orch/core/random.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::core {

// The event a job reaching `state` announces; nullopt for a state that announces none
// (in-progress states, and `invalid`: such a job never ran).
std::optional<EventType> end_event(JobState state) noexcept;

// Whether a session with this status waits for its user (the API's running +
// waiting_for_user): what job.waiting_for_user announces and on_waiting_for_user acts on.
bool waits_for_user(std::string_view status, const std::optional<std::string>& detail) noexcept;

// "evt_" and 32 lowercase hex digits (128 random bits): unique across databases and processes,
// so receivers de-duplicate on it.
std::string new_event_id(Random& random);

}  // namespace devin_orch::core
