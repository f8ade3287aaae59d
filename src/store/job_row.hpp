// Internal to the store: how a row of `jobs` becomes a JobRecord, and the JSON texts kept in its
// columns (pull requests, child session ids), the same for every backend. A backend's row type
// offers int64_at, text_at, optional_text_at and optional_int64_at by column index.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/core/session.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {

// Column list shared by every query that builds a JobRecord; read_job() relies on its order.
#define DEVIN_ORCH_JOB_COLUMNS                                                              \
  "id, key, org_id, priority, spec, state, generation, attempts, creation_tag, intent_at, " \
  "session_id, session_url, status, status_detail, last_error, created_at, updated_at, "    \
  "not_before, deadline, max_attempts, controls, parent_key, messages_sent, waiting_since, "  \
  "cancel_requested, started_at, sends, duplicate_watch_until, child_session_ids, "           \
  "stalled_since"

// How many columns DEVIN_ORCH_JOB_COLUMNS names: where a query's own columns after them begin.
inline constexpr int kJobColumnCount = 30;

std::optional<std::string> text_or_null(std::string_view text);
std::string serialise_pull_requests(const std::vector<core::PullRequest>& pull_requests);
std::optional<std::vector<core::PullRequest>> parse_pull_requests(std::string_view text);
std::optional<std::string> serialise_ids(const std::vector<std::string>& ids);
std::optional<std::vector<std::string>> parse_ids(std::string_view text);
// The canonical text of a stored spec, or the text itself if it does not decode (so that it
// compares unequal to any valid definition).
std::string canonical_spec(const std::string& stored);

struct DecodedJob {
  core::JobRecord record;
  std::optional<std::string> spec_error;  // set when the stored spec does not decode
};

template <class Row>
DecodedJob read_job(const Row& row) {
  DecodedJob out;
  core::JobRecord& job = out.record;
  job.id = row.int64_at(0);
  job.definition.key = row.text_at(1);
  job.definition.org_id = row.optional_text_at(2);
  job.definition.priority = row.int64_at(3);
  std::string reason;
  if (auto spec = decode_spec(row.text_at(4), &reason)) {
    job.definition.spec = std::move(*spec);
  } else {
    out.spec_error = std::move(reason);
  }
  // The CHECK constraint admits only known names.
  job.state = core::parse_job_state(row.text_at(5)).value_or(core::JobState::invalid);
  job.generation = row.int64_at(6);
  job.attempts = row.int64_at(7);
  job.creation_tag = row.optional_text_at(8).value_or(std::string{});
  job.intent_at_ms = row.optional_int64_at(9);
  job.session_id = row.optional_text_at(10);
  job.session_url = row.optional_text_at(11);
  job.status = row.optional_text_at(12);
  job.status_detail = row.optional_text_at(13);
  job.last_error = row.optional_text_at(14);
  job.created_at_ms = row.int64_at(15);
  job.updated_at_ms = row.int64_at(16);
  auto& controls = job.definition.controls;
  controls.not_before_ms = row.optional_int64_at(17);
  controls.deadline_ms = row.optional_int64_at(18);
  controls.max_attempts = row.optional_int64_at(19);
  if (const auto text = row.optional_text_at(20); text && !out.spec_error) {
    std::string why;
    if (!decode_controls(*text, controls, &why)) out.spec_error = std::move(why);
  }
  // Rows come from other tools too: the same rules as every other way in (core).
  if (!out.spec_error) {
    if (const auto problem = core::validate(job.definition)) {
      out.spec_error = field_error_text(*problem);
    }
  }
  job.parent_key = row.optional_text_at(21);
  job.messages_sent = row.int64_at(22);
  job.waiting_since_ms = row.optional_int64_at(23);
  job.cancel_requested = static_cast<int>(row.int64_at(24));
  job.started_at_ms = row.optional_int64_at(25);
  job.cut_short = row.int64_at(26);
  job.duplicate_watch_until_ms = row.optional_int64_at(27);
  // Unreadable ids (a row another tool wrote) read as none: they only widen a termination.
  if (const auto children = row.optional_text_at(28)) {
    job.child_session_ids = parse_ids(*children).value_or(std::vector<std::string>{});
  }
  job.stalled_since_ms = row.optional_int64_at(29);
  static_assert(kJobColumnCount == 30, "read_job reads every column of DEVIN_ORCH_JOB_COLUMNS");
  return out;
}

}  // namespace devin_orch::store
