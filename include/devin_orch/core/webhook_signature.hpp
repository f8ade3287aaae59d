// How a webhook delivery is signed, as Stripe signs its own: HMAC-SHA256 of "<t>.<raw body>"
// with the receiver's secret, sent as `Devin-Orch-Signature: t=<unix seconds>,v1=<hex>`.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace devin_orch::core {

inline constexpr std::string_view kSignatureHeader = "Devin-Orch-Signature";

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view message) noexcept;

// "t=1700000000,v1=5257a869..." for `body` sent at `unix_seconds`.
std::string signature_header(std::string_view secret, std::int64_t unix_seconds,
                             std::string_view body);

// Checks a header as a receiver would: the t= and v1= parts, the HMAC (constant time), and
// that t is within `tolerance_seconds` of `now_seconds` (replay protection).
bool verify_signature(std::string_view header, std::string_view secret, std::string_view body,
                      std::int64_t now_seconds, std::int64_t tolerance_seconds);

}  // namespace devin_orch::core
