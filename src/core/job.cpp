// JobState names (and their list, job_state_list.hpp) and the creation tag derivation.
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_state_list.hpp"

#include "devin_orch/core/sha256.hpp"

#include <array>
#include <utility>

namespace devin_orch::core {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 12> kStateNames{{
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
    {JobState::stalled, "stalled"},
}};

constexpr auto kAllStates = [] {
  std::array<JobState, kStateNames.size()> states{};
  for (std::size_t i = 0; i < states.size(); ++i) states[i] = kStateNames[i].first;
  return states;
}();

}  // namespace

std::span<const JobState> all_job_states() noexcept { return kAllStates; }

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
  // 128 bits of SHA-256: distinct keys never share a tag in practice, and the tag reveals
  // nothing of the key (which may name a customer or a ticket).
  return "orch-" + sha256_hex(job_key).substr(0, 32) + "-g" + std::to_string(generation);
}

}  // namespace devin_orch::core
