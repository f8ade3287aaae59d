// JobState names and the creation tag derivation.
#include "devin_orch/core/job.hpp"

#include <array>
#include <cstdio>
#include <utility>

namespace devin_orch::core {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 11> kStateNames{{
    {JobState::queued, "queued"},
    {JobState::creating, "creating"},
    {JobState::running, "running"},
    {JobState::finished, "finished"},
    {JobState::failed, "failed"},
    {JobState::suspended, "suspended"},
    {JobState::dead, "dead"},
    {JobState::lost, "lost"},
    {JobState::invalid, "invalid"},
    {JobState::cancelled, "cancelled"},
    {JobState::timed_out, "timed_out"},
}};

// FNV-1a, 64 bit: stable across platforms and releases, which std::hash is not.
std::uint64_t fnv1a(std::string_view text, std::uint64_t seed) noexcept {
  std::uint64_t hash = seed;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001B3ULL;
  }
  return hash;
}

}  // namespace

std::string_view to_string(JobState state) noexcept {
  for (const auto& [value, name] : kStateNames) {
    if (value == state) return name;
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(std::string_view text) noexcept {
  for (const auto& [value, name] : kStateNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

bool is_terminal(JobState state) noexcept {
  switch (state) {
    case JobState::queued:
    case JobState::creating:
    case JobState::running:
      return false;
    default:
      return true;
  }
}

std::string creation_tag(std::string_view job_key, std::int64_t generation) {
  // Two independent 64-bit hashes: a 128-bit id keeps collisions between keys out of reach.
  const std::uint64_t high = fnv1a(job_key, 0xCBF29CE484222325ULL);
  const std::uint64_t low = fnv1a(job_key, 0x84222325CBF29CE4ULL ^ 0x5bd1e995ULL);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "orch-%016llx%016llx-g%lld",
                static_cast<unsigned long long>(high), static_cast<unsigned long long>(low),
                static_cast<long long>(generation));
  return buffer;
}

}  // namespace devin_orch::core
