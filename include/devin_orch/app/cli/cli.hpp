// The command line: `devin-orch <command> [options]`. One table of commands (cli.cpp), one
// argument parser (args.hpp), one set of exit codes (exit_code.hpp); each group of commands in
// its own file. Every output format is a contract: docs/cli.md.
#pragma once

#include "devin_orch/app/cli/args.hpp"
#include "devin_orch/app/cli/exit_code.hpp"
#include "devin_orch/core/time.hpp"

#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

// The configuration a command reads when neither --config nor $DEVIN_ORCH_CONFIG names one.
inline constexpr std::string_view kDefaultConfigPath = "/etc/devin-orch/devin-orch.yaml";

// Where a command reads and writes, and the wall time it acts at (injected so ages, cutoffs
// and recorded timestamps are testable).
struct CommandIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  core::TimePoint now;
  std::string_view default_config = kDefaultConfigPath;  // injected by tests
};

class Command;  // a command's context while it runs (src/app/cli/command.hpp)

struct CommandInfo {
  enum class Group { daemon, jobs };  // the main help's two lists
  std::string_view name;
  Group group = Group::jobs;
  std::string_view summary;  // one line for the main help
  std::string_view help;     // the command's --help text
  std::span<const OptionSpec> options;
  ExitCode (*run)(Command&) = nullptr;
};

// Every command, in the main help's order.
std::span<const CommandInfo* const> commands() noexcept;
const CommandInfo* find_command(std::string_view name) noexcept;

// Runs `command` with the arguments after its name. Never throws for bad input or database
// errors.
ExitCode run_command(std::string_view command, const std::vector<std::string>& args,
                     const CommandIo& io);

// main(): `devin-orch`, `devin-orch --help`, `--version`, or a command.
int run_cli(int argc, char** argv);

}  // namespace devin_orch::app
