// Internal to the CLI: the context a command runs in (its parsed arguments and streams, loading
// the config, opening the database, reporting errors in the one style), the options every
// command shares, and the output helpers of more than one command. Defined in command.cpp.
#pragma once

#include "devin_orch/app/cli/cli.hpp"
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/store/operator_store.hpp"
#include "devin_orch/store/outbox_store.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace devin_orch::store {
class Store;
}

namespace devin_orch::app {

inline constexpr OptionSpec kConfigOption{"--config", true, false, "-c"};
inline constexpr OptionSpec kJsonOption{"--json"};

// A config loaded and its database open.
struct Opened {
  Config config;
  std::unique_ptr<store::OperatorStore> store;
  store::OutboxStore* outbox = nullptr;  // the same database's notification outbox
};

class Command {
 public:
  Command(const CommandInfo& info, const ParsedArgs& args, const CommandIo& io) noexcept
      : info_{info}, args_{args}, io_{io} {}

  const ParsedArgs& args() const noexcept { return args_; }
  const CommandIo& io() const noexcept { return io_; }
  std::ostream& out() const noexcept { return io_.out; }
  bool json() const { return args_.has("--json"); }

  // Bad usage: the message and a one-line pointer to the command's help (not the help itself,
  // which would bury the message).
  ExitCode usage(std::string_view message) const;
  // `devin-orch COMMAND: message` on stderr.
  ExitCode fail(ExitCode code, std::string_view message) const;
  // A failed store call, in the database's own words when it gave some.
  ExitCode database_error(const store::Error& error) const;
  // A command's --json answer: one line on stdout, numbers as ordinary decimals (json_text).
  void print_json(const boost::json::value& value) const;
  // Bad usage unless there is no positional argument.
  std::optional<ExitCode> no_arguments() const;

  // Loads the configuration (--config FILE, else $DEVIN_ORCH_CONFIG, else
  // CommandIo::default_config), printing every problem with its location, and which file was
  // read when --config did not name it; returns an exit code on failure.
  std::optional<ExitCode> load(Config& config, const ConfigChecks& checks = {}) const;
  // Loads the config and opens (creating if needed) its database.
  std::optional<ExitCode> open(Opened& opened) const;
  // Opens (creating if needed) the database of a loaded config as the whole store, for a
  // command that also reads its change feed (`wait`).
  std::optional<ExitCode> open_database(const Config& config,
                                        std::unique_ptr<store::Store>& store) const;

 private:
  const CommandInfo& info_;
  const ParsedArgs& args_;
  const CommandIo& io_;
};

// The commands, each defined in its group's file.
extern const CommandInfo run_info, status_info, check_config_info, healthcheck_info,
    version_info;                                          // daemon_commands.cpp
extern const CommandInfo enqueue_info;                     // enqueue.cpp
extern const CommandInfo ls_info, show_info;               // inspect.cpp
extern const CommandInfo cancel_info, retry_info, pause_info, resume_info, prune_info,
    delete_info;                                           // control.cpp
extern const CommandInfo wait_info;                        // wait.cpp
extern const CommandInfo events_info;                      // events.cpp

// ---- parsing values ----
// A whole decimal integer, nothing else.
std::optional<std::int64_t> parse_int(std::string_view text);
// parse_age (ages and retention, with days) is formats/duration.hpp's.

// ---- output: "-" in tables and null in JSON stand for an absent value ----
std::string dash(const std::optional<std::string>& value);  // also for an empty one
std::string timestamp_or_dash(const std::optional<std::int64_t>& epoch_ms);
boost::json::value nullable(const std::optional<std::string>& value);
boost::json::value timestamp_or_null(const std::optional<std::int64_t>& epoch_ms);
// At most `limit` characters, "..." marking a cut.
std::string shorten(std::string text, std::size_t limit);
// Coarse and short, for a table: 45s, 12m, 5h, 3d.
std::string format_age(std::int64_t milliseconds);
std::string format_number(double value);  // %g
std::string join(const std::vector<std::string>& values, std::string_view separator);

// The widest an error column, and `ls`'s reason column, get in a table.
inline constexpr std::size_t kMaxErrorColumn = 60;
inline constexpr std::size_t kMaxReasonColumn = 60;

}  // namespace devin_orch::app
