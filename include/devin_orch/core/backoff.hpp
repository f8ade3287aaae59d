// Delay schedules: capped exponential backoff with full jitter (for retries) and a jittered
// exponential cadence (for status polling). Pure functions of the attempt and a random source.
#pragma once

#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

namespace devin_orch::core {

struct BackoffPolicy {
  Duration initial{500};        // ceiling of the first retry's delay
  Duration max{30'000};         // no delay is ever longer than this
  double multiplier = 2.0;      // ceiling grows by this factor per retry
};

// Full jitter (AWS architecture blog): uniform in [0, min(max, initial * multiplier^retry)].
// `retry` counts from 0. Never negative, never above `max`.
Duration full_jitter_delay(const BackoffPolicy& policy, int retry, Random& random);

struct CadencePolicy {
  Duration initial{10'000};     // delay before the first poll
  Duration max{60'000};         // cap of the un-jittered delay
  double multiplier = 1.5;      // growth per unchanged observation
  double jitter = 0.2;          // +/- fraction applied to the delay (0..1)
};

// min(max, initial * multiplier^step) scaled by a uniform factor in [1 - jitter, 1 + jitter].
Duration cadence_delay(const CadencePolicy& policy, int step, Random& random);

}  // namespace devin_orch::core
