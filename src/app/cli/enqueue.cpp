// `devin-orch enqueue`: adds jobs from flags, a YAML job file or JSON lines on stdin, source
// "cli". Everything is read and validated before the database is opened.
#include "command.hpp"

#include "devin_orch/app/cli/job_json.hpp"
#include "devin_orch/app/config/job_api.hpp"
#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/app/jobs/attachment_files.hpp"
#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/core/job_diff.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/json.hpp>

#include <array>
#include <filesystem>
#include <istream>

namespace devin_orch::app {
namespace json = boost::json;
namespace {

// A line of `enqueue --stdin` longer than this is refused rather than buffered without bound.
constexpr std::size_t kMaxStdinLine = 1U << 20U;

constexpr std::string_view kEnqueueHelp =
    R"(Usage: devin-orch enqueue [--config FILE] --key KEY --prompt TEXT [job options] [--json]
       devin-orch enqueue [--config FILE] --file JOBS.yaml [--json]
       devin-orch enqueue [--config FILE] --stdin [--json]

Adds jobs to the queue (source "cli"); a running daemon notices them within milliseconds
(jobs.queue_watch; jobs.queue_check_interval without it). A key is a job's identity forever: adding it again with the same
definition changes nothing; with a different definition it is reported and not applied, except
for a job that is `invalid`: the corrected definition replaces it and it is queued again.

  -c, --config FILE     configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                        /etc/devin-orch/devin-orch.yaml
  --key KEY             the job's key (1-512 characters), with --prompt
  --prompt TEXT         the task (at most 64 KiB)
  --title TEXT          session title
  --tag TAG             session tag (repeatable)
  --repo OWNER/NAME     repository (repeatable)
  --org ORG             organisation (default: api.org_id)
  --priority N          higher runs first (default 0)
  --not-before TIME     do not start before TIME (RFC 3339 with a zone)
  --deadline TIME       terminate the session and end timed_out after TIME
  --max-attempts N      create attempts, 1-1000 (default: create.max_attempts)
  --create-as-user USER create the session as USER
  --playbook ID         playbook id
  --child-playbook ID   playbook of the session's child sessions (the session spawns children)
  --max-acu-limit N     ACU limit for the session
  --concurrency-key KEY the job's concurrency group (config `concurrency:` limits each)
  --devin-mode MODE     e.g. normal, fast, lite, ultra, fusion (passed to the API as given)
  --resumable BOOL      true or false: keep the session's VM after it stops (default: the API's)
  --stall-after DURATION  report the session as stalled when it has not moved for DURATION
                        (default: stall.after; docs/stalls.md)
  --stall-action ACTION report, message or terminate (ends the job stalled); default:
                        stall.action
  --attach FILE         a file the session gets, uploaded before its create (repeatable; at
                        most 10 MiB each by default, attachments.max_bytes)
  --file FILE           read jobs from a YAML job file (the format of jobs.files)
  --stdin               read one JSON object per line: {"key": ..., "prompt": ..., ...}
  --json                print a JSON array of {"key", "result"} instead of text

Prints one line per job:
  added KEY
  mended KEY (was invalid; queued again)
  exists KEY (unchanged)
  exists KEY with a different definition (not applied): FIELD, ... differ
Invalid jobs are reported on stderr (FILE:LINE:COLUMN: ... or stdin:LINE: ...) and skipped;
the valid ones are still added.

Exit codes: 0 every job added or unchanged, 1 database failure, 2 bad usage or an invalid
job, 4 a key exists with a different definition.
)";

struct EnqueueEntry {
  std::optional<std::string> key;
  std::string result;  // added | mended | unchanged | changed | invalid
  std::optional<std::string> error;
  std::vector<std::string_view> differs;  // changed: the fields that differ from the stored job
};

constexpr std::array<OptionSpec, 24> kEnqueueFlags{{
    kConfigOption,
    {"--key", true},          {"--prompt", true},         {"--title", true},
    {"--tag", true, true},    {"--repo", true, true},     {"--org", true},
    {"--priority", true},     {"--not-before", true},     {"--deadline", true},
    {"--max-attempts", true}, {"--create-as-user", true}, {"--playbook", true},
    {"--max-acu-limit", true}, {"--devin-mode", true},    {"--file", true},
    {"--stdin"},              kJsonOption,               {"--resumable", true},
    {"--child-playbook", true}, {"--concurrency-key", true},
    {"--stall-after", true},     {"--stall-action", true}, {"--attach", true, true},
}};

// The flag that sets a field core names ("tags[1]" -> "--tag"), so the reason points at what
// the operator typed.
std::string_view flag_for(std::string_view field) {
  constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kFlags{{
      {"key", "--key"},
      {"prompt", "--prompt"},
      {"title", "--title"},
      {"tags", "--tag"},
      {"repos", "--repo"},
      {"org_id", "--org"},
      {"max_attempts", "--max-attempts"},
      {"create_as_user_id", "--create-as-user"},
      {"playbook_id", "--playbook"},
      {"child_playbook_id", "--child-playbook"},
      {"max_acu_limit", "--max-acu-limit"},
      {"devin_mode", "--devin-mode"},
      {"resumable", "--resumable"},
      {"concurrency_key", "--concurrency-key"},
      {"stall_after", "--stall-after"},
      {"stall_action", "--stall-action"},
      {"attachments", "--attach"},
  }};
  const std::string_view name = field.substr(0, field.find('['));
  for (const auto& [known, flag] : kFlags) {
    if (known == name) return flag;
  }
  return field;
}

// The definition the job flags describe; nullopt and a reason if they are invalid. Flags are
// parsed here (integers, times); whether the values are allowed is core's to say.
std::optional<core::JobDefinition> definition_from_flags(const ParsedArgs& args,
                                                        std::int64_t max_attachment_bytes,
                                                        std::string& reason) {
  core::JobDefinition definition;
  definition.key = *args.value("--key");
  definition.spec.prompt = *args.value("--prompt");
  definition.spec.title = args.value("--title");
  definition.spec.tags = args.all("--tag");
  definition.spec.repos = args.all("--repo");
  definition.spec.create_as_user_id = args.value("--create-as-user");
  definition.spec.playbook_id = args.value("--playbook");
  definition.spec.child_playbook_id = args.value("--child-playbook");
  definition.spec.devin_mode = args.value("--devin-mode");
  definition.spec.concurrency_key = args.value("--concurrency-key");
  definition.org_id = args.value("--org");
  // Relative to where the command runs: the daemon reads them from its own directory.
  for (const auto& path : args.all("--attach")) {
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(path, ec);
    definition.spec.attachments.push_back(ec ? path : absolute.lexically_normal().string());
  }
  const auto integer = [&](const char* name) -> std::optional<std::int64_t> {
    const auto text = args.value(name);
    const auto parsed = parse_int(*text);
    if (!parsed) reason = std::string{name} + " needs an integer, got '" + *text + "'";
    return parsed;
  };
  if (args.value("--priority")) {
    const auto priority = integer("--priority");
    if (!priority) return std::nullopt;
    definition.priority = *priority;
  }
  if (args.value("--max-attempts")) {
    definition.controls.max_attempts = integer("--max-attempts");
    if (!definition.controls.max_attempts) return std::nullopt;
  }
  if (args.value("--max-acu-limit")) {
    definition.spec.max_acu_limit = integer("--max-acu-limit");
    if (!definition.spec.max_acu_limit) return std::nullopt;
  }
  if (const auto text = args.value("--resumable")) {
    // The words a job file and the JSON form take, nothing looser: the API wants a bool.
    if (*text != "true" && *text != "false") {
      reason = "--resumable needs true or false, got '" + *text + "'";
      return std::nullopt;
    }
    definition.spec.resumable = *text == "true";
  }
  if (const auto text = args.value("--stall-after")) {
    definition.controls.stall.after = parse_duration(*text);
    if (!definition.controls.stall.after) {
      reason = "--stall-after needs a duration like 30m, got '" + *text + "'";
      return std::nullopt;
    }
  }
  if (const auto text = args.value("--stall-action")) {
    definition.controls.stall.action = core::parse_stall_action(*text);
    if (!definition.controls.stall.action) {
      reason = "--stall-action needs report, message or terminate, got '" + *text + "'";
      return std::nullopt;
    }
  }
  for (const auto* name : {"--not-before", "--deadline"}) {
    if (const auto text = args.value(name)) {
      const auto at = parse_timestamp_ms(*text);
      if (!at) {
        reason = std::string{name} +
                 " needs an RFC 3339 time with a zone, like 2026-11-24T09:30:00Z, got '" + *text +
                 "'";
        return std::nullopt;
      }
      (std::string_view{name} == "--deadline" ? definition.controls.deadline_ms
                                              : definition.controls.not_before_ms) = *at;
    }
  }
  if (const auto problem = core::validate(definition)) {
    reason = std::string{flag_for(problem->field)} + ": " + problem->reason;
    return std::nullopt;
  }
  if (const auto problem = check_attachment_files(definition.spec, max_attachment_bytes)) {
    reason = "--attach: " + problem->reason;
    return std::nullopt;
  }
  return definition;
}

ExitCode cmd_enqueue(Command& command) {
  const ParsedArgs& args = command.args();
  const CommandIo& io = command.io();
  if (const auto stop = command.no_arguments()) return *stop;
  const bool from_flags = args.has("--key") || args.has("--prompt");
  const int sources = (from_flags ? 1 : 0) + (args.has("--file") ? 1 : 0) +
                      (args.has("--stdin") ? 1 : 0);
  if (sources == 0) return command.usage("give --key and --prompt, --file FILE or --stdin");
  if (sources > 1) return command.usage("--key/--prompt, --file and --stdin exclude each other");
  if (!from_flags) {
    for (const auto& flag : kEnqueueFlags) {
      if (flag.name != "--file" && flag.name != "--stdin" && flag.name != "--json" &&
          flag.name != "--config" && args.has(flag.name)) {
        return command.usage(std::string{flag.name} + " only goes with --key and --prompt");
      }
    }
  }
  if (from_flags && (!args.has("--key") || !args.has("--prompt"))) {
    return command.usage("--key and --prompt go together");
  }

  // The configuration first: its limits (attachments.max_bytes) are the daemon's, so a job
  // enqueue takes is one the daemon takes. Everything is read and validated before the
  // database is opened, so bad usage never creates a database.
  Opened opened;
  if (const auto stop = command.load(opened.config)) return *stop;
  const std::int64_t max_attachment_bytes = opened.config.attachments.max_bytes;
  std::vector<core::JobDefinition> jobs;
  std::vector<EnqueueEntry> invalid;
  ExitCode code = ExitCode::ok;
  if (from_flags) {
    std::string reason;
    auto definition = definition_from_flags(args, max_attachment_bytes, reason);
    if (!definition) return command.usage(reason);
    jobs.push_back(std::move(*definition));
  } else if (const auto file = args.value("--file")) {
    auto load = load_job_file(*file, {.max_attachment_bytes = max_attachment_bytes});
    if (load.fatal) return command.fail(ExitCode::usage, load.fatal->to_string());
    for (auto& bad : load.invalid) {
      invalid.push_back({bad.key, "invalid", bad.diagnostic.to_string()});
    }
    jobs = std::move(load.jobs);
  } else {
    std::string line;
    int number = 0;
    while (std::getline(io.in, line)) {
      ++number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = "stdin:" + std::to_string(number) + ": ";
      if (line.size() > kMaxStdinLine) {
        invalid.push_back({std::nullopt, "invalid",
                           where + "line is longer than " + std::to_string(kMaxStdinLine) +
                               " bytes"});
        continue;
      }
      std::string reason;
      json::error_code ec;
      const auto value = json::parse(line, ec, {}, json_limits());
      std::optional<core::JobDefinition> definition;
      if (ec) {
        reason = "not valid JSON: " + ec.message();
      } else if (!value.is_object()) {
        reason = "expected a JSON object";
      } else {
        definition = parse_job_object(value.get_object(), &reason);
        if (definition) {
          if (const auto problem =
                  check_attachment_files(definition->spec, max_attachment_bytes)) {
            reason = store::field_error_text(*problem);
            definition.reset();
          }
        }
      }
      if (!definition) {
        std::optional<std::string> key;
        if (value.is_object() && value.get_object().contains("key") &&
            value.get_object().at("key").is_string()) {
          key = std::string{value.get_object().at("key").get_string()};
        }
        invalid.push_back({key, "invalid", where + reason});
        continue;
      }
      jobs.push_back(std::move(*definition));
    }
  }
  // The API of each job's organisation (api.version, api.organizations) decides as well: a
  // job the daemon would refuse (a v3-only field for a v1 organisation) is refused here.
  std::optional<ExitCode> flags_refused;
  std::erase_if(jobs, [&](const core::JobDefinition& job) {
    const auto problem = validate_for_api(opened.config.api, job);
    if (!problem) return false;
    if (from_flags) {
      flags_refused =
          command.usage(std::string{flag_for(problem->field)} + ": " + problem->reason);
    } else {
      invalid.push_back({job.key, "invalid", "job '" + job.key + "': " + problem->text()});
    }
    return true;
  });
  if (flags_refused) return *flags_refused;
  if (!invalid.empty()) code = ExitCode::usage;
  for (const auto& entry : invalid) io.err << *entry.error << '\n';

  std::unique_ptr<store::Store> store;
  if (const auto stop = command.open_database(opened.config, store)) return *stop;
  opened.outbox = &store->outbox();
  opened.store = std::move(store);
  std::vector<EnqueueEntry> entries;
  for (const auto& job : jobs) {
    const auto added = opened.store->add_job(job, "cli", io.now);
    if (!added) {
      code = command.database_error(added.error());
      break;
    }
    switch (*added) {
      case store::AddResult::inserted: entries.push_back({job.key, "added", {}}); break;
      case store::AddResult::unchanged: entries.push_back({job.key, "unchanged", {}}); break;
      case store::AddResult::mended: entries.push_back({job.key, "mended", {}}); break;
      case store::AddResult::changed: {
        // Which fields differ, for the report; without them if the job cannot be read back.
        const auto stored = opened.store->find(job.key);
        entries.push_back({job.key, "changed", {},
                           stored && *stored ? core::differing_fields((*stored)->definition, job)
                                             : std::vector<std::string_view>{}});
        if (code == ExitCode::ok) code = ExitCode::not_allowed;
        break;
      }
    }
  }
  if (args.has("--json")) {
    json::array rows;
    for (const auto& entry : entries) {
      json::object row{{"key", nullable(entry.key)}, {"result", entry.result}};
      if (entry.result == "changed") {
        json::array differs;
        for (const auto field : entry.differs) differs.emplace_back(field);
        row["differs"] = std::move(differs);
      }
      rows.push_back(std::move(row));
    }
    for (const auto& entry : invalid) {
      rows.push_back(json::object{
          {"key", nullable(entry.key)}, {"result", entry.result}, {"error", nullable(entry.error)}});
    }
    command.print_json(rows);
    return code;
  }
  for (const auto& entry : entries) {
    if (entry.result == "added") {
      io.out << "added " << *entry.key << '\n';
    } else if (entry.result == "mended") {
      io.out << "mended " << *entry.key << " (was invalid; queued again)\n";
    } else if (entry.result == "unchanged") {
      io.out << "exists " << *entry.key << " (unchanged)\n";
    } else {
      io.out << "exists " << *entry.key << " with a different definition (not applied)";
      if (!entry.differs.empty()) {
        io.out << ": " << core::join_fields(entry.differs)
               << (entry.differs.size() == 1 ? " differs" : " differ");
      }
      io.out << '\n';
    }
  }
  return code;
}

}  // namespace

constinit const CommandInfo enqueue_info{
    .name = "enqueue",
    .group = CommandInfo::Group::jobs,
    .summary = "add jobs from flags, a YAML file or JSON lines on stdin",
    .help = kEnqueueHelp,
    .options = kEnqueueFlags,
    .run = cmd_enqueue,
};

}  // namespace devin_orch::app
