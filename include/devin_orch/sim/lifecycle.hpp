// A simulated session's status as a pure function of elapsed time: the phase timeline of one
// "run" (creation, resume after a message, or a pinned state) and the ending path it follows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::sim {

using TimeMs = std::int64_t;  // milliseconds since the Unix epoch

// Base phase durations in seconds, multiplied by --time-factor.
inline constexpr double kNewSeconds = 2.0;
inline constexpr double kCreatingSeconds = 2.0;
inline constexpr double kClaimedSeconds = 5.0;
inline constexpr double kResumingSeconds = 5.0;
inline constexpr double kWorkingSeconds = 30.0;
inline constexpr double kEndingSeconds = 10.0;  // running/finished or running/waiting_for_user
// ACUs accrue only while running, per base (unscaled) second, so time factors do not change bills.
inline constexpr double kAcusPerRunningSecond = 0.01;

// How a run ends once its working phase is over.
enum class Ending {
  finished_then_inactivity,  // running/finished 10 s -> suspended/inactivity
  exit,                      // running/finished 10 s -> exit
  waiting_then_inactivity,   // running/waiting_for_user 10 s -> suspended/inactivity
  error,                     // -> error
  suspend,                   // -> suspended/<detail>
  hold,                      // running/working forever
};

struct Path {
  Ending ending = Ending::finished_then_inactivity;
  std::string suspend_detail;  // only for Ending::suspend
  // Ending::suspend only: suspend as soon as the session would start working, without any
  // running time (a quota already exhausted when the session was created).
  bool before_work = false;
};

// Prompt markers ([sim:exit], [sim:finished], [sim:waiting], [sim:error], [sim:suspend=x],
// [sim:hold]) win; otherwise a hash of (seed, prompt) picks by the default weights
// finished 40 %, exit 30 %, waiting 15 %, error 10 %, out_of_credits 5 %.
Path choose_path(std::uint64_t seed, std::string_view prompt);

enum class RunKind {
  initial,           // new -> (creating) -> claimed -> running/working -> ending
  resume,            // resuming -> running/working -> ending (message to a suspended session)
  continue_working,  // running/working -> ending (message while running and idle)
  pinned,            // one fixed status forever (terminate, archive, /_sim/.../force)
};

struct SessionRun {
  RunKind kind = RunKind::initial;
  TimeMs origin = 0;      // when the run started
  bool creating = false;  // an initial run passes through `creating`
  bool hold = false;      // the working phase never ends (--hold-running at run start)
  std::string pinned_status;                // RunKind::pinned only
  std::optional<std::string> pinned_detail;  // RunKind::pinned only
};

struct Phase {
  std::string_view status;                 // views into static text, the Path or the SessionRun
  std::optional<std::string_view> detail;
  TimeMs since = 0;                        // when status/detail last changed: updated_at
  double acus = 0.0;                       // consumed during this run so far
  bool reached_finished = false;           // this run has shown running/finished
};

// `time_factor` must be > 0.
Phase phase_at(const SessionRun& run, const Path& path, double time_factor, TimeMs now);

// Counted against --max-concurrent-sessions: anything not exit, error or suspended.
bool is_active_status(std::string_view status) noexcept;

}  // namespace devin_orch::sim
