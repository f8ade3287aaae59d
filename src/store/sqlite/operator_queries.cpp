// The operator's read-only queries (the CLI's ls, show, pause --list, prune --dry-run): every
// SQL statement the operator's commands need beyond the daemon's own, so none runs outside the store.
#include "devin_orch/store/sqlite/sqlite_store.hpp"

#include "devin_orch/core/job_state_list.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "devin_orch/store/sqlite/statement.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace devin_orch::store {
namespace {

// One text per order whatever the filter: an unset filter binds NULL and drops out, so each
// statement is prepared once, and a state list travels as one JSON array instead of a variable
// IN list.
constexpr std::string_view kListJobs =
    "SELECT id, key, state, coalesce(org_id, ?3), session_id, session_url, status, "
    "status_detail, last_error, attempts, created_at, finished_at, spec, updated_at, started_at, "
    "not_before, acus_consumed, children_acus FROM jobs "
    "WHERE (?1 IS NULL OR state IN (SELECT value FROM json_each(?1))) "
    "AND (?2 IS NULL OR coalesce(org_id, ?3) = ?2) "
    "AND (?4 IS NULL OR created_at < ?4) "
    "AND (?5 IS NULL OR created_at > ?5) ";

// JobOrder::state sorts by core::JobState's order, not by name.
std::string state_rank() {
  std::string sql = "CASE state";
  int rank = 0;
  for (const auto state : core::all_job_states()) {
    sql += " WHEN '" + std::string{core::to_string(state)} + "' THEN " + std::to_string(rank++);
  }
  return sql + " END";
}

std::string list_jobs_sql(JobOrder order, bool descending) {
  const std::string direction = descending ? " DESC" : " ASC";
  std::string sql{kListJobs};
  sql += "ORDER BY ";
  switch (order) {
    case JobOrder::added: break;
    case JobOrder::created: sql += "created_at" + direction + ", "; break;
    case JobOrder::updated: sql += "updated_at" + direction + ", "; break;
    case JobOrder::key: sql += "key" + direction + ", "; break;
    case JobOrder::state: sql += state_rank() + direction + ", "; break;
  }
  return sql + "id" + direction;
}

// prune()'s selection (sqlite_store.cpp): ended jobs that finished before ?1.
constexpr std::string_view kCountPrunable =
    "SELECT count(*) FROM jobs "
    "WHERE NOT (state = 'queued' OR state = 'creating' OR state = 'running') "
    "AND coalesce(finished_at, updated_at) < ?1";

std::optional<std::string> states_json(const std::vector<core::JobState>& states) {
  if (states.empty()) return std::nullopt;
  boost::json::array names;
  for (const auto state : states) names.emplace_back(core::to_string(state));
  return boost::json::serialize(names);
}

}  // namespace

StoreResult<std::vector<JobSummary>> SqliteStore::list_jobs(const JobFilter& filter) {
  return answer([&]() -> result<std::vector<JobSummary>> {
    std::vector<JobSummary> jobs;
    if (filter.limit == std::size_t{0}) return jobs;
    auto done = read_rows(
        list_jobs_sql(filter.order, filter.descending),
        [&](Statement& s) {
          s.bind(1, states_json(filter.states));
          s.bind(2, filter.org_id);
          s.bind(3, filter.default_org);
          s.bind(4, filter.created_before_ms);
          s.bind(5, filter.created_after_ms);
        },
        [&](const Statement& row) {
          // The CHECK constraint admits only known names.
          const auto state = core::parse_job_state(row.text_at(2)).value_or(core::JobState::invalid);
          // The spec is decoded only where it is needed: the tag filter, a queued job's user
          // (whose pause would hold it), and a live or queued job's concurrency key (a full
          // group holds the queued ones).
          std::optional<core::JobSpec> spec;
          if (filter.tag || state == core::JobState::queued ||
              state == core::JobState::creating || state == core::JobState::running) {
            if (auto decoded = decode_spec(row.text_at(12))) spec = std::move(*decoded);
          }
          if (filter.tag && !(spec && std::find(spec->tags.begin(), spec->tags.end(),
                                                *filter.tag) != spec->tags.end())) {
            return true;
          }
          jobs.push_back(JobSummary{
              .id = row.int64_at(0),
              .key = row.text_at(1),
              .state = state,
              .org_id = row.text_at(3),
              .session_id = row.optional_text_at(4),
              .session_url = row.optional_text_at(5),
              .status = row.optional_text_at(6),
              .status_detail = row.optional_text_at(7),
              .last_error = row.optional_text_at(8),
              .attempts = row.int64_at(9),
              .created_at_ms = row.int64_at(10),
              .updated_at_ms = row.int64_at(13),
              .started_at_ms = row.optional_int64_at(14),
              .finished_at_ms = row.optional_int64_at(11),
              .not_before_ms = row.optional_int64_at(15),
              .create_as_user_id = spec ? spec->create_as_user_id : std::nullopt,
          .max_acu_limit = spec ? spec->max_acu_limit : std::nullopt,
          .concurrency_key = spec ? spec->concurrency_key : std::nullopt,
              .acus_consumed = row.optional_double_at(16),
              .children_acus = row.optional_double_at(17).value_or(0.0),
          });
          return !filter.limit || jobs.size() < *filter.limit;
        });
    if (!done) return done.error();
    return jobs;
  });
}

StoreResult<std::string> SqliteStore::job_source(std::int64_t job_id) {
  return answer([&]() -> result<std::string> {
    std::optional<std::string> source;
    auto done = read_rows(
        "SELECT source FROM jobs WHERE id = ?1", [&](Statement& s) { s.bind(1, job_id); },
        [&](const Statement& row) {
          source = row.text_at(0);
          return false;
        });
    if (!done) return done.error();
    if (!source) return errc::not_found;
    return std::move(*source);
  });
}

StoreResult<std::vector<OrgPause>> SqliteStore::list_pauses() {
  return answer([&]() -> result<std::vector<OrgPause>> {
    std::vector<OrgPause> pauses;
    auto done = read_rows(
        "SELECT org_id, reason, source, paused_at FROM org_pauses ORDER BY org_id",
        [](Statement&) {},
        [&](const Statement& row) {
          pauses.push_back(OrgPause{.org_id = row.text_at(0),
                                    .reason = row.text_at(1),
                                    .source = row.text_at(2),
                                    .paused_at_ms = row.int64_at(3)});
          return true;
        });
    if (!done) return done.error();
    return pauses;
  });
}

StoreResult<std::int64_t> SqliteStore::count_prunable(core::TimePoint cutoff) {
  return answer([&]() -> result<std::int64_t> {
    std::int64_t count = 0;
    auto done = read_rows(
        kCountPrunable, [&](Statement& s) { s.bind(1, core::to_epoch_ms(cutoff)); },
        [&](const Statement& row) {
          count = row.int64_at(0);
          return false;
        });
    if (!done) return done.error();
    return count;
  });
}

StoreResult<ConnectionSettings> SqliteStore::connection_settings() {
  return answer([&]() -> result<ConnectionSettings> {
    ConnectionSettings settings;
    // PRAGMA statements each answer one row with one value.
    const auto read = [&](std::string_view pragma, std::int64_t& into) {
      return read_rows(pragma, [](Statement&) {}, [&](const Statement& row) {
        into = row.int64_at(0);
        return false;
      });
    };
    std::int64_t foreign_keys = 0;
    for (auto done : {read("PRAGMA synchronous", settings.synchronous),
                      read("PRAGMA foreign_keys", foreign_keys),
                      read("PRAGMA busy_timeout", settings.busy_timeout_ms),
                      read("PRAGMA cache_size", settings.cache_size)}) {
      if (!done) return done.error();
    }
    settings.foreign_keys = foreign_keys != 0;
    return settings;
  });
}

}  // namespace devin_orch::store
