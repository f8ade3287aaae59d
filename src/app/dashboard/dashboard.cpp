// The dashboard's routing: which handler a method and path go to, who is signed in, and the
// response helpers every handler shares (dashboard.hpp, handlers.hpp).
#include "devin_orch/app/dashboard/dashboard.hpp"

#include "handlers.hpp"

#include "devin_orch/app/formats/json_text.hpp"

#include <boost/json.hpp>

namespace devin_orch::app::dashboard {
namespace json = boost::json;
namespace {

constexpr std::string_view kSessionCookie = "devin_orch_session";

// Pages and answers are never cached, never framed, never sniffed; scripts and styles come
// only from /assets (an injected inline script would not run even if escaping failed).
void secure(server::HttpResponse& response) {
  response.headers.emplace_back("Cache-Control", "no-store");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back(
      "Content-Security-Policy",
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
      "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
}

server::HttpResponse method_not_allowed(bool api, std::string_view allow) {
  auto response = api ? json_error(405, "method not allowed; use " + std::string{allow})
                      : server::HttpResponse{405, "text/plain; charset=utf-8", {},
                                             "method not allowed"};
  response.headers.emplace_back("Allow", std::string{allow});
  return response;
}

server::HttpResponse route(Context& context, const std::vector<std::string>& path) {
  const std::string& method = context.request.method;
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";
  const auto n = path.size();
  if (n >= 2 && path[0] == "api" && path[1] == "v1") {
    if (n == 3 && path[2] == "openapi.json") {
      if (!get) return method_not_allowed(true, "GET");
      server::HttpResponse response{200, "application/json", {}, openapi_document()};
      return response;
    }
    if (n == 3 && path[2] == "jobs") {
      if (get) return api_list(context);
      if (post) return api_enqueue(context);
      return method_not_allowed(true, "GET, POST");
    }
    if (n == 4 && path[2] == "jobs") {
      if (!get) return method_not_allowed(true, "GET");
      return api_show(context, path[3]);
    }
    if (n == 5 && path[2] == "jobs" && (path[4] == "cancel" || path[4] == "retry")) {
      if (!post) return method_not_allowed(true, "POST");
      return path[4] == "cancel" ? api_cancel(context, path[3]) : api_retry(context, path[3]);
    }
    return json_error(404, "no such API endpoint; see /api/v1/openapi.json");
  }
  if (n == 2 && path[0] == "assets" && (path[1] == "dashboard.css" || path[1] == "dashboard.js")) {
    if (!get) return method_not_allowed(false, "GET");
    const bool css = path[1] == "dashboard.css";
    server::HttpResponse response{200,
                                  css ? "text/css; charset=utf-8"
                                      : "text/javascript; charset=utf-8",
                                  {},
                                  std::string{css ? stylesheet() : script()}};
    return response;
  }
  if (n == 0) {
    if (!get) return method_not_allowed(false, "GET");
    return page_overview(context);
  }
  if (n == 1 && path[0] == "jobs") {
    if (!get) return method_not_allowed(false, "GET");
    return page_jobs(context);
  }
  if (n == 2 && path[0] == "jobs") {
    if (!get) return method_not_allowed(false, "GET");
    return page_job(context, path[1]);
  }
  if (n == 3 && path[0] == "jobs") {
    if (!post) return method_not_allowed(false, "POST");
    return form_job_action(context, path[1], path[2]);
  }
  if (n == 2 && path[0] == "orgs" && (path[1] == "pause" || path[1] == "resume")) {
    if (!post) return method_not_allowed(false, "POST");
    return form_org_action(context, path[1]);
  }
  if (n == 1 && path[0] == "login") {
    if (get) return page_login(context);
    if (post) return form_login(context);
    return method_not_allowed(false, "GET, POST");
  }
  if (n == 1 && path[0] == "logout") {
    if (!post) return method_not_allowed(false, "POST");
    return form_logout(context);
  }
  return page_problem(context, 404, "There is no page here.");
}

}  // namespace

server::HttpResponse json_response(int status, const json::value& body) {
  return server::HttpResponse{status, "application/json", {}, json_text(body) + "\n"};
}

server::HttpResponse json_error(int status, std::string_view message) {
  return json_response(status, json::object{{"error", message}, {"status", status}});
}

server::HttpResponse html_response(int status, std::string body) {
  return server::HttpResponse{status, "text/html; charset=utf-8", {}, std::move(body)};
}

server::HttpResponse redirect(std::string location) {
  server::HttpResponse response{303, "text/plain; charset=utf-8", {}, "see " + location};
  response.headers.emplace_back("Location", std::move(location));
  return response;
}

std::string store_problem(const store::Error& error) {
  return "database failure: " + error.message();
}

Dashboard::Dashboard(store::OperatorStore& store, store::OutboxStore* outbox, const Config& config,
                     WebAuth auth, std::function<core::TimePoint()> now)
    : store_{store}, outbox_{outbox}, config_{config}, auth_{std::move(auth)}, now_{std::move(now)} {}

server::HttpResponse Dashboard::rejected(int status, std::string_view reason) {
  std::string message{reason};
  if (status == 413) {
    message = "request body too large (the limit is " + std::to_string(kMaxJobBodyBytes) +
              " bytes)";
  }
  auto response = json_error(status, message);
  secure(response);
  return response;
}

server::HttpResponse Dashboard::handle(const server::HttpRequest& request) {
  const std::string_view target = request.target;
  const auto question = target.find('?');
  const auto path = path_segments(target.substr(0, question));
  auto query = parse_params(question == std::string_view::npos ? std::string_view{}
                                                               : target.substr(question + 1));
  Context context{store_, outbox_, config_, auth_, now_(), request, {}, false};
  if (rate_use_) context.rate_use = &rate_use_;
  server::HttpResponse response;
  if (!path || !query) {
    response = json_error(400, "malformed request target (bad percent-encoding)");
  } else {
    context.query = std::move(*query);
    if (const auto cookie = cookie_value(request.header("cookie"), kSessionCookie)) {
      context.signed_in = auth_.session_matches(*cookie);
    }
    if (const auto token = bearer_token(request.header("authorization"))) {
      context.signed_in = context.signed_in || auth_.token_matches(*token);
    }
    response = route(context, *path);
  }
  secure(response);
  return response;
}

}  // namespace devin_orch::app::dashboard
