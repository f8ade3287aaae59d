// One organisation's request budget: token bucket, 429 pauses, a refill rate that discovers the
// server's unpublished limit, create holds.
#include "devin_orch/core/rate_gate.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace devin_orch::core {
namespace {

// Refill arithmetic in double can land a hair under 1 at the very instant ready_at() promised;
// without this slack a caller that waits exactly until ready_at() could be refused.
constexpr double kTokenSlack = 1e-9;

// The probing step above the level stops doubling here, so one success never adds more than a
// few per cent of the level however long the probe has gone unanswered.
constexpr int kMaxProbeDoublings = 8;

// Back-to-back 429s square the decrease factor at most this many times (0.94^16 = 0.37): a
// deeper cut would land far below a limit it has just bracketed.
constexpr int kMaxStormSquarings = 4;

void validate(const RateGatePolicy& p) {
  const auto fraction = [](double v) { return v > 0.0 && v <= 1.0; };
  const auto share = [](double v) { return v >= 0.0 && v <= 1.0; };
  if (!(p.requests_per_minute > 0.0) || !std::isfinite(p.requests_per_minute)) {
    throw std::invalid_argument("rate gate: requests_per_minute must be positive");
  }
  if (!(p.burst >= 1.0) || !std::isfinite(p.burst)) {
    throw std::invalid_argument("rate gate: burst must be at least 1");
  }
  if (!fraction(p.decrease_factor) || !fraction(p.min_rate_fraction) ||
      !share(p.recovery_fraction) || !share(p.gap_recovery)) {
    throw std::invalid_argument(
        "rate gate: decrease_factor and min_rate_fraction must be in (0, 1], "
        "recovery_fraction and gap_recovery in [0, 1]");
  }
  if (p.batch_linger < Duration{0}) {
    throw std::invalid_argument("rate gate: batch_linger must not be negative");
  }
  if (!(p.max_recovery_step >= 0.0) || p.probe_doubling < 1) {
    throw std::invalid_argument(
        "rate gate: max_recovery_step must be non-negative and probe_doubling at least 1");
  }
}

}  // namespace

RateGate::RateGate(RateGatePolicy policy, TimePoint now)
    : policy_{policy},
      rate_per_minute_{policy.requests_per_minute},
      level_per_minute_{policy.requests_per_minute},
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

double RateGate::tokens(TimePoint now) const {
  refill(now);
  return tokens_;
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

TimePoint RateGate::batch_ready_at(RequestKind kind, std::size_t waiting, TimePoint now) const {
  const TimePoint first = ready_at(kind, now);  // refills to `now`
  // At the end of a pause or a hold one request goes first, alone (see on_rate_limited).
  if (paused(now) || (kind == RequestKind::create && creates_held(now))) return first;
  const double wanted = std::min(static_cast<double>(waiting), std::floor(policy_.burst));
  if (wanted < 2.0 || policy_.batch_linger <= Duration{0}) return first;
  // Tokens accrue linearly from `from`: take as many whole ones as the linger allows (at most
  // `wanted`), and wake when the last of them is there. Fewer than two: no point waiting.
  const TimePoint from = std::max(now, last_refill_);
  const double per_ms = rate_per_minute_ / 60'000.0;
  const double by_linger =
      tokens_ + static_cast<double>((first + policy_.batch_linger - from).count()) * per_ms;
  const double group = std::min(wanted, std::floor(by_linger + kTokenSlack));
  if (group < 2.0) return first;
  const double wait_ms = std::ceil((group - kTokenSlack - tokens_) / per_ms);
  const TimePoint enough = from + Duration{static_cast<Duration::rep>(wait_ms)};
  return std::clamp(enough, first, first + policy_.batch_linger);
}

bool RateGate::try_acquire(RequestKind kind, TimePoint now) {
  if (kind == RequestKind::create && creates_held(now)) return false;
  refill(now);
  if (paused(now) || tokens_ < 1.0 - kTokenSlack) return false;
  tokens_ = std::max(0.0, tokens_ - 1.0);
  passed_since_429_ = true;
  return true;
}

void RateGate::on_success(TimePoint /*now*/) {
  consecutive_429_ = 0;

  const double level = level_per_minute_;
  double step = std::min(policy_.recovery_fraction * level, policy_.max_recovery_step);
  if (rate_per_minute_ < level) {
    // Far below the level (a storm cut deeper than needed): close the gap quickly up to where an
    // ordinary 429 would have left the rate; from there only the slow linear climb probes.
    const double gap = policy_.decrease_factor * level - rate_per_minute_;
    if (gap > 0.0) step = std::max(step, policy_.gap_recovery * gap);
  } else {
    // Past the level without a 429: the server's limit is higher than we thought (or rose),
    // so the probe speeds up the longer it goes unanswered.
    const auto doublings = std::min<std::int64_t>(
        successes_above_level_ / policy_.probe_doubling, kMaxProbeDoublings);
    step *= static_cast<double>(std::int64_t{1} << doublings);
    ++successes_above_level_;
  }
  rate_per_minute_ = std::min(policy_.requests_per_minute, rate_per_minute_ + step);
}

void RateGate::on_rate_limited(TimePoint now, std::optional<Duration> retry_after,
                               bool concurrency_cap, Random& random) {
  const std::optional<Duration> told =
      retry_after ? std::optional{std::clamp(*retry_after, Duration{0}, policy_.max_pause)}
                  : std::nullopt;
  if (concurrency_cap) {
    // The org's cap on concurrent sessions, not its request budget: hold creates only. Polls
    // go on, because they are how we learn that one of our sessions ended and freed a slot.
    const TimePoint hold = now + std::max(policy_.concurrency_hold, told.value_or(Duration{0}));
    hold_until_ = hold_until_ ? std::max(*hold_until_, hold) : hold;
    return;
  }
  // Nothing passes during a pause and nothing passed since the last 429: this one answers a
  // request sent before that 429 was known, so it is the same event seen again.
  const bool echo = paused(now) || !passed_since_429_;
  if (echo) {
    if (told) paused_until_ = std::max(paused_until_, now + *told);
  } else {
    ++consecutive_429_;
    passed_since_429_ = false;
    const Duration pause =
        told ? *told : full_jitter_delay(policy_.pause_backoff, consecutive_429_ - 1, random);
    paused_until_ = std::max(paused_until_, now + pause);
    if (!concurrency_cap) {
      // A 429 before the rate has climbed back even one ordinary step since the last cut: that
      // cut did not get below the limit, so each such 429 squares the factor. A rate far above
      // the limit (start-up, or the limit just fell) comes down in a handful of 429s, one just
      // above it is not cut to far below it. Either way the failing rate is the new level.
      const double failing = rate_per_minute_;
      const bool storm =
          rate_limited_before_ && failing * policy_.decrease_factor < last_cut_to_;
      storm_length_ = storm ? std::min(storm_length_ + 1, kMaxStormSquarings) : 0;
      double factor = policy_.decrease_factor;
      for (int i = 0; i < storm_length_; ++i) factor *= factor;
      const double floor = policy_.min_rate_fraction * policy_.requests_per_minute;
      level_per_minute_ = failing;
      rate_per_minute_ = std::max(floor, factor * failing);
      last_cut_to_ = rate_per_minute_;
      successes_above_level_ = 0;
      rate_limited_before_ = true;
    }
  }
  empty_until_pause_ends(now);
  if (concurrency_cap) {
    const TimePoint hold = now + policy_.concurrency_hold;
    hold_until_ = hold_until_ ? std::max(*hold_until_, hold) : hold;
  }
}

void RateGate::on_server_wait(TimePoint now, Duration wait) {
  const Duration told = std::clamp(wait, Duration{0}, policy_.max_pause);
  const TimePoint until = now + told;
  if (until <= paused_until_ || told <= Duration{0}) return;  // already held at least that long
  paused_until_ = until;
  empty_until_pause_ends(now);
}

// The server just told us the budget is spent: whatever the bucket held was an illusion, and
// the bucket fills again only as the pause ends, so one request (not a burst) goes first.
void RateGate::empty_until_pause_ends(TimePoint now) {
  refill(now);
  tokens_ = 0.0;
  const double one_token_ms = std::ceil(60'000.0 / rate_per_minute_);
  last_refill_ = std::max({last_refill_, now,
                           paused_until_ - Duration{static_cast<Duration::rep>(one_token_ms)}});
}

void RateGate::release_hold() noexcept { hold_until_.reset(); }

}  // namespace devin_orch::core
