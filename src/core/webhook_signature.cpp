// HMAC-SHA256 (RFC 2104) over core's SHA-256, and the signature header's format.
#include "devin_orch/core/webhook_signature.hpp"

#include "devin_orch/core/sha256.hpp"

#include <charconv>
#include <optional>
#include <cstdlib>

namespace devin_orch::core {
namespace {

constexpr std::size_t kBlock = 64;

std::string hex(const std::array<std::uint8_t, 32>& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (const std::uint8_t byte : digest) {
    out += kDigits[byte >> 4U];
    out += kDigits[byte & 0xFU];
  }
  return out;
}

}  // namespace

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view message) noexcept {
  std::string block(kBlock, '\0');
  if (key.size() > kBlock) {
    const auto hashed = sha256(key);
    std::copy(hashed.begin(), hashed.end(), block.begin());
  } else {
    std::copy(key.begin(), key.end(), block.begin());
  }
  std::string inner(kBlock, '\0');
  std::string outer(kBlock, '\0');
  for (std::size_t i = 0; i < kBlock; ++i) {
    inner[i] = static_cast<char>(block[i] ^ 0x36);
    outer[i] = static_cast<char>(block[i] ^ 0x5c);
  }
  inner.append(message);
  const auto inner_digest = sha256(inner);
  outer.append(reinterpret_cast<const char*>(inner_digest.data()), inner_digest.size());
  return sha256(outer);
}

std::string signature_header(std::string_view secret, std::int64_t unix_seconds,
                             std::string_view body) {
  const std::string t = std::to_string(unix_seconds);
  std::string signed_text = t;
  signed_text += '.';
  signed_text.append(body);
  return "t=" + t + ",v1=" + hex(hmac_sha256(secret, signed_text));
}

bool verify_signature(std::string_view header, std::string_view secret, std::string_view body,
                      std::int64_t now_seconds, std::int64_t tolerance_seconds) {
  std::optional<std::int64_t> t;
  std::string_view v1;
  while (!header.empty()) {
    const auto comma = header.find(',');
    const std::string_view part = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    if (part.starts_with("t=")) {
      std::int64_t value = 0;
      const auto digits = part.substr(2);
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (ec != std::errc{} || end != digits.data() + digits.size()) return false;
      t = value;
    } else if (part.starts_with("v1=")) {
      v1 = part.substr(3);
    }
  }
  if (!t || v1.size() != 64) return false;
  if (std::llabs(now_seconds - *t) > tolerance_seconds) return false;
  const std::string expected = signature_header(secret, *t, body);
  const std::string_view expected_v1 = std::string_view{expected}.substr(expected.find("v1=") + 3);
  unsigned diff = 0;
  for (std::size_t i = 0; i < 64; ++i) diff |= static_cast<unsigned>(expected_v1[i] ^ v1[i]);
  return diff == 0;
}

}  // namespace devin_orch::core
