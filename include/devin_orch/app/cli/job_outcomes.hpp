// Jobs as the CLI reports their outcomes: the rows `ls` and `wait` print (the text columns and
// the JSON objects of docs/cli.md), and the ended states a script counts as failure (`wait`,
// `run --until-idle --fail-on`); the dashboard's API lists with the same rows. Defined in
// job_outcomes.cpp.
#pragma once

#include "devin_orch/app/cli/waiting_reason.hpp"
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/session_family.hpp"
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

// What a listing's rows need beyond each job: when they are shown, how a job's ACUs count its
// child sessions (jobs.parent_acus_include_children), and what explains the queued ones.
struct RowContext {
  core::TimePoint now;
  core::ParentAcus acus_rule = core::ParentAcus::separate;
  QueueConditions conditions;  // read only when a row is queued
};
// The context for showing `jobs` at `now`; reads the pauses, holds, busy slots and the lease
// only when one of them is queued.
store::StoreResult<RowContext> row_context(store::OperatorStore& store, const Config& config,
                                           core::TimePoint now,
                                           std::span<const store::JobSummary> jobs);

// The columns: KEY STATE ORG SESSION STATUS AGE DURATION ACUS REASON ERROR (docs/cli.md, ls).
std::vector<std::string> job_row_header();
std::vector<std::string> job_row(const store::JobSummary& job, const RowContext& context);
// key, state, org_id, session_id, status, status_detail, url, attempts, error, created_at,
// updated_at, started_at, finished_at, duration_s, acus_consumed, reason, reason_code,
// reason_until: every field always present.
boost::json::object job_row_object(const store::JobSummary& job, const RowContext& context);

// A record as a listing shows it, with its outcome's figures when given. `default_org`: the
// organisation of a job that names none.
store::JobSummary summarize(const core::JobRecord& job, const std::string& default_org,
                            const store::Outcome* outcome);

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
