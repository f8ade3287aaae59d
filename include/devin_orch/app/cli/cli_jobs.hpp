// The operator's job commands (enqueue, ls, show, cancel, retry, pause, resume, prune): option
// parsing, the database work and their stable text and JSON output (docs/cli.md).
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/time.hpp"

#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

// Exit codes shared by every command; 3 and 4 only come from the job commands.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failure = 1;      // runtime failure, e.g. the database is unusable
inline constexpr int usage = 2;        // bad usage or invalid input
inline constexpr int not_found = 3;    // no job has that key
inline constexpr int not_allowed = 4;  // not allowed in the job's current state
}  // namespace exit_code

// Where a command reads and writes, and the wall time it acts at (injected so ages, cutoffs
// and recorded timestamps are testable).
struct CommandIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  core::TimePoint now;
};

struct JobCommandInfo {
  std::string_view name;
  std::string_view summary;  // one line for the main help
  std::string_view help;     // the command's --help text
};

std::span<const JobCommandInfo> job_commands() noexcept;
const JobCommandInfo* find_job_command(std::string_view name) noexcept;

// Runs `command` with the arguments after its name; returns the exit code. Never throws for
// bad input or database errors.
int run_job_command(std::string_view command, const std::vector<std::string>& args,
                    const CommandIo& io);

// One job as a JSON object: "key", "prompt" and the other spec fields, "org_id", "priority",
// "not_before"/"deadline" (RFC 3339), "max_attempts", "on_waiting_for_user", "messages",
// "complete_on", "fan_out". The format of `enqueue --stdin` and of `show --json`'s
// "definition". On failure returns nullopt and a reason naming the field.
std::optional<core::JobDefinition> parse_job_json(std::string_view text, std::string* reason);
std::string job_definition_json(const core::JobDefinition& definition);

}  // namespace devin_orch::app
