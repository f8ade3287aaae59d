// Follow-up messages, the waiting-for-user policy and per-job completion, decided per poll.
#include "devin_orch/core/session_policy.hpp"

#include "devin_orch/core/notify_event.hpp"

namespace devin_orch::core {

SessionPolicy::SessionPolicy(JobControls controls, CompletionPolicy default_completion,
                             std::int64_t messages_sent,
                             std::optional<std::int64_t> waiting_since_ms)
    : controls_{controls == JobControls{}
                    ? nullptr
                    : std::make_shared<const JobControls>(std::move(controls))},
      default_completion_{default_completion},
      messages_sent_{messages_sent},
      waiting_since_ms_{waiting_since_ms} {}

const JobControls& SessionPolicy::controls() const noexcept {
  static const JobControls none;
  return controls_ ? *controls_ : none;
}

SessionDecision SessionPolicy::observe(const SessionObservation& seen) {
  auto decision = decide(seen);
  // A set waiting mark means finish_after is counting: the same status later may end the job.
  quiet_if_unchanged_ = !decision.verdict.terminal && !decision.message &&
                        !decision.waiting_since_changed && !message_in_flight_ &&
                        !waiting_since_ms_;
  return decision;
}

SessionDecision SessionPolicy::decide(const SessionObservation& seen) {
  SessionDecision decision;
  const std::string detail = seen.status_detail.value_or("");
  decision.verdict = judge_session(
      seen.status,
      seen.status_detail ? std::optional<std::string_view>{*seen.status_detail} : std::nullopt,
      controls().complete_on.value_or(default_completion_));

  const bool waiting_for_user = waits_for_user(seen.status, seen.status_detail);
  // Idle: the agent stopped and waits; a message makes it work again (a session suspended for
  // inactivity resumes on a message).
  const bool idle = (seen.status == "running" &&
                     (detail == "finished" || detail == "waiting_for_user")) ||
                    (seen.status == "suspended" && detail == "inactivity");
  const std::string status_key = seen.status + "/" + detail;
  if (!idle) busy_since_message_ = true;
  const bool idle_again = idle && (busy_since_message_ ||
                                   seen.updated_at > messaged_at_updated_at_ ||
                                   status_key != messaged_status_);

  if (idle_again && !message_in_flight_ && !decision.verdict.billing) {
    const auto follow_ups = static_cast<std::int64_t>(controls().messages.size());
    if (messages_sent_ < follow_ups) {
      decision.message = controls().messages[static_cast<std::size_t>(messages_sent_)];
    } else if (waiting_for_user && messages_sent_ == follow_ups &&
               controls().on_waiting_for_user.action == WaitingPolicy::Action::send_message) {
      decision.message = controls().on_waiting_for_user.message;
    }
  }
  if (decision.message) {
    decision.verdict = SessionVerdict{};  // not done: the message sets it to work again
    ++messages_sent_;
    message_in_flight_ = true;
    messaged_at_updated_at_ = seen.updated_at;
    messaged_status_ = status_key;
    busy_since_message_ = false;
    return decision;
  }
  if (decision.verdict.terminal ||
      controls().on_waiting_for_user.action != WaitingPolicy::Action::finish_after) {
    return decision;
  }
  // finish_after: the job is done once the session has waited long enough for the user.
  if (!waiting_for_user) {
    if (waiting_since_ms_) {
      waiting_since_ms_.reset();
      decision.waiting_since_changed = true;
    }
    return decision;
  }
  const std::int64_t now_ms = to_epoch_ms(seen.now);
  if (!waiting_since_ms_) {
    waiting_since_ms_ = now_ms;
    decision.waiting_since_changed = true;
  } else if (now_ms - *waiting_since_ms_ >= controls().on_waiting_for_user.finish_after.count()) {
    decision.verdict = SessionVerdict{
        .terminal = true,
        .state = JobState::finished,
        .reason = "waited " + std::to_string(controls().on_waiting_for_user.finish_after.count() /
                                             1000) +
                  " s for user input (on_waiting_for_user: finish_after)"};
  }
  return decision;
}

}  // namespace devin_orch::core
