// Wall-clock instants as people write them in job files: RFC 3339, e.g.
// "2026-11-24T09:30:00Z" or "2026-11-24T10:30:00+01:00" (a zone is required: a job file must
// mean the same instant on every machine).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app {

std::optional<std::int64_t> parse_timestamp_ms(std::string_view text);  // epoch milliseconds
std::string format_timestamp_ms(std::int64_t epoch_ms);                   // "...T...Z", UTC

}  // namespace devin_orch::app
