// Tests for the retry backoff and polling cadence schedules.
#include "devin_orch/core/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;

TEST(FullJitter, StaysWithinTheGrowingCeilingAndCoversIt) {
  const BackoffPolicy policy{.initial = milliseconds{500}, .max = milliseconds{30'000},
                             .multiplier = 2.0};
  Random random{1};
  const long long ceilings[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
  for (int retry = 0; retry < 8; ++retry) {
    long long lo = LLONG_MAX, hi = 0;
    for (int i = 0; i < 4000; ++i) {
      const long long d = full_jitter_delay(policy, retry, random).count();
      ASSERT_GE(d, 0);
      ASSERT_LE(d, ceilings[retry]) << "retry " << retry;
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter: the whole range [0, ceiling] is used, not just the top of it.
    EXPECT_LT(lo, ceilings[retry] / 50) << "retry " << retry;
    EXPECT_GT(hi, ceilings[retry] * 49 / 50) << "retry " << retry;
  }
}

TEST(FullJitter, MeanIsHalfTheCeiling) {
  const BackoffPolicy policy{.initial = milliseconds{1000}, .max = milliseconds{1000}};
  Random random{2};
  double sum = 0;
  constexpr int kSamples = 20'000;
  for (int i = 0; i < kSamples; ++i) sum += double(full_jitter_delay(policy, 0, random).count());
  EXPECT_NEAR(sum / kSamples, 500.0, 15.0);
}

TEST(FullJitter, HugeOrNegativeRetryCountsNeitherOverflowNorExceedTheCap) {
  const BackoffPolicy policy{};
  Random random{3};
  for (int retry : {64, 1'000, 1'000'000, INT_MAX, -1, INT_MIN}) {
    for (int i = 0; i < 200; ++i) {
      const long long d = full_jitter_delay(policy, retry, random).count();
      ASSERT_GE(d, 0) << retry;
      ASSERT_LE(d, retry < 0 ? 500 : 30'000) << retry;
    }
  }
}

TEST(FullJitter, DegenerateMultipliersStayFinite) {
  Random random{4};
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (double m : {kInf, kNaN, 1e308, 0.0, -3.0}) {
    const BackoffPolicy policy{.initial = milliseconds{100}, .max = milliseconds{5'000},
                               .multiplier = m};
    for (int retry = 0; retry < 40; ++retry) {
      const long long d = full_jitter_delay(policy, retry, random).count();
      ASSERT_GE(d, 0) << "multiplier " << m << " retry " << retry;
      ASSERT_LE(d, 5'000) << "multiplier " << m << " retry " << retry;
    }
  }
}

TEST(FullJitter, ZeroCeilingGivesZero) {
  Random random{5};
  const BackoffPolicy policy{.initial = milliseconds{0}, .max = milliseconds{0}};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(full_jitter_delay(policy, i, random), milliseconds{0});
}

TEST(FullJitter, SameSeedSameSchedule) {
  Random a{42}, b{42};
  for (int retry = 0; retry < 20; ++retry) {
    EXPECT_EQ(full_jitter_delay({}, retry, a), full_jitter_delay({}, retry, b));
  }
}

TEST(Cadence, WithoutJitterGrowsGeometricallyUpToTheCap) {
  const CadencePolicy policy{.initial = milliseconds{10'000}, .max = milliseconds{60'000},
                             .multiplier = 1.5, .jitter = 0.0};
  Random random{6};
  const long long expected[] = {10'000, 15'000, 22'500, 33'750, 50'625, 60'000, 60'000};
  for (int step = 0; step < 7; ++step) {
    EXPECT_EQ(cadence_delay(policy, step, random).count(), expected[step]) << "step " << step;
  }
  EXPECT_EQ(cadence_delay(policy, INT_MAX, random).count(), 60'000);
}

TEST(Cadence, JitterStaysWithinItsBandAndUsesIt) {
  const CadencePolicy policy{.initial = milliseconds{10'000}, .jitter = 0.2};
  Random random{7};
  long long lo = LLONG_MAX, hi = 0;
  for (int i = 0; i < 5'000; ++i) {
    const long long d = cadence_delay(policy, 0, random).count();
    ASSERT_GE(d, 8'000);
    ASSERT_LE(d, 12'000);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 8'100);
  EXPECT_GT(hi, 11'900);
}

TEST(Cadence, OutOfRangeJitterIsClampedAndNeverNegative) {
  Random random{8};
  for (double jitter : {1.0, 5.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
    const CadencePolicy policy{.initial = milliseconds{1'000}, .max = milliseconds{1'000},
                               .jitter = jitter};
    for (int i = 0; i < 500; ++i) {
      const long long d = cadence_delay(policy, 0, random).count();
      ASSERT_GE(d, 0) << jitter;
      ASSERT_LE(d, 2'000) << jitter;
    }
  }
}

}  // namespace
}  // namespace devin_orch::core
