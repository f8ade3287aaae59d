// Which fields of a job's definition differ between two versions of it, named as job files and
// docs/queue.md name them: what a reload or `enqueue` reports when a key comes back changed,
// and what a job's history records when a corrected definition replaces an invalid one.
#pragma once

#include "devin_orch/core/job.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

// The names of the fields in which `offered` differs from `stored`, in the order a job file
// lists them (key, org_id, priority, prompt, ..., fan_out); empty when the two are equal.
std::vector<std::string_view> differing_fields(const JobDefinition& stored,
                                               const JobDefinition& offered);

// "prompt, tags": the names joined for a message.
std::string join_fields(const std::vector<std::string_view>& fields);

}  // namespace devin_orch::core
