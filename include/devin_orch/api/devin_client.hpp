// The Devin API calls the daemon makes, each returning a classified outcome (core::CallOutcome)
// plus the parsed value on success. v3 (the Organization API) by default; constructed for v1,
// the same calls go to the legacy v1 routes and their answers are read into the same types
// (json_mapping_v1.hpp), except what v1 cannot do (see each call).
#pragma once

#include "devin_orch/api/http_client.hpp"
#include "devin_orch/api/types.hpp"
#include "devin_orch/core/api_version.hpp"
#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/job.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::api {

template <class T>
struct ApiResult {
  core::CallOutcome outcome;
  // Set iff outcome.ok(), except for v1's terminate and send_message, whose answers hold no
  // session: there it stays empty.
  std::optional<T> value;
};

class DevinClient {
 public:
  explicit DevinClient(HttpClient& http, core::ApiVersion version = core::ApiVersion::v3) noexcept
      : http_{http}, version_{version} {}

  core::ApiVersion version() const noexcept { return version_; }

  boost::asio::awaitable<ApiResult<Session>> create_session(
      std::string org_id, core::JobSpec spec, std::string creation_tag,
      core::Duration timeout = {}, std::vector<SessionSecret> secrets = {},
      std::vector<std::string> attachment_urls = {});
  // POST /v3/organizations/{org_id}/attachments (multipart, field `file`): the file's URL for
  // a later create's attachment_urls. `boundary` separates the parts (random, from the caller;
  // a boundary found in the bytes is refused without sending). v1: not sent (its uploads
  // answer plain text and the v1 create has no attachment_urls).
  boost::asio::awaitable<ApiResult<Attachment>> upload_attachment(std::string org_id,
                                                                  std::string file_name,
                                                                  std::string bytes,
                                                                  std::string boundary,
                                                                  core::Duration timeout = {});
  boost::asio::awaitable<ApiResult<Session>> get_session(std::string org_id,
                                                         std::string session_id);
  // v1: tags, created_after (filtered here), first (limit) and after (an offset) only; a query
  // by session_ids or updated_after is refused without sending (CallClass::rejected).
  boost::asio::awaitable<ApiResult<SessionPage>> list_sessions(std::string org_id,
                                                               ListSessionsQuery query);
  // v1: DELETE /v1/sessions/{id} has no archive flag (it is ignored) and answers no session
  // (no value).
  boost::asio::awaitable<ApiResult<Session>> terminate_session(std::string org_id,
                                                               std::string session_id,
                                                               bool archive);
  // v1: the answer holds no session (no value).
  boost::asio::awaitable<ApiResult<Session>> send_message(std::string org_id,
                                                          std::string session_id,
                                                          std::string message);
  // One page of a session's messages, oldest first (`first` 1..200, `after` the previous
  // page's end_cursor). v1 lists no messages: refused without sending (CallClass::rejected).
  boost::asio::awaitable<ApiResult<MessagePage>> list_messages(std::string org_id,
                                                               std::string session_id, int first,
                                                               std::optional<std::string> after);
  // v1 has no organisation list: refused without sending (CallClass::rejected).
  boost::asio::awaitable<ApiResult<OrganizationPage>> list_organizations(
      int first, std::optional<std::string> after);
  // GET /v3/self: the cheap check that the key works (200) or not (401, `unauthorized`).
  // v1 has no /self: GET /v1/sessions?limit=1 checks the key instead; the principal is then
  // {principal_type: "v1_api_key"}.
  boost::asio::awaitable<ApiResult<Principal>> self();

 private:
  HttpClient& http_;
  core::ApiVersion version_;
};

}  // namespace devin_orch::api
