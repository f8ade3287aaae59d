// Time as the pure core sees it: millisecond wall-clock instants passed in by the caller, never
// read from a global clock, so every state machine can be driven step by step in tests.
#pragma once

#include <chrono>
#include <cstdint>

namespace devin_orch::core {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::time_point<std::chrono::system_clock, Duration>;

inline TimePoint wall_now() noexcept {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

inline std::int64_t to_epoch_ms(TimePoint t) noexcept { return t.time_since_epoch().count(); }
inline TimePoint from_epoch_ms(std::int64_t ms) noexcept { return TimePoint{Duration{ms}}; }
inline std::int64_t to_epoch_seconds(TimePoint t) noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace devin_orch::core
