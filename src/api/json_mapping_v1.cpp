// The v1 API's JSON and targets, translated to and from the daemon's v3-shaped types.
#include "devin_orch/api/json_mapping_v1.hpp"

#include "schema_value.hpp"

#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace devin_orch::api {
namespace json = boost::json;

namespace {

constexpr int kV1DefaultLimit = 100;

std::string encoded(std::string_view text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

result<json::value> parse_json(std::string_view body) {
  json::parse_options options;
  options.max_depth = 64;
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, json::storage_ptr{}, options);
  if (ec) return make_error_code(errc::malformed_json);
  return value;
}

// A field that must be a string if present and not null.
bool optional_string(const json::object& object, std::string_view key,
                     std::optional<std::string>& out) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_string()) return false;
  out = std::string{v->get_string()};
  return true;
}

bool read_session(const json::value& value, std::string_view org_id, Session& out) {
  if (!value.is_object()) return false;
  const json::object& o = value.get_object();
  const json::value* id = o.if_contains("session_id");
  if (id == nullptr || !id->is_string()) return false;
  out.session_id = std::string{id->get_string()};
  out.org_id = std::string{org_id};
  std::optional<std::string> status_enum;
  std::optional<std::string> status_text;
  if (!optional_string(o, "status_enum", status_enum)) return false;
  if (!optional_string(o, "status", status_text)) return false;
  auto status = v1_status(status_enum, status_text);
  out.status = std::move(status.status);
  out.status_detail = std::move(status.status_detail);
  if (!optional_string(o, "title", out.title)) return false;
  if (const json::value* url = o.if_contains("url"); url && url->is_string()) {
    out.url = std::string{url->get_string()};
  } else {
    // v1 details carry no url; the web UI's address is the documented form.
    out.url = "https://app.devin.ai/sessions/" + out.session_id;
  }
  for (const auto* key : {"created_at", "updated_at"}) {
    std::optional<std::string> text;
    if (!optional_string(o, key, text)) return false;
    if (!text) continue;
    const auto seconds = parse_iso8601(*text);
    if (!seconds) return false;
    (std::string_view{key} == "created_at" ? out.created_at : out.updated_at) = *seconds;
  }
  if (const json::value* tags = o.if_contains("tags"); tags && !tags->is_null()) {
    if (!tags->is_array()) return false;
    for (const auto& tag : tags->get_array()) {
      if (!tag.is_string()) return false;
      out.tags.emplace_back(tag.get_string());
    }
  }
  if (const json::value* pr = o.if_contains("pull_request"); pr && !pr->is_null()) {
    if (!pr->is_object()) return false;
    std::optional<std::string> url;
    if (!optional_string(pr->get_object(), "url", url)) return false;
    if (url) out.pull_requests.push_back(PullRequest{.pr_url = *url, .pr_state = std::nullopt});
  }
  if (const json::value* so = o.if_contains("structured_output"); so && !so->is_null()) {
    out.structured_output = json::serialize(*so);
  }
  return true;
}

bool digits(std::string_view text, std::size_t at, std::size_t n, int& out) {
  if (at + n > text.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

V1Status v1_status(std::optional<std::string_view> status_enum,
                   std::optional<std::string_view> status_text) {
  const std::string value = lower(status_enum.value_or(""));
  if (value == "working" || value == "resumed") return {"running", "working"};
  if (value == "blocked") return {"running", "waiting_for_user"};
  if (value == "finished") return {"running", "finished"};
  if (value == "resume_requested" || value == "resume_requested_frontend") {
    return {"resuming", std::nullopt};
  }
  if (value == "expired") {
    // v1's one word for every stopped session. The free text tells a failure or a billing stop
    // from a session that ran out its time, when it names a v3 stop; anything else has ended.
    const std::string text = lower(status_text.value_or(""));
    if (text.starts_with("error")) return {"error", std::nullopt};
    if (text.starts_with("suspended")) {
      const auto colon = text.find(':');
      if (colon == std::string::npos) return {"suspended", std::nullopt};
      std::string detail = text.substr(colon + 1);
      detail.erase(0, detail.find_first_not_of(' '));
      if (detail.empty()) return {"suspended", std::nullopt};
      return {"suspended", detail};
    }
    return {"exit", std::nullopt};
  }
  return {"v1:" + (value.empty() ? std::string{"unknown"} : value), std::nullopt};
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
      !digits(text, 5, 2, month) || text[7] != '-' || !digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(text, 11, 2, hour) ||
      text[13] != ':' || !digits(text, 14, 2, minute) || text[16] != ':' ||
      !digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  int offset_seconds = 0;
  if (i == text.size()) {
    // No zone: FastAPI writes naive datetimes in UTC.
  } else if (text[i] == 'Z' || text[i] == 'z') {
    ++i;
  } else if (text[i] == '+' || text[i] == '-') {
    const int sign = text[i] == '-' ? -1 : 1;
    int hours = 0, minutes = 0;
    if (!digits(text, i + 1, 2, hours)) return std::nullopt;
    std::size_t m = i + 3;
    if (m < text.size() && text[m] == ':') ++m;
    if (!digits(text, m, 2, minutes)) return std::nullopt;
    i = m + 2;
    offset_seconds = sign * (hours * 3600 + minutes * 60);
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<std::int64_t>(timegm(&tm)) - offset_seconds;
}

std::string v1_create_session_body(const core::JobSpec& spec, std::string_view creation_tag,
                                   const std::vector<SessionSecret>& secrets) {
  json::object body;
  body["prompt"] = spec.prompt;
  // The API answers a repeat of this request with the session it already made (reference §2.3);
  // the creation tag in the request makes each job's request its own.
  body["idempotent"] = true;
  if (spec.title) body["title"] = *spec.title;
  std::vector<std::string> tags = spec.tags;
  if (!creation_tag.empty() && std::find(tags.begin(), tags.end(), creation_tag) == tags.end()) {
    tags.emplace_back(creation_tag);
  }
  auto strings = [](const std::vector<std::string>& items) {
    json::array out;
    for (const auto& item : items) out.emplace_back(item);
    return out;
  };
  if (!tags.empty()) body["tags"] = strings(tags);
  if (spec.playbook_id) body["playbook_id"] = *spec.playbook_id;
  if (spec.knowledge_ids) body["knowledge_ids"] = strings(*spec.knowledge_ids);
  if (spec.secret_ids) body["secret_ids"] = strings(*spec.secret_ids);
  if (spec.max_acu_limit) body["max_acu_limit"] = *spec.max_acu_limit;
  if (spec.structured_output_schema) {
    body["structured_output_schema"] =
        detail::structured_output_schema_value(*spec.structured_output_schema);
  }
  if (!secrets.empty()) {
    json::array list;
    for (const auto& secret : secrets) {
      list.push_back(json::object{
          {"key", secret.key}, {"value", secret.value}, {"sensitive", secret.sensitive}});
    }
    body["session_secrets"] = std::move(list);
  }
  return json::serialize(body);
}

result<Session> parse_v1_created(std::string_view body, std::string_view org_id,
                                 std::vector<std::string> tags) {
  auto value = parse_json(body);
  if (!value) return value.error();
  const auto shape = make_error_code(errc::unexpected_shape);
  if (!value->is_object()) return shape;
  const json::object& o = value->get_object();
  const json::value* id = o.if_contains("session_id");
  if (id == nullptr || !id->is_string()) return shape;
  Session s;
  s.session_id = std::string{id->get_string()};
  std::optional<std::string> url;
  if (!optional_string(o, "url", url)) return shape;
  s.url = url.value_or("https://app.devin.ai/sessions/" + s.session_id);
  if (const json::value* is_new = o.if_contains("is_new_session");
      is_new && !is_new->is_null() && !is_new->is_bool()) {
    return shape;
  }
  s.status = "new";
  s.org_id = std::string{org_id};
  s.tags = std::move(tags);
  return s;
}

result<Session> parse_v1_session(std::string_view body, std::string_view org_id) {
  auto value = parse_json(body);
  if (!value) return value.error();
  Session s;
  if (!read_session(*value, org_id, s)) return make_error_code(errc::unexpected_shape);
  return s;
}

result<SessionPage> parse_v1_session_list(std::string_view body, std::string_view org_id,
                                          std::int64_t offset, int limit,
                                          std::optional<std::int64_t> created_after) {
  auto value = parse_json(body);
  if (!value) return value.error();
  const auto shape = make_error_code(errc::unexpected_shape);
  if (!value->is_object()) return shape;
  const json::value* sessions = value->get_object().if_contains("sessions");
  if (sessions == nullptr || !sessions->is_array()) return shape;
  SessionPage page;
  for (const auto& item : sessions->get_array()) {
    Session s;
    // One unreadable item fails the page, as with v3: dropping it could hide the very session a
    // lookup searches for.
    if (!read_session(item, org_id, s)) return shape;
    if (created_after && s.created_at != 0 && s.created_at < *created_after) continue;
    page.items.push_back(std::move(s));
  }
  const auto count = static_cast<std::int64_t>(sessions->get_array().size());
  page.has_next_page = count >= limit;
  if (page.has_next_page) page.end_cursor = std::to_string(offset + count);
  return page;
}

std::string v1_session_path(std::string_view session_id) {
  return "/v1/session/" + encoded(session_id);
}

std::string v1_terminate_path(std::string_view session_id) {
  return "/v1/sessions/" + encoded(session_id);
}

std::string v1_message_path(std::string_view session_id) {
  return v1_session_path(session_id) + "/message";
}

std::optional<std::string> v1_list_target(const ListSessionsQuery& query, std::int64_t* offset,
                                          int* limit) {
  if (!query.session_ids.empty() || query.updated_after) return std::nullopt;
  std::int64_t from = 0;
  if (query.after) {
    const auto& text = *query.after;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), from);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || from < 0) {
      return std::nullopt;
    }
  }
  const int size = query.first.value_or(kV1DefaultLimit);
  std::string target{kV1SessionsPath};
  target += "?limit=" + std::to_string(size) + "&offset=" + std::to_string(from);
  for (const auto& tag : query.tags) target += "&tags=" + encoded(tag);
  *offset = from;
  *limit = size;
  return target;
}

}  // namespace devin_orch::api
