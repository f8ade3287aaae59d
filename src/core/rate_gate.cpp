// One organisation's request budget: token bucket, 429 pauses, AIMD refill rate, create holds.
#include "devin_orch/core/rate_gate.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace devin_orch::core {
namespace {

// Refill arithmetic in double can land a hair under 1 at the very instant ready_at() promised;
// without this slack a caller that waits exactly until ready_at() could be refused.
constexpr double kTokenSlack = 1e-9;

void validate(const RateGatePolicy& p) {
  const auto fraction = [](double v) { return v > 0.0 && v <= 1.0; };
  if (!(p.requests_per_minute > 0.0) || !std::isfinite(p.requests_per_minute)) {
    throw std::invalid_argument("rate gate: requests_per_minute must be positive");
  }
  if (!(p.burst >= 1.0) || !std::isfinite(p.burst)) {
    throw std::invalid_argument("rate gate: burst must be at least 1");
  }
  if (!fraction(p.decrease_factor) || !fraction(p.min_rate_fraction) ||
      !(p.recovery_fraction >= 0.0 && p.recovery_fraction <= 1.0)) {
    throw std::invalid_argument(
        "rate gate: decrease_factor and min_rate_fraction must be in (0, 1], "
        "recovery_fraction in [0, 1]");
  }
}

}  // namespace

RateGate::RateGate(RateGatePolicy policy, TimePoint now)
    : policy_{policy},
      rate_per_minute_{policy.requests_per_minute},
      tokens_{policy.burst},
      last_refill_{now} {
  validate(policy_);
}

void RateGate::refill(TimePoint now) const {
  // A clock that steps backwards grants nothing and does not rewind the refill mark, so the
  // same interval is never credited twice.
  if (now <= last_refill_) return;
  const double elapsed_ms = static_cast<double>((now - last_refill_).count());
  tokens_ = std::min(policy_.burst, tokens_ + elapsed_ms * rate_per_minute_ / 60'000.0);
  last_refill_ = now;
}

TimePoint RateGate::ready_at(RequestKind kind, TimePoint now) const {
  refill(now);
  TimePoint ready = std::max(now, paused_until_);
  if (kind == RequestKind::create && hold_until_) ready = std::max(ready, *hold_until_);
  const double missing = 1.0 - kTokenSlack - tokens_;
  if (missing > 0.0) {
    const TimePoint from = std::max(now, last_refill_);
    const double wait_ms = std::ceil(missing * 60'000.0 / rate_per_minute_);
    ready = std::max(ready, from + Duration{static_cast<Duration::rep>(wait_ms)});
  }
  return ready;
}

bool RateGate::try_acquire(RequestKind kind, TimePoint now) {
  if (paused(now) || (kind == RequestKind::create && creates_held(now))) return false;
  refill(now);
  if (tokens_ < 1.0 - kTokenSlack) return false;
  tokens_ = std::max(0.0, tokens_ - 1.0);
  return true;
}

void RateGate::on_success(TimePoint /*now*/) {
  consecutive_429_ = 0;
  rate_per_minute_ = std::min(policy_.requests_per_minute,
                              rate_per_minute_ + policy_.recovery_fraction *
                                                     policy_.requests_per_minute);
}

void RateGate::on_rate_limited(TimePoint now, std::optional<Duration> retry_after,
                               bool concurrency_cap, Random& random) {
  ++consecutive_429_;
  const Duration pause =
      retry_after ? std::clamp(*retry_after, Duration{0}, policy_.max_pause)
                  : full_jitter_delay(policy_.pause_backoff, consecutive_429_ - 1, random);
  paused_until_ = std::max(paused_until_, now + pause);
  rate_per_minute_ = std::max(policy_.min_rate_fraction * policy_.requests_per_minute,
                              rate_per_minute_ * policy_.decrease_factor);
  // The server just told us the budget is spent: whatever the bucket held was an illusion, and
  // the bucket fills again only as the pause ends, so one request (not a burst) goes first.
  refill(now);
  tokens_ = 0.0;
  const double one_token_ms = std::ceil(60'000.0 / rate_per_minute_);
  last_refill_ = std::max(now, paused_until_ - Duration{static_cast<Duration::rep>(one_token_ms)});
  if (concurrency_cap) {
    const TimePoint hold = now + policy_.concurrency_hold;
    hold_until_ = hold_until_ ? std::max(*hold_until_, hold) : hold;
  }
}

void RateGate::release_hold() noexcept { hold_until_.reset(); }

}  // namespace devin_orch::core
