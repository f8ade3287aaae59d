// Deterministic randomness for the simulator: every random choice derives from --seed, so two
// runs with the same seed and the same request sequence behave identically.
#pragma once

#include <cstdint>
#include <string_view>

namespace devin_orch::sim {

// SplitMix64 finaliser: a strong 64-bit mix, used both as a hash and as a stream step.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// One independent stream per concern (ids, faults, ...), so enabling one kind of randomness
// never shifts the choices of another.
class Rng {
 public:
  constexpr Rng(std::uint64_t seed, std::uint64_t stream) noexcept
      : state_{mix(seed) ^ mix(stream * 0xd1b54a32d192ed03ULL)} {}

  constexpr std::uint64_t next() noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix(state_);
  }
  // Uniform in [0, 1).
  constexpr double uniform() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
  }

 private:
  std::uint64_t state_;
};

}  // namespace devin_orch::sim
