// The bookkeeping behind incremental status polls: per-session marks in server time, the
// batch's updated_after, and the switch back to full polls.
#include "devin_orch/core/incremental_poll.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace devin_orch::core {

IncrementalPoll::IncrementalPoll(IncrementalPollPolicy policy) noexcept
    : policy_{policy}, enabled_{policy.full_every > Duration::zero()} {}

SyncMark IncrementalPoll::seen_whole(std::int64_t server_time, TimePoint now) const noexcept {
  // A zero or missing timestamp is no evidence of the server's time.
  return {.known_until = server_time > 0 ? server_time : -1,
          .full_due = now + policy_.full_every};
}

std::optional<std::int64_t> IncrementalPoll::updated_after(std::span<const SyncMark> marks,
                                                           TimePoint now) const noexcept {
  if (!enabled_ || marks.empty()) return std::nullopt;
  std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
  for (const auto& mark : marks) {
    if (mark.known_until <= 0 || now >= mark.full_due) return std::nullopt;
    oldest = std::min(oldest, mark.known_until);
  }
  return oldest - 1;
}

SyncMark IncrementalPoll::polled(const SyncMark& mark, std::int64_t proven_until, bool full,
                                 TimePoint now) const noexcept {
  return {.known_until = std::max(mark.known_until, proven_until),
          .full_due = full ? now + policy_.full_every : mark.full_due};
}

void IncrementalPoll::saw_server_time(std::int64_t server_time) noexcept {
  server_time_ = std::max(server_time_, server_time);
}

bool IncrementalPoll::turn_off() noexcept {
  return std::exchange(enabled_, false);
}

}  // namespace devin_orch::core
