// The command line: subcommand dispatch, option parsing, `status` and `check-config` output.
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid input/config, 3 unknown job key,
// 4 not allowed in the job's current state (the last two from the job commands in cli_jobs).
#include "devin_orch/app/cli/cli.hpp"

#include "devin_orch/app/cli/cli_jobs.hpp"
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/daemon/daemon.hpp"
#include "devin_orch/app/cli/healthcheck.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/app/cli/text_table.hpp"
#include "devin_orch/store/job_store.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#ifndef DEVIN_ORCH_VERSION
#define DEVIN_ORCH_VERSION "0.1.0"
#endif

namespace devin_orch::app {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;

constexpr std::string_view kMainHelp = R"(devin-orch: runs Devin sessions for queued jobs, exactly once each.

Usage: devin-orch <command> [options]

Commands:
  run           run the daemon (until SIGTERM, or until idle with --until-idle)
  status        print every job with its state and session outcome
  check-config  validate the configuration and print the effective values
  healthcheck   exit 0 if the running daemon's /healthz answers 200 (for HEALTHCHECK)
  version       print the version

Job commands (see docs/cli.md):
  enqueue       add jobs from flags, a YAML file or JSON lines on stdin
  ls            list jobs, filtered by state, organisation, tag or age
  show          print one job: definition, outcome and history
  cancel        cancel a job (the daemon terminates a running session)
  retry         queue an ended job again as a new generation
  pause         pause an organisation (or all), or list pauses
  resume        lift a pause
  prune         remove old ended jobs from the queue (outcomes are kept)

Run `devin-orch <command> --help` for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid input/config,
3 no job has that key, 4 not allowed in the job's current state.
)";

constexpr std::string_view kRunHelp = R"(Usage: devin-orch run --config FILE [--until-idle] [--log-level LEVEL] [--log-format text|json]

Loads the job files named in the config into the database queue, re-attaches jobs left in
flight by a previous run, then creates and polls sessions until SIGTERM/SIGINT.

  --config FILE       configuration file (YAML), required
  --until-idle        exit 0 once no job is queued or in flight
  --log-level LEVEL   trace, debug, info, warn, error (overrides log.level)
  --log-format FMT    text or json (overrides log.format)

The API key comes from $CREDENTIALS_DIRECTORY/devin-api-key, api.api_key_file or
DEVIN_API_KEY, in that order.
)";

constexpr std::string_view kStatusHelp = R"(Usage: devin-orch status --config FILE [--json]

Prints which daemon works the queue (the holder of its lease), then every job: key, state,
session_id, status, status_detail, url, attempts, error.
  --json   one JSON array of the jobs, objects with exactly those field names

States: queued, creating, running (in flight); finished, failed, suspended, dead, lost,
invalid, cancelled, timed_out (terminal). See docs/architecture.md.
)";

constexpr std::string_view kCheckConfigHelp = R"(Usage: devin-orch check-config --config FILE

Validates the configuration (every problem with file:line:column) and the API key source,
then prints the effective configuration with secrets masked.
)";

constexpr std::string_view kHealthcheckHelp = R"(Usage: devin-orch healthcheck --config FILE [--port PORT]

Asks the running daemon's /healthz at metrics.address:metrics.port (or --port) and exits 0
when it answers 200, 1 otherwise (2: metrics disabled or bad usage). The daemon answers from
its event loop, so a stuck loop is unhealthy.
)";

struct Options {
  std::optional<std::string> config;
  bool until_idle = false;
  bool json = false;
  bool help = false;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<int> port;
};

// Parses `--flag value` / `--flag=value` options; returns an error message on bad usage.
std::optional<std::string> parse_options(int argc, char** argv, int first, Options& options) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 < argc) return std::string{argv[++i]};
      return std::nullopt;
    };
    if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else if (arg == "--until-idle") {
      options.until_idle = true;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--config" || arg == "-c") {
      options.config = value();
      if (!options.config) return "--config needs a file";
    } else if (arg == "--port") {
      const auto text = value();
      if (!text) return "--port needs a number";
      try {
        options.port = std::stoi(*text);
      } catch (const std::exception&) {
        return "--port needs a number, got '" + *text + "'";
      }
      if (*options.port < 1 || *options.port > 65535) return "--port must be 1..65535";
    } else if (arg == "--log-level") {
      options.log_level = value();
      if (!options.log_level) return "--log-level needs a level";
    } else if (arg == "--log-format") {
      options.log_format = value();
      if (!options.log_format || (*options.log_format != "text" && *options.log_format != "json")) {
        return "--log-format must be text or json";
      }
    } else {
      return "unknown option '" + arg + "'";
    }
  }
  return std::nullopt;
}

std::optional<Config> load_or_report(const Options& options) {
  if (!options.config) {
    std::cerr << "devin-orch: --config FILE is required\n";
    return std::nullopt;
  }
  auto loaded = load_config(*options.config);
  for (const auto& error : loaded.errors) std::cerr << error.to_string() << '\n';
  return std::move(loaded.config);
}

int cmd_run(const Options& options) {
  auto config = load_or_report(options);
  if (!config) return kUsage;
  if (options.log_level) config->log.level = *options.log_level;
  if (options.log_format) config->log.format = *options.log_format;
  if (const auto error = setup_logging(config->log)) {
    std::cerr << "devin-orch: " << *error << '\n';
    return kUsage;
  }
  std::string key_error;
  const auto api_key = resolve_api_key(config->api, &key_error);
  if (!api_key) {
    spdlog::error("no API key: {}", key_error);
    return kUsage;
  }
  spdlog::info("devin-orch {} starting: org {}, api {}, database {}", DEVIN_ORCH_VERSION,
               config->api.org_id, config->api.base_url, config->database.path);
  return run_daemon(*config, *api_key, DaemonOptions{.until_idle = options.until_idle});
}

std::string text_or_dash(const std::optional<std::string>& value) {
  return value && !value->empty() ? *value : "-";
}

// Who works the queue, from its lease row: a daemon started beside it stands by until then.
std::string describe_queue_owner(const std::optional<core::LeaseHolder>& holder,
                                 core::TimePoint now) {
  if (!holder) return "queue: no daemon has worked it yet";
  const double left_s =
      static_cast<double>(holder->expires_at_ms - core::to_epoch_ms(now)) / 1000.0;
  if (left_s > 0) {
    return fmt::format("queue: worked by {} (epoch {}; its lease lapses in {:.1f} s unless "
                       "renewed)", holder->owner, holder->epoch, left_s);
  }
  return fmt::format("queue: no daemon works it (the last, {}, let its lease lapse {:.1f} s ago)",
                     holder->owner, -left_s);
}

int cmd_status(const Options& options) {
  const auto config = load_or_report(options);
  if (!config) return kUsage;
  std::string error;
  auto store = store::JobStore::open(store::StoreOptions{.path = config->database.path}, &error);
  if (!store) {
    std::cerr << "devin-orch: cannot open database " << config->database.path << ": "
              << (error.empty() ? store.error().message() : error) << '\n';
    return kFailure;
  }
  const auto jobs = (*store)->all_jobs();
  if (!jobs) {
    std::cerr << "devin-orch: " << jobs.error().message() << '\n';
    return kFailure;
  }
  if (options.json) {
    boost::json::array rows;
    const auto nullable = [](const std::optional<std::string>& v) -> boost::json::value {
      if (v) return boost::json::value(boost::json::string_view{*v});
      return nullptr;
    };
    for (const auto& job : *jobs) {
      rows.push_back(boost::json::object{
          {"key", job.definition.key},
          {"state", std::string{core::to_string(job.state)}},
          {"session_id", nullable(job.session_id)},
          {"status", nullable(job.status)},
          {"status_detail", nullable(job.status_detail)},
          {"url", nullable(job.session_url)},
          {"attempts", job.attempts},
          {"error", nullable(job.last_error)},
          {"org_id", nullable(job.definition.org_id)},
      });
    }
    std::cout << boost::json::serialize(rows) << '\n';
    return kOk;
  }
  if (const auto lease = (*store)->read_lease(core::kQueueLeaseName); lease) {
    std::cout << describe_queue_owner(*lease, core::wall_now()) << '\n';
  }
  std::vector<std::vector<std::string>> table{
      {"KEY", "STATE", "SESSION", "STATUS", "DETAIL", "URL", "ATTEMPTS", "ERROR"}};
  for (const auto& job : *jobs) {
    std::string error_text = text_or_dash(job.last_error);
    if (error_text.size() > 60) error_text = error_text.substr(0, 57) + "...";
    table.push_back({job.definition.key, std::string{core::to_string(job.state)},
                     text_or_dash(job.session_id), text_or_dash(job.status),
                     text_or_dash(job.status_detail), text_or_dash(job.session_url),
                     std::to_string(job.attempts), error_text});
  }
  print_table(std::cout, table);
  return kOk;
}

int cmd_check_config(const Options& options) {
  const auto config = load_or_report(options);
  if (!config) return kUsage;
  std::string key_error;
  const auto key = resolve_api_key(config->api, &key_error);
  std::cout << render_config(*config);
  if (!key) {
    std::cerr << "devin-orch: API key: " << key_error << '\n';
    return kUsage;
  }
  std::cout << "# API key: found (" << key->size() << " characters, masked)\n";
  return kOk;
}

int cmd_healthcheck(const Options& options) {
  const auto config = load_or_report(options);
  if (!config) return kUsage;
  if (!config->metrics.enabled) {
    std::cerr << "devin-orch: metrics.enabled is false; there is no /healthz to ask\n";
    return kUsage;
  }
  const int port = options.port.value_or(config->metrics.port);
  if (port == 0) {
    std::cerr << "devin-orch: metrics.port is 0 (random); pass --port\n";
    return kUsage;
  }
  const auto health = check_health(config->metrics.address, port, std::chrono::seconds{3});
  std::cout << (health.healthy ? "healthy: " : "unhealthy: ") << health.detail << '\n';
  return health.healthy ? kOk : kFailure;
}

}  // namespace

int run_cli(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kMainHelp;
    return kUsage;
  }
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kMainHelp;
    return kOk;
  }
  if (command == "--version" || command == "version") {
    std::cout << "devin-orch " << DEVIN_ORCH_VERSION << '\n';
    return kOk;
  }
  static const std::map<std::string_view, std::pair<std::string_view, int (*)(const Options&)>>
      commands{
          {"run", {kRunHelp, cmd_run}},
          {"status", {kStatusHelp, cmd_status}},
          {"check-config", {kCheckConfigHelp, cmd_check_config}},
          {"healthcheck", {kHealthcheckHelp, cmd_healthcheck}},
      };
  if (find_job_command(command) != nullptr) {
    return run_job_command(command, std::vector<std::string>(argv + 2, argv + argc),
                           CommandIo{std::cin, std::cout, std::cerr, core::wall_now()});
  }
  const auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "devin-orch: unknown command '" << command << "'\n\n" << kMainHelp;
    return kUsage;
  }
  Options options;
  if (const auto error = parse_options(argc, argv, 2, options)) {
    std::cerr << "devin-orch " << command << ": " << *error << "\n\n" << it->second.first;
    return kUsage;
  }
  if (options.help) {
    std::cout << it->second.first;
    return kOk;
  }
  try {
    return it->second.second(options);
  } catch (const std::exception& e) {
    // Broken invariants end here: report them instead of aborting without a word.
    std::cerr << "devin-orch: internal error: " << e.what() << '\n';
    return kFailure;
  }
}

}  // namespace devin_orch::app
