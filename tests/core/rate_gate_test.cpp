// Tests for the per-organisation rate gate: throughput, bursts, 429 pauses, echoes, the rate's
// decrease and recovery, create holds. Closed-loop convergence is in rate_gate_convergence_test.
#include "devin_orch/core/rate_gate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

// Sends as fast as the gate allows from `start` until `end`, sleeping exactly until ready_at()
// whenever refused. Returns how many requests went.
int drain(RateGate& gate, RequestKind kind, TimePoint start, TimePoint end,
          int* refused_at_ready = nullptr) {
  int sent = 0;
  TimePoint now = start;
  bool waited = false;
  while (now < end) {
    if (gate.try_acquire(kind, now)) {
      ++sent;
      gate.on_success(now);
      waited = false;
      continue;
    }
    if (waited && refused_at_ready) ++*refused_at_ready;
    const TimePoint ready = gate.ready_at(kind, now);
    EXPECT_GT(ready, now) << "refused but reported ready";
    if (ready <= now) return sent;
    now = ready;
    waited = true;
  }
  return sent;
}

TEST(RateGate, SteadyThroughputMatchesTheConfiguredRate) {
  for (double rpm : {60.0, 7.0, 600.0}) {
    RateGate gate{RateGatePolicy{.requests_per_minute = rpm, .burst = 5}, kT0};
    int refused_at_ready = 0;
    const int sent = drain(gate, RequestKind::other, kT0, kT0 + minutes{30}, &refused_at_ready);
    // 30 minutes at `rpm`, plus the initial burst.
    EXPECT_NEAR(sent, 30 * rpm + 5, 2) << rpm;
    EXPECT_EQ(refused_at_ready, 0) << "ready_at() promised a token that was not there";
  }
}

TEST(RateGate, BurstIsTheBucketCapacity) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 60, .burst = 5}, kT0};
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0)) << i;
  EXPECT_FALSE(gate.try_acquire(RequestKind::other, kT0));
  EXPECT_EQ(gate.ready_at(RequestKind::other, kT0), kT0 + seconds{1});
  EXPECT_FALSE(gate.try_acquire(RequestKind::other, kT0 + milliseconds{999}));
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0 + seconds{1}));

  // A long idle spell refills up to the capacity and no further.
  const TimePoint later = kT0 + minutes{10};
  int sent = 0;
  while (gate.try_acquire(RequestKind::other, later)) ++sent;
  EXPECT_EQ(sent, 5);
}

TEST(RateGate, TokensShowTheBucketAsRequestsTakeItAndTimeRefillsIt) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 60, .burst = 5, .decrease_factor = 0.5},
                kT0};
  EXPECT_DOUBLE_EQ(gate.tokens(kT0), 5.0);
  ASSERT_TRUE(gate.try_acquire(RequestKind::other, kT0));
  ASSERT_TRUE(gate.try_acquire(RequestKind::other, kT0));
  EXPECT_DOUBLE_EQ(gate.tokens(kT0), 3.0);
  EXPECT_DOUBLE_EQ(gate.tokens(kT0 + milliseconds{500}), 3.5);
  EXPECT_DOUBLE_EQ(gate.tokens(kT0 + minutes{1}), 5.0) << "never above the burst";
  // Reading the bucket takes nothing from it.
  EXPECT_DOUBLE_EQ(gate.tokens(kT0 + minutes{1}), 5.0);

  // A 429 empties it; it stays empty through the pause but for its last token (30/min now).
  Random random{3};
  const TimePoint limited = kT0 + minutes{1};
  gate.on_rate_limited(limited, seconds{30}, false, random);
  EXPECT_DOUBLE_EQ(gate.tokens(limited), 0.0);
  EXPECT_DOUBLE_EQ(gate.tokens(limited + seconds{20}), 0.0);
  EXPECT_DOUBLE_EQ(gate.tokens(limited + seconds{29}), 0.5);
  EXPECT_DOUBLE_EQ(gate.tokens(limited + seconds{30}), 1.0);
}

TEST(RateGate, ClockSteppingBackGrantsNothing) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 60, .burst = 1}, kT0};
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0 + seconds{10}));
  EXPECT_FALSE(gate.try_acquire(RequestKind::other, kT0));
  EXPECT_FALSE(gate.try_acquire(RequestKind::other, kT0 + seconds{10}));
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0 + seconds{11}));
}

TEST(RateGate, RateLimitWithRetryAfterPausesEveryKindExactlyThatLong) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 60, .burst = 5, .decrease_factor = 0.5},
                kT0};
  Random random{1};
  gate.on_rate_limited(kT0, seconds{30}, false, random);
  EXPECT_TRUE(gate.paused(kT0));
  EXPECT_EQ(gate.paused_until(), kT0 + seconds{30});
  EXPECT_EQ(gate.consecutive_rate_limits(), 1);
  for (RequestKind kind : {RequestKind::create, RequestKind::other}) {
    EXPECT_FALSE(gate.try_acquire(kind, kT0 + seconds{29}));
    EXPECT_EQ(gate.ready_at(kind, kT0), kT0 + seconds{30});
  }
  // The bucket was emptied: one request at the end of the pause, then the reduced rate (30/min).
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0 + seconds{30}));
  EXPECT_FALSE(gate.try_acquire(RequestKind::other, kT0 + seconds{30}));
  EXPECT_EQ(gate.ready_at(RequestKind::other, kT0 + seconds{30}), kT0 + seconds{32});
}

TEST(RateGate, RetryAfterIsClampedToMaxPause) {
  RateGate gate{RateGatePolicy{.max_pause = minutes{5}}, kT0};
  Random random{2};
  gate.on_rate_limited(kT0, std::chrono::hours{20}, false, random);
  EXPECT_EQ(gate.paused_until(), kT0 + minutes{5});
}

TEST(RateGate, ShorterRetryAfterNeverShortensAnExistingPause) {
  RateGate gate{RateGatePolicy{}, kT0};
  Random random{3};
  gate.on_rate_limited(kT0, seconds{60}, false, random);
  gate.on_rate_limited(kT0 + seconds{1}, seconds{5}, false, random);
  EXPECT_EQ(gate.paused_until(), kT0 + seconds{60});
}

TEST(RateGate, ServerWaitPausesEveryKindButLeavesTheRateAlone) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 60, .burst = 5, .decrease_factor = 0.5},
                kT0};
  gate.on_server_wait(kT0, seconds{20});  // e.g. a 503 with Retry-After: 20
  EXPECT_EQ(gate.paused_until(), kT0 + seconds{20});
  for (RequestKind kind : {RequestKind::create, RequestKind::other}) {
    EXPECT_FALSE(gate.try_acquire(kind, kT0 + seconds{19})) << static_cast<int>(kind);
    EXPECT_EQ(gate.ready_at(kind, kT0), kT0 + seconds{20});
  }
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 60.0);
  EXPECT_EQ(gate.consecutive_rate_limits(), 0);
  // One request when the wait ends, then the unchanged rate: the next a second later.
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0 + seconds{20}));
  EXPECT_FALSE(gate.try_acquire(RequestKind::other, kT0 + seconds{20}));
  EXPECT_EQ(gate.ready_at(RequestKind::other, kT0 + seconds{20}), kT0 + seconds{21});
}

TEST(RateGate, ServerWaitNeverShortensAPauseAndIsClamped) {
  RateGate gate{RateGatePolicy{.max_pause = minutes{5}}, kT0};
  Random random{4};
  gate.on_rate_limited(kT0, seconds{60}, false, random);
  gate.on_server_wait(kT0 + seconds{1}, seconds{5});
  EXPECT_EQ(gate.paused_until(), kT0 + seconds{60});
  gate.on_server_wait(kT0 + seconds{2}, std::chrono::hours{3});
  EXPECT_EQ(gate.paused_until(), kT0 + seconds{2} + minutes{5});
  // A zero wait (an HTTP date already past) holds nothing and takes no token.
  RateGate fresh{RateGatePolicy{.burst = 2}, kT0};
  fresh.on_server_wait(kT0, Duration{0});
  EXPECT_FALSE(fresh.paused(kT0));
  EXPECT_TRUE(fresh.try_acquire(RequestKind::other, kT0));
  EXPECT_TRUE(fresh.try_acquire(RequestKind::other, kT0));
}

// A 429 that follows another with a request in between, after the pause has ended: a real one.
void rate_limited_again(RateGate& gate, TimePoint& at, std::optional<Duration> retry_after,
                        Random& random) {
  at = gate.ready_at(RequestKind::other, at);
  ASSERT_TRUE(gate.try_acquire(RequestKind::other, at));
  gate.on_rate_limited(at, retry_after, false, random);
}

TEST(RateGate, RateLimitWithoutRetryAfterBacksOffWithFullJitter) {
  const RateGatePolicy policy{.pause_backoff = {milliseconds{1'000}, milliseconds{300'000}, 2.0}};
  // Over many seeds, the k-th consecutive 429 pauses within [0, min(300 s, 1 s * 2^(k-1))] and
  // actually uses that range.
  for (int k = 1; k <= 12; ++k) {
    const long long ceiling = std::min<long long>(300'000, 1'000LL << (k - 1));
    long long longest = 0;
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
      Random random{seed};
      RateGate gate{policy, kT0};
      TimePoint at = kT0;
      for (int i = 1; i < k; ++i) rate_limited_again(gate, at, std::nullopt, random);
      // Measure the k-th pause from a moment after every earlier pause has ended.
      at = gate.ready_at(RequestKind::other, at) + minutes{10};
      ASSERT_TRUE(gate.try_acquire(RequestKind::other, at));
      gate.on_rate_limited(at, std::nullopt, false, random);
      ASSERT_EQ(gate.consecutive_rate_limits(), k);
      const long long pause = (gate.paused_until() - at).count();
      ASSERT_GE(pause, 0);
      ASSERT_LE(pause, ceiling) << "k=" << k;
      longest = std::max(longest, pause);
    }
    EXPECT_GT(longest, ceiling * 9 / 10) << "k=" << k;
  }
}

TEST(RateGate, EchoesOfOneRateLimitExtendThePauseButCountOnce) {
  // Four requests were in flight when the server ran dry: four 429s, one event.
  RateGate gate{RateGatePolicy{.requests_per_minute = 600, .decrease_factor = 0.9}, kT0};
  Random random{8};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(gate.try_acquire(RequestKind::other, kT0));
  gate.on_rate_limited(kT0 + milliseconds{50}, seconds{1}, false, random);
  gate.on_rate_limited(kT0 + milliseconds{60}, seconds{1}, false, random);  // during the pause
  gate.on_rate_limited(kT0 + milliseconds{70}, seconds{3}, false, random);  // a longer one
  EXPECT_EQ(gate.consecutive_rate_limits(), 1);
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 540.0);
  EXPECT_EQ(gate.paused_until(), kT0 + milliseconds{3'070});  // the longest Retry-After wins

  // After the pause, but still nothing sent since: an answer to a request from before.
  gate.on_rate_limited(kT0 + seconds{4}, seconds{1}, false, random);
  EXPECT_EQ(gate.consecutive_rate_limits(), 1);
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 540.0);
  EXPECT_EQ(gate.paused_until(), kT0 + seconds{5});

  // Without Retry-After an echo does not roll a new (possibly longer) backoff either.
  RateGate quiet{RateGatePolicy{}, kT0};
  quiet.on_rate_limited(kT0, std::nullopt, false, random);
  const TimePoint until = quiet.paused_until();
  quiet.on_rate_limited(kT0, std::nullopt, false, random);
  EXPECT_EQ(quiet.paused_until(), until);
  EXPECT_EQ(quiet.consecutive_rate_limits(), 1);
}

TEST(RateGate, DecreaseIsMultiplicativeAndSquaresWhileTheCutDoesNotHelp) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 600, .decrease_factor = 0.9,
                               .min_rate_fraction = 0.1},
                kT0};
  Random random{4};
  TimePoint at = kT0;
  gate.on_rate_limited(at, seconds{1}, false, random);
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 540.0);
  EXPECT_DOUBLE_EQ(gate.level_per_minute(), 600.0);  // the rate that drew the 429
  // Each further 429 before the rate has climbed back one step squares the factor, four times
  // at most, and never goes under the floor (60/min).
  double expected = 540.0;
  for (double factor : {0.81, 0.6561, 0.43046721}) {
    rate_limited_again(gate, at, seconds{1}, random);
    expected *= factor;
    EXPECT_NEAR(gate.rate_per_minute(), expected, 1e-9);
  }
  rate_limited_again(gate, at, seconds{1}, random);
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 60.0);  // 123.5 * 0.9^16 = 22.9 is under the floor
  EXPECT_EQ(gate.consecutive_rate_limits(), 5);

  // A 429 after the rate has climbed back a step is an ordinary one again.
  RateGate climbed{RateGatePolicy{.requests_per_minute = 600, .decrease_factor = 0.9,
                                  .recovery_fraction = 0.01, .max_recovery_step = 100},
                   kT0};
  at = kT0;
  climbed.on_rate_limited(at, seconds{1}, false, random);      // 540, level 600
  for (int i = 0; i < 10; ++i) climbed.on_success(at);          // +6 each: 600
  EXPECT_NEAR(climbed.rate_per_minute(), 600.0, 1e-9);
  rate_limited_again(climbed, at, seconds{1}, random);
  EXPECT_NEAR(climbed.rate_per_minute(), 540.0, 1e-9);
}

TEST(RateGate, RecoveryIsAdditiveAndFastOnlyFarBelowTheLevel) {
  const RateGatePolicy policy{.requests_per_minute = 600, .decrease_factor = 0.9,
                              .recovery_fraction = 0.001, .max_recovery_step = 100,
                              .gap_recovery = 0.05, .probe_doubling = 2};
  Random random{9};
  RateGate gate{policy, kT0};
  TimePoint at = kT0;
  gate.on_rate_limited(at, seconds{1}, false, random);  // 540, level 600
  gate.on_success(at);
  EXPECT_EQ(gate.consecutive_rate_limits(), 0);
  EXPECT_NEAR(gate.rate_per_minute(), 540.6, 1e-9);  // + 0.001 * level: a plain additive step

  // A storm cut far below 0.9 * level closes 5 % of the gap per success instead.
  rate_limited_again(gate, at, seconds{1}, random);  // 540.6 * 0.81 = 437.886, level 540.6
  EXPECT_NEAR(gate.rate_per_minute(), 437.886, 1e-9);
  gate.on_success(at);
  EXPECT_NEAR(gate.rate_per_minute(), 437.886 + 0.05 * (0.9 * 540.6 - 437.886), 1e-9);

  // The step is capped in absolute terms, so a 429 stays far apart at high rates.
  RateGatePolicy capped = policy;
  capped.max_recovery_step = 0.1;
  RateGate slow{capped, kT0};
  slow.on_rate_limited(kT0, seconds{1}, false, random);
  slow.on_success(kT0);
  EXPECT_NEAR(slow.rate_per_minute(), 540.1, 1e-9);
}

TEST(RateGate, ProbingAboveTheLevelSpeedsUpAndStopsAtTheCeiling) {
  const RateGatePolicy policy{.requests_per_minute = 600, .decrease_factor = 0.5,
                              .recovery_fraction = 0.01, .max_recovery_step = 100,
                              .probe_doubling = 2};
  Random random{10};
  RateGate gate{policy, kT0};
  TimePoint at = kT0;
  gate.on_rate_limited(at, seconds{1}, false, random);  // 300, level 600
  rate_limited_again(gate, at, seconds{1}, random);     // 300 * 0.25 = 75, level 300
  ASSERT_DOUBLE_EQ(gate.level_per_minute(), 300.0);
  while (gate.rate_per_minute() < 300.0) gate.on_success(at);
  // From the level on, the step (3/min) doubles every two successes.
  const double start = gate.rate_per_minute();
  const double expected_steps[] = {3, 3, 6, 6, 12, 12, 24, 24};
  double expected = start;
  for (double step : expected_steps) {
    gate.on_success(at);
    expected += step;
    EXPECT_NEAR(gate.rate_per_minute(), expected, 1e-9);
  }
  for (int i = 0; i < 100; ++i) gate.on_success(at);
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 600.0);  // never above the configured ceiling
}

TEST(RateGate, ConcurrencyCapLeavesTheRateAlone) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 600}, kT0};
  Random random{11};
  gate.on_rate_limited(kT0, seconds{5}, true, random);
  EXPECT_DOUBLE_EQ(gate.rate_per_minute(), 600.0);
  EXPECT_EQ(gate.consecutive_rate_limits(), 0);
  // Not a pause: polls keep going while creates are held.
  EXPECT_FALSE(gate.paused(kT0 + seconds{1}));
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0 + seconds{1}));
  EXPECT_TRUE(gate.creates_held(kT0 + seconds{4}));
}

TEST(RateGate, ReducedRateReallyThrottles) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 60, .burst = 1, .decrease_factor = 0.5,
                               .recovery_fraction = 0},
                kT0};
  Random random{5};
  gate.on_rate_limited(kT0, seconds{0}, false, random);  // rate 30/min
  EXPECT_NEAR(drain(gate, RequestKind::other, kT0, kT0 + minutes{10}), 300, 2);
}

TEST(RateGate, ConcurrencyCapHoldsOnlyCreates) {
  const RateGatePolicy policy{.concurrency_hold = seconds{60}};
  RateGate gate{policy, kT0};
  Random random{6};
  gate.on_rate_limited(kT0, seconds{2}, true, random);
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, kT0));
  const TimePoint after_pause = kT0 + seconds{10};
  EXPECT_TRUE(gate.creates_held(after_pause));
  EXPECT_FALSE(gate.try_acquire(RequestKind::create, after_pause));
  EXPECT_EQ(gate.ready_at(RequestKind::create, after_pause), kT0 + seconds{60});
  EXPECT_EQ(gate.ready_at(RequestKind::other, after_pause), after_pause);
  EXPECT_TRUE(gate.try_acquire(RequestKind::other, after_pause));
  // The hold ends by itself...
  EXPECT_TRUE(gate.try_acquire(RequestKind::create, kT0 + seconds{60}));

  // ...or earlier, when one of our sessions ends.
  gate.on_rate_limited(kT0 + seconds{100}, seconds{0}, true, random);
  EXPECT_FALSE(gate.try_acquire(RequestKind::create, kT0 + seconds{110}));
  gate.release_hold();
  EXPECT_FALSE(gate.creates_held(kT0 + seconds{110}));
  EXPECT_TRUE(gate.try_acquire(RequestKind::create, kT0 + seconds{110}));
}

// Takes every token the gate holds at `now`; returns how many.
int take_all(RateGate& gate, TimePoint now) {
  int taken = 0;
  while (gate.try_acquire(RequestKind::other, now)) ++taken;
  return taken;
}

TEST(RateGate, BatchWakeUpWaitsForTheTokensOfSeveralWaitersWithinTheLinger) {
  // 6,000 rpm: a token every 10 ms; default linger 50 ms.
  RateGate gate{RateGatePolicy{.requests_per_minute = 6'000, .burst = 100}, kT0};
  ASSERT_EQ(take_all(gate, kT0), 100);
  EXPECT_EQ(gate.batch_ready_at(RequestKind::other, 1, kT0), kT0 + milliseconds{10});
  EXPECT_EQ(gate.batch_ready_at(RequestKind::other, 3, kT0), kT0 + milliseconds{30});
  // Ten waiters: the first token at 10 ms, then as many as 50 ms more bring.
  const TimePoint wake = gate.batch_ready_at(RequestKind::other, 10, kT0);
  EXPECT_EQ(wake, kT0 + milliseconds{60});
  EXPECT_EQ(take_all(gate, wake), 6);
  // The rate is unchanged: a minute of groups sends what a minute of single tokens would.
  TimePoint now = wake;
  int sent = 0;
  while (now < wake + minutes{1}) {
    sent += take_all(gate, now);
    const TimePoint next = gate.batch_ready_at(RequestKind::other, 1'000, now);
    ASSERT_GT(next, now);
    now = next;
  }
  EXPECT_NEAR(sent, 6'000, 6);
}

TEST(RateGate, BatchWakeUpNeverWaitsForMoreThanTheBurst) {
  RateGate gate{RateGatePolicy{.requests_per_minute = 6'000, .burst = 2}, kT0};
  ASSERT_EQ(take_all(gate, kT0), 2);
  // Two tokens fill the bucket at 20 ms: waiting longer would forfeit the ones after.
  EXPECT_EQ(gate.batch_ready_at(RequestKind::other, 10, kT0), kT0 + milliseconds{20});
  RateGate single{RateGatePolicy{.requests_per_minute = 6'000, .burst = 1}, kT0};
  ASSERT_EQ(take_all(single, kT0), 1);
  EXPECT_EQ(single.batch_ready_at(RequestKind::other, 10, kT0), kT0 + milliseconds{10});
}

TEST(RateGate, BatchWakeUpIsReadyAtWhenNothingIsGained) {
  // 600 rpm: one token per 100 ms, so a 50 ms linger brings no second one; waiting would only
  // add latency.
  RateGate slow{RateGatePolicy{.requests_per_minute = 600, .burst = 10}, kT0};
  ASSERT_EQ(take_all(slow, kT0), 10);
  EXPECT_EQ(slow.batch_ready_at(RequestKind::other, 10, kT0),
            slow.ready_at(RequestKind::other, kT0));
  // No linger configured.
  RateGate eager{RateGatePolicy{.requests_per_minute = 6'000, .burst = 100,
                                .batch_linger = milliseconds{0}},
                 kT0};
  ASSERT_EQ(take_all(eager, kT0), 100);
  EXPECT_EQ(eager.batch_ready_at(RequestKind::other, 10, kT0), kT0 + milliseconds{10});
  // A token already there: nothing to wait for.
  RateGate full{RateGatePolicy{.requests_per_minute = 6'000, .burst = 100}, kT0};
  EXPECT_EQ(full.batch_ready_at(RequestKind::other, 10, kT0), kT0);
}

TEST(RateGate, BatchWakeUpLetsOneRequestGoAloneWhenAPauseEnds) {
  Random random{1};
  RateGate gate{RateGatePolicy{.requests_per_minute = 6'000, .burst = 100}, kT0};
  gate.on_rate_limited(kT0, seconds{2}, false, random);
  EXPECT_EQ(gate.batch_ready_at(RequestKind::other, 10, kT0), kT0 + seconds{2});
  EXPECT_EQ(take_all(gate, kT0 + seconds{2}), 1);
  // A concurrency hold likewise ends with one create.
  RateGate held{RateGatePolicy{.requests_per_minute = 6'000, .burst = 100,
                               .concurrency_hold = seconds{30}},
                kT0};
  held.on_rate_limited(kT0, std::nullopt, true, random);
  EXPECT_EQ(held.batch_ready_at(RequestKind::create, 10, kT0),
            held.ready_at(RequestKind::create, kT0));
}

TEST(RateGate, InvalidPoliciesAreRefusedAtConstruction) {
  EXPECT_THROW((RateGate{RateGatePolicy{.requests_per_minute = 0}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.burst = 0.5}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.decrease_factor = 0}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.min_rate_fraction = 1.5}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.recovery_fraction = -0.1}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.max_recovery_step = -1}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.gap_recovery = 1.5}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.probe_doubling = 0}, kT0}), std::invalid_argument);
  EXPECT_THROW((RateGate{RateGatePolicy{.batch_linger = milliseconds{-1}}, kT0}),
               std::invalid_argument);
}

// Random sequences of 429s, successes, releases and requests: no request ever passes a pause
// or a hold, ready_at() is never before the pause ends, waiting until ready_at() is always
// enough, and the long-run count never beats the configured ceiling.
TEST(RateGate, PropertyNeverReadyBeforeThePauseEnds) {
  const RateGatePolicy policy{.requests_per_minute = 120, .burst = 4,
                              .pause_backoff = {milliseconds{500}, milliseconds{20'000}, 2.0},
                              .max_pause = seconds{90}, .concurrency_hold = seconds{30},
                              .batch_linger = seconds{2}};  // up to four tokens per group
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    Random random{seed};
    RateGate gate{policy, kT0};
    TimePoint now = kT0;
    int granted = 0;
    for (int step = 0; step < 400; ++step) {
      const double dice = random.uniform();
      const RequestKind kind = random.uniform() < 0.5 ? RequestKind::create : RequestKind::other;
      if (dice < 0.10) {
        std::optional<Duration> retry_after;
        if (random.uniform() < 0.5) {
          retry_after = milliseconds{static_cast<long long>(random.uniform() * 200'000)};
        }
        gate.on_rate_limited(now, retry_after, random.uniform() < 0.3, random);
      } else if (dice < 0.25) {
        gate.on_success(now);
      } else if (dice < 0.30) {
        gate.release_hold();
      } else if (dice < 0.55) {
        now += milliseconds{static_cast<long long>(random.uniform() * 5'000)};
      } else {
        const TimePoint ready = gate.ready_at(kind, now);
        ASSERT_GE(ready, now);
        ASSERT_GE(ready, gate.paused_until()) << "seed " << seed << " step " << step;
        if (kind == RequestKind::create && gate.creates_held(now)) {
          ASSERT_GT(ready, now);
        }
        RateGate probe = gate;
        ASSERT_TRUE(probe.try_acquire(kind, ready)) << "seed " << seed << " step " << step;
        // Waiting for a group: never before the first token, never beyond the linger, and
        // the wait is always enough for the first of the group.
        const auto waiting = static_cast<std::size_t>(1 + random.uniform() * 8);
        const TimePoint group_ready = gate.batch_ready_at(kind, waiting, now);
        ASSERT_GE(group_ready, ready) << "seed " << seed << " step " << step;
        ASSERT_LE(group_ready, ready + policy.batch_linger) << "seed " << seed;
        RateGate group_probe = gate;
        ASSERT_TRUE(group_probe.try_acquire(kind, group_ready)) << "seed " << seed;

        const bool held = kind == RequestKind::create && gate.creates_held(now);
        const bool paused = gate.paused(now);
        const bool ok = gate.try_acquire(kind, now);
        if (ok) {
          ++granted;
          ASSERT_FALSE(paused) << "seed " << seed << " step " << step;
          ASSERT_FALSE(held) << "seed " << seed << " step " << step;
        }
        ASSERT_EQ(ok, ready == now) << "seed " << seed << " step " << step;
      }
      const double rate = gate.rate_per_minute();
      ASSERT_GE(rate, policy.min_rate_fraction * 120 - 1e-9);
      ASSERT_LE(rate, 120 + 1e-9);
    }
    const double minutes_elapsed = double((now - kT0).count()) / 60'000.0;
    EXPECT_LE(granted, 4 + 120 * minutes_elapsed + 1e-6) << "seed " << seed;
  }
}

}  // namespace
}  // namespace devin_orch::core
