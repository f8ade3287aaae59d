// How one API call ended, reduced to what the daemon must decide: retry, look up, wait, stop.
// Retry classification lives here and nowhere else.
#pragma once

#include "devin_orch/core/time.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::core {

enum class CallClass {
  ok,            // 2xx with a body that parsed
  not_sent,      // failed before any byte of the request left (resolve, connect, TLS)
  ambiguous,     // may have been acted on: timeout/reset after send, 5xx, bad 2xx body
  rate_limited,  // 429: nothing was done; wait
  unauthorized,  // 401: credentials are wrong; stop dispatch for the org
  forbidden,     // 403: permission or billing; see `billing`
  not_found,     // 404
  rejected,      // other 4xx (400, 409, 422, ...): the request itself is wrong
};

std::string_view to_string(CallClass c) noexcept;
std::ostream& operator<<(std::ostream& out, CallClass c);

struct CallOutcome {
  CallClass cls = CallClass::ok;
  int http_status = 0;             // 0 when no response arrived
  std::string detail;              // human-readable reason (FastAPI `detail`, or transport error)
  std::optional<Duration> retry_after;  // from Retry-After / retry-after-ms, if present and sane
  bool concurrency_cap = false;    // a 429 that says the org's concurrent-session limit is hit
  bool billing = false;            // a 403/429 whose text names a billing or quota problem

  bool ok() const noexcept { return cls == CallClass::ok; }

  // The wait the server asked for on an error answer of any status (503, 500, 429, 403, ...),
  // which the org's requests must honour: the reference says to honour Retry-After whenever it
  // is present, and the generated SDKs wait on it for 5xx too. A 429 passes it to
  // RateGate::on_rate_limited (which also adapts the rate); every other status to
  // RateGate::on_server_wait. Nothing for a 2xx (the body is the answer, not a wait) or when
  // no answer came.
  std::optional<Duration> requested_wait() const noexcept {
    if (http_status == 0 || (http_status >= 200 && http_status < 300)) return std::nullopt;
    return retry_after;
  }
};

// Classifies a transport failure. `request_sent` is true once any byte of the request was
// written; `detail` (e.g. "timed out after 60 s", "connection reset") is kept as the message.
CallOutcome classify_transport_failure(bool request_sent, std::string detail);

struct HttpAnswer {
  int status = 0;
  std::string_view body;
  std::optional<std::string_view> retry_after;     // raw `Retry-After` header
  std::optional<std::string_view> retry_after_ms;  // raw `retry-after-ms` header
};

// Classifies a complete HTTP response. A 2xx is `ok` here; the caller downgrades it to
// `ambiguous` if the body then fails to parse. `now` resolves an HTTP-date Retry-After.
CallOutcome classify_response(const HttpAnswer& answer, TimePoint now);

// Parses Retry-After (delta-seconds or IMF-fixdate/RFC 850/asctime HTTP-date) and
// retry-after-ms. Negative, unparseable or absurd (> 1 day) values yield nullopt; a date in the
// past yields zero.
std::optional<Duration> parse_retry_after(std::string_view value, TimePoint now);
std::optional<Duration> parse_retry_after_ms(std::string_view value);

}  // namespace devin_orch::core
