// One organisation's request budget as a sans-I/O component: a token bucket every request
// passes, paused by 429s (Retry-After, or capped full-jitter backoff without it), with AIMD on
// the refill rate, and a separate hold on creates when the org's concurrent-session cap is hit.
#pragma once

#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

#include <optional>

namespace devin_orch::core {

struct RateGatePolicy {
  double requests_per_minute = 60.0;  // configured ceiling; the refill rate never exceeds it
  double burst = 5.0;                 // bucket capacity, in requests
  double decrease_factor = 0.5;       // refill rate multiplied by this on every 429
  double min_rate_fraction = 0.1;     // floor of the refill rate, as a fraction of the ceiling
  double recovery_fraction = 0.01;    // each success adds this fraction of the ceiling back
  BackoffPolicy pause_backoff{Duration{1'000}, Duration{300'000}, 2.0};  // 429 without Retry-After
  Duration max_pause{3'600'000};      // a Retry-After longer than this is clamped
  Duration concurrency_hold{60'000};  // longest a concurrency-cap 429 holds creates
};

enum class RequestKind { create, other };

class RateGate {
 public:
  // Throws std::invalid_argument for a policy out of range (a configuration error at start-up).
  RateGate(RateGatePolicy policy, TimePoint now);

  // Earliest instant a request of `kind` may be sent; `now` if it may go now. For creates
  // held by a concurrency cap this is the end of the hold.
  TimePoint ready_at(RequestKind kind, TimePoint now) const;

  // Takes a token if a request of `kind` may go at `now`. Returns false (and takes nothing)
  // otherwise; the caller waits until ready_at() and tries again.
  bool try_acquire(RequestKind kind, TimePoint now);

  // A request that passed the gate got a non-429 answer: additive recovery of the rate, and
  // consecutive-429 count reset.
  void on_success(TimePoint now);

  // A 429. Pauses every request until now + retry_after (clamped to max_pause) or, without
  // it, a full-jitter backoff growing with consecutive 429s; multiplies the refill rate by
  // decrease_factor and empties the bucket, so one request goes when the pause ends and the
  // rest follow at the reduced rate. A concurrency-cap 429 additionally holds creates until
  // release_hold() or the hold expires.
  void on_rate_limited(TimePoint now, std::optional<Duration> retry_after, bool concurrency_cap,
                       Random& random);

  // One of our sessions ended: capacity may be free again.
  void release_hold() noexcept;

  bool paused(TimePoint now) const noexcept { return now < paused_until_; }
  TimePoint paused_until() const noexcept { return paused_until_; }
  bool creates_held(TimePoint now) const noexcept { return hold_until_ && now < *hold_until_; }
  double rate_per_minute() const noexcept { return rate_per_minute_; }
  int consecutive_rate_limits() const noexcept { return consecutive_429_; }

 private:
  void refill(TimePoint now) const;

  RateGatePolicy policy_;
  double rate_per_minute_;
  mutable double tokens_;
  mutable TimePoint last_refill_;
  TimePoint paused_until_{};
  std::optional<TimePoint> hold_until_;
  int consecutive_429_ = 0;
};

}  // namespace devin_orch::core
