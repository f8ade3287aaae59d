// The operator's controls: `cancel`, `retry`, `pause` (and `pause --list`), `resume`, `prune`,
// `delete`. Each change is one store call, so one short transaction.
#include "command.hpp"

#include "devin_orch/app/cli/text_table.hpp"
#include "devin_orch/app/formats/timestamp.hpp"

#include <boost/json.hpp>

#include <array>

namespace devin_orch::app {
namespace json = boost::json;
namespace {

constexpr std::string_view kDefaultPauseReason = "paused by an operator";

constexpr std::string_view kCancelHelp =
    R"(Usage: devin-orch cancel [--config FILE] KEY [--archive] [--json]

Cancels a job. A queued job ends `cancelled` at once and never starts. For a job being created
or running, the cancellation is recorded and the running daemon terminates the session
(and archives it with --archive), then ends the job `cancelled`.
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --archive   also archive the session when terminating it
  --json      print {"key", "result"}: result "cancelled" or "requested"

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 no job has that key, 4 the job has
already ended.
)";

constexpr std::string_view kRetryHelp = R"(Usage: devin-orch retry [--config FILE] KEY [--json]

Queues a failed, suspended, dead, lost, cancelled, timed_out or stalled job again as a new
generation: a new creation tag, attempts and session cleared, history kept.
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --json   print {"key", "result": "requeued", "generation"}

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 no job has that key, 4 the job's state
cannot be retried (queued, creating, running, finished, invalid).
)";

constexpr std::string_view kPauseHelp =
    R"(Usage: devin-orch pause [--config FILE] [--org ORG | --all] [--reason TEXT] [--json]
       devin-orch pause [--config FILE] --list [--json]

Stops the daemon from starting jobs of an organisation (running sessions are still polled).
Pauses are stored in the database and survive restarts; `devin-orch resume` lifts them.
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --org ORG      the organisation (default: api.org_id)
  --all          every organisation (stored as org "*")
  --reason TEXT  why (default "paused by an operator")
  --list         print the current pauses: ORG SINCE SOURCE REASON
  --json         JSON instead of text

Exit codes: 0 ok (also when already paused), 1 database failure, 2 bad usage.
)";

constexpr std::string_view kResumeHelp =
    R"(Usage: devin-orch resume [--config FILE] [--org ORG | --all] [--json]
       devin-orch resume [--config FILE] [--org ORG] --user USER [--json]

Lifts a pause. --all lifts the pause made by `pause --all` (org "*"); pauses of single
organisations stay until resumed by name. With --user, lifts the pause of the jobs created as
USER (create_as_user_id) that the daemon set when a session of that user was suspended with
user_usage_limit_exceeded; `pause --list` shows them.
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --org ORG   the organisation (default: api.org_id)
  --all       the all-organisations pause
  --user USER the pause of one user's jobs in the organisation
  --json      print {"org_id", ["user_id",] "result": "resumed" | "not_paused"}

Exit codes: 0 ok (also when it was not paused), 1 database failure, 2 bad usage.
)";

constexpr std::string_view kPruneHelp =
    R"(Usage: devin-orch prune [--config FILE] --older-than DURATION [--dry-run] [--json]

Removes ended jobs (and their history) that finished more than DURATION ago (e.g. 30d, 12h)
from the queue. Their outcomes are kept in the `outcomes` table. Their keys become free again.
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --dry-run   count what would be removed, remove nothing
  --json      print {"pruned", "dry_run", "cutoff"}

Exit codes: 0 ok, 1 database failure, 2 bad usage.
)";

constexpr std::string_view kDeleteHelp =
    R"(Usage: devin-orch delete [--config FILE] KEY [KEY...] [--json]

Removes ended jobs (finished, failed, suspended, dead, lost, invalid, cancelled, timed_out,
stalled) and their history from the queue, each in its own transaction. Each one's outcome is first copied to
the `outcomes` table, as `prune` does. A job still queued, creating or running is refused: cancel
it first. A deleted key is free again: if a job file still lists it, the daemon adds it again as
a new job at its next start or reload.
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --json      print an array of {"key", "result": "deleted" | "not_ended" | "not_found", "state"}

Exit codes: 0 every job deleted, 1 database failure, 2 bad usage, 3 a key is unknown, 4 a job
has not ended (4 wins over 3).
)";

constexpr std::array<OptionSpec, 3> kCancelFlags{{{"--archive"}, kJsonOption, kConfigOption}};
constexpr std::array<OptionSpec, 2> kRetryFlags{{kJsonOption, kConfigOption}};

std::string current_state(store::OperatorStore& store, const std::string& key) {
  const auto found = store.find(key);
  if (found && *found) return std::string{core::to_string((*found)->state)};
  return "unknown";
}

ExitCode cmd_cancel(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (args.positional.size() != 1) return command.usage("give exactly one KEY");
  const auto& key = args.positional.front();
  const bool archive = args.has("--archive");
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  const auto cancelled = opened.store->request_cancel(key, archive, io.now);
  if (!cancelled) return command.database_error(cancelled.error());
  using CancelResult = store::CancelResult;
  std::string result;
  std::string text;
  switch (*cancelled) {
    case CancelResult::not_found:
      return command.fail(ExitCode::unknown_job, "no job has the key '" + key + "'");
    case CancelResult::already_ended:
      return command.fail(ExitCode::not_allowed,
                          key + ": already ended (state " + current_state(*opened.store, key) +
                              "); nothing to cancel");
    case CancelResult::cancelled:
      result = "cancelled";
      text = key + ": cancelled";
      break;
    case CancelResult::requested:
      result = "requested";
      text = key + ": cancellation requested: the running daemon terminates the session" +
             (archive ? " and archives it" : "");
      break;
  }
  if (command.json()) {
    command.print_json(json::object{{"key", key}, {"result", result}});
  } else {
    io.out << text << '\n';
  }
  return ExitCode::ok;
}

ExitCode cmd_retry(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (args.positional.size() != 1) return command.usage("give exactly one KEY");
  const auto& key = args.positional.front();
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  const auto retried = opened.store->retry(key, io.now);
  if (!retried) return command.database_error(retried.error());
  using RetryResult = store::RetryResult;
  switch (*retried) {
    case RetryResult::not_found:
      return command.fail(ExitCode::unknown_job, "no job has the key '" + key + "'");
    case RetryResult::not_terminal:
      return command.fail(ExitCode::not_allowed,
                          key + ": cannot retry a job in state " +
                              current_state(*opened.store, key) +
                              " (only failed, suspended, dead, lost, cancelled, timed_out, "
                              "stalled)");
    case RetryResult::requeued: break;
  }
  const auto found = opened.store->find(key);
  if (!found) return command.database_error(found.error());
  const std::int64_t generation = *found ? (**found).generation : 0;
  if (command.json()) {
    command.print_json(
        json::object{{"key", key}, {"result", "requeued"}, {"generation", generation}});
  } else {
    io.out << key << ": queued again as generation " << generation << " (history kept)\n";
  }
  return ExitCode::ok;
}

constexpr std::array<OptionSpec, 6> kPauseFlags{
    {{"--org", true}, {"--all"}, {"--reason", true}, {"--list"}, kJsonOption, kConfigOption}};
constexpr std::array<OptionSpec, 5> kResumeFlags{
    {{"--org", true}, {"--all"}, {"--user", true}, kJsonOption, kConfigOption}};

constexpr std::string_view kAllOrgs = "*";

std::string org_label(std::string_view org) {
  return org == kAllOrgs ? "all organisations" : "organisation " + std::string{org};
}

// The organisation a pause or resume names; nullopt (after a usage message) on bad usage.
std::optional<std::string> target_org(const Command& command, const ParsedArgs& args,
                                      ExitCode& code) {
  if (args.has("--org") && args.has("--all")) {
    code = command.usage("--org and --all exclude each other");
    return std::nullopt;
  }
  if (args.has("--all")) return std::string{kAllOrgs};
  if (const auto org = args.value("--org")) {
    if (org->empty()) {
      code = command.usage("--org is empty");
      return std::nullopt;
    }
    return *org;
  }
  return std::string{};  // the config's default, known once it is loaded
}

ExitCode list_pauses(const Command& command, store::OperatorStore& store) {
  const auto pauses = store.list_pauses();
  if (!pauses) return command.database_error(pauses.error());
  const auto users = store.paused_users();
  if (!users) return command.database_error(users.error());
  auto& out = command.io().out;
  if (command.json()) {
    json::array rows;
    for (const auto& pause : *pauses) {
      rows.push_back(json::object{{"org_id", pause.org_id},
                                  {"reason", pause.reason},
                                  {"paused_at", format_timestamp_ms(pause.paused_at_ms)},
                                  {"source", pause.source}});
    }
    // A user's pause is a row with its user_id: only that user's jobs wait.
    for (const auto& pause : *users) {
      rows.push_back(json::object{{"org_id", pause.org_id},
                                  {"user_id", pause.user_id},
                                  {"reason", pause.reason},
                                  {"paused_at", format_timestamp_ms(pause.paused_at_ms)},
                                  {"source", "daemon"}});
    }
    command.print_json(rows);
    return ExitCode::ok;
  }
  if (pauses->empty() && users->empty()) {
    out << "no organisation is paused\n";
    return ExitCode::ok;
  }
  if (!pauses->empty()) {
    std::vector<std::vector<std::string>> table{{"ORG", "SINCE", "SOURCE", "REASON"}};
    for (const auto& pause : *pauses) {
      table.push_back(
          {pause.org_id, format_timestamp_ms(pause.paused_at_ms), pause.source, pause.reason});
    }
    print_table(out, table);
  }
  if (!users->empty()) {
    if (!pauses->empty()) out << '\n';
    std::vector<std::vector<std::string>> table{{"ORG", "USER", "SINCE", "REASON"}};
    for (const auto& pause : *users) {
      table.push_back({pause.org_id, pause.user_id, format_timestamp_ms(pause.paused_at_ms),
                       pause.reason});
    }
    print_table(out, table);
  }
  return ExitCode::ok;
}

ExitCode cmd_pause(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (const auto stop = command.no_arguments()) return *stop;
  const bool list = args.has("--list");
  if (list && (args.has("--org") || args.has("--all") || args.has("--reason"))) {
    return command.usage("--list takes no --org, --all or --reason");
  }
  ExitCode code = ExitCode::ok;
  auto org = target_org(command, args, code);
  if (!org) return code;
  const std::string reason = args.value("--reason").value_or(std::string{kDefaultPauseReason});
  if (reason.empty()) return command.usage("--reason is empty");
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  auto& store = *opened.store;
  if (list) return list_pauses(command, store);
  if (org->empty()) *org = opened.config.api.org_id;

  const auto before = store.paused_orgs();
  if (!before) return command.database_error(before.error());
  const auto existing = before->find(*org);
  if (existing == before->end()) {
    if (auto paused = store.pause_org(*org, reason, "cli", io.now); !paused) {
      return command.database_error(paused.error());
    }
  }
  const bool already = existing != before->end();
  if (command.json()) {
    command.print_json(json::object{{"org_id", *org},
                                    {"result", already ? "already_paused" : "paused"},
                                    {"reason", already ? existing->second : reason}});
  } else if (already) {
    io.out << org_label(*org) << " was already paused: " << existing->second << '\n';
  } else {
    io.out << "paused " << org_label(*org) << ": " << reason << '\n';
  }
  return ExitCode::ok;
}

ExitCode cmd_resume(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (const auto stop = command.no_arguments()) return *stop;
  const auto user = args.value("--user");
  if (user && user->empty()) return command.usage("--user is empty");
  if (user && args.has("--all")) return command.usage("--user names one organisation, not --all");
  ExitCode code = ExitCode::ok;
  auto org = target_org(command, args, code);
  if (!org) return code;
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  if (org->empty()) *org = opened.config.api.org_id;
  if (user) {
    const auto lifted = opened.store->resume_user(*org, *user);
    if (!lifted) return command.database_error(lifted.error());
    const std::string label = "user " + *user + " in " + org_label(*org);
    if (command.json()) {
      command.print_json(json::object{{"org_id", *org},
                                      {"user_id", *user},
                                      {"result", *lifted > 0 ? "resumed" : "not_paused"}});
    } else if (*lifted > 0) {
      io.out << "resumed " << label << '\n';
    } else {
      io.out << label << " was not paused\n";
    }
    return ExitCode::ok;
  }
  const auto lifted = opened.store->resume_org(*org);
  if (!lifted) return command.database_error(lifted.error());
  if (command.json()) {
    command.print_json(
        json::object{{"org_id", *org}, {"result", *lifted > 0 ? "resumed" : "not_paused"}});
  } else if (*lifted > 0) {
    io.out << "resumed " << org_label(*org) << '\n';
  } else {
    io.out << org_label(*org) << " was not paused\n";
  }
  return ExitCode::ok;
}

constexpr std::array<OptionSpec, 4> kPruneFlags{
    {{"--older-than", true}, {"--dry-run"}, kJsonOption, kConfigOption}};

ExitCode cmd_prune(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (const auto stop = command.no_arguments()) return *stop;
  const auto text = args.value("--older-than");
  if (!text) return command.usage("--older-than DURATION is required");
  const auto age = parse_age(*text);
  if (!age) return command.usage("--older-than needs a duration like 12h or 30d");
  const auto cutoff = io.now - *age;
  const bool dry_run = args.has("--dry-run");
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  std::int64_t count = 0;
  if (dry_run) {
    const auto prunable = opened.store->count_prunable(cutoff);
    if (!prunable) return command.database_error(prunable.error());
    count = *prunable;
  } else {
    const auto pruned = opened.store->prune(cutoff, io.now);
    if (!pruned) return command.database_error(pruned.error());
    count = *pruned;
    // Notifications of the same age that have nothing left to deliver go too.
    const auto events = opened.outbox->prune_events(cutoff);
    if (!events) return command.database_error(events.error());
  }
  const auto cutoff_text = format_timestamp_ms(core::to_epoch_ms(cutoff));
  if (command.json()) {
    command.print_json(
        json::object{{"pruned", count}, {"dry_run", dry_run}, {"cutoff", cutoff_text}});
  } else if (dry_run) {
    io.out << "would prune " << count << " job(s) that ended before " << cutoff_text
           << " (dry run: nothing removed)\n";
  } else {
    io.out << "pruned " << count << " job(s) that ended before " << cutoff_text
           << " (outcomes kept)\n";
  }
  return ExitCode::ok;
}

constexpr std::array<OptionSpec, 2> kDeleteFlags{{kJsonOption, kConfigOption}};

ExitCode cmd_delete(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (args.positional.empty()) return command.usage("give at least one KEY");
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  auto& store = *opened.store;
  bool any_unknown = false;
  bool any_not_ended = false;
  json::array rows;
  for (const auto& key : args.positional) {
    // Read first for the messages; delete_job decides on the state inside its transaction.
    const auto found = store.find(key);
    if (!found) return command.database_error(found.error());
    std::string state = *found ? std::string{core::to_string((*found)->state)} : "";
    std::string source;
    if (*found) {
      if (const auto from = store.job_source((*found)->id)) source = *from;
    }
    const auto deleted = store.delete_job(key, io.now);
    if (!deleted) return command.database_error(deleted.error());
    std::string result;
    switch (*deleted) {
      case store::DeleteResult::not_found:
        result = "not_found";
        any_unknown = true;
        state.clear();
        (void)command.fail(ExitCode::unknown_job, "no job has the key '" + key + "'");
        break;
      case store::DeleteResult::not_ended:
        result = "not_ended";
        any_not_ended = true;
        state = current_state(store, key);  // now: it may have moved on since the first read
        (void)command.fail(ExitCode::not_allowed, key + ": has not ended (state " + state +
                                                      "); cancel it first: devin-orch cancel " +
                                                      key);
        break;
      case store::DeleteResult::deleted:
        result = "deleted";
        if (!command.json()) io.out << "deleted " << key << " (was " << state << ")\n";
        if (source.starts_with("file:")) {
          io.err << "devin-orch delete: note: " << key << " came from " << source.substr(5)
                 << "; the daemon adds it again as a new job at its next start or reload "
                    "unless it is removed from that file\n";
        }
        break;
    }
    rows.push_back(json::object{{"key", key},
                                {"result", result},
                                {"state", state.empty() ? json::value{} : json::value(state)}});
  }
  if (command.json()) command.print_json(rows);
  if (any_not_ended) return ExitCode::not_allowed;
  if (any_unknown) return ExitCode::unknown_job;
  return ExitCode::ok;
}

}  // namespace

constinit const CommandInfo delete_info{
    .name = "delete",
    .group = CommandInfo::Group::jobs,
    .summary = "remove ended jobs and their history (outcomes are kept)",
    .help = kDeleteHelp,
    .options = kDeleteFlags,
    .run = cmd_delete,
};

constinit const CommandInfo cancel_info{
    .name = "cancel",
    .group = CommandInfo::Group::jobs,
    .summary = "cancel a job (the daemon terminates a running session)",
    .help = kCancelHelp,
    .options = kCancelFlags,
    .run = cmd_cancel,
};

constinit const CommandInfo retry_info{
    .name = "retry",
    .group = CommandInfo::Group::jobs,
    .summary = "queue an ended job again as a new generation",
    .help = kRetryHelp,
    .options = kRetryFlags,
    .run = cmd_retry,
};

constinit const CommandInfo pause_info{
    .name = "pause",
    .group = CommandInfo::Group::jobs,
    .summary = "pause an organisation (or all), or list pauses",
    .help = kPauseHelp,
    .options = kPauseFlags,
    .run = cmd_pause,
};

constinit const CommandInfo resume_info{
    .name = "resume",
    .group = CommandInfo::Group::jobs,
    .summary = "lift a pause",
    .help = kResumeHelp,
    .options = kResumeFlags,
    .run = cmd_resume,
};

constinit const CommandInfo prune_info{
    .name = "prune",
    .group = CommandInfo::Group::jobs,
    .summary = "remove old ended jobs from the queue (outcomes are kept)",
    .help = kPruneHelp,
    .options = kPruneFlags,
    .run = cmd_prune,
};

}  // namespace devin_orch::app
