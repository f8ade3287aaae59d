// Incremental status polls: a batch may ask only for the sessions the server updated since the
// daemon last saw them (`updated_after`), and a session such an answer leaves out is proven
// unchanged, so it costs no parsing. Sans-I/O. "Server time" is the API's own epoch seconds,
// taken from its answers and never from our clock, so clock skew cannot hide a change.
#pragma once

#include "devin_orch/core/time.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

namespace devin_orch::core {

struct IncrementalPollPolicy {
  // Each session is polled in full (without updated_after) at least this often: only a full
  // poll notices a session that disappeared, and it checks that the server's updated_at
  // follows status changes. Zero: every poll is a full one.
  Duration full_every{std::chrono::minutes{5}};
};

// How fresh the daemon's view of one tracked session is.
struct SyncMark {
  // Every change of the session up to this server time has been seen; 0 or less: unknown,
  // so the next poll of it is a full one.
  std::int64_t known_until = -1;
  TimePoint full_due{};  // our clock: from then on its next poll is a full one
};

class IncrementalPoll {
 public:
  explicit IncrementalPoll(IncrementalPollPolicy policy) noexcept;

  // A session just seen whole (created, adopted) in an answer whose newest server timestamp
  // is `server_time` (0 or less: none, so the session's next poll is a full one).
  SyncMark seen_whole(std::int64_t server_time, TimePoint now) const noexcept;

  // The `updated_after` a batch of sessions with these marks may ask with, or nullopt for a
  // full poll: incremental polls are off, or a mark is unknown or due for its full poll. One
  // second before the oldest mark, so that the parameter is safe read as inclusive or as
  // exclusive.
  std::optional<std::int64_t> updated_after(std::span<const SyncMark> marks,
                                            TimePoint now) const noexcept;

  // A session's mark after a successful batch poll that returned it or (incremental) left it
  // out. `proven_until`: the newest server time known when the request left, or a newer
  // updated_at in the answer; the server's clock had reached it when it answered, so no change
  // before it went unseen. Not the newest time known when the answer arrives: an answer to a
  // later request may have overtaken this one.
  SyncMark polled(const SyncMark& mark, std::int64_t proven_until, bool full,
                  TimePoint now) const noexcept;

  // The newest server timestamp seen in any answer; -1 before the first.
  void saw_server_time(std::int64_t server_time) noexcept;
  std::int64_t server_time() const noexcept { return server_time_; }

  // A session seen with another status than before: true when its updated_at is at least what
  // the daemon knew of it, as an incremental poll needs. False means this server's updated_at
  // does not follow status changes; call turn_off().
  static bool change_is_dated(const SyncMark& mark, std::int64_t updated_at) noexcept {
    return updated_at >= mark.known_until;
  }

  bool enabled() const noexcept { return enabled_; }
  // Full polls only from now on (the server rejected updated_after, or mis-dates changes).
  // True the first time, so the reason is logged once.
  bool turn_off() noexcept;

 private:
  IncrementalPollPolicy policy_;
  bool enabled_;
  std::int64_t server_time_ = -1;
};

}  // namespace devin_orch::core
