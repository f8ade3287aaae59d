// Every JobState in declaration order (queued, creating, running, then the ended states): for
// messages that name the valid states and for listings ordered by state. Defined in job.cpp,
// beside the names.
#pragma once

#include "devin_orch/core/job.hpp"

#include <span>

namespace devin_orch::core {

std::span<const JobState> all_job_states() noexcept;

}  // namespace devin_orch::core
