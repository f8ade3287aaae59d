// What the daemon tells the outside world about: the notification event types, and where a
// job's or the daemon's notifications go (a webhook or a Slack incoming webhook) with filters.
// Plain values; a job's own targets are part of its definition (JobControls::notify).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

// The events, as named on the wire ("job.finished", "org.paused", ...).
enum class EventType {
  job_finished,
  job_failed,
  job_suspended,
  job_dead,
  job_lost,
  job_timed_out,
  job_cancelled,
  job_waiting_for_user,      // the session waits for its user (first seen so)
  job_duplicate_terminated,  // a second session carrying the job's tag was terminated
  job_stalled,               // the session made no progress for stall_after (and, when the
                             // job's state is `stalled`, was terminated for it)
  org_paused,
  org_resumed,
};

inline constexpr EventType kAllEventTypes[] = {
    EventType::job_finished,  EventType::job_failed,    EventType::job_suspended,
    EventType::job_dead,      EventType::job_lost,      EventType::job_timed_out,
    EventType::job_cancelled, EventType::job_waiting_for_user,
    EventType::job_duplicate_terminated, EventType::job_stalled, EventType::org_paused, EventType::org_resumed,
};

std::string_view to_string(EventType type) noexcept;
std::optional<EventType> parse_event_type(std::string_view text) noexcept;
// "job.*" events concern one job (ordered per job); "org.*" ones an organisation.
bool is_job_event(EventType type) noexcept;

// One receiver of notifications.
struct NotifyTarget {
  enum class Format {
    webhook,  // POST of the event's JSON, signed (Devin-Orch-Signature)
    slack,    // POST of {"text": ...} to a Slack incoming webhook; unsigned (Slack checks none)
  };
  Format format = Format::webhook;
  std::string url;                         // https://, or http:// for a loopback host only
  std::optional<std::string> secret_file;  // webhook: the signing secret (owner-only file)
  std::vector<EventType> events;           // only these; empty: every event
  std::vector<std::string> tags;           // only jobs carrying one of these; empty: all

  bool operator==(const NotifyTarget&) const = default;
};

// Whether `target` takes an event of `type` about a job tagged `job_tags` (org events carry
// no tags, so a target filtering on tags never takes them).
bool wants(const NotifyTarget& target, EventType type, std::span<const std::string> job_tags);

// Why `url` may not receive notifications (nullopt: it may): https:// anywhere, http:// only
// to a loopback host (127.0.0.0/8, ::1, localhost), as for the API; no credentials in it.
std::optional<std::string> notify_url_problem(std::string_view url);

}  // namespace devin_orch::core
