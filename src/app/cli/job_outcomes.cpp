// The rows `ls` and `wait` print (with why a queued job waits), and the states counted as
// failure (job_outcomes.hpp).
#include "devin_orch/app/cli/job_outcomes.hpp"

#include "command.hpp"

#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/org_spread.hpp"

#include <boost/json/string.hpp>

#include <algorithm>

namespace devin_orch::app {

namespace {

// How long the job's session has run: until it ended, or until now. None before it started.
std::optional<std::int64_t> run_duration_ms(const store::JobSummary& job, std::int64_t now_ms) {
  if (!job.started_at_ms) return std::nullopt;
  const std::int64_t end = job.finished_at_ms.value_or(now_ms);
  return std::max<std::int64_t>(end - *job.started_at_ms, 0);
}

// The job's ACUs as `show` counts them; none before a session reported any.
std::optional<double> job_total_acus(const store::JobSummary& job, core::ParentAcus rule) {
  if (!job.acus_consumed && job.children_acus <= 0) return std::nullopt;
  return core::job_acus(job.acus_consumed.value_or(0.0), job.children_acus, rule).total;
}

std::optional<WaitingReason> reason_for(const store::JobSummary& job, const RowContext& context) {
  if (job.state != core::JobState::queued) return std::nullopt;
  return waiting_reason(job, context.conditions);
}

}  // namespace

store::StoreResult<RowContext> row_context(store::OperatorStore& store, const Config& config,
                                           core::TimePoint now,
                                           std::span<const store::JobSummary> jobs) {
  RowContext context{.now = now,
                     .acus_rule = config.jobs.parent_acus_include_children
                                      ? core::ParentAcus::include_children
                                      : core::ParentAcus::separate};
  const bool any_queued = std::ranges::any_of(
      jobs, [](const store::JobSummary& job) { return job.state == core::JobState::queued; });
  if (!any_queued) return context;
  QueueConditions& conditions = context.conditions;
  conditions.now_ms = core::to_epoch_ms(now);
  conditions.max_active_sessions = config.create.max_active_sessions;
  conditions.max_concurrent_creates = config.create.max_concurrent_creates;
  auto orgs = store.paused_orgs();
  if (!orgs) return orgs.error();
  conditions.paused_orgs.insert(orgs->begin(), orgs->end());
  auto users = store.paused_users();
  if (!users) return users.error();
  conditions.paused_users = std::move(*users);
  auto holds = store.org_holds(now);
  if (!holds) return holds.error();
  conditions.holds = std::move(*holds);
  const auto busy = store.list_jobs({.states = {core::JobState::creating, core::JobState::running},
                                     .default_org = config.api.org_id});
  if (!busy) return busy.error();
  conditions.concurrency = core::ConcurrencyGroups{config.concurrency};
  std::map<std::string, int, std::less<>> group_active;
  for (const auto& job : *busy) {
    ++conditions.sessions[job.org_id];
    if (job.state == core::JobState::creating) ++conditions.creating[job.org_id];
    if (job.concurrency_key && conditions.concurrency.limit_for(*job.concurrency_key)) {
      ++group_active[*job.concurrency_key];
    }
  }
  conditions.concurrency.reload(std::move(group_active));
  conditions.spending = core::SpendingLedger{spending_budgets(config.spending)};
  if (const auto since = core::ledger_since(conditions.spending.budgets(), now)) {
    const auto charged = store.spending_since(*since);
    if (!charged) return charged.error();
    conditions.spending.reload(spending_charges(*charged, config.api.org_id, context.acus_rule));
  }
  // Some daemon is alive (its registry row not lapsed): it works the queue, or takes it.
  const auto daemons = store.list_leases(core::kDaemonRegistryPrefix);
  if (!daemons) return daemons.error();
  conditions.daemon_working = std::any_of(
      daemons->begin(), daemons->end(),
      [&conditions](const auto& row) { return row.holder.expires_at_ms > conditions.now_ms; });
  return context;
}

std::vector<std::string> job_row_header() {
  return {"KEY", "STATE", "ORG", "SESSION", "STATUS", "AGE", "DURATION", "ACUS", "REASON", "ERROR"};
}

std::vector<std::string> job_row(const store::JobSummary& job, const RowContext& context) {
  const std::int64_t now_ms = core::to_epoch_ms(context.now);
  const auto duration_ms = run_duration_ms(job, now_ms);
  const auto acus = job_total_acus(job, context.acus_rule);
  const auto reason = reason_for(job, context);
  return {job.key,
          std::string{core::to_string(job.state)},
          job.org_id,
          dash(job.session_id),
          dash(job.status),
          format_age(now_ms - job.created_at_ms),
          duration_ms ? format_age(*duration_ms) : "-",
          acus ? format_number(*acus) : "-",
          reason ? shorten(reason->text, kMaxReasonColumn) : "-",
          shorten(dash(job.last_error), kMaxErrorColumn)};
}

boost::json::object job_row_object(const store::JobSummary& job, const RowContext& context) {
  namespace json = boost::json;
  const auto duration_ms = run_duration_ms(job, core::to_epoch_ms(context.now));
  const auto acus = job_total_acus(job, context.acus_rule);
  const auto reason = reason_for(job, context);
  json::value duration = nullptr;
  if (duration_ms) duration = static_cast<double>(*duration_ms) / 1000.0;
  json::value acus_value = nullptr;
  if (acus) acus_value = *acus;
  json::value reason_until = nullptr;
  if (reason && reason->until_ms) reason_until = format_timestamp_ms(*reason->until_ms);
  return json::object{
      {"key", job.key},
      {"state", std::string{core::to_string(job.state)}},
      {"org_id", job.org_id},
      {"session_id", nullable(job.session_id)},
      {"status", nullable(job.status)},
      {"status_detail", nullable(job.status_detail)},
      {"url", nullable(job.session_url)},
      {"attempts", job.attempts},
      {"error", nullable(job.last_error)},
      {"created_at", format_timestamp_ms(job.created_at_ms)},
      {"updated_at", format_timestamp_ms(job.updated_at_ms)},
      {"started_at", timestamp_or_null(job.started_at_ms)},
      {"finished_at", timestamp_or_null(job.finished_at_ms)},
      {"duration_s", std::move(duration)},
      {"acus_consumed", std::move(acus_value)},
      {"reason", reason ? json::value(reason->text) : json::value(nullptr)},
      {"reason_code", reason ? json::value(to_string(reason->code)) : json::value(nullptr)},
      {"reason_until", std::move(reason_until)},
  };
}

store::JobSummary summarize(const core::JobRecord& job, const std::string& default_org,
                            const store::Outcome* outcome) {
  store::JobSummary summary{.id = job.id,
                            .key = job.definition.key,
                            .state = job.state,
                            .org_id = job.definition.org_id.value_or(default_org),
                            .session_id = job.session_id,
                            .session_url = job.session_url,
                            .status = job.status,
                            .status_detail = job.status_detail,
                            .last_error = job.last_error,
                            .attempts = job.attempts,
                            .created_at_ms = job.created_at_ms,
                            .updated_at_ms = job.updated_at_ms,
                            .started_at_ms = job.started_at_ms,
                            .not_before_ms = job.definition.controls.not_before_ms,
                            .create_as_user_id = job.definition.spec.create_as_user_id,
                            .max_acu_limit = job.definition.spec.max_acu_limit,
                            .concurrency_key = job.definition.spec.concurrency_key};
  if (outcome != nullptr) {
    summary.finished_at_ms = outcome->finished_at_ms;
    // The store keeps no figure before a session reported one; Outcome reads that as 0.
    if (job.session_id) summary.acus_consumed = outcome->acus_consumed;
    summary.children_acus = outcome->children_acus;
  }
  return summary;
}

std::optional<std::vector<core::JobState>> parse_fail_on(std::string_view text,
                                                         std::string& error) {
  std::vector<core::JobState> states;
  for (std::size_t start = 0; start <= text.size();) {
    const auto comma = std::min(text.find(',', start), text.size());
    const auto name = text.substr(start, comma - start);
    start = comma + 1;
    if (name.empty()) continue;  // "failed," or a doubled comma
    const auto state = core::parse_job_state(name);
    if (!state) {
      error = "unknown state '" + std::string{name} + "'";
      return std::nullopt;
    }
    if (!core::is_terminal(*state)) {
      error = "'" + std::string{name} +
              "' is not an ended state (finished, failed, suspended, dead, lost, invalid, "
              "cancelled, timed_out, stalled)";
      return std::nullopt;
    }
    if (std::ranges::find(states, *state) == states.end()) states.push_back(*state);
  }
  if (states.empty()) {
    error = "needs one or more ended states, e.g. failed,dead";
    return std::nullopt;
  }
  return states;
}

std::vector<core::JobState> ended_unfinished_states() {
  using core::JobState;
  return {JobState::failed, JobState::suspended, JobState::dead,     JobState::lost,
          JobState::invalid, JobState::cancelled, JobState::timed_out, JobState::stalled};
}

std::string describe_states(std::span<const core::JobState> states) {
  std::string out;
  for (const auto state : states) {
    if (!out.empty()) out += ", ";
    out += core::to_string(state);
  }
  return out;
}

store::StoreResult<std::vector<store::JobSummary>> jobs_ended_since(
    store::OperatorStore& store, std::span<const core::JobState> states, std::int64_t since_ms,
    const std::string& default_org) {
  store::JobFilter filter{.states = {states.begin(), states.end()}, .default_org = default_org};
  auto jobs = store.list_jobs(filter);
  if (!jobs) return jobs.error();
  std::erase_if(*jobs, [since_ms](const store::JobSummary& job) {
    return !job.finished_at_ms || *job.finished_at_ms < since_ms;
  });
  return jobs;
}

}  // namespace devin_orch::app
