// Token bucket, Retry-After rendering and HTTP dates for the simulator's rate limiting.
#include "devin_orch/sim/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace devin_orch::sim {

TokenBucket::TokenBucket(double rpm, double burst, TimeMs now) noexcept
    : rpm_{rpm}, burst_{std::max(burst, 1.0)}, tokens_{burst_}, last_{now} {}

void TokenBucket::refill(TimeMs now) noexcept {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(now - last_) * rpm_ / 60'000.0);
    last_ = now;
  }
}

std::optional<double> TokenBucket::try_take(TimeMs now) noexcept {
  if (rpm_ <= 0) return std::nullopt;
  refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return std::nullopt;
  }
  return (1.0 - tokens_) * 60'000.0 / rpm_;
}

void TokenBucket::reconfigure(double rpm, double burst, TimeMs now) noexcept {
  refill(now);
  rpm_ = rpm;
  burst_ = std::max(burst, 1.0);
  tokens_ = std::min(tokens_, burst_);
}

RetryAdvice retry_advice(RetryAfterMode mode, TimeMs now, double wait_ms) {
  RetryAdvice advice;
  switch (mode) {
    case RetryAfterMode::seconds: {
      const auto seconds = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ms / 1000.0)));
      advice.headers.emplace_back("Retry-After", std::to_string(seconds));
      advice.quiet_until = now + seconds * 1000;
      break;
    }
    case RetryAfterMode::date: {
      // Rounded up: a client that waits until the advertised second is never early.
      const auto instant = now + static_cast<TimeMs>(std::ceil(wait_ms));
      const auto whole = (instant + 999) / 1000 * 1000;
      advice.headers.emplace_back("Retry-After", http_date(whole));
      advice.quiet_until = whole;
      break;
    }
    case RetryAfterMode::ms: {
      const auto ms = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ms)));
      advice.headers.emplace_back("retry-after-ms", std::to_string(ms));
      advice.quiet_until = now + ms;
      break;
    }
    case RetryAfterMode::both: {
      // The SDKs prefer retry-after-ms; a client reading only Retry-After waits longer, which is
      // never early, so the window is the precise one.
      const auto ms = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ms)));
      advice.headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
      advice.headers.emplace_back("retry-after-ms", std::to_string(ms));
      advice.quiet_until = now + ms;
      break;
    }
    case RetryAfterMode::none:
      break;
  }
  return advice;
}

std::string http_date(TimeMs at) {
  const std::time_t seconds = static_cast<std::time_t>(at / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[utc.tm_wday],
                utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return buffer;
}

}  // namespace devin_orch::sim
