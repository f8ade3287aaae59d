// Jobs as the CLI reports their outcomes: the rows `ls` and `wait` print (the text columns and
// the JSON objects of docs/cli.md), and the ended states a script counts as failure (`wait`,
// `run --until-idle --fail-on`). Internal to the CLI; defined in job_outcomes.cpp.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/store/operator_store.hpp"
#include "devin_orch/store/types.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

// The columns: KEY STATE ORG SESSION STATUS AGE ERROR (AGE since the job was added, at `now`).
std::vector<std::string> job_row_header();
std::vector<std::string> job_row(const store::JobSummary& job, core::TimePoint now);
// key, state, org_id, session_id, status, status_detail, url, attempts, error, created_at,
// finished_at: every field always present.
boost::json::object job_row_object(const store::JobSummary& job);

// A record as a listing shows it. `default_org`: the organisation of a job that names none.
store::JobSummary summarize(const core::JobRecord& job, const std::string& default_org,
                            std::optional<std::int64_t> finished_at_ms);

// "failed,dead": ended states, comma-separated. nullopt, with the reason in `error`, for an
// unknown state, a state that is not an ended one, or an empty list.
std::optional<std::vector<core::JobState>> parse_fail_on(std::string_view text,
                                                         std::string& error);
// What counts as failure unless --fail-on says otherwise: every ended state but finished.
std::vector<core::JobState> ended_unfinished_states();
// "failed, dead"
std::string describe_states(std::span<const core::JobState> states);

// The jobs in one of `states` that ended at or after `since_ms` (a run's start), oldest first.
store::StoreResult<std::vector<store::JobSummary>> jobs_ended_since(
    store::OperatorStore& store, std::span<const core::JobState> states, std::int64_t since_ms,
    const std::string& default_org);

}  // namespace devin_orch::app
