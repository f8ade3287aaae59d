// What `ls` selects and what `show --json` prints, as pure functions shared by the CLI and the
// dashboard's HTTP API: one definition of the listing filter's words and of a job's JSON.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/session_family.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/store/types.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace devin_orch::app {

// A listing's filter as the user wrote it: `ls`'s options, or the API's query parameters of
// the same names (state, org, tag, older-than, newer-than, sort, reverse, limit).
struct JobFilterWords {
  std::vector<std::string> states;
  std::optional<std::string> org;
  std::optional<std::string> tag;
  std::optional<std::string> older_than;
  std::optional<std::string> newer_than;
  std::optional<std::string> sort;
  std::optional<std::string> limit;
  bool reverse = false;
};

// The store's filter for `words` at `now` (newest first unless sorted otherwise), or why the
// words are bad. A message names the word with `prefix` in front ("--" for the CLI's options,
// "" for query parameters): "--sort must be created, updated, key or state, got 'age'".
// default_org is left for the caller (the configuration's api.org_id).
std::variant<store::JobFilter, std::string> parse_job_filter(const JobFilterWords& words,
                                                             core::TimePoint now,
                                                             std::string_view prefix);

// "unknown state 'queud' (did you mean 'queued'?); the states are queued, creating, ..."
std::string unknown_state_message(std::string_view text);

// `show --json`'s object: {"definition", "outcome", "history"} (docs/cli.md).
boost::json::object job_detail_object(const core::JobRecord& job, const store::Outcome& outcome,
                                      const std::vector<store::HistoryEntry>& history,
                                      const std::string& source, core::ParentAcus acus_rule);

}  // namespace devin_orch::app
