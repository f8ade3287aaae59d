// Resolves a job's session secrets (references to environment variables or files) into values
// for one create request. Values exist only in the request being built: never stored, logged
// or put in an error message.
#pragma once

#include "devin_orch/api/types.hpp"
#include "devin_orch/core/job.hpp"

#include <optional>
#include <string>
#include <vector>

namespace devin_orch::app {

// nullopt and `error` (naming the secret's key and source, never its value) on failure. Files
// readable by group or others are refused, like API key files.
std::optional<std::vector<api::SessionSecret>> resolve_session_secrets(
    const std::vector<core::SessionSecretRef>& refs, std::string* error);

}  // namespace devin_orch::app
