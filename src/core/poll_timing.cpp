// When due status polls may ask the gate (see poll_timing.hpp for the rule).
#include "devin_orch/core/poll_timing.hpp"

namespace devin_orch::core {

PollTiming next_poll(const PollTimingInput& input) {
  if (!input.next_due) return {PollTimingStep::idle, {}};
  const TimePoint now = input.now;
  if (*input.next_due > now) return {PollTimingStep::wait_until, *input.next_due};
  if (const TimePoint late = *input.next_due + input.max_delay;
      input.creates_waiting > 0 && !input.creates_held && late > now) {
    return {PollTimingStep::wait_until, late};
  }
  if (input.others_ready_at > now) return {PollTimingStep::wait_until, input.others_ready_at};
  return {PollTimingStep::poll_now, now};
}

}  // namespace devin_orch::core
