// When to look at the queue again after a file-change notice (see the header for why).
#include "devin_orch/core/recheck_schedule.hpp"

namespace devin_orch::core {

void RecheckSchedule::on_notice(TimePoint now) noexcept {
  notice_ = now;
  step_ = 0;
}

std::optional<TimePoint> RecheckSchedule::next() const noexcept {
  if (!notice_ || step_ >= kOffsets.size()) return std::nullopt;
  return *notice_ + kOffsets[step_];
}

void RecheckSchedule::looked(TimePoint now) noexcept {
  while (notice_ && step_ < kOffsets.size() && *notice_ + kOffsets[step_] <= now) ++step_;
  if (step_ >= kOffsets.size()) notice_.reset();
}

}  // namespace devin_orch::core
