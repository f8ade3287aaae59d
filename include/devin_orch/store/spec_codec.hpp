// The JSON form of a JobSpec as stored in jobs.spec (and written by queue producers).
// Field names are the API's; encoding is canonical so equal specs encode to equal text.
#pragma once

#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <string>
#include <vector>
#include <string_view>

namespace devin_orch::store {

std::string encode_spec(const core::JobSpec& spec);

// How the JSON forms (stored rows, `enqueue --stdin`) name a rule core found broken:
// "field 'session_secrets[0].key': is 300 characters; the limit is 256".
std::string field_error_text(const core::FieldError& error);

// Checks the JSON types, then the spec's values with core::validate. On failure returns
// invalid_argument and, if `reason` is given, a readable reason naming the field (e.g.
// "field 'tags': expected an array of strings", "field 'prompt': must not be empty or only
// whitespace").
result<core::JobSpec> decode_spec(std::string_view json, std::string* reason = nullptr);

// The `controls` column: how a job is run beyond its spec. An object with any of
//   "on_waiting_for_user": "keep_waiting" | {"finish_after_ms": N} | {"send_message": "text"},
//   "messages": ["follow-up", ...], "complete_on": "stop" | "finished", "fan_out": "enterprise",
//   "stall_after_ms": N, "stall_action": "report" | "message" | "terminate".
// not_before, deadline and max_attempts are columns of their own (the queue filters on them).
// Encodes to an empty string when everything is at its default (stored as NULL).
std::string encode_controls(const core::JobControls& controls);
// Fills the JSON-held fields of `controls`; the column fields are left as they are. Checks the
// JSON types only: the values are checked with the whole definition (core::validate), which
// needs the column fields too.
result<void> decode_controls(std::string_view json, core::JobControls& controls,
                             std::string* reason = nullptr);

// A list of notification targets as JSON (the controls' "notify", the outbox's per-job
// targets): [{"url", "format" ("slack"; absent: webhook), "secret_file", "events", "tags"}].
// An empty list encodes to an empty string.
std::string encode_notify_targets(const std::vector<core::NotifyTarget>& targets);
result<std::vector<core::NotifyTarget>> decode_notify_targets(std::string_view json,
                                                              std::string* reason = nullptr);

}  // namespace devin_orch::store
