// Token, session cookie and CSRF checks (web_auth.hpp).
#include "devin_orch/app/dashboard/web_auth.hpp"

#include "devin_orch/core/webhook_signature.hpp"

#include <array>
#include <cstdint>

namespace devin_orch::app::dashboard {
namespace {

std::string hex(const std::array<std::uint8_t, 32>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const auto byte : bytes) {
    out += kHex[byte >> 4U];
    out += kHex[byte & 0xFU];
  }
  return out;
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Hashing first gives equal-length inputs to the byte loop, whatever was sent.
  constexpr std::string_view kKey = "devin-orch constant-time compare";
  const auto left = core::hmac_sha256(kKey, a);
  const auto right = core::hmac_sha256(kKey, b);
  unsigned difference = 0;
  for (std::size_t i = 0; i < left.size(); ++i) difference |= left[i] ^ right[i];
  return difference == 0 && a.size() == b.size();
}

WebAuth::WebAuth(std::optional<std::string> token, std::string secret)
    : token_{std::move(token)}, secret_{std::move(secret)} {
  if (token_) {
    session_ = hex(core::hmac_sha256(secret_, "session:" + *token_));
    csrf_ = hex(core::hmac_sha256(secret_, "csrf:" + session_));
  }
}

bool WebAuth::token_matches(std::string_view candidate) const noexcept {
  return token_ && constant_time_equal(candidate, *token_);
}

bool WebAuth::session_matches(std::string_view cookie) const noexcept {
  return token_ && constant_time_equal(cookie, session_);
}

bool WebAuth::csrf_matches(std::string_view field) const noexcept {
  return token_ && constant_time_equal(field, csrf_);
}

}  // namespace devin_orch::app::dashboard
