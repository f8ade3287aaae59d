// What a job's history says when a corrected definition replaces the one of an `invalid` job
// (JobIntake::add_job): shared by the backends so that each words it alike.
#pragma once

#include "devin_orch/core/job.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {

// A definition as a backend stores it. The spec and controls are JSON text that need not decode:
// an invalid job's may not (a job file's invalid job is stored with the spec "{}").
struct StoredDefinition {
  std::optional<std::string> org_id;
  std::int64_t priority = 0;
  std::string spec;
  std::optional<std::int64_t> not_before_ms;
  std::optional<std::int64_t> deadline_ms;
  std::optional<std::int64_t> max_attempts;
  std::string controls;  // empty: every control at its default
};

// The fields in which `offered` differs from `stored`, named as in job files: the columns, then
// each top-level member of the spec and of the controls whose JSON value differs, in name order.
// A spec (or controls) text that is not a JSON object differs as a whole: "spec" ("controls").
std::vector<std::string> stored_differences(const StoredDefinition& stored,
                                            const core::JobDefinition& offered);

// "definition replaced by SOURCE: prompt, tags differ" (or "... : spec differs").
std::string mend_message(std::string_view source, const StoredDefinition& stored,
                         const core::JobDefinition& offered);

}  // namespace devin_orch::store
