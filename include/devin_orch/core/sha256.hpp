// SHA-256 (FIPS 180-4), small and dependency-free, so the pure core can derive creation tags
// that are collision-free in practice without linking OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace devin_orch::core {

std::array<std::uint8_t, 32> sha256(std::string_view data) noexcept;
std::string sha256_hex(std::string_view data);

}  // namespace devin_orch::core
