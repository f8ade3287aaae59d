// Delay schedules: full-jitter retry backoff and the jittered polling cadence.
#include "devin_orch/core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace devin_orch::core {
namespace {

// initial * multiplier^step, capped at max, computed in double so a huge step saturates at the
// cap instead of overflowing; any non-finite intermediate (inf, NaN) also lands on the cap.
double capped_exponential_ms(Duration initial, Duration max, double multiplier, int step) {
  const double cap = static_cast<double>(std::max<Duration::rep>(max.count(), 0));
  const double first = static_cast<double>(std::max<Duration::rep>(initial.count(), 0));
  const double grown = first * std::pow(multiplier, static_cast<double>(std::max(step, 0)));
  if (!(grown < cap)) return cap;  // written this way round so NaN also takes the cap
  return std::max(grown, 0.0);
}

}  // namespace

Duration full_jitter_delay(const BackoffPolicy& policy, int retry, Random& random) {
  const double ceiling =
      capped_exponential_ms(policy.initial, policy.max, policy.multiplier, retry);
  // floor(u * (ceiling + 1)) is uniform over the integers 0..ceiling inclusive.
  const double ms = std::floor(random.uniform() * (std::floor(ceiling) + 1.0));
  return Duration{static_cast<Duration::rep>(std::min(ms, std::floor(ceiling)))};
}

Duration cadence_delay(const CadencePolicy& policy, int step, Random& random) {
  const double base = capped_exponential_ms(policy.initial, policy.max, policy.multiplier, step);
  const double jitter = std::isfinite(policy.jitter) ? std::clamp(policy.jitter, 0.0, 1.0) : 0.0;
  const double factor = 1.0 - jitter + 2.0 * jitter * random.uniform();
  return Duration{static_cast<Duration::rep>(std::max(std::llround(base * factor), 0LL))};
}

}  // namespace devin_orch::core
