// Logging set-up: spdlog to stderr, human text or one JSON object per line, times in UTC, and
// without timestamps under journald (it adds its own); log_event, for a line that also carries
// what it is about as fields of its own. While an event loop runs, the lines one turn of it
// logs reach stderr in one write.
#pragma once

#include "devin_orch/app/config/config.hpp"

#include <spdlog/spdlog.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace devin_orch::app {

// Returns an error message for an unknown level or format.
std::optional<std::string> setup_logging(const LogConfig& log);

// What a log line is about, for the machines that read JSON logs: each field that is set (not
// empty) becomes a member of the line's object, beside "ts", "level" and "msg", named as in
// `ls --json` (docs/logs.md). Text logs show the message alone, which says the same in words.
struct LogFields {
  std::string_view event;  // what happened, a stable snake_case name (docs/logs.md lists them)
  std::string_view key;    // the job's key
  std::string_view session_id;
  std::string_view org_id;
  std::string_view user_id;
  std::string_view state;   // the job's state
  std::string_view status;  // the session's status, as Devin reports it
  std::string_view event_id;  // a notification's event ("evt_..."), as `events ls` shows it
};

namespace detail {
// Lends `fields` to the formatter for the one line logged while it lives (same thread).
class LogFieldsInScope {
 public:
  explicit LogFieldsInScope(const LogFields& fields) noexcept;
  ~LogFieldsInScope();
  LogFieldsInScope(const LogFieldsInScope&) = delete;
  LogFieldsInScope& operator=(const LogFieldsInScope&) = delete;

 private:
  const LogFields* previous_;
};
}  // namespace detail

// spdlog's call with the fields of the line: `log_event(spdlog::level::info, {.event =
// "session_created", .key = key, .session_id = id}, "job '{}': created session {}", key, id)`.
// The views need only outlive the call.
template <class... Args>
void log_event(spdlog::level::level_enum level, const LogFields& fields,
               fmt::format_string<Args...> format, Args&&... args) {
  spdlog::logger& logger = *spdlog::default_logger_raw();
  if (!logger.should_log(level)) return;
  const detail::LogFieldsInScope in_scope{fields};
  logger.log(level, format, std::forward<Args>(args)...);
}

// Runs `write` once the event loop has finished the work at hand (asio::post does that).
using PostLogWrite = std::function<void(std::function<void()> write)>;

// While alive, info and debug lines are buffered and written together when the posted write
// runs: a busy daemon logs a few lines per job, and one write(2) per line is a system call
// the event loop waits for each time. A warning or error, or 64 KiB of lines, writes the buffer
// at once, in order. Destruction writes what is left, so a guard must not outlive its loop:
// create it after the io_context.
class DeferredLogWrites {
 public:
  explicit DeferredLogWrites(PostLogWrite post);
  ~DeferredLogWrites();
  DeferredLogWrites(const DeferredLogWrites&) = delete;
  DeferredLogWrites& operator=(const DeferredLogWrites&) = delete;
};

}  // namespace devin_orch::app
