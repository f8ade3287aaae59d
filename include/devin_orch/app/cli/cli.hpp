// The command line: `devin-orch <subcommand> [options]`. Exit codes are stable and documented
// in README.md: 0 ok, 1 runtime failure, 2 bad usage or invalid input/config.
#pragma once

namespace devin_orch::app {

int run_cli(int argc, char** argv);

}  // namespace devin_orch::app
