// The JSON API under /api/v1: the same listing, JSON, intake and controls as `ls --json`,
// `show --json`, `enqueue --stdin`, `cancel` and `retry` (docs/dashboard.md).
#include "handlers.hpp"

#include "devin_orch/app/cli/job_json.hpp"
#include "devin_orch/app/config/job_api.hpp"
#include "devin_orch/app/cli/job_outcomes.hpp"
#include "devin_orch/app/cli/job_views.hpp"
#include "devin_orch/app/dashboard/dashboard.hpp"
#include "devin_orch/app/jobs/attachment_files.hpp"
#include "devin_orch/core/job_diff.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace devin_orch::app::dashboard {
namespace json = boost::json;
namespace {

// The query parameters GET /api/v1/jobs knows: `ls`'s options without their dashes.
constexpr std::array<std::string_view, 8> kListParams{
    "state", "org", "tag", "older-than", "newer-than", "sort", "reverse", "limit"};

// What every job-changing call records as the job's source.
constexpr std::string_view kSource = "http";

std::optional<bool> flag_value(const std::optional<std::string>& text) {
  if (!text) return false;
  if (*text == "" || *text == "true" || *text == "1") return true;
  if (*text == "false" || *text == "0") return false;
  return std::nullopt;
}

}  // namespace

std::optional<server::HttpResponse> api_write_refusal(const Context& context) {
  if (!context.auth.writes_enabled()) {
    return json_error(403, "writes are disabled: the daemon has no dashboard.token_file");
  }
  const auto token = bearer_token(context.request.header("authorization"));
  if (!token) {
    auto response = json_error(401, "writes need an 'Authorization: Bearer <token>' header");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  if (!context.auth.token_matches(*token)) {
    auto response = json_error(401, "wrong bearer token");
    response.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return response;
  }
  return std::nullopt;
}

server::HttpResponse api_list(Context& context) {
  for (const auto& [name, value] : context.query) {
    if (std::find(kListParams.begin(), kListParams.end(), name) == kListParams.end()) {
      return json_error(400, "unknown query parameter '" + name +
                                 "'; known: state, org, tag, older-than, newer-than, sort, "
                                 "reverse, limit");
    }
  }
  JobFilterWords words;
  words.states = params_named(context.query, "state");
  words.org = param(context.query, "org");
  words.tag = param(context.query, "tag");
  words.older_than = param(context.query, "older-than");
  words.newer_than = param(context.query, "newer-than");
  words.sort = param(context.query, "sort");
  words.limit = param(context.query, "limit");
  const auto reverse = flag_value(param(context.query, "reverse"));
  if (!reverse) return json_error(400, "reverse must be true or false");
  words.reverse = *reverse;
  auto parsed = parse_job_filter(words, context.now, "");
  if (auto* problem = std::get_if<std::string>(&parsed)) return json_error(400, *problem);
  auto filter = std::get<store::JobFilter>(std::move(parsed));
  filter.default_org = context.config.api.org_id;
  const auto jobs = context.store.list_jobs(filter);
  if (!jobs) return json_error(500, store_problem(jobs.error()));
  const auto rows = row_context(context.store, context.config, context.now, *jobs);
  if (!rows) return json_error(500, store_problem(rows.error()));
  json::array out;
  for (const auto& job : *jobs) out.push_back(job_row_object(job, *rows));
  return json_response(200, out);
}

server::HttpResponse api_show(Context& context, const std::string& key) {
  auto& store = context.store;
  const auto found = store.find(key);
  if (!found) return json_error(500, store_problem(found.error()));
  if (!*found) return json_error(404, "no job has the key '" + key + "'");
  const core::JobRecord& job = **found;
  const auto outcome = store.outcome(job.id);
  if (!outcome) return json_error(500, store_problem(outcome.error()));
  const auto history = store.history(job.id);
  if (!history) return json_error(500, store_problem(history.error()));
  const auto source = store.job_source(job.id);
  if (!source) return json_error(500, store_problem(source.error()));
  return json_response(200,
                       job_detail_object(job, *outcome, *history, *source, context.acus_rule()));
}

server::HttpResponse api_enqueue(Context& context) {
  if (auto refusal = api_write_refusal(context)) return std::move(*refusal);
  const std::string& body = context.request.body;
  if (body.size() > kMaxJobBodyBytes) {
    return json_error(413, "request body too large (the limit is " +
                               std::to_string(kMaxJobBodyBytes) + " bytes)");
  }
  json::error_code ec;
  const auto value = json::parse(body, ec, {}, json_limits());
  if (ec) return json_error(400, "not valid JSON: " + ec.message());
  if (!value.is_object()) return json_error(400, "expected one JSON object (a job)");
  std::string reason;
  const auto definition = parse_job_object(value.get_object(), &reason);
  if (!definition) return json_error(400, reason);
  // The API of the job's organisation (api.version, api.organizations), as the daemon checks.
  if (const auto problem = validate_for_api(context.config.api, *definition)) {
    return json_error(400, store::field_error_text(*problem));
  }
  // The files are read by this process when their upload is due: they must be usable here.
  if (const auto problem =
          check_attachment_files(definition->spec, context.config.attachments.max_bytes)) {
    return json_error(400, store::field_error_text(*problem));
  }
  const auto added = context.store.add_job(*definition, kSource, context.now);
  if (!added) return json_error(500, store_problem(added.error()));
  const json::string_view key = definition->key;
  switch (*added) {
    case store::AddResult::inserted:
      return json_response(201, json::object{{"key", key}, {"result", "added"}});
    case store::AddResult::mended:
      return json_response(201, json::object{{"key", key}, {"result", "mended"}});
    case store::AddResult::unchanged:
      return json_response(200, json::object{{"key", key}, {"result", "unchanged"}});
    case store::AddResult::changed: break;
  }
  json::array differs;
  if (const auto stored = context.store.find(definition->key); stored && *stored) {
    for (const auto field : core::differing_fields((*stored)->definition, *definition)) {
      differs.emplace_back(field);
    }
  }
  return json_response(409, json::object{{"key", key},
                                         {"result", "changed"},
                                         {"differs", std::move(differs)},
                                         {"error", "the key exists with another definition "
                                                   "(not applied)"},
                                         {"status", 409}});
}

server::HttpResponse api_cancel(Context& context, const std::string& key) {
  if (auto refusal = api_write_refusal(context)) return std::move(*refusal);
  const auto archive = flag_value(param(context.query, "archive"));
  if (!archive) return json_error(400, "archive must be true or false");
  const auto cancelled = context.store.request_cancel(key, *archive, context.now);
  if (!cancelled) return json_error(500, store_problem(cancelled.error()));
  switch (*cancelled) {
    case store::CancelResult::not_found: return json_error(404, "no job has the key '" + key + "'");
    case store::CancelResult::already_ended:
      return json_error(409, key + ": already ended; nothing to cancel");
    case store::CancelResult::cancelled:
      return json_response(200, json::object{{"key", key}, {"result", "cancelled"}});
    case store::CancelResult::requested:
      return json_response(200, json::object{{"key", key}, {"result", "requested"}});
  }
  return json_error(500, "unexpected cancel result");
}

server::HttpResponse api_retry(Context& context, const std::string& key) {
  if (auto refusal = api_write_refusal(context)) return std::move(*refusal);
  const auto retried = context.store.retry(key, context.now);
  if (!retried) return json_error(500, store_problem(retried.error()));
  switch (*retried) {
    case store::RetryResult::not_found: return json_error(404, "no job has the key '" + key + "'");
    case store::RetryResult::not_terminal:
      return json_error(409, key + ": its state cannot be retried (queued, creating, running, "
                                   "finished and invalid cannot)");
    case store::RetryResult::requeued: break;
  }
  json::object out{{"key", key}, {"result", "requeued"}};
  if (const auto found = context.store.find(key); found && *found) {
    out["generation"] = (*found)->generation;
  }
  return json_response(200, out);
}

}  // namespace devin_orch::app::dashboard
