// What a job is: its definition (what to ask Devin), the daemon's state for it, and the record
// the store keeps. Plain value types shared by every module.
#pragma once

#include "devin_orch/core/notify_target.hpp"
#include "devin_orch/core/stall_rule.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

// A session secret by reference: its value is read from the environment or a file when the
// session is created, sent once, and never stored, logged or kept in the job's record.
struct SessionSecretRef {
  enum class Source { env, file };
  std::string key;                // the secret's name inside the session
  Source source = Source::env;
  std::string name;               // environment variable name or file path
  bool sensitive = true;

  bool operator==(const SessionSecretRef&) const = default;
};

// The session a job asks for. Field names follow the v3 SessionCreateRequest. What values are
// valid is decided in one place, core/job_validation.hpp.
struct JobSpec {
  std::string prompt;
  std::optional<std::string> title;
  std::vector<std::string> tags;
  std::optional<std::string> create_as_user_id;
  std::optional<std::string> playbook_id;
  // The playbook the session's child sessions run (reference §12): a session given one spawns
  // children, which the daemon records, counts the ACUs of and terminates with the job.
  std::optional<std::string> child_playbook_id;
  std::optional<std::vector<std::string>> knowledge_ids;  // null = all, [] = none (API semantics)
  std::optional<std::vector<std::string>> secret_ids;
  std::vector<std::string> repos;
  std::optional<std::int64_t> max_acu_limit;
  std::optional<std::string> structured_output_schema;  // a JSON object, kept serialised
  std::optional<std::string> devin_mode;                 // passed through: an open set
  // Keep the VM after the session stops so a message can wake it; false for disposable
  // sessions (which then cannot take follow-up messages once stopped). Absent: API default.
  std::optional<bool> resumable;
  std::vector<SessionSecretRef> session_secrets;
  // Files uploaded once each before the first create (POST .../attachments); the URLs the API
  // answers go in the create's attachment_urls. Absolute paths (readers resolve relative ones).
  std::vector<std::string> attachments;
  // Not sent to the API: the concurrency group the job counts in (core/concurrency_groups.hpp).
  std::optional<std::string> concurrency_key;

  bool operator==(const JobSpec&) const = default;
};

// When a session's status means its job is done.
enum class CompletionPolicy {
  on_stop,      // done on exit, error or suspended (the API's own examples)
  on_finished,  // also done on running + status_detail finished
};

// What to do when a session waits for user input (running + waiting_for_user).
struct WaitingPolicy {
  enum class Action { keep_waiting, finish_after, send_message };
  Action action = Action::keep_waiting;
  std::chrono::milliseconds finish_after{0};  // finish_after: how long to wait before done
  std::string message;                         // send_message: sent once

  bool operator==(const WaitingPolicy&) const = default;
};

// How the daemon runs a job, beyond what the session is asked to do.
struct JobControls {
  std::optional<std::int64_t> not_before_ms;  // do not start before this wall time
  std::optional<std::int64_t> deadline_ms;    // terminate the session and end timed_out after
  std::optional<std::int64_t> max_attempts;   // create attempts; default from the config
  WaitingPolicy on_waiting_for_user;
  std::vector<std::string> messages;          // follow-ups, one each time the session goes idle
  std::optional<CompletionPolicy> complete_on;  // default from the config
  bool fan_out_enterprise = false;  // one child job per organisation of the enterprise
  // Where this job's own notifications go (a producer's callback), beside the configured ones.
  std::vector<NotifyTarget> notify;
  StallOverride stall;  // over the configured `stall` section (core/stall_rule.hpp)

  bool operator==(const JobControls&) const = default;
};

// A job as producers submit it: a key that is its identity forever, plus the spec.
struct JobDefinition {
  std::string key;
  std::optional<std::string> org_id;  // empty: the configured default organisation
  std::int64_t priority = 0;          // higher first
  JobSpec spec;
  JobControls controls;

  bool operator==(const JobDefinition&) const = default;
};

// The daemon's own view of a job. Terminal states never change again (except by an operator's
// explicit retry, which starts a new generation).
enum class JobState {
  queued,     // waiting to be dispatched
  creating,   // create intent committed; a session may or may not exist yet
  running,    // session id known; being polled
  finished,   // session ended normally (exit, or suspended for inactivity)
  failed,     // session ended in status `error`
  suspended,  // session suspended for a billing/quota reason
  dead,       // no session could be created (attempts exhausted or request rejected)
  lost,       // the session we created vanished (404)
  invalid,    // the definition could not be used
  cancelled,  // an operator cancelled it
  timed_out,  // its deadline passed and the session was terminated
  stalled,    // its session made no progress for stall_after and was terminated
};

std::string_view to_string(JobState state) noexcept;
std::optional<JobState> parse_job_state(std::string_view text) noexcept;
bool is_terminal(JobState state) noexcept;

// The persisted record of one job.
struct JobRecord {
  std::int64_t id = 0;
  JobDefinition definition;
  JobState state = JobState::queued;
  std::int64_t generation = 0;   // bumped by an operator retry; part of the creation tag
  std::int64_t attempts = 0;     // create requests of this generation that count (answered,
                                 // or sent and not proven cut short by a restart)
  std::int64_t cut_short = 0;    // create requests whose answer no process saw (a crash)
  std::string creation_tag;      // tag every session of this job/generation carries
  std::optional<std::int64_t> intent_at_ms;  // first create intent of this generation
  std::optional<std::string> session_id;
  std::optional<std::string> session_url;
  std::optional<std::string> status;
  std::optional<std::string> status_detail;
  std::optional<std::string> last_error;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> started_at_ms;  // its session was recorded (running)
  // Runtime progress of the controls, persisted so a restart continues where it stopped.
  std::int64_t messages_sent = 0;
  std::optional<std::int64_t> waiting_since_ms;  // first seen waiting for the user
  int cancel_requested = 0;                      // 0 no, 1 cancel, 2 cancel and archive
  std::optional<std::string> parent_key;         // set on fan-out children
  // Until then the job's tag is checked for a second session: it was created again after a
  // create that may have landed, and the list may show that one late.
  std::optional<std::int64_t> duplicate_watch_until_ms;
  // The session's child sessions as last recorded (reference §12); ended with the job.
  std::vector<std::string> child_session_ids;
  // Since when its session is stalled, as last reported (core/stall_rule.hpp); none while it
  // progresses. A restart does not report (or message) the same stall again.
  std::optional<std::int64_t> stalled_since_ms;
};

// The tag that marks every session created for (key, generation). Stable across restarts and
// processes, so a lookup by tag finds a session whatever happened to the create call.
std::string creation_tag(std::string_view job_key, std::int64_t generation);

}  // namespace devin_orch::core
