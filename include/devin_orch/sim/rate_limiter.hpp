// The simulator's per-API-key token bucket and the Retry-After it advertises, plus the window
// bookkeeping behind the `early_requests_after_429` counter.
#pragma once

#include "devin_orch/sim/lifecycle.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace devin_orch::sim {

enum class RetryAfterMode {
  seconds,  // Retry-After: ceil(seconds until one token), at least 1
  date,     // Retry-After: IMF-fixdate of that instant, rounded up to a whole second
  ms,       // retry-after-ms: ceil(milliseconds until one token), at least 1; no Retry-After
  both,     // Retry-After in seconds and retry-after-ms, as the generated SDKs read them
  none,     // no header at all
};

class TokenBucket {
 public:
  // Starts full. rpm <= 0 means unlimited.
  TokenBucket(double rpm, double burst, TimeMs now) noexcept;

  // Takes one token, or returns the milliseconds until one is available (nothing taken).
  std::optional<double> try_take(TimeMs now) noexcept;

  // A runtime change of the limits keeps the current fill, clipped to the new burst.
  void reconfigure(double rpm, double burst, TimeMs now) noexcept;
  double tokens() const noexcept { return tokens_; }

 private:
  void refill(TimeMs now) noexcept;

  double rpm_;
  double burst_;
  double tokens_;
  TimeMs last_;
};

struct RetryAdvice {
  std::vector<std::pair<std::string, std::string>> headers;
  // End of the window a well-behaved client stays quiet in; nullopt when nothing was advertised.
  std::optional<TimeMs> quiet_until;
};

RetryAdvice retry_advice(RetryAfterMode mode, TimeMs now, double wait_ms);

// RFC 9110 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(TimeMs at);

// Remembers the last advertised quiet window per key and judges later requests against it.
struct QuietWindow {
  TimeMs sent_at = 0;
  TimeMs until = 0;  // exclusive; 0 = none

  // True for a request inside [sent_at + grace, until): it ignored the advice. Requests within
  // the grace were likely already in flight when the 429 left.
  bool is_early(TimeMs now, TimeMs grace_ms) const noexcept {
    return until != 0 && now > sent_at + grace_ms && now < until;
  }
};

}  // namespace devin_orch::sim
