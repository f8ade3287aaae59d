// When an organisation's due status polls may ask the gate, sans I/O: polls give way to creates
// waiting for tokens, but never for longer than a session's cadence allows.
#pragma once

#include "devin_orch/core/time.hpp"

#include <optional>

namespace devin_orch::core {

struct PollTimingInput {
  std::optional<TimePoint> next_due;  // the earliest due session, if any is tracked
  TimePoint now{};
  std::size_t creates_waiting = 0;    // creates queued at the gate (for a token or a slot)
  bool creates_held = false;          // a concurrency-cap 429 holds creates
  TimePoint others_ready_at{};        // when the gate lets a non-create request go
  Duration max_delay{};               // the longest a session's cadence ever asks it to wait
};

enum class PollTimingStep {
  idle,        // nothing tracked: wait to be woken
  wait_until,  // wait until `until` (or an earlier wake-up), then ask again
  poll_now,    // take the due sessions and send their batch
};

struct PollTiming {
  PollTimingStep step = PollTimingStep::idle;
  TimePoint until{};
};

// Creates waiting for tokens go first: every token a poll takes delays every queued job. A poll
// waits until its oldest session is late by max_delay, gathering more due sessions into one
// request meanwhile. Not while creates are held by a concurrency cap: only polls can see a
// session end and free the cap. With the budget short, due sessions are taken only once a
// request could go, so everything that came due meanwhile joins one batch.
PollTiming next_poll(const PollTimingInput& input);

}  // namespace devin_orch::core
