// `devin-orch ls` and `devin-orch show`: what the queue holds, as a table or JSON. They only
// read, through the store's operator queries.
#include "command.hpp"
#include "devin_orch/app/cli/job_outcomes.hpp"

#include "devin_orch/app/cli/job_json.hpp"
#include "devin_orch/app/cli/job_views.hpp"
#include "devin_orch/app/cli/text_table.hpp"
#include "devin_orch/app/formats/diagnostic.hpp"
#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/job_state_list.hpp"
#include "devin_orch/core/session_family.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace devin_orch::app {
namespace json = boost::json;
namespace {

constexpr std::string_view kLsHelp =
    R"(Usage: devin-orch ls [--config FILE] [filters] [--sort FIELD] [--reverse] [--limit N] [--json]

Lists jobs, newest first; a queued job says why it has not started.

  -c, --config FILE     configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                        /etc/devin-orch/devin-orch.yaml
  --state STATE         only jobs in STATE (repeatable: any of them)
  --org ORG             only jobs of organisation ORG (jobs naming none use api.org_id)
  --tag TAG             only jobs whose spec has the tag TAG
  --older-than DURATION only jobs created more than DURATION ago (e.g. 90s, 2h, 7d)
  --newer-than DURATION only jobs created less than DURATION ago
  --sort FIELD          created (default: newest first), updated (last changed first),
                        key (A to Z) or state (queued, creating, running, then the ended
                        states; oldest first within a state)
  --reverse             the opposite order
  --limit N             only the first N jobs of that order (by default the N newest)
  --json                a JSON array of objects: key, state, org_id, session_id, status,
                        status_detail, url, attempts, error, created_at, updated_at,
                        started_at, finished_at, duration_s, acus_consumed, reason,
                        reason_code, reason_until

Text columns: KEY STATE ORG SESSION STATUS AGE DURATION ACUS REASON ERROR ("-" when empty).
AGE is the time since the job was added, DURATION its session's run (until now while it
runs), ACUS its ACUs (with its child sessions', see `show`). REASON says why a queued job
waits: organisation or user paused, scheduled until T, held by the server until T, no free
slot (create.max_active_sessions, create.max_concurrent_creates), no daemon, or ready.
Exit codes: 0 ok, 1 database failure, 2 bad usage.
)";

constexpr std::string_view kShowHelp = R"(Usage: devin-orch show [--config FILE] KEY [--json]

Prints one job: its definition (spec and controls), its outcome (session, status, ACUs, pull
requests, structured output, attempts, generation, timestamps) and its history, oldest first.
  -c, --config FILE   configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                      /etc/devin-orch/devin-orch.yaml
  --json   one object {"definition", "outcome", "history"}; "definition" has the format of
           an `enqueue --stdin` line

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 no job has that key.
)";

constexpr std::array<OptionSpec, 10> kLsFlags{{
    {"--state", true, true},
    {"--org", true},
    {"--tag", true},
    {"--older-than", true},
    {"--newer-than", true},
    {"--sort", true},
    {"--reverse"},
    {"--limit", true},
    kJsonOption,
    kConfigOption,
}};

// The options of `ls` that decide what is read, checked before the database is opened.
std::optional<ExitCode> ls_filter(const Command& command, store::JobFilter& filter) {
  const ParsedArgs& args = command.args();
  JobFilterWords words;
  words.states = args.all("--state");
  words.org = args.value("--org");
  words.tag = args.value("--tag");
  words.older_than = args.value("--older-than");
  words.newer_than = args.value("--newer-than");
  words.sort = args.value("--sort");
  words.limit = args.value("--limit");
  words.reverse = args.has("--reverse");
  auto parsed = parse_job_filter(words, command.io().now, "--");
  if (auto* problem = std::get_if<std::string>(&parsed)) return command.usage(*problem);
  filter = std::move(std::get<store::JobFilter>(parsed));
  return std::nullopt;
}

ExitCode cmd_ls(Command& command) {
  const CommandIo& io = command.io();
  if (const auto stop = command.no_arguments()) return *stop;
  store::JobFilter filter;
  if (const auto stop = ls_filter(command, filter)) return *stop;

  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  filter.default_org = opened.config.api.org_id;  // jobs naming no organisation run as this
  const auto jobs = opened.store->list_jobs(filter);
  if (!jobs) return command.database_error(jobs.error());
  const auto context = row_context(*opened.store, opened.config, io.now, *jobs);
  if (!context) return command.database_error(context.error());
  if (command.json()) {
    json::array rows;
    for (const auto& job : *jobs) rows.push_back(job_row_object(job, *context));
    command.print_json(rows);
    return ExitCode::ok;
  }
  std::vector<std::vector<std::string>> table{job_row_header()};
  for (const auto& job : *jobs) table.push_back(job_row(job, *context));
  print_table(io.out, table);
  return ExitCode::ok;
}

constexpr std::array<OptionSpec, 2> kShowFlags{{kJsonOption, kConfigOption}};

// "  label:" padded so values line up; continuation lines of a value are indented alike.
void field(std::ostream& out, std::string_view label, std::string_view value) {
  constexpr std::size_t kLabelWidth = 22;
  std::string line = "  " + std::string{label} + ":";
  line.resize(std::max(line.size() + 1, kLabelWidth), ' ');
  std::string indented;
  for (const char c : value) {
    indented += c;
    if (c == '\n') indented += std::string(kLabelWidth, ' ');
  }
  out << line << indented << '\n';
}

std::string waiting_policy_text(const core::WaitingPolicy& policy) {
  using Action = core::WaitingPolicy::Action;
  switch (policy.action) {
    case Action::keep_waiting: return "keep_waiting";
    case Action::finish_after: return "finish_after " + format_duration(policy.finish_after);
    case Action::send_message: return "send_message " + policy.message;
  }
  return "keep_waiting";
}

void print_definition(std::ostream& out, const core::JobRecord& job, const Config& config) {
  const auto& definition = job.definition;
  const auto& spec = definition.spec;
  const auto& controls = definition.controls;
  out << "Definition\n";
  field(out, "prompt", spec.prompt);
  if (spec.title) field(out, "title", *spec.title);
  if (!spec.tags.empty()) field(out, "tags", join(spec.tags, ", "));
  if (!spec.repos.empty()) field(out, "repos", join(spec.repos, ", "));
  if (!spec.attachments.empty()) field(out, "attachments", join(spec.attachments, ", "));
  if (spec.create_as_user_id) field(out, "create_as_user_id", *spec.create_as_user_id);
  if (spec.playbook_id) field(out, "playbook_id", *spec.playbook_id);
  if (spec.child_playbook_id) field(out, "child_playbook_id", *spec.child_playbook_id);
  if (spec.knowledge_ids) {
    field(out, "knowledge_ids", spec.knowledge_ids->empty() ? "none" : join(*spec.knowledge_ids, ", "));
  }
  if (spec.secret_ids) {
    field(out, "secret_ids", spec.secret_ids->empty() ? "none" : join(*spec.secret_ids, ", "));
  }
  if (spec.max_acu_limit) field(out, "max_acu_limit", std::to_string(*spec.max_acu_limit));
  if (spec.structured_output_schema) {
    field(out, "structured_output_schema", *spec.structured_output_schema);
  }
  if (spec.devin_mode) field(out, "devin_mode", *spec.devin_mode);
  if (spec.resumable) field(out, "resumable", *spec.resumable ? "true" : "false");
  if (spec.concurrency_key) field(out, "concurrency_key", *spec.concurrency_key);
  field(out, "org_id", definition.org_id ? *definition.org_id : config.api.org_id + " (default)");
  field(out, "priority", std::to_string(definition.priority));
  if (controls.not_before_ms) field(out, "not_before", format_timestamp_ms(*controls.not_before_ms));
  if (controls.deadline_ms) field(out, "deadline", format_timestamp_ms(*controls.deadline_ms));
  if (controls.max_attempts) field(out, "max_attempts", std::to_string(*controls.max_attempts));
  if (controls.on_waiting_for_user.action != core::WaitingPolicy::Action::keep_waiting) {
    field(out, "on_waiting_for_user", waiting_policy_text(controls.on_waiting_for_user));
  }
  for (std::size_t i = 0; i < controls.messages.size(); ++i) {
    field(out, "message " + std::to_string(i + 1), controls.messages[i]);
  }
  if (controls.complete_on) {
    field(out, "complete_on",
          *controls.complete_on == core::CompletionPolicy::on_finished ? "finished" : "stop");
  }
  if (controls.fan_out_enterprise) field(out, "fan_out", "enterprise");
  if (controls.stall.after) field(out, "stall_after", format_duration(*controls.stall.after));
  if (controls.stall.action) {
    field(out, "stall_action", std::string{core::to_string(*controls.stall.action)});
  }
}

std::string history_line(const store::HistoryEntry& entry) {
  std::string line = "  " + format_timestamp_ms(entry.at_ms) + "  " + entry.event;
  if (entry.state) line += "  state=" + *entry.state;
  if (entry.status) line += "  status=" + *entry.status;
  if (entry.status_detail) line += "  detail=" + *entry.status_detail;
  if (entry.message) line += "  " + *entry.message;
  return line;
}

ExitCode cmd_show(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (args.positional.size() != 1) return command.usage("give exactly one KEY");
  const auto& key = args.positional.front();
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  auto& store = *opened.store;
  const auto found = store.find(key);
  if (!found) return command.database_error(found.error());
  if (!*found) return command.fail(ExitCode::unknown_job, "no job has the key '" + key + "'");
  const core::JobRecord& job = **found;
  const auto outcome = store.outcome(job.id);
  if (!outcome) return command.database_error(outcome.error());
  const auto history = store.history(job.id);
  if (!history) return command.database_error(history.error());
  const auto source = store.job_source(job.id);
  if (!source) return command.database_error(source.error());
  const std::string state{core::to_string(job.state)};
  // The session's own ACUs and its children's, totalled by the configured rule.
  const core::ParentAcus acus_rule = opened.config.jobs.parent_acus_include_children
                                        ? core::ParentAcus::include_children
                                        : core::ParentAcus::separate;
  const core::JobAcus acus = core::job_acus(outcome->acus_consumed, outcome->children_acus, acus_rule);

  if (command.json()) {
    command.print_json(job_detail_object(job, *outcome, *history, *source, acus_rule));
    return ExitCode::ok;
  }

  io.out << "Job " << job.definition.key << '\n';
  field(io.out, "state", state);
  field(io.out, "source", *source);
  if (job.parent_key) field(io.out, "parent_key", *job.parent_key);
  io.out << '\n';
  print_definition(io.out, job, opened.config);
  io.out << "\nOutcome\n";
  field(io.out, "session_id", dash(job.session_id));
  field(io.out, "url", dash(job.session_url));
  field(io.out, "status", dash(job.status));
  field(io.out, "status_detail", dash(job.status_detail));
  if (outcome->child_session_ids.empty()) {
    field(io.out, "acus_consumed", format_number(acus.total));
  } else {
    field(io.out, "acus_consumed",
          format_number(acus.total) + " (session " + format_number(acus.own) + ", children " +
              format_number(acus.children) + ")");
    std::string ids;
    for (const auto& id : outcome->child_session_ids) ids += (ids.empty() ? "" : "\n") + id;
    field(io.out, "children", ids);
  }
  if (outcome->pull_requests.empty()) {
    field(io.out, "pull_requests", "-");
  } else {
    std::string prs;
    for (const auto& pr : outcome->pull_requests) {
      if (!prs.empty()) prs += '\n';
      prs += pr.pr_url + (pr.pr_state ? " (" + *pr.pr_state + ")" : "");
    }
    field(io.out, "pull_requests", prs);
  }
  field(io.out, "structured_output", dash(outcome->structured_output));
  field(io.out, "error", dash(job.last_error));
  field(io.out, "attempts", std::to_string(job.attempts));
  field(io.out, "generation", std::to_string(job.generation));
  field(io.out, "creation_tag", job.creation_tag.empty() ? "-" : job.creation_tag);
  if (job.cancel_requested != 0) {
    field(io.out, "cancel_requested", job.cancel_requested == 2 ? "terminate and archive" : "terminate");
  }
  if (job.messages_sent != 0) field(io.out, "messages_sent", std::to_string(job.messages_sent));
  if (job.waiting_since_ms) field(io.out, "waiting_since", format_timestamp_ms(*job.waiting_since_ms));
  field(io.out, "created_at", format_timestamp_ms(job.created_at_ms));
  field(io.out, "updated_at", format_timestamp_ms(job.updated_at_ms));
  field(io.out, "started_at", timestamp_or_dash(outcome->started_at_ms));
  field(io.out, "finished_at", timestamp_or_dash(outcome->finished_at_ms));
  io.out << "\nHistory\n";
  for (const auto& entry : *history) io.out << history_line(entry) << '\n';
  return ExitCode::ok;
}

}  // namespace

constinit const CommandInfo ls_info{
    .name = "ls",
    .group = CommandInfo::Group::jobs,
    .summary = "list jobs, filtered by state, organisation, tag or age",
    .help = kLsHelp,
    .options = kLsFlags,
    .run = cmd_ls,
};

constinit const CommandInfo show_info{
    .name = "show",
    .group = CommandInfo::Group::jobs,
    .summary = "print one job: definition, outcome and history",
    .help = kShowHelp,
    .options = kShowFlags,
    .run = cmd_show,
};

}  // namespace devin_orch::app
