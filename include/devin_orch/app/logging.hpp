// Logging set-up: spdlog to stderr, human text or one JSON object per line, without
// timestamps under journald (it adds its own).
#pragma once

#include "devin_orch/app/config.hpp"

#include <optional>
#include <string>

namespace devin_orch::app {

// Returns an error message for an unknown level or format.
std::optional<std::string> setup_logging(const LogConfig& log);

}  // namespace devin_orch::app
