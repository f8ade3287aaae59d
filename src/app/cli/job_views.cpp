// The listing filter's words and `show --json`'s object, shared by `ls`/`show` and the
// dashboard's API (job_views.hpp).
#include "devin_orch/app/cli/job_views.hpp"

#include "command.hpp"

#include "devin_orch/app/cli/job_json.hpp"
#include "devin_orch/app/formats/diagnostic.hpp"
#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/job_state_list.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace devin_orch::app {
namespace json = boost::json;
namespace {

// sort=FIELD: each field's natural direction (reverse turns it around).
struct SortField {
  std::string_view name;
  store::JobOrder order;
  bool descending;
};
constexpr std::array<SortField, 4> kSortFields{{
    {"created", store::JobOrder::created, true},
    {"updated", store::JobOrder::updated, true},
    {"key", store::JobOrder::key, false},
    {"state", store::JobOrder::state, false},
}};

}  // namespace

std::string unknown_state_message(std::string_view text) {
  std::vector<std::string_view> names;
  for (const auto state : core::all_job_states()) names.push_back(core::to_string(state));
  std::string message = "unknown state '" + std::string{text} + "'";
  if (const auto hint = closest_match(text, names)) {
    message += " (did you mean '" + std::string{*hint} + "'?)";
  }
  std::vector<std::string> all(names.begin(), names.end());
  return message + "; the states are " + join(all, ", ");
}

std::variant<store::JobFilter, std::string> parse_job_filter(const JobFilterWords& words,
                                                             core::TimePoint now,
                                                             std::string_view prefix) {
  const std::string p{prefix};
  store::JobFilter filter;
  for (const auto& text : words.states) {
    const auto state = core::parse_job_state(text);
    if (!state) return unknown_state_message(text);
    filter.states.push_back(*state);
  }
  const std::pair<const std::optional<std::string>*, std::string_view> ages[] = {
      {&words.older_than, "older-than"}, {&words.newer_than, "newer-than"}};
  for (const auto& [text, name] : ages) {
    if (!*text) continue;
    const auto age = parse_age(**text);
    if (!age) return p + std::string{name} + " needs a duration like 90s, 2h or 7d";
    const auto cutoff = core::to_epoch_ms(now - *age);
    (name == "older-than" ? filter.created_before_ms : filter.created_after_ms) = cutoff;
  }
  filter.order = store::JobOrder::created;
  filter.descending = true;
  if (words.sort) {
    const auto field = std::find_if(kSortFields.begin(), kSortFields.end(),
                                    [&](const SortField& f) { return f.name == *words.sort; });
    if (field == kSortFields.end()) {
      return p + "sort must be created, updated, key or state, got '" + *words.sort + "'";
    }
    filter.order = field->order;
    filter.descending = field->descending;
  }
  if (words.reverse) filter.descending = !filter.descending;
  if (words.limit) {
    const auto n = parse_int(*words.limit);
    if (!n || *n < 0) return p + "limit needs a non-negative integer";
    filter.limit = static_cast<std::size_t>(*n);
  }
  filter.org_id = words.org;
  filter.tag = words.tag;
  return filter;
}

json::object job_detail_object(const core::JobRecord& job, const store::Outcome& outcome,
                               const std::vector<store::HistoryEntry>& history,
                               const std::string& source, core::ParentAcus acus_rule) {
  // The session's own ACUs and its children's, totalled by the configured rule.
  const core::JobAcus acus = core::job_acus(outcome.acus_consumed, outcome.children_acus, acus_rule);
  json::array children;
  for (const auto& id : outcome.child_session_ids) children.emplace_back(id);
  json::array pull_requests;
  for (const auto& pr : outcome.pull_requests) {
    pull_requests.push_back(json::object{{"url", pr.pr_url}, {"state", nullable(pr.pr_state)}});
  }
  json::value structured = nullptr;
  if (outcome.structured_output) {
    json::error_code ec;
    structured = json::parse(*outcome.structured_output, ec, {}, json_limits());
    if (ec) structured = json::string(*outcome.structured_output);
  }
  json::object result{
      {"state", core::to_string(job.state)},
      {"source", source},
      {"parent_key", nullable(job.parent_key)},
      {"generation", job.generation},
      {"attempts", job.attempts},
      {"creation_tag",
       job.creation_tag.empty() ? json::value(nullptr) : json::value(job.creation_tag)},
      {"session_id", nullable(job.session_id)},
      {"url", nullable(job.session_url)},
      {"status", nullable(job.status)},
      {"status_detail", nullable(job.status_detail)},
      {"acus_consumed", acus.total},
      {"session_acus", acus.own},
      {"children_acus", acus.children},
      {"child_session_ids", std::move(children)},
      {"pull_requests", std::move(pull_requests)},
      {"structured_output", std::move(structured)},
      {"error", nullable(job.last_error)},
      {"cancel_requested", job.cancel_requested != 0},
      {"messages_sent", job.messages_sent},
      {"waiting_since", timestamp_or_null(job.waiting_since_ms)},
      {"created_at", format_timestamp_ms(job.created_at_ms)},
      {"updated_at", format_timestamp_ms(job.updated_at_ms)},
      {"started_at", timestamp_or_null(outcome.started_at_ms)},
      {"finished_at", timestamp_or_null(outcome.finished_at_ms)},
  };
  json::array events;
  for (const auto& entry : history) {
    events.push_back(json::object{
        {"at", format_timestamp_ms(entry.at_ms)},
        {"event", entry.event},
        {"state", nullable(entry.state)},
        {"status", nullable(entry.status)},
        {"status_detail", nullable(entry.status_detail)},
        {"message", nullable(entry.message)},
    });
  }
  return json::object{{"definition", definition_object(job.definition)},
                      {"outcome", std::move(result)},
                      {"history", std::move(events)}};
}

}  // namespace devin_orch::app
