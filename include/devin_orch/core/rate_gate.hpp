// One organisation's request budget as a sans-I/O component: a token bucket every request
// passes, paused by 429s (Retry-After, or capped full-jitter backoff without it), with a refill
// rate that discovers the server's unpublished limit, and a hold on creates at the session cap.
#pragma once

#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>

namespace devin_orch::core {

// How the refill rate finds the server's limit R, which Devin does not publish and which may be
// well below the configured ceiling.
//
// Why not the obvious schemes. Halving on each 429 and climbing back by a fixed share of the
// ceiling saws between R/2 and R with a 429 every few dozen requests. Setting the rate from the
// accepted rate over a recent window was tried and measured worse: counting pauses as time,
// a 1 s Retry-After against a server whose burst is 1 wastes most of the pause and the estimate
// comes out at a fifth of R; leaving pauses out, it overstates R by the burst banked in each
// pause; and a window that spans a climb averages the climb, not R.
//
// Decrease. A 429 that ends a climb was drawn by a rate just above R: that rate becomes the
// level L (the best guess of R) and the rate drops to decrease_factor * L. A 429 that comes
// before the rate has climbed back one such step since the last cut means that cut did not get
// below R: each such 429 squares the factor (0.94, 0.88, 0.78, 0.61, then 0.37 at most), so a
// rate far above R (start-up, or the limit fell) comes down in a handful of 429s (1200 -> 30 rpm
// in about eight, not sixty), while a rate just above R is not cut to far below it. Every 429
// is a multiplicative decrease, and back-to-back ones compound.
//
// Recovery. Each success adds min(recovery_fraction * L, max_recovery_step), additively; below
// decrease_factor * L (after a storm cut deeper than needed) each success also closes
// gap_recovery of the distance to it, so an undershoot is made up in tens of successes. From
// 0.94 L the linear climb back to L takes 240 successes up to 120 rpm and 1200 at 600 rpm
// (two minutes): the step cap keeps 429s far apart at high rates, where each 1-second Retry-After
// forgoes R/60 requests, so 429s must be rarer in time, not only in count. Against a
// token-bucket server (tests/core/rate_gate_convergence_test.cpp, 20 simulated minutes, after
// the first): 429s 0.08-0.9 % of requests and throughput 95.8-100 % of R for R in 30..600 rpm,
// server bursts 1..10, ceilings 600 and 1200. The burst-1 servers are the costly case (about
// 96 %): the Retry-After is rounded up to whole seconds and the server banks nothing meanwhile.
//
// Probing. Above L the step doubles every probe_doubling successes (up to 256x): if the limit
// rose, the gate finds it in hundreds of successes instead of thousands. 120 -> 300 rpm: little
// gain in the first two minutes (the step is still small), above 95 % of the new limit from
// about four minutes after the change.
//
// Echoes. A 429 that arrives during our own pause, or before any request passed the gate since
// the previous 429, answers a request sent before that 429 was known. It extends the pause to
// its own Retry-After but changes neither the rate nor the consecutive count, so requests in
// flight neither compound the decrease nor escalate the no-Retry-After backoff.
//
// After a pause the bucket holds one token: the server has refilled for the length of the pause,
// but we do not know its burst, and one request at the end of the pause followed by the reduced
// rate never floods a server whose burst is 1.
//
// A concurrency-cap 429 (the org is running as many sessions as it may) says nothing about the
// request rate: it only holds creates (for concurrency_hold, or Retry-After if longer) and
// leaves the pause, the rate and the level alone, so polls go on and notice a session ending.
struct RateGatePolicy {
  double requests_per_minute = 60.0;  // configured ceiling; the refill rate never exceeds it
  double burst = 5.0;                 // bucket capacity, in requests
  double decrease_factor = 0.94;      // a 429 after a climb: rate = this * the rate that drew it
  double min_rate_fraction = 0.01;    // floor of the refill rate, as a fraction of the ceiling;
                                      // low, so a server at 30 rpm is reachable under 1200
  double recovery_fraction = 0.00025; // each success adds this fraction of the level L...
  double max_recovery_step = 0.03;    // ...but at most this many requests per minute
  double gap_recovery = 0.05;         // below decrease_factor * L, each success also closes
                                      // this share of the gap to it
  int probe_doubling = 30;            // above L, the step doubles every this many successes
  BackoffPolicy pause_backoff{Duration{1'000}, Duration{300'000}, 2.0};  // 429 without Retry-After
  Duration max_pause{3'600'000};      // a Retry-After longer than this is clamped
  Duration concurrency_hold{60'000};  // longest a concurrency-cap 429 holds creates
  Duration batch_linger{50};          // see batch_ready_at(); 0 wakes for every token
};

enum class RequestKind { create, other };

class RateGate {
 public:
  // Throws std::invalid_argument for a policy out of range (a configuration error at start-up).
  RateGate(RateGatePolicy policy, TimePoint now);

  // Earliest instant a request of `kind` may be sent; `now` if it may go now. For creates
  // held by a concurrency cap this is the end of the hold.
  TimePoint ready_at(RequestKind kind, TimePoint now) const;

  // When `waiting` requests of `kind` queue for tokens: the instant the most of them that can
  // go together within policy.batch_linger after ready_at() may go, so that a queue drained at
  // a high refill rate wakes once per group instead of once per token (at 6,000 rpm a wake-up
  // every 10 ms). The group is at most the burst, so the wait never lets the bucket overflow
  // and the sending rate is unchanged; below two tokens per linger (under 2,400 rpm with the
  // default) and at the end of a pause or hold this is ready_at() itself.
  TimePoint batch_ready_at(RequestKind kind, std::size_t waiting, TimePoint now) const;

  // Takes a token if a request of `kind` may go at `now`. Returns false (and takes nothing)
  // otherwise; the caller waits until ready_at() and tries again.
  bool try_acquire(RequestKind kind, TimePoint now);

  // A request that passed the gate got a non-429 answer: additive recovery of the rate, and
  // consecutive-429 count reset.
  void on_success(TimePoint now);

  // A 429. Pauses every request until now + retry_after (clamped to max_pause) or, without
  // it, a full-jitter backoff growing with consecutive 429s; lowers the refill rate (see the
  // policy) and empties the bucket, so one request goes when the pause ends and the rest follow
  // at the reduced rate. A concurrency-cap 429 instead only holds creates, until release_hold()
  // or the hold expires; other requests are not paused.
  void on_rate_limited(TimePoint now, std::optional<Duration> retry_after, bool concurrency_cap,
                       Random& random);

  // An answer other than a 429 that asked for a wait (a 503 or 500 with Retry-After or
  // retry-after-ms; see CallOutcome::requested_wait). Pauses every request until now + wait
  // (clamped to max_pause; never shortens a longer pause) and empties the bucket like a 429, so
  // one request goes when the wait ends. The rate and the 429 counts are left alone: an
  // overloaded server says nothing about our share of its request budget.
  void on_server_wait(TimePoint now, Duration wait);

  // One of our sessions ended: capacity may be free again.
  void release_hold() noexcept;

  bool paused(TimePoint now) const noexcept { return now < paused_until_; }
  TimePoint paused_until() const noexcept { return paused_until_; }
  bool creates_held(TimePoint now) const noexcept { return hold_until_ && now < *hold_until_; }
  double rate_per_minute() const noexcept { return rate_per_minute_; }
  // The tokens in the bucket at `now` (0..burst): how many requests could go at once. Empty
  // through a pause, until the last token's worth of it (one request goes as it ends).
  double tokens(TimePoint now) const;
  int consecutive_rate_limits() const noexcept { return consecutive_429_; }

  // The level L the rate recovers towards: the best current guess of the server's limit.
  double level_per_minute() const noexcept { return level_per_minute_; }

 private:
  void refill(TimePoint now) const;
  void empty_until_pause_ends(TimePoint now);

  RateGatePolicy policy_;
  double rate_per_minute_;
  double level_per_minute_;
  mutable double tokens_;
  mutable TimePoint last_refill_;
  TimePoint paused_until_{};
  std::optional<TimePoint> hold_until_;
  int consecutive_429_ = 0;
  bool passed_since_429_ = true;       // a request passed the gate after the last real 429
  bool rate_limited_before_ = false;   // any real rate 429 yet (the first is never a storm)
  double last_cut_to_ = 0.0;           // the rate the last rate 429 left
  int storm_length_ = 0;               // back-to-back 429s so far, each squaring the factor
  std::int64_t successes_above_level_ = 0;
};

}  // namespace devin_orch::core
