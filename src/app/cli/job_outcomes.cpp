// The rows `ls` and `wait` print, and the states counted as failure (job_outcomes.hpp).
#include "job_outcomes.hpp"

#include "command.hpp"

#include "devin_orch/app/formats/timestamp.hpp"

#include <boost/json/string.hpp>

#include <algorithm>

namespace devin_orch::app {

std::vector<std::string> job_row_header() {
  return {"KEY", "STATE", "ORG", "SESSION", "STATUS", "AGE", "ERROR"};
}

std::vector<std::string> job_row(const store::JobSummary& job, core::TimePoint now) {
  return {job.key,
          std::string{core::to_string(job.state)},
          job.org_id,
          dash(job.session_id),
          dash(job.status),
          format_age(core::to_epoch_ms(now) - job.created_at_ms),
          shorten(dash(job.last_error), kMaxErrorColumn)};
}

boost::json::object job_row_object(const store::JobSummary& job) {
  return boost::json::object{
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
      {"finished_at", timestamp_or_null(job.finished_at_ms)},
  };
}

store::JobSummary summarize(const core::JobRecord& job, const std::string& default_org,
                            std::optional<std::int64_t> finished_at_ms) {
  return store::JobSummary{.id = job.id,
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
                           .finished_at_ms = finished_at_ms};
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
              "cancelled, timed_out)";
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
          JobState::invalid, JobState::cancelled, JobState::timed_out};
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
