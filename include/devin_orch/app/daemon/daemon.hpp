// The daemon: one Asio event loop that dispatches queued jobs, drives each job's creation
// machine, polls live sessions in batches through each organisation's rate gate, and drains
// gracefully on SIGTERM/SIGINT.
#pragma once

#include "devin_orch/app/config/config.hpp"
#include "devin_orch/core/time.hpp"

#include <string>

namespace devin_orch::app {

struct DaemonOptions {
  bool until_idle = false;  // exit 0 once no job is queued or in flight
  // With until_idle: the period of the progress line (jobs by state); zero: none.
  core::Duration progress_every = std::chrono::seconds{10};
};

// Exit codes: 0 stopped cleanly (signal or idle); 1 runtime failure (database unusable, or
// --until-idle with jobs that cannot progress because their organisation is paused);
// 2 invalid input (a job file that cannot be parsed).
int run_daemon(const Config& config, const std::string& api_key, const DaemonOptions& options);

}  // namespace devin_orch::app
