// Internal to the dashboard: what one request's handlers share (the store, the config, who is
// asking), the JSON API's and the pages' entry points, and the small response helpers. The
// routing that picks among them is dashboard.cpp's.
#pragma once

#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/dashboard/dashboard.hpp"
#include "devin_orch/app/dashboard/request_parts.hpp"
#include "devin_orch/app/dashboard/web_auth.hpp"
#include "devin_orch/core/session_family.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/server/http_listener.hpp"
#include "devin_orch/store/operator_store.hpp"
#include "devin_orch/store/outbox_store.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app::dashboard {

struct Context {
  store::OperatorStore& store;
  store::OutboxStore* outbox;
  const Config& config;
  const WebAuth& auth;
  core::TimePoint now;
  const server::HttpRequest& request;
  Params query;
  // The browser's session cookie (or a bearer header) matches the token: forms may act.
  bool signed_in = false;
  // The daemon's rate gates (Dashboard::set_rate_use); null or empty: not known here.
  const std::function<std::vector<RateUse>()>* rate_use = nullptr;

  core::ParentAcus acus_rule() const {
    return config.jobs.parent_acus_include_children ? core::ParentAcus::include_children
                                                    : core::ParentAcus::separate;
  }
};

// ---- responses ----
server::HttpResponse json_response(int status, const boost::json::value& body);
// {"error": message, "status": status}
server::HttpResponse json_error(int status, std::string_view message);
server::HttpResponse html_response(int status, std::string body);
server::HttpResponse redirect(std::string location);
// A store failure, in the database's words.
std::string store_problem(const store::Error& error);

// ---- the JSON API (api.cpp) ----
server::HttpResponse api_list(Context& context);
server::HttpResponse api_show(Context& context, const std::string& key);
server::HttpResponse api_enqueue(Context& context);
server::HttpResponse api_cancel(Context& context, const std::string& key);
server::HttpResponse api_retry(Context& context, const std::string& key);
// Why a write may not go ahead (401/403 as JSON), or nothing when the bearer token is right.
std::optional<server::HttpResponse> api_write_refusal(const Context& context);
// The OpenAPI 3.0 document of the API (openapi.cpp).
const std::string& openapi_document();

// ---- the pages (pages.cpp) ----
server::HttpResponse page_overview(Context& context);
server::HttpResponse page_jobs(Context& context);
server::HttpResponse page_job(Context& context, const std::string& key);
server::HttpResponse page_login(Context& context, std::string_view problem = {});
server::HttpResponse page_problem(Context& context, int status, std::string_view message);
// POST /login, /logout, /jobs/KEY/ACTION, /orgs/ORG/ACTION.
server::HttpResponse form_login(Context& context);
server::HttpResponse form_logout(Context& context);
server::HttpResponse form_job_action(Context& context, const std::string& key,
                                     std::string_view action);
server::HttpResponse form_org_action(Context& context, std::string_view action);

// ---- assets compiled in (assets.cpp) ----
std::string_view stylesheet();
std::string_view script();

}  // namespace devin_orch::app::dashboard
