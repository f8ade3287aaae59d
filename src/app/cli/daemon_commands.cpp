// The commands about the daemon itself: `run`, `status`, `check-config`, `healthcheck`,
// `version`.
#include "command.hpp"
#include "devin_orch/app/cli/online_check.hpp"
#include "devin_orch/app/cli/job_outcomes.hpp"

#include "devin_orch/app/build_info.hpp"
#include "devin_orch/app/config/job_api.hpp"
#include "devin_orch/app/cli/healthcheck.hpp"
#include "devin_orch/app/cli/text_table.hpp"
#include "devin_orch/app/daemon/daemon.hpp"
#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/org_spread.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <spdlog/spdlog.h>

#include <array>

namespace devin_orch::app {
namespace {

constexpr std::string_view kRunHelp = R"(Usage: devin-orch run [--config FILE] [--until-idle [--fail-on STATES] [--progress-every DURATION]] [--log-level LEVEL] [--log-format text|json]

Loads the job files named in the config into the database queue, re-attaches jobs left in
flight by a previous run, then creates and polls sessions until SIGTERM/SIGINT.

  -c, --config FILE   configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                      /etc/devin-orch/devin-orch.yaml
  --until-idle        exit once no job is queued or in flight; while it waits, log why (jobs
                      scheduled for later, pauses, waits the server announced) whenever that
                      changes, and a progress line (jobs by state) every --progress-every
  --fail-on STATES    with --until-idle: exit 5 when a job that ended during this run ended in
                      one of STATES, comma-separated (e.g. failed,dead)
  --progress-every D  with --until-idle: the period of the progress line (default 10s; 0s:
                      none)
  --log-level LEVEL   trace, debug, info, warn, error (overrides log.level)
  --log-format FMT    text or json (overrides log.format)

The API key comes from $CREDENTIALS_DIRECTORY/devin-api-key, api.api_key_file or
DEVIN_API_KEY, in that order. With dashboard.enabled the daemon also serves the web dashboard
and the HTTP API at dashboard.address:dashboard.port (docs/dashboard.md).

Exit codes: 0 stopped cleanly (or idle with --until-idle), 1 runtime failure (also when
--until-idle cannot finish because queued jobs' organisations are paused, or a listener cannot
bind), 2 bad usage, invalid config, no API key or an unusable dashboard.token_file, 5 idle, but
a job of this run ended in a --fail-on state.
)";

constexpr std::string_view kStatusHelp = R"(Usage: devin-orch status [--config FILE] [--json] [--port PORT]

Prints which daemon works the queue (the holder of its lease) and, when metrics are enabled,
what the daemon listening at metrics.address:metrics.port (or --port) says of itself (its
/readyz: ready, or why not, e.g. a database it cannot write to); then every job: key, state,
session_id, status, status_detail, url, attempts, error.
  -c, --config FILE   configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                      /etc/devin-orch/devin-orch.yaml
  --json              one JSON array of the jobs, objects with exactly those field names
                      and org_id (the job's organisation, api.org_id when it names none,
                      as in `ls --json`)
  --port PORT         ask this port instead of metrics.port

States: queued, creating, running (in flight); finished, failed, suspended, dead, lost,
invalid, cancelled, timed_out, stalled (terminal). See docs/architecture.md.

Exit codes: 0 ok, 1 database failure, 2 bad usage or invalid config.
)";

constexpr std::string_view kCheckConfigHelp = R"(Usage: devin-orch check-config [--config FILE] [--online]

Validates the configuration (every problem with file:line:column), that database.path can be
opened or created by this user, and the API key source, then prints the effective
configuration with secrets masked.
  -c, --config FILE   configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                      /etc/devin-orch/devin-orch.yaml
  --online            also ask the API (GET /v3/self, one request): does the key work, does it
                      belong to api.org_id (and every org_id of the job files), and what the
                      job files need that cannot be checked without creating a session
                      (ImpersonateOrgSessions when a job uses create_as_user_id)

Exit codes: 0 valid (and, with --online, the key works for the organisations), 1 --online
found a problem (key refused, another organisation, API unreachable), 2 bad usage, an
invalid config or no API key.
)";

constexpr std::string_view kHealthcheckHelp = R"(Usage: devin-orch healthcheck [--config FILE] [--port PORT]

Asks the running daemon's /healthz at metrics.address:metrics.port (or --port) and exits 0
when it answers 200, 1 otherwise (2: metrics disabled or bad usage). The daemon answers from
its event loop, so a stuck loop is unhealthy.
  -c, --config FILE   configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                      /etc/devin-orch/devin-orch.yaml
  --port PORT         ask this port instead of metrics.port

Exit codes: 0 healthy, 1 unhealthy, 2 metrics disabled, bad usage or invalid config.
)";

constexpr std::string_view kVersionHelp = R"(Usage: devin-orch version

Prints the version (also `devin-orch --version`).

Exit codes: 0 ok.
)";

constexpr std::array<OptionSpec, 6> kRunOptions{{kConfigOption,
                                                {"--until-idle"},
                                                {"--fail-on", true},
                                                {"--progress-every", true},
                                                {"--log-level", true},
                                                {"--log-format", true}}};
constexpr std::array<OptionSpec, 3> kStatusOptions{{kConfigOption, kJsonOption, {"--port", true}}};
constexpr std::array<OptionSpec, 2> kCheckConfigOptions{{kConfigOption, {"--online"}}};
constexpr std::array<OptionSpec, 2> kHealthcheckOptions{{kConfigOption, {"--port", true}}};

// --fail-on: the jobs that ended during this run (at or after `started`) in one of `states`
// make it exit 5, each one logged.
ExitCode check_run_outcomes(Command& command, const Config& config,
                            const std::vector<core::JobState>& states, core::TimePoint started) {
  std::unique_ptr<store::Store> store;
  if (const auto stop = command.open_database(config, store)) return *stop;
  const auto failed = jobs_ended_since(store->operators(), states, core::to_epoch_ms(started),
                                       config.api.org_id);
  if (!failed) return command.database_error(failed.error());
  for (const auto& job : *failed) {
    const std::string state{core::to_string(job.state)};
    log_event(spdlog::level::err,
              {.event = "job_counted_as_failure", .key = job.key,
               .session_id = job.session_id.value_or(""), .org_id = job.org_id, .state = state,
               .status = job.status.value_or("")},
              "job '{}' ended {}{}", job.key, state,
              job.last_error ? ": " + *job.last_error : std::string{});
  }
  if (failed->empty()) return ExitCode::ok;
  log_event(spdlog::level::err, {.event = "run_failed"},
            "{} job(s) of this run ended in a --fail-on state ({}); exiting {}", failed->size(),
            describe_states(states), to_int(ExitCode::jobs_failed));
  return ExitCode::jobs_failed;
}

ExitCode cmd_run(Command& command) {
  const auto& args = command.args();
  if (const auto stop = command.no_arguments()) return *stop;
  const auto log_format = args.value("--log-format");
  if (log_format && *log_format != "text" && *log_format != "json") {
    return command.usage("--log-format must be text or json");
  }
  const bool until_idle = args.has("--until-idle");
  std::vector<core::JobState> fail_on;
  if (const auto text = args.value("--fail-on")) {
    if (!until_idle) return command.usage("--fail-on needs --until-idle");
    std::string error;
    auto parsed = parse_fail_on(*text, error);
    if (!parsed) return command.usage("--fail-on: " + error);
    fail_on = std::move(*parsed);
  }
  DaemonOptions options{.until_idle = until_idle};
  if (const auto text = args.value("--progress-every")) {
    if (!until_idle) return command.usage("--progress-every needs --until-idle");
    const auto period = parse_age(*text);
    if (!period) return command.usage("--progress-every needs a duration like 10s or 1m");
    options.progress_every = *period;
  }
  Config config;
  if (const auto stop = command.load(config)) return *stop;
  if (const auto level = args.value("--log-level")) config.log.level = *level;
  if (log_format) config.log.format = *log_format;
  if (const auto error = setup_logging(config.log)) return command.fail(ExitCode::usage, *error);
  std::string key_error;
  const auto api_key = resolve_api_key(config.api, &key_error);
  if (!api_key) {
    spdlog::error("no API key: {}", key_error);
    return ExitCode::usage;
  }
  spdlog::info("devin-orch {} starting: org {}, api {}, database {}", build_info().version,
               config.api.org_id, config.api.base_url, database_name(config.database));
  const auto started = core::wall_now();
  const int code = run_daemon(config, *api_key, options);
  if (code == 0 && !fail_on.empty()) return check_run_outcomes(command, config, fail_on, started);
  return static_cast<ExitCode>(code);
}

// Who works the queue, from its lease row: a daemon started beside it stands by until then.
// One line per organisation lease: who works it, or since when nobody does.
std::string describe_org_owners(const std::vector<store::NamedLease>& leases,
                                const std::vector<store::NamedLease>& daemons,
                                core::TimePoint now) {
  const std::int64_t now_ms = core::to_epoch_ms(now);
  std::size_t live = 0;
  for (const auto& daemon : daemons) live += daemon.holder.expires_at_ms > now_ms ? 1 : 0;
  if (leases.empty()) return "queue: no daemon has worked it yet";
  std::string out = fmt::format("queue: {} live daemon(s)", live);
  for (const auto& lease : leases) {
    const std::string org = lease.name.substr(core::kOrgLeasePrefix.size());
    const double left_s = static_cast<double>(lease.holder.expires_at_ms - now_ms) / 1000.0;
    if (left_s > 0 && lease.holder.epoch > 0) {
      out += fmt::format("\norg {}: worked by {} (epoch {}; its lease lapses in {:.1f} s unless "
                         "renewed)", org, lease.holder.owner, lease.holder.epoch, left_s);
    } else {
      out += fmt::format("\norg {}: no daemon works it (the last, {}, let its lease lapse "
                         "{:.1f} s ago)", org, lease.holder.owner, std::max(0.0, -left_s));
    }
  }
  return out;
}

// --port, checked; nullopt when absent.
std::optional<ExitCode> port_option(Command& command, std::optional<std::int64_t>& port) {
  const auto text = command.args().value("--port");
  if (!text) return std::nullopt;
  port = parse_int(*text);
  if (!port) return command.usage("--port needs a number, got '" + *text + "'");
  if (*port < 1 || *port > 65535) return command.usage("--port must be 1..65535");
  return std::nullopt;
}

// What the running daemon says of itself: its /readyz answer, which names what keeps it from
// working (standing by, recovering, a database it cannot write to). Nothing to ask when the
// port is chosen at random (metrics.port 0) and --port does not name it.
std::optional<std::string> describe_daemon(const Config& config, std::optional<std::int64_t> port) {
  const int target = port ? static_cast<int>(*port) : config.metrics.port;
  if (target == 0) return std::nullopt;
  const auto answer = probe(config.metrics.address, target, "/readyz", std::chrono::seconds{2});
  if (answer.status == 0) return "daemon: no answer (" + answer.body + ")";
  std::string body = answer.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return "daemon at " + answer.where + ": " + body;
}

ExitCode cmd_status(Command& command) {
  if (const auto stop = command.no_arguments()) return *stop;
  std::optional<std::int64_t> port;
  if (const auto stop = port_option(command, port)) return *stop;
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  auto& store = *opened.store;
  const auto jobs = store.all_jobs();
  if (!jobs) return command.database_error(jobs.error());
  auto& out = command.out();
  if (command.json()) {
    boost::json::array rows;
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
          // Effective, as `ls --json` has it: a job naming none runs as api.org_id.
          {"org_id", job.definition.org_id.value_or(opened.config.api.org_id)},
      });
    }
    command.print_json(rows);
    return ExitCode::ok;
  }
  const auto leases = store.list_leases(core::kOrgLeasePrefix);
  const auto daemons = store.list_leases(core::kDaemonRegistryPrefix);
  if (leases && daemons) out << describe_org_owners(*leases, *daemons, command.io().now) << '\n';
  if (opened.config.metrics.enabled) {
    if (const auto daemon = describe_daemon(opened.config, port)) out << *daemon << '\n';
  }
  std::vector<std::vector<std::string>> table{
      {"KEY", "STATE", "SESSION", "STATUS", "DETAIL", "URL", "ATTEMPTS", "ERROR"}};
  for (const auto& job : *jobs) {
    table.push_back({job.definition.key, std::string{core::to_string(job.state)},
                     dash(job.session_id), dash(job.status), dash(job.status_detail),
                     dash(job.session_url), std::to_string(job.attempts),
                     shorten(dash(job.last_error), kMaxErrorColumn)});
  }
  print_table(out, table);
  return ExitCode::ok;
}

ExitCode cmd_check_config(Command& command) {
  if (const auto stop = command.no_arguments()) return *stop;
  Config config;
  if (const auto stop = command.load(config, ConfigChecks{.database_location = true})) {
    return *stop;
  }
  std::string key_error;
  const auto key = resolve_api_key(config.api, &key_error);
  command.out() << render_config(config);
  if (!key) return command.fail(ExitCode::usage, "no API key: " + key_error);
  command.out() << "# API key: found (" << key->size() << " characters, masked)\n";
  // Each organisation with its own API or key: read now, as the daemon reads it at start.
  for (const auto& [org_id, org] : config.api.organizations) {
    std::string org_error;
    const auto org_key = resolve_org_api_key(config.api, org_id, &org_error);
    if (!org_key) return command.fail(ExitCode::usage, "no API key: " + org_error);
    command.out() << "# API key of org " << org_id << " (" << core::to_string(org.version)
                  << "): found in " << describe_org_api_key_source(config.api, org_id) << " ("
                  << org_key->size() << " characters, masked)\n";
  }
  if (!command.args().has("--online")) return ExitCode::ok;

  // Only the job files are known before the daemon runs; an unusable one is reported and the
  // check goes on with the others.
  std::vector<core::JobDefinition> jobs;
  for (const auto& file : config.jobs.files) {
    JobFileLoad load = load_job_file(file, {.api_check = job_api_check(config.api),
                                               .max_attachment_bytes =
                                                   config.attachments.max_bytes});
    if (load.fatal) {
      command.out() << "# online: note: " << load.fatal->to_string() << " (not considered)\n";
    }
    for (auto& job : load.jobs) jobs.push_back(std::move(job));
  }
  const OnlineReport report = check_online(config, *key, jobs);
  for (const auto& line : report.lines) {
    const char* level = line.level == OnlineLine::Level::ok     ? "ok"
                        : line.level == OnlineLine::Level::note ? "note"
                                                                : "PROBLEM";
    command.out() << "# online: " << level << ": " << line.text << '\n';
  }
  return report.ok() ? ExitCode::ok : ExitCode::failure;
}

ExitCode cmd_healthcheck(Command& command) {
  if (const auto stop = command.no_arguments()) return *stop;
  std::optional<std::int64_t> port;
  if (const auto stop = port_option(command, port)) return *stop;
  Config config;
  if (const auto stop = command.load(config)) return *stop;
  if (!config.metrics.enabled) {
    return command.fail(ExitCode::usage, "metrics.enabled is false; there is no /healthz to ask");
  }
  const int target = port ? static_cast<int>(*port) : config.metrics.port;
  if (target == 0) return command.fail(ExitCode::usage, "metrics.port is 0 (random); pass --port");
  const auto health = check_health(config.metrics.address, target, std::chrono::seconds{3});
  command.out() << (health.healthy ? "healthy: " : "unhealthy: ") << health.detail << '\n';
  return health.healthy ? ExitCode::ok : ExitCode::failure;
}

ExitCode cmd_version(Command& command) {
  if (const auto stop = command.no_arguments()) return *stop;
  command.out() << "devin-orch " << build_info().version << '\n';
  return ExitCode::ok;
}

}  // namespace

constinit const CommandInfo run_info{
    .name = "run",
    .group = CommandInfo::Group::daemon,
    .summary = "run the daemon (until SIGTERM, or until idle with --until-idle)",
    .help = kRunHelp,
    .options = kRunOptions,
    .run = cmd_run,
};

constinit const CommandInfo status_info{
    .name = "status",
    .group = CommandInfo::Group::daemon,
    .summary = "print every job with its state and session outcome",
    .help = kStatusHelp,
    .options = kStatusOptions,
    .run = cmd_status,
};

constinit const CommandInfo check_config_info{
    .name = "check-config",
    .group = CommandInfo::Group::daemon,
    .summary = "validate the configuration and print the effective values",
    .help = kCheckConfigHelp,
    .options = kCheckConfigOptions,
    .run = cmd_check_config,
};

constinit const CommandInfo healthcheck_info{
    .name = "healthcheck",
    .group = CommandInfo::Group::daemon,
    .summary = "exit 0 if the running daemon's /healthz answers 200 (for HEALTHCHECK)",
    .help = kHealthcheckHelp,
    .options = kHealthcheckOptions,
    .run = cmd_healthcheck,
};

constinit const CommandInfo version_info{
    .name = "version",
    .group = CommandInfo::Group::daemon,
    .summary = "print the version",
    .help = kVersionHelp,
    .options = {},
    .run = cmd_version,
};

}  // namespace devin_orch::app
