// The Devin API calls the daemon makes (v3, or v1 when constructed so): request building,
// classification of what came back (via core::classify_*), and parsing of successful bodies.
#include "devin_orch/api/devin_client.hpp"

#include "devin_orch/api/json_mapping.hpp"
#include "devin_orch/api/json_mapping_v1.hpp"

#include <algorithm>
#include <utility>

namespace devin_orch::api {
namespace net = boost::asio;

namespace {

template <class T, class Parse>
net::awaitable<ApiResult<T>> call(HttpClient& http, HttpRequest request, Parse parse) {
  HttpResult sent = co_await http.send(std::move(request));
  ApiResult<T> out;
  if (sent.ec) {
    std::string detail = sent.detail.empty() ? sent.ec.message() : std::move(sent.detail);
    out.outcome = core::classify_transport_failure(sent.request_sent, std::move(detail));
    co_return out;
  }

  const HttpResponse& response = sent.response;
  core::HttpAnswer answer{.status = response.status, .body = response.body};
  if (response.retry_after) answer.retry_after = *response.retry_after;
  if (response.retry_after_ms) answer.retry_after_ms = *response.retry_after_ms;
  out.outcome = core::classify_response(answer, core::wall_now());
  if (!out.outcome.ok()) co_return out;

  result<T> parsed = parse(response.body);
  if (!parsed) {
    // The server answered success, so it may well have acted; we just cannot tell on what.
    out.outcome.cls = core::CallClass::ambiguous;
    out.outcome.detail = "HTTP " + std::to_string(response.status) +
                         " with unparseable body: " + parsed.error().message() + ": " +
                         error_detail(response.body);
    co_return out;
  }
  out.value = std::move(*parsed);
  co_return out;
}

// What v1 cannot be asked: nothing is sent, and the caller is told why.
template <class T>
ApiResult<T> not_in_v1(std::string what) {
  return ApiResult<T>{.outcome = core::CallOutcome{.cls = core::CallClass::not_sent,
                                                   .detail = "the v1 API has no " + what}};
}

// v1's terminate and message answers hold no session (a `{detail}`, `null` or nothing).
result<Session> any_body(std::string_view) { return Session{}; }
ApiResult<Session> without_value(ApiResult<Session> answer) {
  answer.value.reset();
  return answer;
}

}  // namespace

net::awaitable<ApiResult<Session>> DevinClient::create_session(
    std::string org_id, core::JobSpec spec, std::string creation_tag, core::Duration timeout,
    std::vector<SessionSecret> secrets, std::vector<std::string> attachment_urls) {
  if (version_ == core::ApiVersion::v1) {
    std::vector<std::string> tags = spec.tags;
    if (std::find(tags.begin(), tags.end(), creation_tag) == tags.end()) {
      tags.push_back(creation_tag);
    }
    HttpRequest request{.method = Method::post,
                        .target = std::string{kV1SessionsPath},
                        .body = v1_create_session_body(spec, creation_tag, secrets),
                        .timeout = timeout};
    co_return co_await call<Session>(http_, std::move(request), [&](std::string_view body) {
      return parse_v1_created(body, org_id, tags);
    });
  }
  HttpRequest request{.method = Method::post,
                      .target = sessions_path(org_id),
                      .body = create_session_body(spec, creation_tag, secrets, attachment_urls),
                      .timeout = timeout};
  co_return co_await call<Session>(http_, std::move(request), parse_session);
}

net::awaitable<ApiResult<Attachment>> DevinClient::upload_attachment(std::string org_id,
                                                                     std::string file_name,
                                                                     std::string bytes,
                                                                     std::string boundary,
                                                                     core::Duration timeout) {
  if (version_ == core::ApiVersion::v1) co_return not_in_v1<Attachment>("attachment_urls");
  if (boundary.empty() || bytes.find(boundary) != std::string::npos) {
    co_return ApiResult<Attachment>{
        .outcome = core::CallOutcome{.cls = core::CallClass::not_sent,
                                     .detail = "the multipart boundary occurs in the file"}};
  }
  HttpRequest request{.method = Method::post, .target = attachments_path(org_id), .timeout = timeout};
  request.body = attachment_upload_body(file_name, bytes, boundary, &request.content_type);
  co_return co_await call<Attachment>(http_, std::move(request), parse_attachment);
}

net::awaitable<ApiResult<Session>> DevinClient::get_session(std::string org_id,
                                                            std::string session_id) {
  if (version_ == core::ApiVersion::v1) {
    HttpRequest request{.method = Method::get, .target = v1_session_path(session_id)};
    co_return co_await call<Session>(http_, std::move(request), [&](std::string_view body) {
      return parse_v1_session(body, org_id);
    });
  }
  HttpRequest request{.method = Method::get, .target = session_path(org_id, session_id)};
  co_return co_await call<Session>(http_, std::move(request), parse_session);
}

net::awaitable<ApiResult<SessionPage>> DevinClient::list_sessions(std::string org_id,
                                                                  ListSessionsQuery query) {
  if (version_ == core::ApiVersion::v1) {
    std::int64_t offset = 0;
    int limit = 0;
    auto target = v1_list_target(query, &offset, &limit);
    if (!target) co_return not_in_v1<SessionPage>("list by session_ids or updated_after");
    HttpRequest request{.method = Method::get, .target = std::move(*target)};
    co_return co_await call<SessionPage>(http_, std::move(request), [&](std::string_view body) {
      return parse_v1_session_list(body, org_id, offset, limit, query.created_after);
    });
  }
  HttpRequest request{.method = Method::get, .target = list_sessions_target(org_id, query)};
  co_return co_await call<SessionPage>(http_, std::move(request), parse_session_page);
}

net::awaitable<ApiResult<Session>> DevinClient::terminate_session(std::string org_id,
                                                                  std::string session_id,
                                                                  bool archive) {
  if (version_ == core::ApiVersion::v1) {
    HttpRequest request{.method = Method::delete_, .target = v1_terminate_path(session_id)};
    co_return without_value(co_await call<Session>(http_, std::move(request), any_body));
  }
  HttpRequest request{
      .method = Method::delete_,
      .target = session_path(org_id, session_id) + (archive ? "?archive=true" : "?archive=false")};
  co_return co_await call<Session>(http_, std::move(request), parse_session);
}

net::awaitable<ApiResult<Session>> DevinClient::send_message(std::string org_id,
                                                             std::string session_id,
                                                             std::string message) {
  if (version_ == core::ApiVersion::v1) {
    HttpRequest request{.method = Method::post,
                        .target = v1_message_path(session_id),
                        .body = send_message_body(message)};
    co_return without_value(co_await call<Session>(http_, std::move(request), any_body));
  }
  HttpRequest request{.method = Method::post,
                      .target = session_path(org_id, session_id) + "/messages",
                      .body = send_message_body(message)};
  co_return co_await call<Session>(http_, std::move(request), parse_session);
}

net::awaitable<ApiResult<MessagePage>> DevinClient::list_messages(
    std::string org_id, std::string session_id, int first, std::optional<std::string> after) {
  if (version_ == core::ApiVersion::v1) co_return not_in_v1<MessagePage>("message list");
  HttpRequest request{.method = Method::get,
                      .target = messages_target(org_id, session_id, first, after)};
  co_return co_await call<MessagePage>(http_, std::move(request), parse_message_page);
}

net::awaitable<ApiResult<OrganizationPage>> DevinClient::list_organizations(
    int first, std::optional<std::string> after) {
  if (version_ == core::ApiVersion::v1) co_return not_in_v1<OrganizationPage>("organisation list");
  HttpRequest request{.method = Method::get, .target = organizations_target(first, after)};
  co_return co_await call<OrganizationPage>(http_, std::move(request), parse_organization_page);
}

net::awaitable<ApiResult<Principal>> DevinClient::self() {
  if (version_ == core::ApiVersion::v1) {
    HttpRequest request{.method = Method::get, .target = std::string{kV1SessionsPath} + "?limit=1"};
    co_return co_await call<Principal>(http_, std::move(request), [](std::string_view) {
      return result<Principal>{Principal{.principal_type = "v1_api_key"}};
    });
  }
  HttpRequest request{.method = Method::get, .target = "/v3/self"};
  co_return co_await call<Principal>(http_, std::move(request), parse_principal);
}

}  // namespace devin_orch::api
