// Token bucket refill, Retry-After rendering in every mode, HTTP dates and the quiet window.
#include "devin_orch/sim/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace devin_orch::sim {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

TEST(TokenBucket, BurstThenRefillAtRpm) {
  TokenBucket bucket{60, 3, kT0};  // one token per second
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(bucket.try_take(kT0).has_value());
  const auto wait = bucket.try_take(kT0);
  ASSERT_TRUE(wait.has_value());
  EXPECT_DOUBLE_EQ(*wait, 1000.0);
  const auto later = bucket.try_take(kT0 + 400);
  ASSERT_TRUE(later.has_value());
  EXPECT_NEAR(*later, 600.0, 1e-6);
  EXPECT_FALSE(bucket.try_take(kT0 + 1000).has_value());
  EXPECT_TRUE(bucket.try_take(kT0 + 1000).has_value());
}

TEST(TokenBucket, NeverExceedsBurst) {
  TokenBucket bucket{600, 2, kT0};
  EXPECT_FALSE(bucket.try_take(kT0 + 3'600'000).has_value());
  EXPECT_FALSE(bucket.try_take(kT0 + 3'600'000).has_value());
  EXPECT_TRUE(bucket.try_take(kT0 + 3'600'000).has_value());
}

TEST(TokenBucket, ZeroRpmIsUnlimited) {
  TokenBucket bucket{0, 1, kT0};
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(bucket.try_take(kT0).has_value());
}

TEST(TokenBucket, ReconfigureClipsToTheNewBurst) {
  TokenBucket bucket{60, 10, kT0};
  bucket.reconfigure(60, 1, kT0);
  EXPECT_FALSE(bucket.try_take(kT0).has_value());
  EXPECT_TRUE(bucket.try_take(kT0).has_value());
}

TEST(RetryAdvice, SecondsRoundUpWithAMinimumOfOne) {
  auto advice = retry_advice(RetryAfterMode::seconds, kT0, 1'200);
  ASSERT_EQ(advice.headers.size(), 1u);
  EXPECT_EQ(advice.headers[0].first, "Retry-After");
  EXPECT_EQ(advice.headers[0].second, "2");
  EXPECT_EQ(advice.quiet_until, kT0 + 2'000);
  advice = retry_advice(RetryAfterMode::seconds, kT0, 10);
  EXPECT_EQ(advice.headers[0].second, "1");
  EXPECT_EQ(advice.quiet_until, kT0 + 1'000);
}

TEST(RetryAdvice, DateIsTheInstantRoundedUpToASecond) {
  const auto advice = retry_advice(RetryAfterMode::date, kT0 + 300, 1'500);  // due at +1.8 s
  ASSERT_EQ(advice.headers.size(), 1u);
  EXPECT_EQ(advice.headers[0].first, "Retry-After");
  EXPECT_EQ(advice.headers[0].second, "Tue, 14 Nov 2023 22:13:22 GMT");
  EXPECT_EQ(advice.quiet_until, kT0 + 2'000);
}

TEST(RetryAdvice, MillisecondsUseOnlyRetryAfterMs) {
  const auto advice = retry_advice(RetryAfterMode::ms, kT0, 250.2);
  ASSERT_EQ(advice.headers.size(), 1u);
  EXPECT_EQ(advice.headers[0].first, "retry-after-ms");
  EXPECT_EQ(advice.headers[0].second, "251");
  EXPECT_EQ(advice.quiet_until, kT0 + 251);
}

TEST(RetryAdvice, BothSendsSecondsAndMillisecondsAndJudgesByTheShorter) {
  const auto advice = retry_advice(RetryAfterMode::both, kT0, 1'200.5);
  ASSERT_EQ(advice.headers.size(), 2u);
  EXPECT_EQ(advice.headers[0], (std::pair<std::string, std::string>{"Retry-After", "2"}));
  EXPECT_EQ(advice.headers[1], (std::pair<std::string, std::string>{"retry-after-ms", "1201"}));
  EXPECT_EQ(advice.quiet_until, kT0 + 1'201);
}

TEST(RetryAdvice, NoneAdvertisesNothing) {
  const auto advice = retry_advice(RetryAfterMode::none, kT0, 5'000);
  EXPECT_TRUE(advice.headers.empty());
  EXPECT_FALSE(advice.quiet_until.has_value());
}

TEST(HttpDate, ImfFixdate) {
  EXPECT_EQ(http_date(784111777000), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(QuietWindow, GraceThenEarlyUntilTheEnd) {
  const QuietWindow window{.sent_at = kT0, .until = kT0 + 2'000};
  EXPECT_FALSE(window.is_early(kT0 + 10, 50));
  EXPECT_FALSE(window.is_early(kT0 + 50, 50));
  EXPECT_TRUE(window.is_early(kT0 + 51, 50));
  EXPECT_TRUE(window.is_early(kT0 + 1'999, 50));
  EXPECT_FALSE(window.is_early(kT0 + 2'000, 50));
  EXPECT_FALSE(QuietWindow{}.is_early(kT0, 50));
}

}  // namespace
}  // namespace devin_orch::sim
