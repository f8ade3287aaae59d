// Event bodies and the outbox's small JSON columns, with Boost.JSON.
#include "devin_orch/store/notify_codec.hpp"

#include "devin_orch/store/outbox_store.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <ctime>

namespace devin_orch::store {
namespace json = boost::json;
namespace {

json::value optional_text(const std::optional<std::string>& text) {
  return text ? json::value(*text) : json::value(nullptr);
}

json::value optional_time(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(utc_timestamp(*ms)) : json::value(nullptr);
}

json::object envelope(std::string_view id, core::EventType type, std::int64_t at_ms) {
  return json::object{{"id", id}, {"type", core::to_string(type)}, {"created_at", utc_timestamp(at_ms)}};
}

}  // namespace

std::string_view to_string(DeliveryState state) noexcept {
  switch (state) {
    case DeliveryState::pending: return "pending";
    case DeliveryState::delivered: return "delivered";
    case DeliveryState::dead: return "dead";
  }
  return "pending";
}

std::string utc_timestamp(std::int64_t epoch_ms) {
  const std::int64_t seconds = epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000;
  const auto millis = static_cast<int>(epoch_ms - seconds * 1000);
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[64];  // room for any int fields, so no truncation is possible
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
  return text;
}

std::string encode_job_event(std::string_view id, core::EventType type, std::int64_t at_ms,
                             const core::JobRecord& job, const Outcome& outcome,
                             std::string_view source, const JobEventNote& note) {
  json::object body = envelope(id, type, at_ms);
  json::array tags;
  for (const auto& tag : job.definition.spec.tags) tags.emplace_back(tag);
  json::array pull_requests;
  for (const auto& pr : outcome.pull_requests) {
    pull_requests.push_back(json::object{{"url", pr.pr_url}, {"state", optional_text(pr.pr_state)}});
  }
  json::value structured = nullptr;
  if (outcome.structured_output) {
    boost::system::error_code ec;
    json::value parsed = json::parse(*outcome.structured_output, ec);
    // Kept as it came when it is not JSON: the receiver still gets it.
    structured = ec ? json::value(*outcome.structured_output) : std::move(parsed);
  }
  json::object out{
      {"key", job.definition.key},
      {"source", source},
      {"org_id", optional_text(job.definition.org_id)},
      {"tags", std::move(tags)},
      {"generation", job.generation},
      {"state", core::to_string(job.state)},
      {"status", optional_text(job.status)},
      {"status_detail", optional_text(job.status_detail)},
      {"detail", optional_text(note.detail ? note.detail : job.last_error)},
      {"session_id", optional_text(job.session_id)},
      {"session_url", optional_text(job.session_url)},
      {"pull_requests", std::move(pull_requests)},
      {"acus_consumed", outcome.acus_consumed},
      {"children_acus", outcome.children_acus},
      {"structured_output", std::move(structured)},
      {"created_at", utc_timestamp(job.created_at_ms)},
      {"started_at", optional_time(outcome.started_at_ms)},
      {"finished_at", optional_time(outcome.finished_at_ms)},
      {"parent_key", optional_text(job.parent_key)},
  };
  if (type == core::EventType::job_waiting_for_user) {
    out["waiting_since"] = optional_time(job.waiting_since_ms);
  }
  if (type == core::EventType::job_duplicate_terminated) {
    json::array terminated;
    for (const auto& session : note.terminated_session_ids) terminated.emplace_back(session);
    out["duplicate"] = json::object{{"kept_session_id", optional_text(note.kept_session_id)},
                                    {"terminated_session_ids", std::move(terminated)}};
  }
  body["job"] = std::move(out);
  return json::serialize(body);
}

std::string encode_org_event(std::string_view id, core::EventType type, std::int64_t at_ms,
                             std::string_view org_id, std::optional<std::string_view> reason,
                             std::optional<std::string_view> source) {
  json::object body = envelope(id, type, at_ms);
  body["org"] = json::object{
      {"id", org_id},
      {"reason", reason ? json::value(*reason) : json::value(nullptr)},
      {"source", source ? json::value(*source) : json::value(nullptr)},
  };
  return json::serialize(body);
}

std::string encode_tags(std::span<const std::string> tags) {
  json::array out;
  for (const auto& tag : tags) out.emplace_back(tag);
  return json::serialize(out);
}

std::vector<std::string> decode_tags(std::string_view text) {
  std::vector<std::string> tags;
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_array()) return tags;
  for (const auto& item : parsed.as_array()) {
    if (item.is_string()) tags.emplace_back(item.as_string());
  }
  return tags;
}

std::string encode_target(const core::NotifyTarget& target) {
  const std::string list = encode_notify_targets({target});
  // One element of the list form: strip the brackets.
  return list.substr(1, list.size() - 2);
}

std::optional<core::NotifyTarget> decode_target(std::string_view text) {
  auto targets = decode_notify_targets("[" + std::string{text} + "]");
  if (!targets || targets->size() != 1) return std::nullopt;
  return std::move(targets->front());
}

}  // namespace devin_orch::store
