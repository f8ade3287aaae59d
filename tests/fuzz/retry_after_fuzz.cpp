// libFuzzer target for response classification (core::classify_response) and the Retry-After
// parsers: whatever the headers say, a wait is absent or between zero and one day.
#include "devin_orch/core/call_outcome.hpp"

#include "fuzz_check.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace {

using devin_orch::core::Duration;
using namespace std::chrono_literals;

void check_wait(const std::optional<Duration>& wait) {
  if (!wait) return;
  DEVIN_ORCH_FUZZ_CHECK(*wait >= Duration{0}, "negative Retry-After wait");
  DEVIN_ORCH_FUZZ_CHECK(*wait <= Duration{24h}, "Retry-After wait longer than one day");
}

// Splits off the text up to the next '\n' (or the rest).
std::string_view next_field(std::string_view& rest) {
  const std::size_t end = rest.find('\n');
  const std::string_view field = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  return field;
}

}  // namespace

// Input layout: 2 bytes status, 1 byte header presence flags, 8 bytes clock (epoch ms, so dates
// on either side of `now` are reached), then "Retry-After\nretry-after-ms\nbody".
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace core = devin_orch::core;
  if (size < 11) return 0;
  const int status = (data[0] << 8 | data[1]) % 1000;
  const std::uint8_t flags = data[2];
  std::int64_t now_ms = 0;
  for (int i = 0; i < 8; ++i) now_ms = (now_ms << 8) | data[3 + i];
  // Keep `now` within years 1970..2200 (the daemon never sees a clock outside that).
  now_ms = static_cast<std::int64_t>(static_cast<std::uint64_t>(now_ms) % 7'258'118'400'000ULL);
  const core::TimePoint now = core::from_epoch_ms(now_ms);

  std::string_view rest(reinterpret_cast<const char*>(data) + 11, size - 11);
  const std::string_view retry_after = next_field(rest);
  const std::string_view retry_after_ms = next_field(rest);
  const std::string_view body = rest;

  check_wait(core::parse_retry_after(retry_after, now));
  check_wait(core::parse_retry_after_ms(retry_after_ms));

  core::HttpAnswer answer{.status = status, .body = body};
  if (flags & 1U) answer.retry_after = retry_after;
  if (flags & 2U) answer.retry_after_ms = retry_after_ms;
  const core::CallOutcome outcome = core::classify_response(answer, now);
  check_wait(outcome.retry_after);
  DEVIN_ORCH_FUZZ_CHECK(outcome.http_status == status, "classification changed the status");
  if (status >= 200 && status < 300) {
    DEVIN_ORCH_FUZZ_CHECK(outcome.ok(), "a 2xx was not classified ok");
  }
  if (status == 429) {
    DEVIN_ORCH_FUZZ_CHECK(outcome.cls == core::CallClass::rate_limited ||
                              outcome.cls == core::CallClass::forbidden,
                          "a 429 was classified as neither rate_limited nor billing");
  }
  return 0;
}
