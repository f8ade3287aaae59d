// Whether a job fits the API its organisation's sessions are created through (api.version,
// api.organizations): the one check of job files, enqueue, the dashboard and the creator.
#pragma once

#include "devin_orch/app/config/config.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <functional>
#include <optional>

namespace devin_orch::app {

// The API of the job's organisation (its org_id, else api.org_id).
core::ApiVersion api_version_of(const ApiConfig& api, const core::JobDefinition& definition);

// core::validate against that API. A job naming an organisation listed on v1 in
// api.organizations may name it (that organisation has its own v1 key); any other org_id under
// v1 is refused, as with the global api.version v1.
std::optional<core::FieldError> validate_for_api(const ApiConfig& api,
                                                 const core::JobDefinition& definition);

// validate_for_api bound to a copy of `api`, for the job file readers.
std::function<std::optional<core::FieldError>(const core::JobDefinition&)> job_api_check(
    const ApiConfig& api);

}  // namespace devin_orch::app
