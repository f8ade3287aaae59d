// Devin v3 JSON <-> our types, error-body digests and request targets. The only place that
// knows Boost.JSON or the API's field names.
#include "devin_orch/api/json_mapping.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace devin_orch::api {
namespace json = boost::json;

namespace {

// Far deeper than any real response; bounds the work a hostile body can cause.
constexpr std::size_t max_json_depth = 64;
// Error texts end up in logs and the job store; a hostile server must not fill them.
constexpr std::size_t max_detail_bytes = 500;
constexpr std::size_t max_raw_excerpt_bytes = 200;

result<json::value> parse_json(std::string_view body) {
  json::parse_options options;
  options.max_depth = max_json_depth;
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, json::storage_ptr{}, options);
  if (ec) return make_error_code(errc::malformed_json);
  return value;
}

// The reading rule for every optional field: absent or null gives the default; present with
// another type is a shape error, because silently defaulting drifted data could make the
// daemon act on values the server never sent.
const json::value* field(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return (value == nullptr || value->is_null()) ? nullptr : value;
}

bool read_string(const json::object& object, std::string_view key, std::string& out) {
  const json::value* value = field(object, key);
  if (value == nullptr) return true;
  if (!value->is_string()) return false;
  out = std::string{value->get_string()};
  return true;
}

bool read_string(const json::object& object, std::string_view key,
                 std::optional<std::string>& out) {
  const json::value* value = field(object, key);
  if (value == nullptr) return true;
  if (!value->is_string()) return false;
  out = std::string{value->get_string()};
  return true;
}

bool read_bool(const json::object& object, std::string_view key, bool& out) {
  const json::value* value = field(object, key);
  if (value == nullptr) return true;
  if (!value->is_bool()) return false;
  out = value->get_bool();
  return true;
}

std::optional<double> as_double(const json::value& value) {
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  if (value.is_double()) return value.get_double();
  return std::nullopt;
}

bool read_double(const json::object& object, std::string_view key, double& out) {
  const json::value* value = field(object, key);
  if (value == nullptr) return true;
  const std::optional<double> number = as_double(*value);
  if (!number) return false;
  out = *number;
  return true;
}

// Timestamps and counts arrive as integers, but a float (1718000000.25) is accepted and
// truncated; values outside int64 are a shape error rather than undefined behaviour.
std::optional<std::int64_t> as_int64(const json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64()) {
    const std::uint64_t u = value.get_uint64();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(u);
  }
  if (value.is_double()) {
    const double d = std::trunc(value.get_double());
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    if (!std::isfinite(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

bool read_int64(const json::object& object, std::string_view key, std::int64_t& out) {
  const json::value* value = field(object, key);
  if (value == nullptr) return true;
  const std::optional<std::int64_t> number = as_int64(*value);
  if (!number) return false;
  out = *number;
  return true;
}

bool read_string_array(const json::object& object, std::string_view key,
                       std::vector<std::string>& out) {
  const json::value* value = field(object, key);
  if (value == nullptr) return true;
  if (!value->is_array()) return false;
  out.clear();
  out.reserve(value->get_array().size());
  for (const json::value& item : value->get_array()) {
    if (!item.is_string()) return false;
    out.emplace_back(item.get_string());
  }
  return true;
}

bool read_pull_requests(const json::object& object, std::vector<PullRequest>& out) {
  const json::value* value = field(object, "pull_requests");
  if (value == nullptr) return true;
  if (!value->is_array()) return false;
  out.clear();
  for (const json::value& item : value->get_array()) {
    if (!item.is_object()) return false;
    const json::object& pr = item.get_object();
    const json::value* url = pr.if_contains("pr_url");
    if (url == nullptr || !url->is_string()) return false;
    PullRequest parsed{.pr_url = std::string{url->get_string()}};
    if (!read_string(pr, "pr_state", parsed.pr_state)) return false;
    out.push_back(std::move(parsed));
  }
  return true;
}

result<Session> session_from(const json::value& value) {
  const auto shape = make_error_code(errc::unexpected_shape);
  if (!value.is_object()) return shape;
  const json::object& object = value.get_object();

  const json::value* id = object.if_contains("session_id");
  const json::value* status = object.if_contains("status");
  if (id == nullptr || !id->is_string() || status == nullptr || !status->is_string()) {
    return shape;
  }
  Session session;
  session.session_id = std::string{id->get_string()};
  session.status = std::string{status->get_string()};

  const bool ok = read_string(object, "url", session.url) &&
                  read_string(object, "status_detail", session.status_detail) &&
                  read_string_array(object, "tags", session.tags) &&
                  read_string(object, "org_id", session.org_id) &&
                  read_int64(object, "created_at", session.created_at) &&
                  read_int64(object, "updated_at", session.updated_at) &&
                  read_double(object, "acus_consumed", session.acus_consumed) &&
                  read_pull_requests(object, session.pull_requests) &&
                  read_string(object, "title", session.title) &&
                  read_bool(object, "is_archived", session.is_archived);
  if (!ok) return shape;

  if (const json::value* output = field(object, "structured_output")) {
    session.structured_output = json::serialize(*output);
  }
  return session;
}

// The fields every cursor page shares.
template <class Page>
bool read_cursor(const json::object& object, Page& page) {
  return read_string(object, "end_cursor", page.end_cursor) &&
         read_bool(object, "has_next_page", page.has_next_page);
}

const json::array* items_of(const json::value& value) {
  if (!value.is_object()) return nullptr;
  const json::value* items = value.get_object().if_contains("items");
  return (items != nullptr && items->is_array()) ? &items->get_array() : nullptr;
}

json::array string_array(const std::vector<std::string>& strings) {
  json::array array;
  array.reserve(strings.size());
  for (const std::string& s : strings) array.emplace_back(s);
  return array;
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if there is none.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) length = 3;
  else if (lead >= 0xF0 && lead <= 0xF4) length = 4;
  else return 0;
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0U) != 0x80U) return 0;
  }
  // Overlong encodings, UTF-16 surrogates and code points above U+10FFFF.
  const unsigned char second = byte(i + 1);
  if (lead == 0xE0 && second < 0xA0) return 0;
  if (lead == 0xED && second > 0x9F) return 0;
  if (lead == 0xF0 && second < 0x90) return 0;
  if (lead == 0xF4 && second > 0x8F) return 0;
  return length;
}

// Printable text for logs and the job store: control characters and invalid UTF-8 dropped,
// at most `limit` bytes, never cutting a character in half.
std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  out.reserve(std::min(text.size(), limit));
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c >= 0x20 && c != 0x7F) {
        if (out.size() + 1 > limit) break;
        out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      ++i;
      continue;
    }
    if (out.size() + length > limit) break;
    out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

std::string validation_errors(const json::array& errors) {
  std::string joined;
  for (const json::value& error : errors) {
    if (!joined.empty()) joined += "; ";
    if (!error.is_object()) {
      joined += json::serialize(error);
      continue;
    }
    const json::object& object = error.get_object();
    if (const json::value* loc = field(object, "loc"); loc != nullptr && loc->is_array()) {
      std::string path;
      for (const json::value& part : loc->get_array()) {
        if (!path.empty()) path += '.';
        path += part.is_string() ? std::string{part.get_string()} : json::serialize(part);
      }
      joined += path + ": ";
    }
    const json::value* msg = field(object, "msg");
    joined += (msg != nullptr && msg->is_string()) ? std::string{msg->get_string()}
                                                    : std::string{"invalid"};
  }
  return joined;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 3986: everything but unreserved characters is percent-encoded, so the same encoder is
// safe for a path segment and a query value (a '/', '&', '=', '+' or '#' never leaks through).
void append_encoded(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4U]);
      out.push_back(hex[c & 0x0FU]);
    }
  }
}

class QueryBuilder {
 public:
  explicit QueryBuilder(std::string path) : target_{std::move(path)} {}

  void add(std::string_view key, std::string_view value) {
    target_.push_back(first_ ? '?' : '&');
    first_ = false;
    append_encoded(target_, key);
    target_.push_back('=');
    append_encoded(target_, value);
  }

  std::string take() && { return std::move(target_); }

 private:
  std::string target_;
  bool first_ = true;
};

}  // namespace

std::string create_session_body(const core::JobSpec& spec, std::string_view creation_tag,
                                const std::vector<SessionSecret>& secrets) {
  json::object body;
  body["prompt"] = spec.prompt;
  if (spec.title) body["title"] = *spec.title;

  std::vector<std::string> tags = spec.tags;
  if (!creation_tag.empty() &&
      std::find(tags.begin(), tags.end(), creation_tag) == tags.end()) {
    tags.emplace_back(creation_tag);
  }
  if (!tags.empty()) body["tags"] = string_array(tags);

  if (spec.create_as_user_id) body["create_as_user_id"] = *spec.create_as_user_id;
  if (spec.playbook_id) body["playbook_id"] = *spec.playbook_id;
  // Absent means "all" to the API and [] means "none", so an empty list is sent as [].
  if (spec.knowledge_ids) body["knowledge_ids"] = string_array(*spec.knowledge_ids);
  if (spec.secret_ids) body["secret_ids"] = string_array(*spec.secret_ids);
  if (!spec.repos.empty()) body["repos"] = string_array(spec.repos);
  if (spec.max_acu_limit) body["max_acu_limit"] = *spec.max_acu_limit;
  if (spec.structured_output_schema) {
    // Job definitions are validated on submission; should one still hold something that is
    // not a JSON object, it goes out as a string so the API rejects it with a readable 422
    // instead of the daemon dropping the schema silently.
    boost::system::error_code ec;
    json::value schema = json::parse(*spec.structured_output_schema, ec);
    if (!ec && schema.is_object()) {
      body["structured_output_schema"] = std::move(schema);
    } else {
      body["structured_output_schema"] = *spec.structured_output_schema;
    }
  }
  if (spec.devin_mode) body["devin_mode"] = *spec.devin_mode;
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

std::string send_message_body(std::string_view message) {
  return json::serialize(json::object{{"message", message}});
}

result<Session> parse_session(std::string_view body) {
  auto value = parse_json(body);
  if (!value) return value.error();
  return session_from(*value);
}

result<SessionPage> parse_session_page(std::string_view body) {
  auto value = parse_json(body);
  if (!value) return value.error();
  const auto shape = make_error_code(errc::unexpected_shape);
  const json::array* items = items_of(*value);
  if (items == nullptr) return shape;

  SessionPage page;
  page.items.reserve(items->size());
  for (const json::value& item : *items) {
    // One unreadable item fails the page: dropping it could hide the very session a lookup
    // is searching for.
    auto session = session_from(item);
    if (!session) return session.error();
    page.items.push_back(std::move(*session));
  }
  const json::object& object = value->get_object();
  if (!read_cursor(object, page)) return shape;
  if (const json::value* total = field(object, "total")) {
    page.total = as_int64(*total);
    if (!page.total) return shape;
  }
  return page;
}

result<OrganizationPage> parse_organization_page(std::string_view body) {
  auto value = parse_json(body);
  if (!value) return value.error();
  const auto shape = make_error_code(errc::unexpected_shape);
  const json::array* items = items_of(*value);
  if (items == nullptr) return shape;

  OrganizationPage page;
  for (const json::value& item : *items) {
    if (!item.is_object()) return shape;
    const json::object& object = item.get_object();
    const json::value* id = object.if_contains("org_id");
    if (id == nullptr || !id->is_string()) return shape;
    Organization org{.org_id = std::string{id->get_string()}};
    if (!read_string(object, "name", org.name)) return shape;
    page.items.push_back(std::move(org));
  }
  if (!read_cursor(value->get_object(), page)) return shape;
  return page;
}

std::string error_detail(std::string_view body) {
  json::parse_options options;
  options.max_depth = max_json_depth;
  boost::system::error_code ec;
  const json::value value = json::parse(body, ec, json::storage_ptr{}, options);
  if (!ec && value.is_object()) {
    if (const json::value* detail = field(value.get_object(), "detail")) {
      if (detail->is_string()) return printable(detail->get_string(), max_detail_bytes);
      if (detail->is_array()) {
        return printable(validation_errors(detail->get_array()), max_detail_bytes);
      }
      return printable(json::serialize(*detail), max_detail_bytes);
    }
  }
  return printable(body.substr(0, max_raw_excerpt_bytes), max_raw_excerpt_bytes);
}

std::string sessions_path(std::string_view org_id) {
  std::string path = "/v3/organizations/";
  append_encoded(path, org_id);
  path += "/sessions";
  return path;
}

std::string session_path(std::string_view org_id, std::string_view session_id) {
  std::string path = sessions_path(org_id);
  path.push_back('/');
  append_encoded(path, session_id);
  return path;
}

std::string list_sessions_target(std::string_view org_id, const ListSessionsQuery& query) {
  QueryBuilder target{sessions_path(org_id)};
  for (const std::string& id : query.session_ids) target.add("session_ids", id);
  for (const std::string& tag : query.tags) target.add("tags", tag);
  if (query.created_after) target.add("created_after", std::to_string(*query.created_after));
  if (query.updated_after) target.add("updated_after", std::to_string(*query.updated_after));
  if (query.first) target.add("first", std::to_string(*query.first));
  if (query.after) target.add("after", *query.after);
  return std::move(target).take();
}

std::string organizations_target(int first, const std::optional<std::string>& after) {
  QueryBuilder target{"/v3/enterprise/organizations"};
  target.add("first", std::to_string(first));
  if (after) target.add("after", *after);
  return std::move(target).take();
}

}  // namespace devin_orch::api
