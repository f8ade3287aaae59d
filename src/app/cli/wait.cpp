// `devin-orch wait KEY...`: blocks until the named jobs have ended, prints them as `ls` does and
// exits by their outcomes, for scripts and CI. It only reads the database, so the daemon that
// works the queue may run in another process, or start later.
#include "command.hpp"
#include "devin_orch/app/cli/job_outcomes.hpp"

#include "devin_orch/app/cli/text_table.hpp"
#include "devin_orch/core/org_spread.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/json/array.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

namespace devin_orch::app {
namespace {

constexpr std::string_view kWaitHelp =
    R"(Usage: devin-orch wait [--config FILE] KEY... [--timeout DURATION] [--fail-on STATES] [--json]

Waits until every named job has ended (finished, failed, suspended, dead, lost, invalid,
cancelled, timed_out or stalled), then prints them as `ls` does, in the order of the keys. It only
reads the database: the daemon that works the queue may run in another process, or start
later. Each job that ends while it waits is named on stderr.

  -c, --config FILE     configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                        /etc/devin-orch/devin-orch.yaml
  --timeout DURATION    give up after DURATION (e.g. 90s, 30m, 2h; 0s looks once); default:
                        wait as long as it takes
  --fail-on STATES      the ended states that count as failure, comma-separated; default:
                        every ended state but finished
  --json                a JSON array of objects, the fields of `ls --json`

Text columns: KEY STATE ORG SESSION STATUS AGE DURATION ACUS REASON ERROR (as `ls`).
Exit codes: 0 every job ended and none in a --fail-on state, 1 database failure, 2 bad usage,
3 no job has one of the keys, 5 a job ended in a --fail-on state (also when the timeout
passed), 6 the timeout passed before every job ended.
)";

constexpr std::array<OptionSpec, 4> kWaitOptions{
    {kConfigOption, kJsonOption, {"--timeout", true}, {"--fail-on", true}}};

// How often the database's change mark is read while nothing changes: it is one cheap read
// (SQLite: PRAGMA data_version; PostgreSQL: one round trip on its LISTEN connection), and the
// jobs are read again only when it moved.
constexpr auto kMarkInterval = std::chrono::milliseconds{100};
// The jobs are read at least this often anyway, in case a change escaped the mark.
constexpr auto kReadAnyway = std::chrono::seconds{5};

using SteadyClock = std::chrono::steady_clock;

struct Waited {
  std::string key;
  store::JobSummary job;
  bool ended = false;
};

// The keys in the order given, each once.
std::vector<std::string> unique_keys(const std::vector<std::string>& keys) {
  std::vector<std::string> out;
  for (const auto& key : keys) {
    if (std::ranges::find(out, key) == out.end()) out.push_back(key);
  }
  return out;
}

// Reads the jobs not ended yet. A key without a job (never, or pruned meanwhile) is reported;
// nullopt when all are there.
std::optional<ExitCode> look(Command& command, store::OperatorStore& store,
                             const std::string& default_org, std::vector<Waited>& waited,
                             bool first) {
  std::optional<ExitCode> stop;
  for (auto& entry : waited) {
    if (entry.ended) continue;
    const auto found = store.find(entry.key);
    if (!found) return command.database_error(found.error());
    if (!*found) {
      stop = command.fail(ExitCode::unknown_job,
                          first ? "no job has the key '" + entry.key + "'"
                                : "the job '" + entry.key + "' is gone (pruned?)");
      continue;
    }
    const core::JobRecord& job = **found;
    // Its ACUs and end time, for the row `ls` would print.
    const auto outcome = store.outcome(job.id);
    if (!outcome) return command.database_error(outcome.error());
    if (core::is_terminal(job.state)) {
      entry.ended = true;
      if (!first) {
        command.io().err << "devin-orch wait: " << entry.key << " ended "
                         << core::to_string(job.state) << '\n';
      }
    }
    entry.job = summarize(job, default_org, &*outcome);
  }
  return stop;
}

// Says on stderr, once, that no daemon is alive (no registry row unlapsed): the jobs then move
// only once one starts (or never, if none is meant to).
void note_when_no_daemon(Command& command, store::OperatorStore& store) {
  const auto daemons = store.list_leases(core::kDaemonRegistryPrefix);
  if (!daemons) return;
  const auto now_ms = core::to_epoch_ms(core::wall_now());
  for (const auto& row : *daemons) {
    if (row.holder.expires_at_ms > now_ms) return;
  }
  command.io().err << "devin-orch wait: no daemon works the queue now; the jobs move on once "
                      "one does\n";
}

// Sleeps until another process committed to the database since `mark` was read, the next
// read-anyway, or the deadline.
void sleep_until_change(store::ChangeFeed& changes, const store::StoreResult<std::int64_t>& mark,
                        std::optional<SteadyClock::time_point> deadline) {
  const auto started = SteadyClock::now();
  for (;;) {
    auto nap = std::chrono::duration_cast<SteadyClock::duration>(kMarkInterval);
    if (deadline) nap = std::min(nap, std::max(SteadyClock::duration{0}, *deadline - SteadyClock::now()));
    std::this_thread::sleep_for(nap);
    const auto now = SteadyClock::now();
    if ((deadline && now >= *deadline) || now - started >= kReadAnyway) return;
    const auto moved = changes.change_mark();
    if (!mark || !moved || *moved != *mark) return;  // a failed read: look at the jobs instead
  }
}

ExitCode cmd_wait(Command& command) {
  const ParsedArgs& args = command.args();
  if (args.positional.empty()) return command.usage("give one or more job KEYs");
  std::optional<core::Duration> timeout;
  if (const auto text = args.value("--timeout")) {
    timeout = parse_age(*text);
    if (!timeout) return command.usage("--timeout needs a duration like 90s, 30m or 2h");
  }
  std::vector<core::JobState> fail_on = ended_unfinished_states();
  if (const auto text = args.value("--fail-on")) {
    std::string error;
    auto parsed = parse_fail_on(*text, error);
    if (!parsed) return command.usage("--fail-on: " + error);
    fail_on = std::move(*parsed);
  }

  Config config;
  if (const auto stop = command.load(config)) return *stop;
  std::unique_ptr<store::Store> store;
  if (const auto stop = command.open_database(config, store)) return *stop;
  const std::optional<SteadyClock::time_point> deadline =
      timeout ? std::optional{SteadyClock::now() + *timeout} : std::nullopt;

  std::vector<Waited> waited;
  for (auto& key : unique_keys(args.positional)) waited.push_back(Waited{.key = std::move(key)});
  const auto pending = [&waited] {
    return std::ranges::count_if(waited, [](const Waited& w) { return !w.ended; });
  };
  bool timed_out = false;
  for (bool first = true;; first = false) {
    // Read before the jobs are: a commit that lands after them moves it.
    const auto mark = store->changes().change_mark();
    if (const auto stop = look(command, store->operators(), config.api.org_id, waited, first)) {
      return *stop;
    }
    if (pending() == 0) break;
    if (deadline && SteadyClock::now() >= *deadline) {
      timed_out = true;
      break;
    }
    if (first) note_when_no_daemon(command, store->operators());
    sleep_until_change(store->changes(), mark, deadline);
  }

  std::vector<store::JobSummary> jobs;
  for (const auto& entry : waited) jobs.push_back(entry.job);
  const auto context = row_context(store->operators(), config, core::wall_now(), jobs);
  if (!context) return command.database_error(context.error());
  if (command.json()) {
    boost::json::array rows;
    for (const auto& job : jobs) rows.push_back(job_row_object(job, *context));
    command.print_json(rows);
  } else {
    std::vector<std::vector<std::string>> table{job_row_header()};
    for (const auto& job : jobs) table.push_back(job_row(job, *context));
    print_table(command.out(), table);
  }

  std::string failed;
  for (const auto& entry : waited) {
    if (entry.ended && std::ranges::find(fail_on, entry.job.state) != fail_on.end()) {
      failed += (failed.empty() ? "" : ", ") + entry.key + " (" +
                std::string{core::to_string(entry.job.state)} + ")";
    }
  }
  std::string unended;
  for (const auto& entry : waited) {
    if (!entry.ended) {
      unended += (unended.empty() ? "" : ", ") + entry.key + " (" +
                 std::string{core::to_string(entry.job.state)} + ")";
    }
  }
  if (timed_out) {
    (void)command.fail(ExitCode::timed_out, "timed out after " + *args.value("--timeout") +
                                                "; not ended: " + unended);
  }
  if (!failed.empty()) {
    return command.fail(ExitCode::jobs_failed,
                        "ended in a state counted as failure (" + describe_states(fail_on) +
                            "): " + failed);
  }
  return timed_out ? ExitCode::timed_out : ExitCode::ok;
}

}  // namespace

constinit const CommandInfo wait_info{
    .name = "wait",
    .group = CommandInfo::Group::jobs,
    .summary = "wait until jobs end; exit by their outcomes (for scripts and CI)",
    .help = kWaitHelp,
    .options = kWaitOptions,
    .run = cmd_wait,
};

}  // namespace devin_orch::app
