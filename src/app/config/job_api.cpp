// Whether a job fits the API its organisation's sessions are created through.
#include "devin_orch/app/config/job_api.hpp"

#include <string_view>

namespace devin_orch::app {

core::ApiVersion api_version_of(const ApiConfig& api, const core::JobDefinition& definition) {
  return api_version_for(api, definition.org_id ? std::string_view{*definition.org_id}
                                                : std::string_view{api.org_id});
}

std::optional<core::FieldError> validate_for_api(const ApiConfig& api,
                                                 const core::JobDefinition& definition) {
  const core::ApiVersion version = api_version_of(api, definition);
  if (version == core::ApiVersion::v1 && definition.org_id &&
      api.organizations.contains(*definition.org_id)) {
    // core refuses org_id on v1 because the global v1 key acts on api.org_id only; this
    // organisation's entry gives it its own key, so naming it is what routes the job there.
    if (auto problem = core::validate(definition, core::ApiVersion::v3)) return problem;
    core::JobDefinition without_org = definition;
    without_org.org_id.reset();
    return core::validate(without_org, core::ApiVersion::v1);
  }
  return core::validate(definition, version);
}

std::function<std::optional<core::FieldError>(const core::JobDefinition&)> job_api_check(
    const ApiConfig& api) {
  return [api](const core::JobDefinition& definition) { return validate_for_api(api, definition); };
}

}  // namespace devin_orch::app
