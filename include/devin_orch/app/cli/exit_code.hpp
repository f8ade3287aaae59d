// The CLI's exit codes: one enum for every command, the stable contract docs/cli.md and the
// README state.
#pragma once

namespace devin_orch::app {

enum class ExitCode : int {
  ok = 0,
  failure = 1,      // runtime failure: the database is unusable, an internal error
  usage = 2,        // bad usage or invalid input/config
  unknown_job = 3,  // no job has that key
  not_allowed = 4,  // not allowed in the job's current state
  jobs_failed = 5,  // a job ended in a state counted as failure (`wait`, `run --fail-on`)
  timed_out = 6,    // `wait --timeout` passed before every job ended
};

constexpr int to_int(ExitCode code) noexcept { return static_cast<int>(code); }

}  // namespace devin_orch::app
