// The command line's entry: the table of every command, the main help made from it, and
// dispatch: parse the command's declared options, answer --help, run it, turn a stray exception
// into exit 1. Commands live in their group's file (command.hpp lists them).
#include "devin_orch/app/cli/cli.hpp"

#include "command.hpp"

#include <array>
#include <iostream>

namespace devin_orch::app {
namespace {

// The main help's order; the groups' summaries come from here too.
constexpr std::array<const CommandInfo*, 16> kCommands{
    &run_info,   &status_info, &check_config_info, &healthcheck_info, &version_info,
    &enqueue_info, &ls_info,   &show_info,         &wait_info,        &cancel_info,
    &retry_info, &pause_info,  &resume_info,       &prune_info,       &delete_info,
    &events_info,
};

std::string main_help() {
  std::string help =
      "devin-orch: runs Devin sessions for queued jobs, exactly once each.\n\n"
      "Usage: devin-orch <command> [options]\n";
  const auto list = [&](CommandInfo::Group group, std::string_view title) {
    help += "\n";
    help += title;
    help += "\n";
    for (const auto* command : kCommands) {
      if (command->group != group) continue;
      std::string name{command->name};
      name.resize(std::max<std::size_t>(name.size() + 1, 14), ' ');
      help += "  " + name + std::string{command->summary} + "\n";
    }
  };
  list(CommandInfo::Group::daemon, "Commands:");
  list(CommandInfo::Group::jobs, "Job commands (see docs/cli.md):");
  help +=
      "\nRun `devin-orch <command> --help` for a command's options. Every command but version\n"
      "reads the configuration named by -c/--config FILE, else by $DEVIN_ORCH_CONFIG, else\n" +
      std::string{kDefaultConfigPath} +
      ".\n"
      "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid input/config,\n"
      "3 no job has that key, 4 not allowed in the job's current state,\n"
      "5 a job ended in a state counted as failure (wait, run --fail-on),\n"
      "6 wait --timeout passed first.\n";
  return help;
}

}  // namespace

std::span<const CommandInfo* const> commands() noexcept { return kCommands; }

const CommandInfo* find_command(std::string_view name) noexcept {
  for (const auto* command : kCommands) {
    if (command->name == name) return command;
  }
  return nullptr;
}

ExitCode run_command(std::string_view name, const std::vector<std::string>& argv,
                     const CommandIo& io) {
  const CommandInfo* info = find_command(name);
  if (info == nullptr) {
    io.err << "devin-orch: unknown command '" << name << "'\nsee 'devin-orch --help'\n";
    return ExitCode::usage;
  }
  ParsedArgs args;
  Command command{*info, args, io};
  if (const auto error = parse_args(argv, info->options, args)) return command.usage(*error);
  if (args.help) {
    io.out << info->help;
    return ExitCode::ok;
  }
  try {
    return info->run(command);
  } catch (const std::exception& e) {
    // Broken invariants end here: report them instead of aborting without a word.
    return command.fail(ExitCode::failure, std::string{"internal error: "} + e.what());
  }
}

int run_cli(int argc, char** argv) {
  if (argc < 2) {
    // Bad usage like any other: the reason and a pointer, not the whole help.
    std::cerr << "devin-orch: no command given\nsee 'devin-orch --help'\n";
    return to_int(ExitCode::usage);
  }
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << main_help();
    return to_int(ExitCode::ok);
  }
  const std::string_view name = command == "--version" ? "version" : command;
  return to_int(run_command(name, std::vector<std::string>(argv + 2, argv + argc),
                            CommandIo{std::cin, std::cout, std::cerr, core::wall_now()}));
}

}  // namespace devin_orch::app
