// Mapping between Devin API JSON and our types. Boost.JSON stays inside the .cpp.
// Readers are tolerant: unknown fields ignored, null or absent optional fields defaulted,
// unknown enum strings kept as they are. A known field present with the wrong type is
// errc::unexpected_shape (drift we must notice, not guess around); invalid JSON, or nesting
// deeper than 64, is errc::malformed_json. A key given twice in one object counts as its last
// occurrence, as in Boost.JSON's own objects.
#pragma once

#include "devin_orch/api/types.hpp"
#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::api {

// SessionCreateRequest body for `spec`; `creation_tag` is appended to the tags. `secrets` are
// the spec's session_secrets with their values resolved; `attachment_urls` the URLs its
// attachments were uploaded to.
std::string create_session_body(const core::JobSpec& spec, std::string_view creation_tag,
                                const std::vector<SessionSecret>& secrets = {},
                                const std::vector<std::string>& attachment_urls = {});

// A multipart/form-data body with one part, `file`, holding `bytes` as `file_name`; sets
// `content_type` to the header value (with `boundary`, which must not occur in `bytes`).
std::string attachment_upload_body(std::string_view file_name, std::string_view bytes,
                                   std::string_view boundary, std::string* content_type);
result<Attachment> parse_attachment(std::string_view body);
// GET .../sessions/{id}/messages: items [{event_id, created_at, message, source}] (any other
// field ignored; a source other than "devin" counts as not Devin's).
result<MessagePage> parse_message_page(std::string_view body);
std::string messages_target(std::string_view org_id, std::string_view session_id, int first,
                            const std::optional<std::string>& after);
std::string attachments_path(std::string_view org_id);
// Body of POST .../sessions/{id}/messages.
std::string send_message_body(std::string_view message);

result<Session> parse_session(std::string_view body);
result<SessionPage> parse_session_page(std::string_view body);
result<OrganizationPage> parse_organization_page(std::string_view body);
result<Principal> parse_principal(std::string_view body);

// A readable reason from an error body: FastAPI `detail` (string, or 422 list joined as
// "loc: msg; ..."), else the first 200 bytes of the body with control characters removed.
std::string error_detail(std::string_view body);

// Request targets (path and query, percent-encoded).
std::string sessions_path(std::string_view org_id);
std::string session_path(std::string_view org_id, std::string_view session_id);
std::string list_sessions_target(std::string_view org_id, const ListSessionsQuery& query);
std::string organizations_target(int first, const std::optional<std::string>& after);

}  // namespace devin_orch::api
