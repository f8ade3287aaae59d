// Durations as people write them in config: "250ms", "10s", "5m", "1h", "1m30s". A bare
// number is rejected (ambiguous unit).
#pragma once

#include "devin_orch/core/time.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app {

std::optional<core::Duration> parse_duration(std::string_view text);
std::string format_duration(core::Duration duration);  // shortest exact form, e.g. "1m30s"

// parse_duration plus whole days in front ("7d", "1d12h", at most 36,600 days): ages and
// retention are counted in days (`ls --older-than`, `prune`, retention.ended_after).
std::optional<core::Duration> parse_age(std::string_view text);

}  // namespace devin_orch::app
