// The operator's job commands: enqueue, ls, show, cancel, retry, pause, resume, prune. They work
// on the database the config names and never need the API key. Output formats are a contract
// (docs/cli.md, tests/app/cli_jobs_test.cpp): change them only on purpose.
#include "devin_orch/app/cli/cli_jobs.hpp"

#include "devin_orch/app/cli/text_table.hpp"

#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/store/job_store.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <boost/json.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <istream>
#include <map>
#include <memory>
#include <ostream>
#include <set>

namespace devin_orch::app {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxErrorColumn = 60;
// A line of `enqueue --stdin` longer than this is refused rather than buffered without bound.
constexpr std::size_t kMaxStdinLine = 1U << 20U;
constexpr std::string_view kDefaultPauseReason = "paused by an operator";

constexpr std::string_view kEnqueueHelp =
    R"(Usage: devin-orch enqueue --config FILE --key KEY --prompt TEXT [job options] [--json]
       devin-orch enqueue --config FILE --file JOBS.yaml [--json]
       devin-orch enqueue --config FILE --stdin [--json]

Adds jobs to the queue (source "cli"); a running daemon notices them within milliseconds
(jobs.queue_watch; jobs.queue_check_interval without it). A key is a job's identity forever: adding it again with the same
definition changes nothing; with a different definition it is reported and not applied.

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
  --max-acu-limit N     ACU limit for the session
  --devin-mode MODE     e.g. normal, fast, lite, ultra, fusion (passed to the API as given)
  --file FILE           read jobs from a YAML job file (the format of jobs.files)
  --stdin               read one JSON object per line: {"key": ..., "prompt": ..., ...}
  --json                print a JSON array of {"key", "result"} instead of text

Prints one line per job:
  added KEY
  exists KEY (unchanged)
  exists KEY with a different definition (not applied)
Invalid jobs are reported on stderr (FILE:LINE:COLUMN: ... or stdin:LINE: ...) and skipped;
the valid ones are still added.

Exit codes: 0 every job added or unchanged, 1 database failure, 2 bad usage or an invalid
job, 4 a key exists with a different definition.
)";

constexpr std::string_view kLsHelp =
    R"(Usage: devin-orch ls --config FILE [filters] [--json]

Lists jobs in the order they were added, oldest first.

  --state STATE         only jobs in STATE (repeatable: any of them)
  --org ORG             only jobs of organisation ORG (jobs naming none use api.org_id)
  --tag TAG             only jobs whose spec has the tag TAG
  --older-than DURATION only jobs created more than DURATION ago (e.g. 90s, 2h, 7d)
  --newer-than DURATION only jobs created less than DURATION ago
  --limit N             at most the first N matching jobs
  --json                a JSON array of objects: key, state, org_id, session_id, status,
                        status_detail, url, attempts, error, created_at, finished_at

Text columns: KEY STATE ORG SESSION STATUS AGE ERROR ("-" when empty; AGE since created).
Exit codes: 0 ok, 1 database failure, 2 bad usage.
)";

constexpr std::string_view kShowHelp = R"(Usage: devin-orch show --config FILE KEY [--json]

Prints one job: its definition (spec and controls), its outcome (session, status, ACUs, pull
requests, structured output, attempts, generation, timestamps) and its history, oldest first.
  --json   one object {"definition", "outcome", "history"}; "definition" has the format of
           an `enqueue --stdin` line

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 no job has that key.
)";

constexpr std::string_view kCancelHelp =
    R"(Usage: devin-orch cancel --config FILE KEY [--archive] [--json]

Cancels a job. A queued job ends `cancelled` at once and never starts. For a job being created
or running, the cancellation is recorded and the running daemon terminates the session
(and archives it with --archive), then ends the job `cancelled`.
  --archive   also archive the session when terminating it
  --json      print {"key", "result"}: result "cancelled" or "requested"

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 no job has that key, 4 the job has
already ended.
)";

constexpr std::string_view kRetryHelp = R"(Usage: devin-orch retry --config FILE KEY [--json]

Queues a failed, suspended, dead, lost, cancelled or timed_out job again as a new generation:
a new creation tag, attempts and session cleared, history kept.
  --json   print {"key", "result": "requeued", "generation"}

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 no job has that key, 4 the job's state
cannot be retried (queued, creating, running, finished, invalid).
)";

constexpr std::string_view kPauseHelp =
    R"(Usage: devin-orch pause --config FILE [--org ORG | --all] [--reason TEXT] [--json]
       devin-orch pause --config FILE --list [--json]

Stops the daemon from starting jobs of an organisation (running sessions are still polled).
Pauses are stored in the database and survive restarts; `devin-orch resume` lifts them.
  --org ORG      the organisation (default: api.org_id)
  --all          every organisation (stored as org "*")
  --reason TEXT  why (default "paused by an operator")
  --list         print the current pauses: ORG SINCE SOURCE REASON
  --json         JSON instead of text

Exit codes: 0 ok (also when already paused), 1 database failure, 2 bad usage.
)";

constexpr std::string_view kResumeHelp =
    R"(Usage: devin-orch resume --config FILE [--org ORG | --all] [--json]

Lifts a pause. --all lifts the pause made by `pause --all` (org "*"); pauses of single
organisations stay until resumed by name.
  --org ORG   the organisation (default: api.org_id)
  --all       the all-organisations pause
  --json      print {"org_id", "result": "resumed" | "not_paused"}

Exit codes: 0 ok (also when it was not paused), 1 database failure, 2 bad usage.
)";

constexpr std::string_view kPruneHelp =
    R"(Usage: devin-orch prune --config FILE --older-than DURATION [--dry-run] [--json]

Removes ended jobs (and their history) that finished more than DURATION ago (e.g. 30d, 12h)
from the queue. Their outcomes are kept in the `outcomes` table. Their keys become free again.
  --dry-run   count what would be removed, remove nothing
  --json      print {"pruned", "dry_run", "cutoff"}

Exit codes: 0 ok, 1 database failure, 2 bad usage.
)";

int cmd_enqueue(const std::vector<std::string>&, const CommandIo&);
int cmd_ls(const std::vector<std::string>&, const CommandIo&);
int cmd_show(const std::vector<std::string>&, const CommandIo&);
int cmd_cancel(const std::vector<std::string>&, const CommandIo&);
int cmd_retry(const std::vector<std::string>&, const CommandIo&);
int cmd_pause(const std::vector<std::string>&, const CommandIo&);
int cmd_resume(const std::vector<std::string>&, const CommandIo&);
int cmd_prune(const std::vector<std::string>&, const CommandIo&);

constexpr std::array<JobCommandInfo, 8> kCommandInfos{{
    {"enqueue", "add jobs from flags, a YAML file or JSON lines on stdin", kEnqueueHelp},
    {"ls", "list jobs, filtered by state, organisation, tag or age", kLsHelp},
    {"show", "print one job: definition, outcome and history", kShowHelp},
    {"cancel", "cancel a job (the daemon terminates a running session)", kCancelHelp},
    {"retry", "queue an ended job again as a new generation", kRetryHelp},
    {"pause", "pause an organisation (or all), or list pauses", kPauseHelp},
    {"resume", "lift a pause", kResumeHelp},
    {"prune", "remove old ended jobs from the queue (outcomes are kept)", kPruneHelp},
}};

constexpr std::array<int (*)(const std::vector<std::string>&, const CommandIo&), 8> kRunners{
    cmd_enqueue, cmd_ls, cmd_show, cmd_cancel, cmd_retry, cmd_pause, cmd_resume, cmd_prune};

// ---------------------------------------------------------------------------------------------
// Option parsing

struct Flag {
  std::string_view name;
  bool takes_value = false;
  bool repeatable = false;
};

struct Args {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  std::set<std::string, std::less<>> switches;
  std::vector<std::string> positional;
  bool help = false;

  bool has(std::string_view name) const {
    return switches.contains(name) || values.contains(name);
  }
  std::optional<std::string> value(std::string_view name) const {
    const auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second.back();
  }
  std::vector<std::string> all(std::string_view name) const {
    const auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

// `--flag value`, `--flag=value`, `--` ends options. Returns an error message on bad usage.
std::optional<std::string> parse_args(const std::vector<std::string>& args,
                                      std::span<const Flag> flags, Args& out) {
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (arg == "-c") arg = "--config";
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const auto flag = std::find_if(flags.begin(), flags.end(),
                                   [&](const Flag& f) { return f.name == arg; });
    if (flag == flags.end() && arg != "--config") return "unknown option '" + arg + "'";
    const bool takes_value = flag == flags.end() || flag->takes_value;
    const bool repeatable = flag != flags.end() && flag->repeatable;
    if (!takes_value) {
      if (inline_value) return arg + " takes no value";
      out.switches.insert(arg);
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return arg + " needs a value";
    }
    auto& slot = out.values[arg];
    if (!slot.empty() && !repeatable) return arg + " given more than once";
    slot.push_back(std::move(value));
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// parse_duration plus whole days in front ("7d", "1d12h"): retention is counted in days.
std::optional<core::Duration> parse_age(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits > 0 && digits < text.size() && text[digits] == 'd') {
    const auto days = parse_int(text.substr(0, digits));
    if (!days || *days > 36'600) return std::nullopt;
    const core::Duration whole{*days * 86'400'000};
    const auto rest = text.substr(digits + 1);
    if (rest.empty()) return whole;
    const auto more = parse_duration(rest);
    if (!more) return std::nullopt;
    return whole + *more;
  }
  return parse_duration(text);
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

// A command's context once its config is loaded and its database open.
struct Opened {
  Config config;
  std::unique_ptr<store::JobStore> store;
};

class Command {
 public:
  Command(std::string_view name, const CommandIo& io) : name_{name}, io_{io} {}

  int usage(const std::string& message) const {
    io_.err << "devin-orch " << name_ << ": " << message << "\n\n" << help();
    return exit_code::usage;
  }
  int fail(int code, const std::string& message) const {
    io_.err << "devin-orch " << name_ << ": " << message << '\n';
    return code;
  }
  int database_error(store::JobStore& store, const boost::system::error_code& ec) const {
    const auto& detail = store.last_error_message();
    return fail(exit_code::failure, "database error: " + (detail.empty() ? ec.message() : detail));
  }
  std::string_view help() const { return find_job_command(name_)->help; }

  // Parses, handles --help; returns an exit code when the command must stop here.
  std::optional<int> parse(const std::vector<std::string>& argv, std::span<const Flag> flags,
                           Args& args) const {
    if (const auto error = parse_args(argv, flags, args)) return usage(*error);
    if (args.help) {
      io_.out << help();
      return exit_code::ok;
    }
    return std::nullopt;
  }

  // Loads the config and opens the database; returns an exit code on failure.
  std::optional<int> open(const Args& args, Opened& opened) const {
    const auto path = args.value("--config");
    if (!path) return usage("--config FILE is required");
    auto loaded = load_config(*path);
    if (!loaded.config) {
      for (const auto& error : loaded.errors) io_.err << error.to_string() << '\n';
      return exit_code::usage;
    }
    opened.config = std::move(*loaded.config);
    std::string error;
    auto store = store::JobStore::open(
        store_options(opened.config.database),
        &error);
    if (!store) {
      return fail(exit_code::failure, "cannot open database " + opened.config.database.path +
                                          ": " + (error.empty() ? store.error().message() : error));
    }
    opened.store = std::move(*store);
    return std::nullopt;
  }

  const CommandIo& io() const { return io_; }

 private:
  std::string_view name_;
  const CommandIo& io_;
};

// A tiny RAII statement for the few read queries the store has no method for.
class Query {
 public:
  Query(sqlite3* db, const char* sql) : db_{db} {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      error_ = sqlite3_errmsg(db);
    }
  }
  ~Query() { sqlite3_finalize(stmt_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  void bind(int index, std::int64_t value) {
    if (stmt_ != nullptr) sqlite3_bind_int64(stmt_, index, value);
  }
  // True with a row; false when done or failed (then error() is set).
  bool step() {
    if (stmt_ == nullptr) return false;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) error_ = sqlite3_errmsg(db_);
    return false;
  }
  std::int64_t int64_at(int column) { return sqlite3_column_int64(stmt_, column); }
  std::optional<std::int64_t> optional_int64_at(int column) {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
    return int64_at(column);
  }
  std::string text_at(int column) {
    const auto* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    return {reinterpret_cast<const char*>(text),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  const std::optional<std::string>& error() const { return error_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::optional<std::string> error_;
};

json::value nullable(const std::optional<std::string>& value) {
  if (value) return json::string(*value);
  return nullptr;
}

json::value timestamp_or_null(const std::optional<std::int64_t>& epoch_ms) {
  if (epoch_ms) return json::string(format_timestamp_ms(*epoch_ms));
  return nullptr;
}

std::string dash(const std::optional<std::string>& value) {
  return value && !value->empty() ? *value : "-";
}

std::string timestamp_or_dash(const std::optional<std::int64_t>& epoch_ms) {
  return epoch_ms ? format_timestamp_ms(*epoch_ms) : "-";
}

std::string shorten(std::string text, std::size_t limit) {
  if (text.size() > limit) text = text.substr(0, limit - 3) + "...";
  return text;
}

// A job's effective organisation: its own, else the config's default.
std::string org_of(const core::JobRecord& job, const Config& config) {
  return job.definition.org_id.value_or(config.api.org_id);
}


// Coarse and short, for a table: 45s, 12m, 5h, 3d.
std::string format_age(std::int64_t milliseconds) {
  const std::int64_t seconds = std::max<std::int64_t>(milliseconds, 0) / 1000;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86'400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86'400) + "d";
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

std::string join(const std::vector<std::string>& values, std::string_view separator) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out += separator;
    out += value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The JSON form of a definition

json::parse_options json_limits() {
  json::parse_options options;
  options.max_depth = 64;
  return options;
}

// The control fields the store keeps as JSON (decode_controls' format).
constexpr std::array<std::string_view, 4> kControlFields{"on_waiting_for_user", "messages",
                                                         "complete_on", "fan_out"};

std::optional<core::JobDefinition> parse_job_object(const json::object& object,
                                                    std::string* reason) {
  const auto fail = [&](std::string why) -> std::optional<core::JobDefinition> {
    if (reason != nullptr) *reason = std::move(why);
    return std::nullopt;
  };
  core::JobDefinition definition;
  json::object spec;
  json::object controls;
  bool has_key = false;
  for (const auto& [name, value] : object) {
    if (name == "key") {
      if (!value.is_string()) return fail("field 'key': expected a string");
      definition.key = value.get_string();
      has_key = true;
    } else if (name == "org_id") {
      if (value.is_null()) continue;
      if (!value.is_string()) return fail("field 'org_id': expected a string or null");
      definition.org_id = std::string{value.get_string()};
    } else if (name == "priority") {
      if (!value.is_int64()) return fail("field 'priority': expected an integer");
      definition.priority = value.get_int64();
    } else if (name == "not_before" || name == "deadline") {
      if (value.is_null()) continue;
      const auto at = value.is_string() ? parse_timestamp_ms(value.get_string()) : std::nullopt;
      if (!at) {
        return fail("field '" + std::string{name} +
                    "': expected an RFC 3339 time with a zone, like 2026-11-24T09:30:00Z");
      }
      (name == "deadline" ? definition.controls.deadline_ms : definition.controls.not_before_ms) =
          *at;
    } else if (name == "max_attempts") {
      if (value.is_null()) continue;
      if (!value.is_int64()) return fail("field 'max_attempts': expected an integer or null");
      definition.controls.max_attempts = value.get_int64();
    } else if (name == "on_waiting_for_user" && value.is_object() &&
               value.get_object().size() == 1 && value.get_object().contains("finish_after")) {
      // The YAML spelling ({"finish_after": "10m"}) is accepted too.
      const auto& after = value.get_object().at("finish_after");
      const auto duration = after.is_string() ? parse_duration(after.get_string()) : std::nullopt;
      if (!duration) {
        return fail("field 'on_waiting_for_user.finish_after': expected a duration like 10m");
      }
      controls[name] = json::object{{"finish_after_ms", duration->count()}};
    } else if (std::find(kControlFields.begin(), kControlFields.end(), name) !=
               kControlFields.end()) {
      controls[name] = value;
    } else {
      spec[name] = value;
    }
  }
  if (!has_key) return fail("field 'key' is required");
  std::string why;
  auto decoded = store::decode_spec(json::serialize(spec), &why);
  if (!decoded) return fail(std::move(why));
  definition.spec = std::move(*decoded);
  if (!controls.empty()) {
    if (!store::decode_controls(json::serialize(controls), definition.controls, &why)) {
      constexpr std::string_view kPrefix = "controls: ";
      if (why.starts_with(kPrefix)) why.erase(0, kPrefix.size());
      return fail(std::move(why));
    }
  }
  if (const auto problem = core::validate(definition)) {
    return fail(store::field_error_text(*problem));
  }
  return definition;
}

json::object definition_object(const core::JobDefinition& definition) {
  json::object out;
  out["key"] = definition.key;
  json::error_code ec;
  auto spec = json::parse(store::encode_spec(definition.spec), ec, {}, json_limits());
  if (!ec && spec.is_object()) {
    for (auto& [name, value] : spec.get_object()) out[name] = std::move(value);
  }
  out["org_id"] = nullable(definition.org_id);
  out["priority"] = definition.priority;
  out["not_before"] = timestamp_or_null(definition.controls.not_before_ms);
  out["deadline"] = timestamp_or_null(definition.controls.deadline_ms);
  if (definition.controls.max_attempts) {
    out["max_attempts"] = *definition.controls.max_attempts;
  } else {
    out["max_attempts"] = nullptr;
  }
  if (const auto encoded = store::encode_controls(definition.controls); !encoded.empty()) {
    auto controls = json::parse(encoded, ec, {}, json_limits());
    if (!ec && controls.is_object()) {
      for (auto& [name, value] : controls.get_object()) out[name] = std::move(value);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// enqueue

struct EnqueueEntry {
  std::optional<std::string> key;
  std::string result;  // added | unchanged | changed | invalid
  std::optional<std::string> error;
};

constexpr std::array<Flag, 17> kEnqueueFlags{{
    {"--key", true},          {"--prompt", true},         {"--title", true},
    {"--tag", true, true},    {"--repo", true, true},     {"--org", true},
    {"--priority", true},     {"--not-before", true},     {"--deadline", true},
    {"--max-attempts", true}, {"--create-as-user", true}, {"--playbook", true},
    {"--max-acu-limit", true}, {"--devin-mode", true},    {"--file", true},
    {"--stdin"},              {"--json"},
}};

// The flag that sets a field core names ("tags[1]" -> "--tag"), so the reason points at what
// the operator typed.
std::string_view flag_for(std::string_view field) {
  constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kFlags{{
      {"key", "--key"},
      {"prompt", "--prompt"},
      {"title", "--title"},
      {"tags", "--tag"},
      {"repos", "--repo"},
      {"org_id", "--org"},
      {"max_attempts", "--max-attempts"},
      {"create_as_user_id", "--create-as-user"},
      {"playbook_id", "--playbook"},
      {"max_acu_limit", "--max-acu-limit"},
      {"devin_mode", "--devin-mode"},
  }};
  const std::string_view name = field.substr(0, field.find('['));
  for (const auto& [known, flag] : kFlags) {
    if (known == name) return flag;
  }
  return field;
}

// The definition the job flags describe; nullopt and a reason if they are invalid. Flags are
// parsed here (integers, times); whether the values are allowed is core's to say.
std::optional<core::JobDefinition> definition_from_flags(const Args& args, std::string& reason) {
  core::JobDefinition definition;
  definition.key = *args.value("--key");
  definition.spec.prompt = *args.value("--prompt");
  definition.spec.title = args.value("--title");
  definition.spec.tags = args.all("--tag");
  definition.spec.repos = args.all("--repo");
  definition.spec.create_as_user_id = args.value("--create-as-user");
  definition.spec.playbook_id = args.value("--playbook");
  definition.spec.devin_mode = args.value("--devin-mode");
  definition.org_id = args.value("--org");
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
  return definition;
}

int cmd_enqueue(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"enqueue", io};
  Args args;
  if (const auto stop = command.parse(argv, kEnqueueFlags, args)) return *stop;
  if (!args.positional.empty()) return command.usage("unexpected argument '" + args.positional[0] + "'");
  const bool from_flags = args.has("--key") || args.has("--prompt");
  const int sources = (from_flags ? 1 : 0) + (args.has("--file") ? 1 : 0) +
                      (args.has("--stdin") ? 1 : 0);
  if (sources == 0) return command.usage("give --key and --prompt, --file FILE or --stdin");
  if (sources > 1) return command.usage("--key/--prompt, --file and --stdin exclude each other");
  if (!from_flags) {
    for (const auto& flag : kEnqueueFlags) {
      if (flag.name != "--file" && flag.name != "--stdin" && flag.name != "--json" &&
          args.has(flag.name)) {
        return command.usage(std::string{flag.name} + " only goes with --key and --prompt");
      }
    }
  }
  if (from_flags && (!args.has("--key") || !args.has("--prompt"))) {
    return command.usage("--key and --prompt go together");
  }

  // Everything is read and validated before the database is opened, so bad usage never
  // creates a database.
  std::vector<core::JobDefinition> jobs;
  std::vector<EnqueueEntry> invalid;
  int code = exit_code::ok;
  if (from_flags) {
    std::string reason;
    auto definition = definition_from_flags(args, reason);
    if (!definition) return command.usage(reason);
    jobs.push_back(std::move(*definition));
  } else if (const auto file = args.value("--file")) {
    auto load = load_job_file(*file);
    if (load.fatal) return command.fail(exit_code::usage, load.fatal->to_string());
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
  if (!invalid.empty()) code = exit_code::usage;
  for (const auto& entry : invalid) io.err << *entry.error << '\n';

  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  std::vector<EnqueueEntry> entries;
  for (const auto& job : jobs) {
    const auto added = opened.store->add_job(job, "cli", io.now);
    if (!added) {
      code = command.database_error(*opened.store, added.error());
      break;
    }
    switch (*added) {
      case store::AddResult::inserted: entries.push_back({job.key, "added", {}}); break;
      case store::AddResult::unchanged: entries.push_back({job.key, "unchanged", {}}); break;
      case store::AddResult::changed:
        entries.push_back({job.key, "changed", {}});
        if (code == exit_code::ok) code = exit_code::not_allowed;
        break;
    }
  }
  if (args.has("--json")) {
    json::array rows;
    for (const auto& entry : entries) {
      rows.push_back(json::object{{"key", nullable(entry.key)}, {"result", entry.result}});
    }
    for (const auto& entry : invalid) {
      rows.push_back(json::object{
          {"key", nullable(entry.key)}, {"result", entry.result}, {"error", nullable(entry.error)}});
    }
    io.out << json::serialize(rows) << '\n';
    return code;
  }
  for (const auto& entry : entries) {
    if (entry.result == "added") {
      io.out << "added " << *entry.key << '\n';
    } else if (entry.result == "unchanged") {
      io.out << "exists " << *entry.key << " (unchanged)\n";
    } else {
      io.out << "exists " << *entry.key << " with a different definition (not applied)\n";
    }
  }
  return code;
}

// ---------------------------------------------------------------------------------------------
// ls

constexpr std::array<Flag, 8> kLsFlags{{
    {"--state", true, true},
    {"--org", true},
    {"--tag", true},
    {"--older-than", true},
    {"--newer-than", true},
    {"--limit", true},
    {"--json"},
    {"--config", true},
}};

int cmd_ls(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"ls", io};
  Args args;
  if (const auto stop = command.parse(argv, kLsFlags, args)) return *stop;
  if (!args.positional.empty()) return command.usage("unexpected argument '" + args.positional[0] + "'");
  std::set<core::JobState> states;
  for (const auto& text : args.all("--state")) {
    const auto state = core::parse_job_state(text);
    if (!state) return command.usage("unknown state '" + text + "'");
    states.insert(*state);
  }
  std::optional<std::int64_t> created_before;  // older than
  std::optional<std::int64_t> created_after;   // newer than
  for (const auto* name : {"--older-than", "--newer-than"}) {
    if (const auto text = args.value(name)) {
      const auto age = parse_age(*text);
      if (!age) return command.usage(std::string{name} + " needs a duration like 90s, 2h or 7d");
      const auto cutoff = core::to_epoch_ms(io.now - *age);
      (std::string_view{name} == "--older-than" ? created_before : created_after) = cutoff;
    }
  }
  std::optional<std::size_t> limit;
  if (const auto text = args.value("--limit")) {
    const auto n = parse_int(*text);
    if (!n || *n < 0) return command.usage("--limit needs a non-negative integer");
    limit = static_cast<std::size_t>(*n);
  }
  const auto org = args.value("--org");
  const auto tag = args.value("--tag");

  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  auto jobs = opened.store->all_jobs();
  if (!jobs) return command.database_error(*opened.store, jobs.error());
  std::vector<const core::JobRecord*> selected;
  for (const auto& job : *jobs) {
    if (limit && selected.size() >= *limit) break;
    if (!states.empty() && !states.contains(job.state)) continue;
    if (org && org_of(job, opened.config) != *org) continue;
    const auto& tags = job.definition.spec.tags;
    if (tag && std::find(tags.begin(), tags.end(), *tag) == tags.end()) continue;
    if (created_before && job.created_at_ms >= *created_before) continue;
    if (created_after && job.created_at_ms <= *created_after) continue;
    selected.push_back(&job);
  }

  if (args.has("--json")) {
    // finished_at is not part of JobRecord; one query gets it for every job.
    std::map<std::int64_t, std::int64_t> finished_at;
    Query query{opened.store->handle(),
                "SELECT id, finished_at FROM jobs WHERE finished_at IS NOT NULL"};
    while (query.step()) finished_at[query.int64_at(0)] = query.int64_at(1);
    if (query.error()) return command.fail(exit_code::failure, "database error: " + *query.error());
    json::array rows;
    for (const auto* job : selected) {
      const auto finished = finished_at.find(job->id);
      rows.push_back(json::object{
          {"key", job->definition.key},
          {"state", std::string{core::to_string(job->state)}},
          {"org_id", org_of(*job, opened.config)},
          {"session_id", nullable(job->session_id)},
          {"status", nullable(job->status)},
          {"status_detail", nullable(job->status_detail)},
          {"url", nullable(job->session_url)},
          {"attempts", job->attempts},
          {"error", nullable(job->last_error)},
          {"created_at", format_timestamp_ms(job->created_at_ms)},
          {"finished_at", finished == finished_at.end()
                              ? json::value(nullptr)
                              : json::value(format_timestamp_ms(finished->second))},
      });
    }
    io.out << json::serialize(rows) << '\n';
    return exit_code::ok;
  }
  std::vector<std::vector<std::string>> table{
      {"KEY", "STATE", "ORG", "SESSION", "STATUS", "AGE", "ERROR"}};
  for (const auto* job : selected) {
    table.push_back({job->definition.key, std::string{core::to_string(job->state)},
                     org_of(*job, opened.config), dash(job->session_id), dash(job->status),
                     format_age(core::to_epoch_ms(io.now) - job->created_at_ms),
                     shorten(dash(job->last_error), kMaxErrorColumn)});
  }
  print_table(io.out, table);
  return exit_code::ok;
}

// ---------------------------------------------------------------------------------------------
// show

constexpr std::array<Flag, 2> kShowFlags{{{"--json"}, {"--config", true}}};

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
  if (spec.create_as_user_id) field(out, "create_as_user_id", *spec.create_as_user_id);
  if (spec.playbook_id) field(out, "playbook_id", *spec.playbook_id);
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
}

std::string history_line(const store::HistoryEntry& entry) {
  std::string line = "  " + format_timestamp_ms(entry.at_ms) + "  " + entry.event;
  if (entry.state) line += "  state=" + *entry.state;
  if (entry.status) line += "  status=" + *entry.status;
  if (entry.status_detail) line += "  detail=" + *entry.status_detail;
  if (entry.message) line += "  " + *entry.message;
  return line;
}

int cmd_show(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"show", io};
  Args args;
  if (const auto stop = command.parse(argv, kShowFlags, args)) return *stop;
  if (args.positional.size() != 1) return command.usage("give exactly one KEY");
  const auto& key = args.positional.front();
  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  auto& store = *opened.store;
  const auto found = store.find(key);
  if (!found) return command.database_error(store, found.error());
  if (!*found) return command.fail(exit_code::not_found, "no job has the key '" + key + "'");
  const core::JobRecord& job = **found;
  const auto outcome = store.outcome(job.id);
  if (!outcome) return command.database_error(store, outcome.error());
  const auto history = store.history(job.id);
  if (!history) return command.database_error(store, history.error());
  std::string source;
  {
    Query query{store.handle(), "SELECT source FROM jobs WHERE id = ?1"};
    query.bind(1, job.id);
    if (query.step()) source = query.text_at(0);
    if (query.error()) return command.fail(exit_code::failure, "database error: " + *query.error());
  }
  const std::string state{core::to_string(job.state)};

  if (args.has("--json")) {
    json::array pull_requests;
    for (const auto& pr : outcome->pull_requests) {
      pull_requests.push_back(json::object{{"url", pr.pr_url}, {"state", nullable(pr.pr_state)}});
    }
    json::value structured = nullptr;
    if (outcome->structured_output) {
      json::error_code ec;
      structured = json::parse(*outcome->structured_output, ec, {}, json_limits());
      if (ec) structured = json::string(*outcome->structured_output);
    }
    json::value waiting_since = timestamp_or_null(job.waiting_since_ms);
    json::object result{
        {"state", state},
        {"source", source},
        {"parent_key", nullable(job.parent_key)},
        {"generation", job.generation},
        {"attempts", job.attempts},
        {"creation_tag", job.creation_tag.empty() ? json::value(nullptr)
                                                  : json::value(job.creation_tag)},
        {"session_id", nullable(job.session_id)},
        {"url", nullable(job.session_url)},
        {"status", nullable(job.status)},
        {"status_detail", nullable(job.status_detail)},
        {"acus_consumed", outcome->acus_consumed},
        {"pull_requests", std::move(pull_requests)},
        {"structured_output", std::move(structured)},
        {"error", nullable(job.last_error)},
        {"cancel_requested", job.cancel_requested != 0},
        {"messages_sent", job.messages_sent},
        {"waiting_since", std::move(waiting_since)},
        {"created_at", format_timestamp_ms(job.created_at_ms)},
        {"updated_at", format_timestamp_ms(job.updated_at_ms)},
        {"started_at", timestamp_or_null(outcome->started_at_ms)},
        {"finished_at", timestamp_or_null(outcome->finished_at_ms)},
    };
    json::array events;
    for (const auto& entry : *history) {
      events.push_back(json::object{
          {"at", format_timestamp_ms(entry.at_ms)},
          {"event", entry.event},
          {"state", nullable(entry.state)},
          {"status", nullable(entry.status)},
          {"status_detail", nullable(entry.status_detail)},
          {"message", nullable(entry.message)},
      });
    }
    io.out << json::serialize(json::object{{"definition", definition_object(job.definition)},
                                           {"outcome", std::move(result)},
                                           {"history", std::move(events)}})
           << '\n';
    return exit_code::ok;
  }

  io.out << "Job " << job.definition.key << '\n';
  field(io.out, "state", state);
  field(io.out, "source", source);
  if (job.parent_key) field(io.out, "parent_key", *job.parent_key);
  io.out << '\n';
  print_definition(io.out, job, opened.config);
  io.out << "\nOutcome\n";
  field(io.out, "session_id", dash(job.session_id));
  field(io.out, "url", dash(job.session_url));
  field(io.out, "status", dash(job.status));
  field(io.out, "status_detail", dash(job.status_detail));
  field(io.out, "acus_consumed", format_number(outcome->acus_consumed));
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
  return exit_code::ok;
}

// ---------------------------------------------------------------------------------------------
// cancel, retry

constexpr std::array<Flag, 3> kCancelFlags{{{"--archive"}, {"--json"}, {"--config", true}}};
constexpr std::array<Flag, 2> kRetryFlags{{{"--json"}, {"--config", true}}};

std::string current_state(store::JobStore& store, const std::string& key) {
  const auto found = store.find(key);
  if (found && *found) return std::string{core::to_string((*found)->state)};
  return "unknown";
}

int cmd_cancel(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"cancel", io};
  Args args;
  if (const auto stop = command.parse(argv, kCancelFlags, args)) return *stop;
  if (args.positional.size() != 1) return command.usage("give exactly one KEY");
  const auto& key = args.positional.front();
  const bool archive = args.has("--archive");
  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  const auto cancelled = opened.store->request_cancel(key, archive, io.now);
  if (!cancelled) return command.database_error(*opened.store, cancelled.error());
  using CancelResult = store::JobStore::CancelResult;
  std::string result;
  std::string text;
  switch (*cancelled) {
    case CancelResult::not_found:
      return command.fail(exit_code::not_found, "no job has the key '" + key + "'");
    case CancelResult::already_ended:
      return command.fail(exit_code::not_allowed,
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
  if (args.has("--json")) {
    io.out << json::serialize(json::object{{"key", key}, {"result", result}}) << '\n';
  } else {
    io.out << text << '\n';
  }
  return exit_code::ok;
}

int cmd_retry(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"retry", io};
  Args args;
  if (const auto stop = command.parse(argv, kRetryFlags, args)) return *stop;
  if (args.positional.size() != 1) return command.usage("give exactly one KEY");
  const auto& key = args.positional.front();
  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  const auto retried = opened.store->retry(key, io.now);
  if (!retried) return command.database_error(*opened.store, retried.error());
  using RetryResult = store::JobStore::RetryResult;
  switch (*retried) {
    case RetryResult::not_found:
      return command.fail(exit_code::not_found, "no job has the key '" + key + "'");
    case RetryResult::not_terminal:
      return command.fail(exit_code::not_allowed,
                          key + ": cannot retry a job in state " +
                              current_state(*opened.store, key) +
                              " (only failed, suspended, dead, lost, cancelled, timed_out)");
    case RetryResult::requeued: break;
  }
  const auto found = opened.store->find(key);
  if (!found) return command.database_error(*opened.store, found.error());
  const std::int64_t generation = *found ? (**found).generation : 0;
  if (args.has("--json")) {
    io.out << json::serialize(json::object{
                  {"key", key}, {"result", "requeued"}, {"generation", generation}})
           << '\n';
  } else {
    io.out << key << ": queued again as generation " << generation << " (history kept)\n";
  }
  return exit_code::ok;
}

// ---------------------------------------------------------------------------------------------
// pause, resume

constexpr std::array<Flag, 6> kPauseFlags{
    {{"--org", true}, {"--all"}, {"--reason", true}, {"--list"}, {"--json"}, {"--config", true}}};
constexpr std::array<Flag, 4> kResumeFlags{{{"--org", true}, {"--all"}, {"--json"}, {"--config", true}}};

constexpr std::string_view kAllOrgs = "*";

std::string org_label(std::string_view org) {
  return org == kAllOrgs ? "all organisations" : "organisation " + std::string{org};
}

// The organisation a pause or resume names; nullopt (after a usage message) on bad usage.
std::optional<std::string> target_org(const Command& command, const Args& args, int& code) {
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

int list_pauses(const Command& command, const Args& args, store::JobStore& store) {
  struct Pause {
    std::string org, reason, source;
    std::int64_t since = 0;
  };
  std::vector<Pause> pauses;
  Query query{store.handle(),
              "SELECT org_id, reason, paused_at, source FROM org_pauses ORDER BY org_id"};
  while (query.step()) {
    pauses.push_back({query.text_at(0), query.text_at(1), query.text_at(3), query.int64_at(2)});
  }
  if (query.error()) return command.fail(exit_code::failure, "database error: " + *query.error());
  auto& out = command.io().out;
  if (args.has("--json")) {
    json::array rows;
    for (const auto& pause : pauses) {
      rows.push_back(json::object{{"org_id", pause.org},
                                  {"reason", pause.reason},
                                  {"paused_at", format_timestamp_ms(pause.since)},
                                  {"source", pause.source}});
    }
    out << json::serialize(rows) << '\n';
    return exit_code::ok;
  }
  if (pauses.empty()) {
    out << "no organisation is paused\n";
    return exit_code::ok;
  }
  std::vector<std::vector<std::string>> table{{"ORG", "SINCE", "SOURCE", "REASON"}};
  for (const auto& pause : pauses) {
    table.push_back({pause.org, format_timestamp_ms(pause.since), pause.source, pause.reason});
  }
  print_table(out, table);
  return exit_code::ok;
}

int cmd_pause(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"pause", io};
  Args args;
  if (const auto stop = command.parse(argv, kPauseFlags, args)) return *stop;
  if (!args.positional.empty()) return command.usage("unexpected argument '" + args.positional[0] + "'");
  const bool list = args.has("--list");
  if (list && (args.has("--org") || args.has("--all") || args.has("--reason"))) {
    return command.usage("--list takes no --org, --all or --reason");
  }
  int code = exit_code::ok;
  auto org = target_org(command, args, code);
  if (!org) return code;
  const std::string reason = args.value("--reason").value_or(std::string{kDefaultPauseReason});
  if (reason.empty()) return command.usage("--reason is empty");
  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  auto& store = *opened.store;
  if (list) return list_pauses(command, args, store);
  if (org->empty()) *org = opened.config.api.org_id;

  const auto before = store.paused_orgs();
  if (!before) return command.database_error(store, before.error());
  const auto existing = before->find(*org);
  if (existing == before->end()) {
    if (auto paused = store.pause_org(*org, reason, "cli", io.now); !paused) {
      return command.database_error(store, paused.error());
    }
  }
  const bool already = existing != before->end();
  if (args.has("--json")) {
    io.out << json::serialize(json::object{
                  {"org_id", *org},
                  {"result", already ? "already_paused" : "paused"},
                  {"reason", already ? existing->second : reason}})
           << '\n';
  } else if (already) {
    io.out << org_label(*org) << " was already paused: " << existing->second << '\n';
  } else {
    io.out << "paused " << org_label(*org) << ": " << reason << '\n';
  }
  return exit_code::ok;
}

int cmd_resume(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"resume", io};
  Args args;
  if (const auto stop = command.parse(argv, kResumeFlags, args)) return *stop;
  if (!args.positional.empty()) return command.usage("unexpected argument '" + args.positional[0] + "'");
  int code = exit_code::ok;
  auto org = target_org(command, args, code);
  if (!org) return code;
  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  if (org->empty()) *org = opened.config.api.org_id;
  const auto lifted = opened.store->resume_org(*org);
  if (!lifted) return command.database_error(*opened.store, lifted.error());
  if (args.has("--json")) {
    io.out << json::serialize(json::object{{"org_id", *org},
                                           {"result", *lifted > 0 ? "resumed" : "not_paused"}})
           << '\n';
  } else if (*lifted > 0) {
    io.out << "resumed " << org_label(*org) << '\n';
  } else {
    io.out << org_label(*org) << " was not paused\n";
  }
  return exit_code::ok;
}

// ---------------------------------------------------------------------------------------------
// prune

constexpr std::array<Flag, 4> kPruneFlags{
    {{"--older-than", true}, {"--dry-run"}, {"--json"}, {"--config", true}}};

int cmd_prune(const std::vector<std::string>& argv, const CommandIo& io) {
  Command command{"prune", io};
  Args args;
  if (const auto stop = command.parse(argv, kPruneFlags, args)) return *stop;
  if (!args.positional.empty()) return command.usage("unexpected argument '" + args.positional[0] + "'");
  const auto text = args.value("--older-than");
  if (!text) return command.usage("--older-than DURATION is required");
  const auto age = parse_age(*text);
  if (!age) return command.usage("--older-than needs a duration like 12h or 30d");
  const auto cutoff = io.now - *age;
  const bool dry_run = args.has("--dry-run");
  Opened opened;
  if (const auto stop = command.open(args, opened)) return *stop;
  std::int64_t count = 0;
  if (dry_run) {
    // The same selection JobStore::prune makes.
    Query query{opened.store->handle(),
                "SELECT count(*) FROM jobs WHERE state IN ('finished', 'failed', 'suspended', "
                "'dead', 'lost', 'invalid', 'cancelled', 'timed_out') "
                "AND coalesce(finished_at, updated_at) < ?1"};
    query.bind(1, core::to_epoch_ms(cutoff));
    if (query.step()) count = query.int64_at(0);
    if (query.error()) return command.fail(exit_code::failure, "database error: " + *query.error());
  } else {
    const auto pruned = opened.store->prune(cutoff, io.now);
    if (!pruned) return command.database_error(*opened.store, pruned.error());
    count = *pruned;
  }
  const auto cutoff_text = format_timestamp_ms(core::to_epoch_ms(cutoff));
  if (args.has("--json")) {
    io.out << json::serialize(json::object{
                  {"pruned", count}, {"dry_run", dry_run}, {"cutoff", cutoff_text}})
           << '\n';
  } else if (dry_run) {
    io.out << "would prune " << count << " job(s) that ended before " << cutoff_text
           << " (dry run: nothing removed)\n";
  } else {
    io.out << "pruned " << count << " job(s) that ended before " << cutoff_text
           << " (outcomes kept)\n";
  }
  return exit_code::ok;
}

}  // namespace

std::span<const JobCommandInfo> job_commands() noexcept { return kCommandInfos; }

const JobCommandInfo* find_job_command(std::string_view name) noexcept {
  for (const auto& info : kCommandInfos) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

int run_job_command(std::string_view command, const std::vector<std::string>& args,
                    const CommandIo& io) {
  for (std::size_t i = 0; i < kCommandInfos.size(); ++i) {
    if (kCommandInfos[i].name != command) continue;
    try {
      return kRunners[i](args, io);
    } catch (const std::exception& e) {
      // Broken invariants end here: report them instead of aborting without a word.
      io.err << "devin-orch " << command << ": internal error: " << e.what() << '\n';
      return exit_code::failure;
    }
  }
  io.err << "devin-orch: unknown command '" << command << "'\n";
  return exit_code::usage;
}

std::optional<core::JobDefinition> parse_job_json(std::string_view text, std::string* reason) {
  json::error_code ec;
  const auto value = json::parse(text, ec, {}, json_limits());
  if (ec) {
    if (reason != nullptr) *reason = "not valid JSON: " + ec.message();
    return std::nullopt;
  }
  if (!value.is_object()) {
    if (reason != nullptr) *reason = "expected a JSON object";
    return std::nullopt;
  }
  return parse_job_object(value.get_object(), reason);
}

std::string job_definition_json(const core::JobDefinition& definition) {
  return json::serialize(definition_object(definition));
}

}  // namespace devin_orch::app
