// Event type names, target filters and the URL rule for notification receivers.
#include "devin_orch/core/notify_target.hpp"

#include <algorithm>
#include <cctype>

namespace devin_orch::core {

std::string_view to_string(EventType type) noexcept {
  switch (type) {
    case EventType::job_finished: return "job.finished";
    case EventType::job_failed: return "job.failed";
    case EventType::job_suspended: return "job.suspended";
    case EventType::job_dead: return "job.dead";
    case EventType::job_lost: return "job.lost";
    case EventType::job_timed_out: return "job.timed_out";
    case EventType::job_cancelled: return "job.cancelled";
    case EventType::job_waiting_for_user: return "job.waiting_for_user";
    case EventType::job_duplicate_terminated: return "job.duplicate_terminated";
    case EventType::job_stalled: return "job.stalled";
    case EventType::org_paused: return "org.paused";
    case EventType::org_resumed: return "org.resumed";
  }
  return "unknown";
}

std::optional<EventType> parse_event_type(std::string_view text) noexcept {
  for (const EventType type : kAllEventTypes) {
    if (to_string(type) == text) return type;
  }
  return std::nullopt;
}

bool is_job_event(EventType type) noexcept {
  return type != EventType::org_paused && type != EventType::org_resumed;
}

bool wants(const NotifyTarget& target, EventType type, std::span<const std::string> job_tags) {
  if (!target.events.empty() &&
      std::find(target.events.begin(), target.events.end(), type) == target.events.end()) {
    return false;
  }
  if (target.tags.empty()) return true;
  return std::any_of(target.tags.begin(), target.tags.end(), [&](const std::string& tag) {
    return std::find(job_tags.begin(), job_tags.end(), tag) != job_tags.end();
  });
}

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool is_loopback_host(std::string_view host) {
  const std::string name = lower(host);
  if (name == "localhost" || name == "[::1]") return true;
  // 127.0.0.0/8 written as a dotted quad.
  if (!name.starts_with("127.")) return false;
  int parts = 0;
  std::size_t digits = 0;
  for (const char ch : name) {
    if (ch == '.') {
      if (digits == 0 || digits > 3) return false;
      ++parts;
      digits = 0;
    } else if (std::isdigit(static_cast<unsigned char>(ch)) != 0) {
      ++digits;
    } else {
      return false;
    }
  }
  return parts == 3 && digits > 0 && digits <= 3;
}

}  // namespace

std::optional<std::string> notify_url_problem(std::string_view url) {
  if (url.empty()) return "must not be empty";
  for (const char ch : url) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte <= 0x20 || byte == 0x7f) return "must not contain spaces or control characters";
  }
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "must be an https:// URL";
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "https" && scheme != "http") return "must be an https:// URL";
  std::string_view rest = url.substr(scheme_end + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    return "must not carry credentials (sign with secret_file instead)";
  }
  std::string_view host = authority;
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') == std::string_view::npos ? host.size()
                                                                     : host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.empty()) return "has no host";
  if (scheme == "http" && !is_loopback_host(host)) {
    return "plain http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost)";
  }
  return std::nullopt;
}

}  // namespace devin_orch::core
