// When a running session counts as stalled, sans I/O: its updated_at (and, when the caller
// reads it, its message count) has not moved for `stall_after`. The poller keeps one StallWatch
// per session and acts on what it answers; the rule survives restarts because updated_at is the
// API's, not a memory of ours.
#pragma once

#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::core {

// What the daemon does about a stalled session, beyond reporting it (event, metric, `ls`).
enum class StallAction {
  report,     // nothing more
  message,    // send `message` once per stall (a session that moves again may stall again)
  terminate,  // terminate the session; the job ends `stalled`
};
std::string_view to_string(StallAction action) noexcept;
std::optional<StallAction> parse_stall_action(std::string_view text) noexcept;

// A job's own choice (its `stall_after` / `stall_action`), over the configured `stall` section.
struct StallOverride {
  std::optional<Duration> after;
  std::optional<StallAction> action;
  bool operator==(const StallOverride&) const = default;
};

struct StallPolicy {
  std::optional<Duration> stall_after;  // none: never stalled
  StallAction action = StallAction::report;
  std::string message = "Are you still making progress? Please continue, or say what blocks you.";
  bool operator==(const StallPolicy&) const = default;
};

// The policy a job runs under: its override, field by field, over the configured one.
StallPolicy stall_policy_for(const StallPolicy& configured, const StallOverride& job);

// Whether the rule watches a session with this status: one at work (running, status_detail
// working, none or one the daemon does not know). A session waiting for its user or for an
// approval, or done (finished), is idle by design, and other statuses are not running.
bool stall_applies(std::string_view status, const std::optional<std::string>& detail) noexcept;

// One poll's view of the session's progress.
struct ProgressMark {
  TimePoint updated_at{};                    // the session's updated_at
  std::optional<std::int64_t> message_count;  // none: not read by this poll
};

class StallWatch {
 public:
  explicit StallWatch(StallPolicy policy) : policy_{std::move(policy)} {}

  enum class Step {
    progressing,   // moved within stall_after (or no policy)
    stalled,       // stalled now, for the first time in this stall: report, then act
    still_stalled  // reported already: nothing new to do
  };
  // A poll of a running session at `now`.
  Step observe(const ProgressMark& mark, TimePoint now);
  // Whether the caller should read the session's message count (Devin's messages) before the
  // next observe(): once a quiet spell reaches half of stall_after (a baseline), again once it
  // reaches stall_after (before it may be called a stall), and every half stall_after while it
  // lasts. Never more: a session that moves is judged by updated_at alone, at no extra request.
  bool wants_message_count(TimePoint updated_at, TimePoint now) const noexcept;
  // The count could not be read at `now`: not asked again for half of stall_after.
  void message_count_unavailable(TimePoint now) noexcept { counted_at_ = now; }
  // Since when the session has not moved (the later of its updated_at and the last time the
  // message count was seen to change); nullopt before the first observation.
  std::optional<TimePoint> still_since() const noexcept { return since_; }
  const StallPolicy& policy() const noexcept { return policy_; }
  // After a restart: this stall (still since `since`) was already reported by an earlier
  // process, so the next observation that finds it stalled answers still_stalled, not stalled.
  void already_reported(TimePoint since) noexcept {
    since_ = since;
    reported_ = true;
  }

 private:
  StallPolicy policy_;
  std::optional<TimePoint> since_;
  std::optional<std::int64_t> messages_;
  std::optional<TimePoint> counted_at_;  // when the count was last read (or tried)
  bool reported_ = false;
};

}  // namespace devin_orch::core
