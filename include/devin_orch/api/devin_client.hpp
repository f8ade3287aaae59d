// The Devin v3 Organization API calls the daemon makes, each returning a classified outcome
// (core::CallOutcome) plus the parsed value on success.
#pragma once

#include "devin_orch/api/http_client.hpp"
#include "devin_orch/api/types.hpp"
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
  std::optional<T> value;  // set iff outcome.ok()
};

class DevinClient {
 public:
  explicit DevinClient(HttpClient& http) noexcept : http_{http} {}

  boost::asio::awaitable<ApiResult<Session>> create_session(
      std::string org_id, core::JobSpec spec, std::string creation_tag,
      core::Duration timeout = {}, std::vector<SessionSecret> secrets = {});
  boost::asio::awaitable<ApiResult<Session>> get_session(std::string org_id,
                                                         std::string session_id);
  boost::asio::awaitable<ApiResult<SessionPage>> list_sessions(std::string org_id,
                                                               ListSessionsQuery query);
  boost::asio::awaitable<ApiResult<Session>> terminate_session(std::string org_id,
                                                               std::string session_id,
                                                               bool archive);
  boost::asio::awaitable<ApiResult<Session>> send_message(std::string org_id,
                                                          std::string session_id,
                                                          std::string message);
  boost::asio::awaitable<ApiResult<OrganizationPage>> list_organizations(
      int first, std::optional<std::string> after);
  // GET /v3/self: the cheap check that the key works (200) or not (401, `unauthorized`).
  boost::asio::awaitable<ApiResult<Principal>> self();

 private:
  HttpClient& http_;
};

}  // namespace devin_orch::api
