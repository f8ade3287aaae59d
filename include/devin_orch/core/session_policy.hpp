// What one observation of a live session means for its job, given the job's controls:
// keep polling, end the job, or send the session a message first (a follow-up, or the answer
// of on_waiting_for_user). Sans-I/O: the daemon feeds observations and performs the decision.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/session_verdict.hpp"
#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace devin_orch::core {

struct SessionObservation {
  std::string status;
  std::optional<std::string> status_detail;
  std::int64_t updated_at = 0;  // the API's epoch seconds
  TimePoint now;
};

struct SessionDecision {
  SessionVerdict verdict;              // terminal: the job ends in verdict.state
  std::optional<std::string> message;  // send this first (the job is not done)
  // The "waiting for user since" mark changed and should be persisted (nullopt: cleared).
  bool waiting_since_changed = false;
};

class SessionPolicy {
 public:
  // `messages_sent` and `waiting_since_ms` come from the store, so a restart continues.
  SessionPolicy(JobControls controls, CompletionPolicy default_completion,
                std::int64_t messages_sent, std::optional<std::int64_t> waiting_since_ms);

  SessionDecision observe(const SessionObservation& observation);

  // The message returned by observe() was handed over (sent or failed): the next one may go.
  void message_done() noexcept { message_in_flight_ = false; }

  // Observing the last observation again, at any later time, would decide nothing: no
  // message, no ending, no waiting mark to persist. Only then may a poll that leaves the
  // session out as unchanged (an incremental poll) stand in for seeing it. False while a
  // message is in flight (once it is done, the same status may call for the next one) and
  // while finish_after counts the time a session waits for the user.
  bool quiet_if_unchanged() const noexcept { return quiet_if_unchanged_; }

  std::int64_t messages_sent() const noexcept { return messages_sent_; }
  std::optional<std::int64_t> waiting_since_ms() const noexcept { return waiting_since_ms_; }

 private:
  const JobControls& controls() const noexcept;
  SessionDecision decide(const SessionObservation& observation);

  // Null for a job without controls, as most are: the daemon keeps a policy per tracked
  // session, and controls held in place would make every one of them larger for the few jobs
  // that have any.
  std::shared_ptr<const JobControls> controls_;
  CompletionPolicy default_completion_;
  std::int64_t messages_sent_;
  std::optional<std::int64_t> waiting_since_ms_;
  bool message_in_flight_ = false;
  // How the session looked when we last messaged it. It counts as idle again only once it
  // visibly moved on (busy, another status, or a later updated_at), so a stale "finished"
  // does not get the next message. updated_at alone is too coarse (whole seconds).
  std::int64_t messaged_at_updated_at_ = -1;
  std::string messaged_status_;
  bool busy_since_message_ = true;
  bool quiet_if_unchanged_ = false;
};

}  // namespace devin_orch::core
