// When to look at the queue again after a file-change notice. A writer's commit becomes visible
// to readers only after its fsync, some time after the write that raised the notice, so one
// look at the moment of the notice can miss it; a few looks spaced out after it do not.
#pragma once

#include "devin_orch/core/time.hpp"

#include <array>
#include <cstddef>
#include <optional>

namespace devin_orch::core {

class RecheckSchedule {
 public:
  // Offsets from the latest notice; the last one bounds how slow a writer's fsync may be
  // before the daemon's once-a-second look has to catch the commit instead.
  static constexpr std::array<Duration, 5> kOffsets{Duration{0}, Duration{2}, Duration{10},
                                                     Duration{50}, Duration{250}};

  // A change notice arrived: the schedule starts over from `now`.
  void on_notice(TimePoint now) noexcept;

  // When the next look is due, or nothing once the schedule has run out.
  std::optional<TimePoint> next() const noexcept;

  // A look happened at `now`: every offset due by then is used up.
  void looked(TimePoint now) noexcept;

 private:
  std::optional<TimePoint> notice_;
  std::size_t step_ = 0;
};

}  // namespace devin_orch::core
