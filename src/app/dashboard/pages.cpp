// The dashboard's HTML pages (overview, job list, job page, login) and the forms that act on
// the queue. Every text that is not ours goes through escape_html; every form that changes
// something carries the CSRF token and needs a signed-in browser.
#include "handlers.hpp"

#include "devin_orch/app/cli/job_json.hpp"
#include "devin_orch/app/cli/job_outcomes.hpp"
#include "devin_orch/app/cli/job_views.hpp"
#include "devin_orch/app/dashboard/dashboard.hpp"
#include "devin_orch/app/dashboard/html.hpp"
#include "devin_orch/app/formats/json_text.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/job_state_list.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>

namespace devin_orch::app::dashboard {
namespace json = boost::json;
namespace {

constexpr std::string_view kSessionCookie = "devin_orch_session";
constexpr std::string_view kDefaultPauseReason = "paused from the dashboard";

std::string e(std::string_view text) { return escape_html(text); }

std::string job_link(std::string_view key) {
  return "<a href=\"/jobs/" + e(percent_encode(key)) + "\">" + e(key) + "</a>";
}

std::string when(std::optional<std::int64_t> ms) {
  return ms ? e(format_timestamp_ms(*ms)) : std::string{"-"};
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

std::string layout(const Context& context, std::string_view title, const std::string& main) {
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" + e(title) + " - devin-orch</title>"
      "<link rel=\"stylesheet\" href=\"/assets/dashboard.css\">"
      "<script src=\"/assets/dashboard.js\" defer></script></head>\n<body>"
      "<header><nav><a href=\"/\" class=\"brand\">devin-orch</a> <a href=\"/\">Overview</a> "
      "<a href=\"/jobs\">Jobs</a> <a href=\"/api/v1/openapi.json\">API</a></nav>";
  if (!context.auth.writes_enabled()) {
    page += "<span class=\"who\" id=\"mode\">read-only (no dashboard.token_file)</span>";
  } else if (context.signed_in) {
    page += "<form method=\"post\" action=\"/logout\" class=\"who\"><input type=\"hidden\" "
            "name=\"csrf\" value=\"" + e(context.auth.csrf_token()) +
            "\"><button id=\"logout\">Sign out</button></form>";
  } else {
    page += "<a class=\"who\" id=\"login\" href=\"/login\">Sign in to act</a>";
  }
  page += "</header>\n<main id=\"live\" data-refresh=\"" + std::to_string(kRefreshSeconds) + "\">" +
          main + "</main></body></html>\n";
  return page;
}

// A POST button with the CSRF token, shown only to a signed-in browser.
std::string action_form(const Context& context, const std::string& action, std::string_view label,
                        const std::string& extra_fields = {}) {
  if (!context.signed_in) return {};
  return "<form method=\"post\" action=\"" + e(action) + "\" class=\"action\">"
         "<input type=\"hidden\" name=\"csrf\" value=\"" + e(context.auth.csrf_token()) + "\">" +
         extra_fields + "<button>" + e(label) + "</button></form>";
}

std::string state_badge(std::string_view state) {
  return "<span class=\"state s-" + e(state) + "\">" + e(state) + "</span>";
}

server::HttpResponse store_failure(Context& context, const store::Error& error) {
  return page_problem(context, 500, store_problem(error));
}

// The form's fields, or nothing when the body is not a form.
std::optional<Params> form_fields(const Context& context) {
  return parse_params(context.request.body);
}

// Why a form may not act: not signed in, or a CSRF token that is missing or wrong.
std::optional<server::HttpResponse> form_refusal(Context& context, const Params& fields) {
  if (!context.auth.writes_enabled()) {
    return page_problem(context, 403,
                        "This dashboard is read-only: the daemon has no dashboard.token_file.");
  }
  if (!context.signed_in) {
    return page_problem(context, 401, "Sign in with the dashboard token first.");
  }
  const auto csrf = param(fields, "csrf");
  if (!csrf || !context.auth.csrf_matches(*csrf)) {
    return page_problem(context, 403,
                        "The form's CSRF token is missing or stale; reload the page and retry.");
  }
  return std::nullopt;
}

}  // namespace

server::HttpResponse page_problem(Context& context, int status, std::string_view message) {
  return html_response(status, layout(context, "Problem",
                                      "<h1>" + std::to_string(status) + "</h1><p id=\"problem\">" +
                                          e(message) + "</p>"));
}

namespace {

// How much of each organisation's request budget is in use: the gate's ceiling, the rate it
// allows now (lower after 429s) and the tokens left of its burst.
std::string rate_section(const Context& context) {
  if (context.rate_use == nullptr) return {};
  const auto gates = (*context.rate_use)();
  std::string html = "<section id=\"rate\"><h2>Rate budget</h2>";
  if (gates.empty()) {
    return html + "<p>No request sent yet: no organisation's gate is open.</p></section>";
  }
  html += "<div class=\"scroll\"><table id=\"rate-gates\"><thead><tr><th>organisation</th>"
          "<th>ceiling (req/min)</th><th>allowed now (req/min)</th><th>tokens left</th>"
          "<th>in flight</th></tr></thead><tbody>";
  for (const auto& gate : gates) {
    const bool slowed = gate.allowed_per_minute + 1e-9 < gate.ceiling_per_minute;
    html += "<tr><td>" + e(gate.org_id) + "</td><td class=\"n\">" +
            number(gate.ceiling_per_minute) + "</td><td class=\"n" +
            std::string{slowed ? " slowed" : ""} + "\">" + number(gate.allowed_per_minute) +
            (slowed ? " (slowed by 429s)" : "") + "</td><td class=\"n\">" +
            number(std::floor(gate.tokens)) + " of " + number(gate.burst) +
            "</td><td class=\"n\">" + std::to_string(gate.requests_in_flight) + "</td></tr>";
  }
  return html + "</tbody></table></div></section>";
}

}  // namespace

server::HttpResponse page_overview(Context& context) {
  auto& store = context.store;
  const std::string& default_org = context.config.api.org_id;
  store::JobFilter all;
  all.default_org = default_org;
  const auto jobs = store.list_jobs(all);
  if (!jobs) return store_failure(context, jobs.error());
  std::map<std::string, std::map<core::JobState, std::int64_t>> by_org;
  const std::int64_t day_ms = 24LL * 3600 * 1000;
  const std::int64_t today = core::to_epoch_ms(context.now) / day_ms * day_ms;
  double acus_today = 0;
  for (const auto& job : *jobs) {
    ++by_org[job.org_id][job.state];
    if (job.updated_at_ms >= today) {
      acus_today += core::job_acus(job.acus_consumed.value_or(0.0), job.children_acus,
                                   context.acus_rule()).total;
    }
  }
  std::string main = "<h1>Overview</h1><section><h2>Jobs by state</h2>";
  if (by_org.empty()) {
    main += "<p id=\"no-jobs\">No jobs yet.</p>";
  } else {
    main += "<div class=\"scroll\"><table id=\"by-state\"><thead><tr><th>organisation</th>";
    for (const auto state : core::all_job_states()) main += "<th>" + state_badge(core::to_string(state)) + "</th>";
    main += "</tr></thead><tbody>";
    for (const auto& [org, counts] : by_org) {
      main += "<tr><td>" + e(org) + "</td>";
      for (const auto state : core::all_job_states()) {
        const auto found = counts.find(state);
        const auto count = found == counts.end() ? 0 : found->second;
        if (count == 0) {
          main += "<td class=\"n zero\">0</td>";
        } else {
          main += "<td class=\"n\"><a href=\"/jobs?state=" + std::string{core::to_string(state)} +
                  "&amp;org=" + e(percent_encode(org)) + "\">" + std::to_string(count) +
                  "</a></td>";
        }
      }
      main += "</tr>";
    }
    main += "</tbody></table></div>";
  }
  main += "</section>";

  store::JobFilter waiting;
  waiting.default_org = default_org;
  waiting.states = {core::JobState::queued};
  waiting.order = store::JobOrder::created;
  waiting.descending = false;
  waiting.limit = 1;
  const auto oldest = store.list_jobs(waiting);
  if (!oldest) return store_failure(context, oldest.error());
  main += "<section class=\"cards\"><div class=\"card\" id=\"oldest\"><h2>Oldest waiting job</h2>";
  if (oldest->empty()) {
    main += "<p>None: nothing is queued.</p>";
  } else {
    const auto rows = row_context(store, context.config, context.now, *oldest);
    if (!rows) return store_failure(context, rows.error());
    const auto row = job_row_object(oldest->front(), *rows);
    main += "<p>" + job_link(oldest->front().key) + " since " +
            when(oldest->front().created_at_ms) + "</p>";
    if (row.contains("reason") && row.at("reason").is_string()) {
      main += "<p class=\"reason\">" + e(row.at("reason").get_string()) + "</p>";
    }
  }
  main += "</div><div class=\"card\" id=\"acus\"><h2>ACUs today</h2><p class=\"big\">" +
          number(acus_today) + "</p><p>of jobs updated since 00:00 UTC</p></div></section>";
  main += rate_section(context);

  const auto pauses = store.list_pauses();
  if (!pauses) return store_failure(context, pauses.error());
  const auto users = store.paused_users();
  if (!users) return store_failure(context, users.error());
  const auto holds = store.org_holds(context.now);
  if (!holds) return store_failure(context, holds.error());
  main += "<section id=\"pauses\"><h2>Pauses</h2>";
  if (pauses->empty() && users->empty() && holds->empty()) {
    main += "<p>No organisation or user is paused.</p>";
  } else {
    main += "<ul>";
    for (const auto& pause : *pauses) {
      main += "<li><b>" + e(pause.org_id == "*" ? "every organisation" : pause.org_id) +
              "</b> paused since " + when(pause.paused_at_ms) + " by " + e(pause.source) + ": " +
              e(pause.reason) +
              action_form(context, "/orgs/resume", "Resume",
                          "<input type=\"hidden\" name=\"org\" value=\"" + e(pause.org_id) + "\">") +
              "</li>";
    }
    for (const auto& user : *users) {
      main += "<li>user <b>" + e(user.user_id) + "</b> of " + e(user.org_id) + " paused since " +
              when(user.paused_at_ms) + ": " + e(user.reason) + "</li>";
    }
    for (const auto& hold : *holds) {
      main += "<li><b>" + e(hold.org_id) + "</b> held by the server until " + when(hold.until_ms) +
              ": " + e(hold.reason) + "</li>";
    }
    main += "</ul>";
  }
  if (context.signed_in) {
    main += "<form method=\"post\" action=\"/orgs/pause\" class=\"inline\" id=\"pause-form\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"" + e(context.auth.csrf_token()) + "\">"
            "<label>organisation <input name=\"org\" value=\"" + e(default_org) + "\"></label> "
            "<label>reason <input name=\"reason\" placeholder=\"" + e(kDefaultPauseReason) +
            "\"></label> <button>Pause</button></form>";
  }
  main += "</section>";
  return html_response(200, layout(context, "Overview", main));
}

server::HttpResponse page_jobs(Context& context) {
  const auto& query = context.query;
  JobFilterWords words;
  for (auto& state : params_named(query, "state")) {
    if (!state.empty()) words.states.push_back(std::move(state));
  }
  const auto non_empty = [&](std::string_view name) -> std::optional<std::string> {
    auto value = param(query, name);
    if (value && value->empty()) value.reset();
    return value;
  };
  words.org = non_empty("org");
  words.tag = non_empty("tag");
  words.sort = non_empty("sort");
  words.reverse = non_empty("reverse").has_value();
  const std::string text = param(query, "q").value_or("");
  std::size_t page = 1;
  if (const auto requested = non_empty("page")) {
    try {
      page = std::max<std::size_t>(1, std::stoul(*requested));
    } catch (...) {
      page = 1;
    }
  }

  std::string main = "<h1>Jobs</h1><form method=\"get\" action=\"/jobs\" id=\"filters\" "
                     "class=\"inline\"><label>state <select name=\"state\"><option value=\"\">any"
                     "</option>";
  for (const auto state : core::all_job_states()) {
    const std::string name{core::to_string(state)};
    const bool chosen = std::find(words.states.begin(), words.states.end(), name) != words.states.end();
    main += "<option" + std::string{chosen ? " selected" : ""} + ">" + name + "</option>";
  }
  main += "</select></label> <label>org <input name=\"org\" value=\"" + e(words.org.value_or("")) +
          "\"></label> <label>tag <input name=\"tag\" value=\"" + e(words.tag.value_or("")) +
          "\"></label> <label>text <input name=\"q\" value=\"" + e(text) +
          "\"></label> <label>sort <select name=\"sort\">";
  for (const std::string_view field : {"created", "updated", "key", "state"}) {
    const bool chosen = words.sort.value_or("created") == field;
    main += "<option" + std::string{chosen ? " selected" : ""} + ">" + std::string{field} + "</option>";
  }
  main += "</select></label> <label><input type=\"checkbox\" name=\"reverse\" value=\"1\"" +
          std::string{words.reverse ? " checked" : ""} + "> reverse</label> <button>Filter</button></form>";

  auto parsed = parse_job_filter(words, context.now, "");
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    main += "<p id=\"problem\">" + e(*problem) + "</p>";
    return html_response(400, layout(context, "Jobs", main));
  }
  auto filter = std::get<store::JobFilter>(std::move(parsed));
  filter.default_org = context.config.api.org_id;
  auto jobs = context.store.list_jobs(filter);
  if (!jobs) return store_failure(context, jobs.error());
  if (!text.empty()) {
    // Text matches a key, case-insensitively: the listing carries no prompt or title.
    const auto lower = [](std::string value) {
      std::transform(value.begin(), value.end(), value.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      return value;
    };
    const std::string needle = lower(text);
    std::erase_if(*jobs, [&](const store::JobSummary& job) {
      return lower(job.key).find(needle) == std::string::npos;
    });
  }
  const std::size_t total = jobs->size();
  const std::size_t pages = std::max<std::size_t>(1, (total + kPageSize - 1) / kPageSize);
  page = std::min(page, pages);
  const std::size_t first = (page - 1) * kPageSize;
  std::vector<store::JobSummary> shown(jobs->begin() + static_cast<std::ptrdiff_t>(std::min(first, total)),
                                       jobs->begin() + static_cast<std::ptrdiff_t>(std::min(first + kPageSize, total)));
  const auto rows = row_context(context.store, context.config, context.now, shown);
  if (!rows) return store_failure(context, rows.error());
  main += "<p id=\"count\">" + std::to_string(total) + (total == 1 ? " job" : " jobs") + "</p>";
  main += "<div class=\"scroll\"><table id=\"jobs\"><thead><tr>";
  for (const auto& column : job_row_header()) main += "<th>" + e(column) + "</th>";
  main += "</tr></thead><tbody>";
  for (const auto& job : shown) {
    const auto cells = job_row(job, *rows);
    main += "<tr>";
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i == 0) {
        main += "<td>" + job_link(job.key) + "</td>";
      } else if (i == 1) {
        main += "<td>" + state_badge(cells[i]) + "</td>";
      } else {
        main += "<td>" + e(cells[i]) + "</td>";
      }
    }
    main += "</tr>";
  }
  main += "</tbody></table></div>";
  if (pages > 1) {
    // The same filters, another page.
    std::string base = "/jobs?";
    for (const auto& [name, value] : query) {
      if (name != "page") base += percent_encode(name) + "=" + percent_encode(value) + "&";
    }
    main += "<nav class=\"pages\">";
    if (page > 1) main += "<a rel=\"prev\" href=\"" + e(base + "page=" + std::to_string(page - 1)) + "\">previous</a> ";
    main += "page " + std::to_string(page) + " of " + std::to_string(pages);
    if (page < pages) main += " <a rel=\"next\" href=\"" + e(base + "page=" + std::to_string(page + 1)) + "\">next</a>";
    main += "</nav>";
  }
  return html_response(200, layout(context, "Jobs", main));
}

server::HttpResponse page_job(Context& context, const std::string& key) {
  auto& store = context.store;
  const auto found = store.find(key);
  if (!found) return store_failure(context, found.error());
  if (!*found) return page_problem(context, 404, "No job has the key '" + key + "'.");
  const core::JobRecord& job = **found;
  const auto outcome = store.outcome(job.id);
  if (!outcome) return store_failure(context, outcome.error());
  const auto history = store.history(job.id);
  if (!history) return store_failure(context, history.error());
  const auto source = store.job_source(job.id);
  if (!source) return store_failure(context, source.error());
  const std::string state{core::to_string(job.state)};
  const std::string base = "/jobs/" + percent_encode(key);
  const auto acus = core::job_acus(outcome->acus_consumed, outcome->children_acus, context.acus_rule());

  std::string main = "<h1 id=\"job-key\">" + e(key) + " " + state_badge(state) + "</h1>";
  main += "<div class=\"actions\">";
  main += action_form(context, base + "/cancel", "Cancel");
  main += action_form(context, base + "/retry", "Retry");
  main += action_form(context, base + "/delete", "Delete");
  main += "</div>";

  main += "<section id=\"outcome\"><h2>Outcome</h2><dl>";
  const auto item = [&](std::string_view label, const std::string& html) {
    main += "<dt>" + e(label) + "</dt><dd>" + html + "</dd>";
  };
  if (job.session_url && !safe_href(*job.session_url).empty()) {
    item("session", "<a id=\"session-link\" href=\"" + safe_href(*job.session_url) + "\">" +
                        e(job.session_id.value_or(*job.session_url)) + "</a>");
  } else {
    item("session", e(job.session_id.value_or("-")));
  }
  item("status", e(job.status.value_or("-")) +
                     (job.status_detail ? " (" + e(*job.status_detail) + ")" : std::string{}));
  item("ACUs", number(acus.total) + (outcome->child_session_ids.empty()
                                         ? std::string{}
                                         : " (session " + number(acus.own) + ", children " +
                                               number(acus.children) + ")"));
  if (outcome->pull_requests.empty()) {
    item("pull requests", "-");
  } else {
    std::string prs = "<ul id=\"pull-requests\">";
    for (const auto& pr : outcome->pull_requests) {
      const auto href = safe_href(pr.pr_url);
      prs += "<li>" + (href.empty() ? e(pr.pr_url) : "<a href=\"" + href + "\">" + e(pr.pr_url) + "</a>") +
             (pr.pr_state ? " (" + e(*pr.pr_state) + ")" : std::string{}) + "</li>";
    }
    item("pull requests", prs + "</ul>");
  }
  if (!outcome->child_session_ids.empty()) {
    std::string children = "<ul>";
    for (const auto& id : outcome->child_session_ids) children += "<li>" + e(id) + "</li>";
    item("children", children + "</ul>");
  }
  if (outcome->structured_output) {
    std::string shown = *outcome->structured_output;
    json::error_code ec;
    const auto parsed = json::parse(shown, ec, {}, json_limits());
    if (!ec) shown = json_text(parsed);
    item("structured output", "<pre id=\"structured-output\">" + e(shown) + "</pre>");
  }
  item("error", e(job.last_error.value_or("-")));
  item("attempts", std::to_string(job.attempts) + " (generation " + std::to_string(job.generation) + ")");
  item("source", e(*source));
  if (job.parent_key) item("parent", job_link(*job.parent_key));
  item("created", when(job.created_at_ms));
  item("started", when(outcome->started_at_ms));
  item("finished", when(outcome->finished_at_ms));
  main += "</dl></section>";

  main += "<section id=\"definition\"><h2>Definition</h2><dl>";
  for (const auto& [name, value] : definition_object(job.definition)) {
    if (value.is_null()) continue;
    const std::string text = value.is_string() ? std::string{value.get_string()} : json_text(value);
    const bool long_text = name == "prompt" || text.size() > 80;
    main += "<dt>" + e(name) + "</dt><dd>" +
            (long_text ? "<pre class=\"" + e(name) + "\">" + e(text) + "</pre>" : e(text)) + "</dd>";
  }
  main += "</dl></section>";

  main += "<section id=\"history\"><h2>History</h2><ol class=\"timeline\">";
  for (const auto& entry : *history) {
    main += "<li><time>" + when(entry.at_ms) + "</time> <b>" + e(entry.event) + "</b>";
    if (entry.state) main += " " + state_badge(*entry.state);
    if (entry.status) main += " status " + e(*entry.status);
    if (entry.status_detail) main += " (" + e(*entry.status_detail) + ")";
    if (entry.message) main += "<div class=\"message\">" + e(*entry.message) + "</div>";
    main += "</li>";
  }
  main += "</ol></section>";

  if (context.outbox != nullptr) {
    store::DeliveryFilter filter;
    filter.job_key = key;
    filter.limit = 100;
    const auto deliveries = context.outbox->list_deliveries(filter);
    main += "<section id=\"events\"><h2>Events delivered</h2>";
    if (!deliveries) {
      // The outbox unreadable (the database gone for a moment) costs the page its events only.
      main += "<p id=\"events-unavailable\">Not available: " + e(deliveries.error().message()) +
              "</p>";
    } else if (deliveries->empty()) {
      main += "<p>No notification for this job.</p>";
    } else {
      main += "<div class=\"scroll\"><table><thead><tr><th>event</th><th>type</th><th>receiver</th>"
              "<th>state</th><th>attempts</th><th>delivered</th><th>error</th></tr></thead><tbody>";
      for (const auto& delivery : *deliveries) {
        main += "<tr><td>" + e(delivery.event_id) + "</td><td>" + e(core::to_string(delivery.type)) +
                "</td><td>" + e(delivery.sink) + "</td><td>" + e(store::to_string(delivery.state)) +
                "</td><td>" + std::to_string(delivery.attempts) + "</td><td>" +
                when(delivery.delivered_at_ms) + "</td><td>" + e(delivery.last_error.value_or("-")) +
                "</td></tr>";
      }
      main += "</tbody></table></div>";
    }
    main += "</section>";
  }
  return html_response(200, layout(context, key, main));
}

server::HttpResponse page_login(Context& context, std::string_view problem) {
  std::string main = "<h1>Sign in</h1>";
  if (!context.auth.writes_enabled()) {
    main += "<p id=\"problem\">This dashboard is read-only: the daemon has no "
            "dashboard.token_file, so there is nothing to sign in to.</p>";
    return html_response(200, layout(context, "Sign in", main));
  }
  if (!problem.empty()) main += "<p id=\"problem\">" + e(problem) + "</p>";
  main += "<form method=\"post\" action=\"/login\" id=\"login-form\"><label>token "
          "<input type=\"password\" name=\"token\" autocomplete=\"current-password\"></label> "
          "<button>Sign in</button></form><p>The token is the content of the daemon's "
          "dashboard.token_file. The browser keeps a session cookie until the daemon restarts.</p>";
  return html_response(problem.empty() ? 200 : 401, layout(context, "Sign in", main));
}

server::HttpResponse form_login(Context& context) {
  if (!context.auth.writes_enabled()) return page_login(context);
  const auto fields = form_fields(context);
  const auto token = fields ? param(*fields, "token") : std::nullopt;
  if (!token || !context.auth.token_matches(*token)) return page_login(context, "Wrong token.");
  auto response = redirect("/");
  response.headers.emplace_back("Set-Cookie", std::string{kSessionCookie} + "=" +
                                                  context.auth.session_value() +
                                                  "; Path=/; HttpOnly; SameSite=Strict");
  return response;
}

server::HttpResponse form_logout(Context& context) {
  const auto fields = form_fields(context);
  if (!fields) return page_problem(context, 400, "Malformed form.");
  if (auto refusal = form_refusal(context, *fields)) return std::move(*refusal);
  auto response = redirect("/");
  response.headers.emplace_back("Set-Cookie", std::string{kSessionCookie} +
                                                  "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  return response;
}

server::HttpResponse form_job_action(Context& context, const std::string& key,
                                     std::string_view action) {
  if (action != "cancel" && action != "retry" && action != "delete") {
    return page_problem(context, 404, "There is no such action.");
  }
  const auto fields = form_fields(context);
  if (!fields) return page_problem(context, 400, "Malformed form.");
  if (auto refusal = form_refusal(context, *fields)) return std::move(*refusal);
  const std::string back = "/jobs/" + percent_encode(key);
  auto& store = context.store;
  if (action == "cancel") {
    const auto result = store.request_cancel(key, false, context.now);
    if (!result) return store_failure(context, result.error());
    if (*result == store::CancelResult::not_found) return page_problem(context, 404, "No job has the key '" + key + "'.");
    if (*result == store::CancelResult::already_ended) return page_problem(context, 409, key + " has already ended; nothing to cancel.");
    return redirect(back);
  }
  if (action == "retry") {
    const auto result = store.retry(key, context.now);
    if (!result) return store_failure(context, result.error());
    if (*result == store::RetryResult::not_found) return page_problem(context, 404, "No job has the key '" + key + "'.");
    if (*result == store::RetryResult::not_terminal) return page_problem(context, 409, key + ": its state cannot be retried.");
    return redirect(back);
  }
  const auto result = store.delete_job(key, context.now);
  if (!result) return store_failure(context, result.error());
  if (*result == store::DeleteResult::not_found) return page_problem(context, 404, "No job has the key '" + key + "'.");
  if (*result == store::DeleteResult::not_ended) return page_problem(context, 409, key + " has not ended; cancel it first.");
  return redirect("/jobs");
}

server::HttpResponse form_org_action(Context& context, std::string_view action) {
  const auto fields = form_fields(context);
  if (!fields) return page_problem(context, 400, "Malformed form.");
  if (auto refusal = form_refusal(context, *fields)) return std::move(*refusal);
  const auto org = param(*fields, "org");
  if (!org || org->empty()) return page_problem(context, 400, "Name the organisation.");
  if (action == "pause") {
    auto reason = param(*fields, "reason").value_or("");
    if (reason.empty()) reason = kDefaultPauseReason;
    const auto paused = context.store.pause_org(*org, reason, "dashboard", context.now);
    if (!paused) return store_failure(context, paused.error());
  } else {
    const auto resumed = context.store.resume_org(*org);
    if (!resumed) return store_failure(context, resumed.error());
  }
  return redirect("/");
}

}  // namespace devin_orch::app::dashboard
