// Moves job definitions from YAML files into the store, reporting every problem with its
// location. Loading the same file again adds nothing; a changed definition is reported with the
// fields that differ, never applied (a job's key is its identity forever), except that a
// corrected definition mends a job that is `invalid` (JobIntake::add_job).
#pragma once

#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/store/job_intake.hpp"

#include <string>
#include <vector>

namespace devin_orch::app {

struct LoadReport {
  int inserted = 0;
  int unchanged = 0;
  int changed = 0;       // existing key, different definition: kept as stored
  int mended = 0;        // an `invalid` job's definition replaced: queued again
  int invalid = 0;       // jobs skipped (recorded as `invalid` when they had a key)
  int fatal_errors = 0;  // files that could not be read or parsed at all
};

// `api_check`: jobs that do not fit the API of their organisation are reported invalid; without
// one, every job is checked against v3 (core::validate).
LoadReport load_job_files_into(store::JobIntake& store, const std::vector<std::string>& files,
                               core::TimePoint now, const JobApiCheck& api_check = {},
                               std::int64_t max_attachment_bytes =
                                   core::job_limits::default_max_attachment_bytes);

}  // namespace devin_orch::app
