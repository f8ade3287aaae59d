// Mapping between the legacy v1 API's JSON (reference §3 "v1 status", §8) and the daemon's
// v3-shaped types: a v1 session is read into core::Session with its status translated, so the
// rest of the daemon judges it as it judges a v3 one (docs/api-v1.md has the table). Readers are
// tolerant like the v3 ones: unknown fields ignored, a known field of the wrong type is
// errc::unexpected_shape, invalid JSON errc::malformed_json.
#pragma once

#include "devin_orch/api/types.hpp"
#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::api {

// The v3 status (and detail) a v1 session is judged by.
struct V1Status {
  std::string status;
  std::optional<std::string> status_detail;
};

// `status_enum` (and, for `expired` only, the free-text `status`) as a v3 status:
// working/resumed -> running/working, blocked -> running/waiting_for_user,
// finished -> running/finished, resume_requested* -> resuming, expired -> what the free text
// names if it is a v3 stop ("error", "exit", "suspended: <detail>"), else exit;
// suspend_requested* and unknown values -> "v1:<value>", which no verdict knows, so polling
// goes on. A missing status_enum counts as unknown.
V1Status v1_status(std::optional<std::string_view> status_enum,
                   std::optional<std::string_view> status_text);

// ISO-8601 date-time (`2026-12-06T12:00:00Z`, `...12:00:00.123456+00:00`, `...+02:00`) as
// epoch seconds; nullopt if it is not one.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

// POST /v1/sessions body: the v1 fields of `spec` (the validation refuses v3-only ones with
// api.version v1), `idempotent: true`, and `creation_tag` appended to the tags.
std::string v1_create_session_body(const core::JobSpec& spec, std::string_view creation_tag,
                                   const std::vector<SessionSecret>& secrets = {});

// The create answer `{session_id, url, is_new_session?}` as a session that is `new`, with the
// tags and org it was created with (v1 answers neither).
result<Session> parse_v1_created(std::string_view body, std::string_view org_id,
                                 std::vector<std::string> tags);
// GET /v1/session/{id}.
result<Session> parse_v1_session(std::string_view body, std::string_view org_id);
// GET /v1/sessions `{sessions:[...]}` as a page: v1 has no cursor, so `end_cursor` is the next
// offset (in decimal) when the page was full. Sessions created before `created_after` (epoch
// seconds; v1 has no such filter) are left out.
result<SessionPage> parse_v1_session_list(std::string_view body, std::string_view org_id,
                                          std::int64_t offset, int limit,
                                          std::optional<std::int64_t> created_after);

// Request targets.
inline constexpr std::string_view kV1SessionsPath = "/v1/sessions";
std::string v1_session_path(std::string_view session_id);      // GET /v1/session/{id}
std::string v1_terminate_path(std::string_view session_id);    // DELETE /v1/sessions/{id}
std::string v1_message_path(std::string_view session_id);      // POST /v1/session/{id}/message
// GET /v1/sessions with `tags`, `limit` and `offset` (taken from query.after, a decimal offset).
// nullopt when the query asks what v1 cannot answer (session_ids, updated_after) or `after` is
// not an offset.
std::optional<std::string> v1_list_target(const ListSessionsQuery& query, std::int64_t* offset,
                                          int* limit);

}  // namespace devin_orch::api
