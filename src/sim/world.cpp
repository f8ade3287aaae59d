// The simulated Devin API (v3, and the legacy v1 routes over the same sessions): routing,
// validation, sessions, paging, rate limits, faults and the /_sim/ admin surface, all as pure
// functions of (request, time) over in-memory state.
#include "devin_orch/sim/world.hpp"

#include "devin_orch/sim/random.hpp"
#include "devin_orch/sim/v1_status.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace devin_orch::sim {
namespace json = boost::json;
namespace urls = boost::urls;

namespace {

// Independent random streams, see Rng.
constexpr std::uint64_t kIdStream = 1;
constexpr std::uint64_t kFaultStream = 2;
constexpr std::uint64_t kCreatingStream = 3;
constexpr std::uint64_t kTotalStream = 4;
constexpr std::uint64_t kEventStream = 5;
// Its own stream, so that adding the 429 fault left every older seed's fault decisions alone.
constexpr std::uint64_t kFault429Stream = 6;

constexpr std::int64_t kDefaultFirst = 100;
constexpr std::int64_t kMaxFirst = 200;
// Enterprise orgs have no real history; a fixed creation date keeps output deterministic.
constexpr std::int64_t kOrgCreatedAt = 1735689600;  // 2025-01-01T00:00:00Z

constexpr std::array<std::string_view, 8> kStatuses = {
    "new", "creating", "claimed", "running", "resuming", "suspended", "exit", "error"};
constexpr std::array<std::string_view, 4> kPlatforms = {"default", "inherit", "linux", "windows"};

std::string hex64(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = kDigits[value & 15];
  return out;
}

std::optional<std::uint64_t> parse_hex64(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// ---------------------------------------------------------------------------------------------
// Replies

Reply json_reply(int status, const json::value& body) {
  Reply reply;
  reply.status = status;
  reply.body = json::serialize(body);
  return reply;
}

Reply detail_reply(int status, std::string_view detail) {
  return json_reply(status, json::object{{"detail", detail}});
}

// FastAPI's HTTPValidationError item.
struct FieldError {
  json::array loc;
  std::string msg;
  std::string type;
};

Reply validation_reply(const std::vector<FieldError>& errors) {
  json::array detail;
  for (const auto& e : errors) {
    detail.push_back(json::object{{"loc", e.loc}, {"msg", e.msg}, {"type", e.type}});
  }
  return json_reply(422, json::object{{"detail", std::move(detail)}});
}

json::value number_value(double value) {
  if (value == std::floor(value) && std::fabs(value) < 9e15) {
    return static_cast<std::int64_t>(value);
  }
  return std::round(value * 10000.0) / 10000.0;
}

std::optional<double> as_number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Query strings

class Query {
 public:
  explicit Query(urls::params_view params) {
    for (const auto& p : params) {
      std::string key = p.key;
      // FastAPI takes repeated keys; clients built on other stacks send `key[]=`.
      if (key.size() > 2 && key.ends_with("[]")) key.resize(key.size() - 2);
      values_[key].push_back(p.value);
    }
  }
  bool has(const std::string& key) const { return values_.contains(key); }
  std::vector<std::string> all(const std::string& key) const {
    const auto it = values_.find(key);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  // Like FastAPI, the last occurrence of a scalar parameter wins.
  std::optional<std::string> last(const std::string& key) const {
    const auto it = values_.find(key);
    if (it == values_.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text == "true" || text == "1" || text == "yes" || text == "on" || text == "t" || text == "y") {
    return true;
  }
  if (text == "false" || text == "0" || text == "no" || text == "off" || text == "f" || text == "n") {
    return false;
  }
  return std::nullopt;
}

std::optional<std::int64_t> int_param(const Query& query, const std::string& key,
                                      std::vector<FieldError>& errors) {
  const auto text = query.last(key);
  if (!text) return std::nullopt;
  const auto value = parse_int(*text);
  if (!value) {
    errors.push_back({{"query", key},
                      "Input should be a valid integer, unable to parse string as an integer",
                      "int_parsing"});
  }
  return value;
}

std::optional<bool> bool_param(const Query& query, const std::string& key,
                               std::vector<FieldError>& errors) {
  const auto text = query.last(key);
  if (!text) return std::nullopt;
  const auto value = parse_bool(*text);
  if (!value) {
    errors.push_back(
        {{"query", key}, "Input should be a valid boolean, unable to interpret input", "bool_parsing"});
  }
  return value;
}

std::int64_t first_param(const Query& query, std::vector<FieldError>& errors) {
  const auto first = int_param(query, "first", errors);
  if (!first) return kDefaultFirst;
  if (*first < 1) {
    errors.push_back({{"query", "first"}, "Input should be greater than or equal to 1",
                      "greater_than_equal"});
  } else if (*first > kMaxFirst) {
    errors.push_back({{"query", "first"}, "Input should be less than or equal to 200",
                      "less_than_equal"});
  }
  return *first;
}

// ---------------------------------------------------------------------------------------------
// JSON bodies

struct BodyCheck {
  const json::object* object = nullptr;
  std::vector<FieldError> errors;
};

BodyCheck parse_body_object(std::string_view body, json::value& storage) {
  BodyCheck check;
  if (body.empty()) {
    check.errors.push_back({{"body"}, "Field required", "missing"});
    return check;
  }
  boost::system::error_code ec;
  storage = json::parse(body, ec);
  if (ec) {
    check.errors.push_back({{"body", 0}, "JSON decode error", "json_invalid"});
    return check;
  }
  if (!storage.is_object()) {
    check.errors.push_back(
        {{"body"}, "Input should be a valid dictionary or object to extract fields from",
         "model_attributes_type"});
    return check;
  }
  check.object = &storage.as_object();
  return check;
}

// Length as pydantic measures a string's min/max_length: in code points, not UTF-8 bytes
// (continuation bytes 10xxxxxx are not counted). Bodies are valid UTF-8 once parsed.
std::size_t characters(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
  }));
}

// Type checks for the optional (nullable) fields of request bodies.
class FieldChecker {
 public:
  FieldChecker(const json::object& object, std::vector<FieldError>& errors)
      : object_{object}, errors_{errors} {}

  const json::value* present(std::string_view key) const {
    const auto* v = object_.if_contains(key);
    return v && !v->is_null() ? v : nullptr;
  }

  const json::string* required_string(std::string_view key) {
    const auto* v = object_.if_contains(key);
    if (!v) {
      errors_.push_back({{"body", key}, "Field required", "missing"});
      return nullptr;
    }
    if (!v->is_string()) {
      errors_.push_back({{"body", key}, "Input should be a valid string", "string_type"});
      return nullptr;
    }
    return &v->get_string();
  }
  const json::string* string(std::string_view key) {
    const auto* v = present(key);
    if (v && !v->is_string()) {
      errors_.push_back({{"body", key}, "Input should be a valid string", "string_type"});
      return nullptr;
    }
    return v ? &v->get_string() : nullptr;
  }
  const json::array* string_list(std::string_view key, std::size_t max_len = 0) {
    const auto* v = present(key);
    if (!v) return nullptr;
    if (!v->is_array()) {
      errors_.push_back({{"body", key}, "Input should be a valid list", "list_type"});
      return nullptr;
    }
    bool ok = true;
    const auto& items = v->get_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        errors_.push_back({{"body", key, i}, "Input should be a valid string", "string_type"});
        ok = false;
      } else if (max_len != 0) {
        const auto size = characters(items[i].get_string());
        if (size < 1) {
          errors_.push_back(
              {{"body", key, i}, "String should have at least 1 character", "string_too_short"});
          ok = false;
        } else if (size > max_len) {
          errors_.push_back({{"body", key, i},
                             "String should have at most " + std::to_string(max_len) + " characters",
                             "string_too_long"});
          ok = false;
        }
      }
    }
    return ok ? &items : nullptr;
  }
  void boolean(std::string_view key) {
    const auto* v = present(key);
    if (v && !v->is_bool()) {
      errors_.push_back({{"body", key}, "Input should be a valid boolean", "bool_type"});
    }
  }
  void integer(std::string_view key) {
    const auto* v = present(key);
    if (!v) return;
    const auto n = as_number(*v);
    if (!n || *n != std::floor(*n)) {
      errors_.push_back({{"body", key}, "Input should be a valid integer", "int_type"});
    }
  }
  const json::object* object(std::string_view key) {
    const auto* v = present(key);
    if (v && !v->is_object()) {
      errors_.push_back({{"body", key}, "Input should be a valid dictionary", "dict_type"});
      return nullptr;
    }
    return v ? &v->get_object() : nullptr;
  }
  void one_of(std::string_view key, std::initializer_list<std::string_view> allowed,
              std::string_view message) {
    const auto* v = present(key);
    if (!v) return;
    const bool ok = v->is_string() && std::find(allowed.begin(), allowed.end(),
                                                std::string_view{v->get_string()}) != allowed.end();
    if (!ok) errors_.push_back({{"body", key}, std::string{message}, "enum"});
  }
  void secrets(std::string_view key) {
    const auto* v = present(key);
    if (!v) return;
    if (!v->is_array()) {
      errors_.push_back({{"body", key}, "Input should be a valid list", "list_type"});
      return;
    }
    const auto& items = v->get_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_object()) {
        errors_.push_back({{"body", key, i}, "Input should be a valid dictionary or object to extract fields from",
                           "model_attributes_type"});
        continue;
      }
      const auto& secret = items[i].get_object();
      for (const auto& [name, limit] : {std::pair<std::string_view, std::size_t>{"key", 256},
                                        std::pair<std::string_view, std::size_t>{"value", 65536}}) {
        const auto* field = secret.if_contains(name);
        if (!field) {
          errors_.push_back({{"body", key, i, name}, "Field required", "missing"});
        } else if (!field->is_string()) {
          errors_.push_back({{"body", key, i, name}, "Input should be a valid string", "string_type"});
        } else if (name == "key" && field->get_string().empty()) {
          errors_.push_back({{"body", key, i, name}, "String should have at least 1 character",
                             "string_too_short"});
        } else if (characters(field->get_string()) > limit) {
          errors_.push_back({{"body", key, i, name},
                             "String should have at most " + std::to_string(limit) + " characters",
                             "string_too_long"});
        }
      }
      if (const auto* sensitive = secret.if_contains("sensitive");
          sensitive && !sensitive->is_null() && !sensitive->is_bool()) {
        errors_.push_back({{"body", key, i, "sensitive"}, "Input should be a valid boolean", "bool_type"});
      }
    }
  }

 private:
  const json::object& object_;
  std::vector<FieldError>& errors_;
};

std::vector<std::string> to_strings(const json::array* items) {
  std::vector<std::string> out;
  if (items) {
    for (const auto& item : *items) out.emplace_back(item.get_string());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Routing

enum class RouteKind {
  none, self, enterprise_orgs, sessions, session, messages, archive, tags,
  attachments, session_attachments,  // upload (multipart) and a session's list (reference §5)
  v1_sessions, v1_session, v1_message,  // the legacy v1 API (reference §8)
};

struct Route {
  RouteKind kind = RouteKind::none;
  std::string template_path;          // "/v3/organizations/{org_id}/sessions"
  std::vector<std::string> methods;   // allowed
  std::string org;                    // v1: none in the path; the key's (see api())
  std::string session_id;
  bool v1 = false;                    // takes apk_ keys, not cog_ ones (reference §1)
};

// v1 spells the single session both `/v1/session/{id}` (documented) and `/v1/sessions/{id}`
// (what some clients use, and the documented DELETE path).
Route match_v1_route(const std::vector<std::string>& segs) {
  Route route;
  route.v1 = true;
  if (segs.size() == 2 && segs[1] == "sessions") {
    route.kind = RouteKind::v1_sessions;
    route.template_path = "/v1/sessions";
    route.methods = {"GET", "POST"};
    return route;
  }
  if (segs.size() < 3 || segs[2].empty() || (segs[1] != "session" && segs[1] != "sessions")) {
    return {};
  }
  route.session_id = segs[2];
  const std::string base = "/v1/" + segs[1] + "/{session_id}";
  if (segs.size() == 3) {
    route.kind = RouteKind::v1_session;
    route.template_path = base;
    route.methods = segs[1] == "sessions" ? std::vector<std::string>{"GET", "DELETE"}
                                          : std::vector<std::string>{"GET"};
  } else if (segs.size() == 4 && segs[1] == "session" && segs[3] == "message") {
    route.kind = RouteKind::v1_message;
    route.template_path = base + "/message";
    route.methods = {"POST"};
  } else {
    return {};
  }
  return route;
}

Route match_route(const std::vector<std::string>& segs) {
  Route route;
  if (!segs.empty() && segs[0] == "v1") return match_v1_route(segs);
  if (segs.size() < 2 || (segs[0] != "v3" && segs[0] != "v3beta1")) return route;
  const std::string prefix = "/" + segs[0];
  if (segs.size() == 2 && segs[1] == "self") {
    return {RouteKind::self, prefix + "/self", {"GET"}, {}, {}};
  }
  if (segs.size() == 3 && segs[1] == "enterprise" && segs[2] == "organizations") {
    return {RouteKind::enterprise_orgs, prefix + "/enterprise/organizations", {"GET"}, {}, {}};
  }
  if (segs.size() == 4 && segs[1] == "organizations" && segs[3] == "attachments" &&
      !segs[2].empty()) {
    route.org = segs[2];
    route.kind = RouteKind::attachments;
    route.template_path = prefix + "/organizations/{org_id}/attachments";
    route.methods = {"POST"};
    return route;
  }
  if (segs.size() < 4 || segs[1] != "organizations" || segs[3] != "sessions" || segs[2].empty()) {
    return route;
  }
  const std::string base = prefix + "/organizations/{org_id}/sessions";
  route.org = segs[2];
  if (segs.size() == 4) {
    route.kind = RouteKind::sessions;
    route.template_path = base;
    route.methods = {"GET", "POST"};
    return route;
  }
  if (segs[4].empty()) return {};
  route.session_id = segs[4];
  if (segs.size() == 5) {
    route.kind = RouteKind::session;
    route.template_path = base + "/{devin_id}";
    route.methods = {"GET", "DELETE"};
  } else if (segs.size() == 6 && segs[5] == "messages") {
    route.kind = RouteKind::messages;
    route.template_path = base + "/{devin_id}/messages";
    route.methods = {"GET", "POST"};
  } else if (segs.size() == 6 && segs[5] == "archive") {
    route.kind = RouteKind::archive;
    route.template_path = base + "/{devin_id}/archive";
    route.methods = {"POST"};
  } else if (segs.size() == 6 && segs[5] == "tags") {
    route.kind = RouteKind::tags;
    route.template_path = base + "/{devin_id}/tags";
    route.methods = {"GET", "POST", "PUT"};
  } else if (segs.size() == 6 && segs[5] == "attachments") {
    route.kind = RouteKind::session_attachments;
    route.template_path = base + "/{devin_id}/attachments";
    route.methods = {"GET"};
  } else {
    return {};
  }
  return route;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string_view retry_after_mode_name(RetryAfterMode mode) {
  switch (mode) {
    case RetryAfterMode::seconds: return "seconds";
    case RetryAfterMode::date: return "date";
    case RetryAfterMode::ms: return "ms";
    case RetryAfterMode::both: return "both";
    case RetryAfterMode::none: return "none";
  }
  return "seconds";
}

std::string_view total_mode_name(TotalMode mode) {
  switch (mode) {
    case TotalMode::always: return "always";
    case TotalMode::never: return "never";
    case TotalMode::random: return "random";
  }
  return "random";
}

constexpr std::array<std::pair<std::string_view, UpdatedAfterMode>, 4> kUpdatedAfterModes{{
    {"inclusive", UpdatedAfterMode::inclusive},
    {"exclusive", UpdatedAfterMode::exclusive},
    {"ignored", UpdatedAfterMode::ignored},
    {"rejected-with-ids", UpdatedAfterMode::rejected_with_ids},
}};

std::string_view updated_after_mode_name(UpdatedAfterMode mode) {
  for (const auto& [name, value] : kUpdatedAfterModes) {
    if (value == mode) return name;
  }
  return "inclusive";
}

std::optional<RetryAfterMode> parse_retry_after_mode(std::string_view name) {
  if (name == "seconds") return RetryAfterMode::seconds;
  if (name == "date") return RetryAfterMode::date;
  if (name == "ms") return RetryAfterMode::ms;
  if (name == "both") return RetryAfterMode::both;
  if (name == "none") return RetryAfterMode::none;
  return std::nullopt;
}

constexpr std::string_view kBadGatewayHtml =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
constexpr std::string_view kGarbage = "{\"session_id\": \"devin-\x01\x02 <<truncated upstream";

}  // namespace

// ---------------------------------------------------------------------------------------------
// State

struct Message {
  std::string event_id;
  TimeMs created = 0;
  std::string text;
  std::string source;  // "user" or "devin"
};

struct Session {
  std::uint64_t seq = 0;  // creation order; the paging key
  std::string id;
  std::string org;
  TimeMs created = 0;
  std::string prompt;
  std::optional<std::string> title;
  std::vector<std::string> tags;
  std::optional<std::string> playbook_id;
  std::optional<std::string> snapshot_id;  // v1 creates only
  std::optional<std::string> user_id;
  std::optional<bool> resumable;           // as given on create; null/absent: resumable
  std::optional<std::string> parent_id;    // set on spawned children
  std::vector<std::string> child_ids;      // in spawn order
  std::vector<std::string> attachment_urls;  // as given on create
  bool has_schema = false;
  bool archived = false;
  Path path;
  SessionRun run;
  double acus_before = 0.0;       // consumed by earlier runs
  bool finished_before = false;   // an earlier run reached running/finished
  std::vector<Message> messages;
  TimeMs devin_wrote_until = 0;   // [sim:chatty]: Devin's messages are written up to here
};

struct KeyState {
  TokenBucket bucket;
  QuietWindow window;        // announced by the last rate-limit 429
  QuietWindow fault_window;  // announced by a 500/503/429 fault answer
};

struct FaultCounts {
  std::uint64_t reset = 0, http_500 = 0, http_503 = 0, http_429 = 0, http_502_html = 0,
                drop_after_create = 0, slow = 0, garbage = 0;
};

struct Stats {
  std::uint64_t requests_total = 0;
  std::map<std::string, std::map<std::string, std::uint64_t>> requests;
  std::uint64_t sessions_created = 0;
  std::uint64_t rate_limited_total = 0;
  std::uint64_t concurrency_limited_total = 0;
  std::uint64_t early_requests_after_429 = 0;
  std::uint64_t early_requests_in_retry_after = 0;  // inside any announced window
  std::uint64_t retry_after_windows = 0;            // answers that announced a wait
  std::uint64_t child_sessions_created = 0;
  std::uint64_t list_requests_with_session_ids = 0;
  std::uint64_t attachments_uploaded = 0;
  FaultCounts faults;
};

// A file uploaded to POST .../attachments.
struct Attachment {
  std::string id;  // a UUID
  std::string org;
  std::string name;
  std::string url;
  std::size_t bytes = 0;
};

struct World::State {
  explicit State(WorldConfig c)
      : config{std::move(c)},
        id_rng{config.seed, kIdStream},
        fault_rng{config.seed, kFaultStream},
        creating_rng{config.seed, kCreatingStream},
        total_rng{config.seed, kTotalStream},
        event_rng{config.seed, kEventStream},
        fault429_rng{config.seed, kFault429Stream},
        cursor_mask{mix(config.seed ^ 0xc0ffee)} {
    if (!(config.time_factor > 0)) throw std::invalid_argument("time_factor must be > 0");
    for (const auto& org : config.orgs) add_org(org);
    for (int i = 1; i <= config.enterprise_orgs; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "org-e%04d", i);
      add_org(name);
    }
  }

  void add_org(const std::string& org) {
    if (org_set.insert(org).second) org_list.push_back(org);
  }

  WorldConfig config;
  std::vector<std::string> org_list;
  std::set<std::string> org_set;
  std::map<std::uint64_t, Session> sessions;  // by seq: newest last
  std::unordered_map<std::string, std::uint64_t> by_id;
  std::unordered_map<std::string, std::set<std::uint64_t>> by_tag;
  std::unordered_map<std::string, std::size_t> per_org;
  std::uint64_t next_seq = 1;
  TimeMs last_created = 0;
  Rng id_rng, fault_rng, creating_rng, total_rng, event_rng, fault429_rng;
  std::uint64_t cursor_mask;
  std::unordered_map<std::string, KeyState> keys;
  std::vector<Attachment> attachments;  // in upload order
  Stats stats;

  // --- sessions ---

  Phase phase(const Session& s, TimeMs now) const {
    return phase_at(s.run, s.path, config.time_factor, now);
  }

  // Ends the current run at `now`, carrying its ACUs and PR over, and starts `next`.
  void start_run(Session& s, SessionRun next, TimeMs now) {
    const auto current = phase(s, now);
    s.acus_before += current.acus;
    s.finished_before = s.finished_before || current.reached_finished;
    s.run = std::move(next);
  }

  void pin(Session& s, std::string status, std::optional<std::string> detail, TimeMs now) {
    start_run(s, SessionRun{.kind = RunKind::pinned, .origin = now, .pinned_status = std::move(status),
                     .pinned_detail = std::move(detail)},
              now);
  }

  void index_tags(const Session& s) {
    for (const auto& tag : s.tags) by_tag[tag].insert(s.seq);
  }
  void unindex_tags(const Session& s) {
    for (const auto& tag : s.tags) {
      const auto it = by_tag.find(tag);
      if (it == by_tag.end()) continue;
      it->second.erase(s.seq);
      if (it->second.empty()) by_tag.erase(it);
    }
  }

  Session* find(const std::string& id) {
    const auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : &sessions.at(it->second);
  }

  std::string new_session_id() {
    for (;;) {
      auto id = "devin-" + hex64(id_rng.next()) + hex64(id_rng.next());
      if (!by_id.contains(id)) return id;
    }
  }

  // `full`: the get/list rendering, with status_detail and structured_output.
  json::object render(const Session& s, TimeMs now, bool full) const {
    const auto p = phase(s, now);
    const bool finished = s.finished_before || p.reached_finished;
    json::array tags;
    for (const auto& tag : s.tags) tags.emplace_back(tag);
    json::array prs;
    if (finished) {
      prs.push_back(json::object{
          {"pr_url", "https://github.com/example/repo/pull/" + std::to_string(s.seq)},
          {"pr_state", "open"}});
    }
    json::value structured_output = nullptr;
    if (full && finished && s.has_schema) {
      structured_output = json::object{{"summary", "Simulated result of " + s.id}};
    }
    json::value detail = nullptr;
    if (full && p.detail) detail = *p.detail;
    auto opt = [](const std::optional<std::string>& v) -> json::value {
      return v ? json::value(*v) : json::value(nullptr);
    };
    // Null rather than [] for a session without children: the schema allows both, and a
    // tolerant client must take either.
    json::value child_ids = nullptr;
    if (!s.child_ids.empty()) {
      json::array ids;
      for (const auto& id : s.child_ids) ids.emplace_back(id);
      child_ids = std::move(ids);
    }
    return json::object{
        {"session_id", s.id},
        {"url", "https://app.devin.ai/sessions/" + s.id},
        {"status", p.status},
        {"status_detail", detail},
        {"tags", std::move(tags)},
        {"org_id", s.org},
        {"created_at", s.created / 1000},
        {"updated_at", std::max(p.since, s.created) / 1000},
        {"acus_consumed", number_value(s.acus_before + p.acus)},
        {"pull_requests", std::move(prs)},
        {"title", opt(s.title)},
        {"user_id", opt(s.user_id)},
        {"service_user_id", "svc-sim"},
        {"playbook_id", opt(s.playbook_id)},
        {"parent_session_id", opt(s.parent_id)},
        {"child_session_ids", child_ids},
        {"is_archived", s.archived},
        {"structured_output", std::move(structured_output)},
        {"origin", "api"},
        {"category", nullptr},
        {"subcategory", nullptr},
    };
  }

  std::size_t active_in(const std::string* org, TimeMs now) const {
    std::size_t active = 0;
    for (const auto& [seq, s] : sessions) {
      if (org && s.org != *org) continue;
      if (is_active_status(phase(s, now).status)) ++active;
    }
    return active;
  }

  std::string encode_cursor(std::uint64_t position) const {
    return "c" + hex64(position ^ cursor_mask);
  }
  std::optional<std::uint64_t> decode_cursor(std::string_view cursor) const {
    if (cursor.size() != 17 || cursor[0] != 'c') return std::nullopt;
    const auto raw = parse_hex64(cursor.substr(1));
    if (!raw) return std::nullopt;
    return *raw ^ cursor_mask;
  }

  // The `after` cursor of an offset-paged listing of `size` items; an invalid one is a 422.
  std::uint64_t offset_cursor(const Query& query, std::size_t size,
                              std::vector<FieldError>& errors) const {
    const auto cursor = query.last("after");
    if (!cursor) return 0;
    const auto decoded = decode_cursor(*cursor);
    if (!decoded || *decoded > size) {
      errors.push_back({{"query", "after"}, "Invalid cursor", "value_error"});
      return 0;
    }
    return *decoded;
  }

  bool want_total() {
    switch (config.total_mode) {
      case TotalMode::always: return true;
      case TotalMode::never: return false;
      case TotalMode::random: return total_rng.uniform() < 0.5;
    }
    return true;
  }

  // --- API ---

  Reply api(const Request& request, const Query& query, const Route& route, TimeMs now);
  Reply create(const Route& route, const Request& request, TimeMs now);
  std::optional<Reply> over_concurrency_cap(const std::string& org, TimeMs now);
  Session& start_session(Session s, TimeMs now);
  // The legacy v1 API over the same sessions (reference §8).
  Reply v1_api(const Route& route, const Request& request, const Query& query, TimeMs now);
  Reply v1_create(const std::string& org, const Request& request, TimeMs now);
  const Session* v1_idempotent_match(const std::string& org, std::string_view prompt,
                                     const std::vector<std::string>& tags, TimeMs now) const;
  Reply v1_list(const std::string& org, const Query& query, TimeMs now);
  json::object render_v1(const Session& s, TimeMs now, bool detail) const;
  Reply list(const Route& route, const Query& query, TimeMs now);
  Reply post_message(Session& s, const Request& request, TimeMs now);
  Reply list_messages(Session& s, const Query& query, TimeMs now);
  void devin_writes(Session& s, TimeMs now);
  Reply terminate(Session& s, const Query& query, TimeMs now);
  Reply archive(Session& s, TimeMs now);
  Reply tags(Session& s, std::string_view method, const Request& request);
  Reply upload_attachment(const std::string& org, const Request& request);
  Reply session_attachments(const Session& s) const;
  Reply enterprise_orgs(const Query& query);
  Reply self() const;
  bool user_quota_exhausted(const std::string& user, TimeMs now) const;
  Session& add_session(Session s);
  void spawn_children(Session& parent, const std::string& playbook);

  // --- admin ---

  Reply admin(const Request& request, const std::vector<std::string>& segs, TimeMs now);
  json::object stats_json(TimeMs now) const;
  json::object settings_json() const;
  Reply configure(std::string_view body, TimeMs now);
  Reply force(Session& s, std::string_view body, TimeMs now);
  void forget(const Session& s);
};

// ---------------------------------------------------------------------------------------------
// API requests

Reply World::State::api(const Request& request, const Query& query, const Route& route,
                        TimeMs now) {
  if (route.kind == RouteKind::none) return detail_reply(404, "Not Found");
  if (std::find(route.methods.begin(), route.methods.end(), request.method) ==
      route.methods.end()) {
    auto reply = detail_reply(405, "Method Not Allowed");
    reply.headers.emplace_back("Allow", join(route.methods, ", "));
    return reply;
  }

  constexpr std::string_view bearer = "Bearer ";
  if (request.authorization.empty()) return detail_reply(401, "Not authenticated");
  const bool has_scheme = request.authorization.starts_with(bearer);
  const std::string key{has_scheme ? request.authorization.substr(bearer.size()) : ""};
  // Reference §1: apk_ keys (apk_user_ ones included) work on v1 only, cog_ keys on v3 only.
  constexpr std::string_view v1_prefix = "apk_";
  const bool valid =
      has_scheme &&
      (route.v1 ? key.starts_with(v1_prefix) && key.size() > v1_prefix.size() &&
                      (config.v1_api_key.empty() || key == config.v1_api_key)
                : !key.starts_with(v1_prefix) &&
                      (config.api_key.empty() ? key.starts_with("cog_") && key.size() > 4
                                              : key == config.api_key));
  if (!valid) return detail_reply(401, "Invalid API key");

  auto [it, inserted] = keys.try_emplace(
      key, KeyState{TokenBucket{config.rate_limit_rpm, config.rate_limit_burst, now}, {}});
  auto& key_state = it->second;
  const bool early_429 = key_state.window.is_early(now, config.in_flight_grace_ms);
  if (early_429) ++stats.early_requests_after_429;
  if (early_429 || key_state.fault_window.is_early(now, config.in_flight_grace_ms)) {
    ++stats.early_requests_in_retry_after;
  }
  if (const auto wait_ms = key_state.bucket.try_take(now)) {
    ++stats.rate_limited_total;
    auto reply = detail_reply(429, "Rate limit exceeded. Please retry later.");
    auto advice = retry_advice(config.retry_after_mode, now, *wait_ms);
    reply.headers = std::move(advice.headers);
    if (advice.quiet_until) {
      key_state.window = {now, *advice.quiet_until};
      ++stats.retry_after_windows;
    }
    return reply;
  }

  // One draw per fault kind for every request, so changing one rate never shifts the others.
  std::array<double, 7> roll{};
  for (auto& r : roll) r = fault_rng.uniform();
  const double roll_429 = fault429_rng.uniform();
  const auto& f = config.faults;
  // A fault answer that asks the client to wait, as a loaded server behind a proxy does.
  auto fault_reply = [&](int status, std::string_view detail) {
    auto reply = detail_reply(status, detail);
    if (config.fault_retry_after_ms > 0) {
      auto advice = retry_advice(config.fault_retry_after_mode, now, config.fault_retry_after_ms);
      reply.headers = std::move(advice.headers);
      // A later window never shortens a longer one still open.
      if (advice.quiet_until && *advice.quiet_until >= key_state.fault_window.until) {
        key_state.fault_window = {now, *advice.quiet_until};
      }
      if (advice.quiet_until) ++stats.retry_after_windows;
    }
    return reply;
  };
  if (roll[0] < f.reset) {
    ++stats.faults.reset;
    Reply reply;
    reply.delivery = Delivery::reset;
    return reply;
  }
  if (roll[1] < f.http_500) {
    ++stats.faults.http_500;
    return fault_reply(500, "Internal Server Error");
  }
  if (roll[2] < f.http_503) {
    ++stats.faults.http_503;
    return fault_reply(503, "Service Unavailable");
  }
  if (roll_429 < f.http_429) {
    ++stats.faults.http_429;
    return fault_reply(429, "Too many requests. Please retry later.");
  }
  if (roll[3] < f.http_502_html) {
    ++stats.faults.http_502_html;
    Reply reply;
    reply.status = 502;
    reply.content_type = "text/html";
    reply.body = kBadGatewayHtml;
    return reply;
  }

  Reply reply = [&]() -> Reply {
    if (route.v1) return v1_api(route, request, query, now);
    switch (route.kind) {
      case RouteKind::self: return self();
      case RouteKind::enterprise_orgs: return enterprise_orgs(query);
      default: break;
    }
    if (!org_set.contains(route.org)) return detail_reply(404, "Organization not found");
    if (route.kind == RouteKind::sessions) {
      return request.method == "POST" ? create(route, request, now) : list(route, query, now);
    }
    if (route.kind == RouteKind::attachments) return upload_attachment(route.org, request);
    Session* s = find(route.session_id);
    if (!s || s->org != route.org) return detail_reply(404, "Session not found");
    switch (route.kind) {
      case RouteKind::session:
        return request.method == "GET" ? json_reply(200, render(*s, now, true))
                                       : terminate(*s, query, now);
      case RouteKind::messages:
        return request.method == "POST" ? post_message(*s, request, now)
                                          : list_messages(*s, query, now);
      case RouteKind::archive: return archive(*s, now);
      case RouteKind::tags: return tags(*s, request.method, request);
      case RouteKind::session_attachments: return session_attachments(*s);
      default: return detail_reply(404, "Not Found");
    }
  }();

  const bool is_create = (route.kind == RouteKind::sessions ||
                          route.kind == RouteKind::v1_sessions) && request.method == "POST";
  if (is_create && reply.status == 200 && roll[4] < f.drop_after_create) {
    ++stats.faults.drop_after_create;
    reply.delivery = Delivery::drop;
    return reply;
  }
  if (roll[5] < f.slow) {
    ++stats.faults.slow;
    reply.delay_ms = config.slow_ms;
  }
  if (roll[6] < f.garbage) {
    ++stats.faults.garbage;
    reply.status = 200;
    reply.content_type = "application/json";
    reply.headers.clear();
    reply.body = kGarbage;
  }
  return reply;
}

Reply World::State::create(const Route& route, const Request& request, TimeMs now) {
  json::value storage;
  auto check = parse_body_object(request.body, storage);
  if (!check.object) return validation_reply(check.errors);
  FieldChecker fields{*check.object, check.errors};
  const auto* prompt = fields.required_string("prompt");
  const auto* title = fields.string("title");
  const auto* tags = fields.string_list("tags");
  const auto* playbook = fields.string("playbook_id");
  const auto* child_playbook = fields.string("child_playbook_id");
  fields.string_list("knowledge_ids");
  fields.string_list("secret_ids");
  fields.secrets("session_secrets");
  fields.string_list("repos");
  fields.integer("max_acu_limit");
  const auto* schema = fields.object("structured_output_schema");
  fields.boolean("structured_output_required");
  // The values the API takes today (reference §12); it refuses others with a 422.
  fields.one_of("devin_mode", {"normal", "fast", "lite", "ultra", "fusion"},
                "Input should be 'normal', 'fast', 'lite', 'ultra' or 'fusion'");
  fields.boolean("resumable");
  const auto* platform = fields.string("platform");
  fields.boolean("bypass_approval");
  const auto* attachment_urls = fields.string_list("attachment_urls", 2083);
  fields.string_list("session_links");
  const auto* as_user = fields.string("create_as_user_id");
  fields.one_of("advanced_mode", {"analyze", "create", "improve", "batch", "manage"},
                "Input should be 'analyze', 'create', 'improve', 'batch' or 'manage'");
  if (!check.errors.empty()) return validation_reply(check.errors);

  if (platform && std::find(kPlatforms.begin(), kPlatforms.end(), std::string_view{*platform}) ==
                      kPlatforms.end()) {
    return detail_reply(400, "Invalid platform '" + std::string{*platform} +
                                 "'. Valid platforms: default, inherit, linux, windows");
  }
  if (auto refusal = over_concurrency_cap(route.org, now)) return std::move(*refusal);

  Session s;
  s.org = route.org;
  s.prompt = std::string{*prompt};
  if (title) s.title = std::string{*title};
  s.tags = to_strings(tags);
  if (playbook) s.playbook_id = std::string{*playbook};
  if (as_user) s.user_id = std::string{*as_user};
  s.attachment_urls = to_strings(attachment_urls);
  if (const auto* r = fields.present("resumable")) s.resumable = r->get_bool();
  s.has_schema = schema != nullptr;
  auto& stored = start_session(std::move(s), now);
  if (child_playbook) spawn_children(stored, std::string{*child_playbook});
  return json_reply(200, render(stored, now, false));
}

std::optional<Reply> World::State::over_concurrency_cap(const std::string& org, TimeMs now) {
  if (config.max_concurrent_sessions <= 0) return std::nullopt;
  const auto active = active_in(&org, now);
  if (active < static_cast<std::size_t>(config.max_concurrent_sessions)) return std::nullopt;
  ++stats.concurrency_limited_total;
  return detail_reply(429, "You have " + std::to_string(active) +
                               " sessions running, the most your plan allows at once.");
}

// Gives `s` (org, prompt and the request's fields set) its id, creation time and lifecycle.
Session& World::State::start_session(Session s, TimeMs now) {
  // Creation times never go backwards, so creation order, (created_at, seq) order and the
  // paging key all agree even if the wall clock steps back.
  last_created = std::max(last_created, now);
  s.seq = next_seq++;
  s.id = new_session_id();
  s.created = last_created;
  s.path = choose_path(config.seed, s.prompt);
  if (s.user_id && user_quota_exhausted(*s.user_id, now)) {
    s.path = Path{.ending = Ending::suspend, .suspend_detail = "user_usage_limit_exceeded",
                  .before_work = true};
  }
  const bool creating = creating_rng.uniform() < config.faults.creating;
  s.run = SessionRun{.kind = RunKind::initial,
              .origin = s.created,
              .creating = creating,
              .hold = config.hold_running || s.path.ending == Ending::hold};
  ++stats.sessions_created;
  return add_session(std::move(s));
}

bool World::State::user_quota_exhausted(const std::string& user, TimeMs now) const {
  if (!config.user_acu_quota) return false;
  double used = 0.0;
  for (const auto& [seq, s] : sessions) {
    if (s.user_id == user) used += s.acus_before + phase(s, now).acus;
  }
  return used >= *config.user_acu_quota;
}

Session& World::State::add_session(Session s) {
  index_tags(s);
  ++per_org[s.org];
  by_id.emplace(s.id, s.seq);
  return sessions.emplace(s.seq, std::move(s)).first->second;
}

// Children exist from their parent's creation (the reference does not say when they appear).
// Pessimistic choices, since the reference is silent: they carry the parent's tags, so a tag
// lookup finds them beside the parent; their ACUs are theirs alone, never added to the parent's;
// they run their own lifecycle, and terminating or archiving the parent leaves them running.
void World::State::spawn_children(Session& parent, const std::string& playbook) {
  for (int i = 1; i <= config.child_sessions; ++i) {
    Session child;
    child.seq = next_seq++;
    child.id = new_session_id();
    child.org = parent.org;
    child.created = parent.created;
    // The parent's prompt keeps its [sim:...] markers, so children end the same way.
    child.prompt = parent.prompt + " (child " + std::to_string(i) + ")";
    child.tags = parent.tags;
    child.playbook_id = playbook;
    child.user_id = parent.user_id;
    child.resumable = parent.resumable;
    child.parent_id = parent.id;
    child.path = choose_path(config.seed, child.prompt);
    if (parent.path.before_work) child.path = parent.path;
    child.run = SessionRun{.kind = RunKind::initial,
                           .origin = child.created,
                           .hold = config.hold_running || child.path.ending == Ending::hold};
    parent.child_ids.push_back(child.id);
    ++stats.child_sessions_created;
    add_session(std::move(child));
  }
}

Reply World::State::list(const Route& route, const Query& query, TimeMs now) {
  std::vector<FieldError> errors;
  const auto first = first_param(query, errors);
  std::optional<std::uint64_t> after;
  if (const auto cursor = query.last("after")) {
    after = decode_cursor(*cursor);
    if (!after) errors.push_back({{"query", "after"}, "Invalid cursor", "value_error"});
  }
  const auto created_after = int_param(query, "created_after", errors);
  const auto created_before = int_param(query, "created_before", errors);
  auto updated_after = int_param(query, "updated_after", errors);
  const auto updated_before = int_param(query, "updated_before", errors);
  const auto archived = bool_param(query, "is_archived", errors);
  if (!errors.empty()) return validation_reply(errors);

  const bool by_ids = query.has("session_ids");
  if (updated_after && by_ids &&
      config.updated_after_mode == UpdatedAfterMode::rejected_with_ids) {
    return validation_reply({{{"query", "updated_after"},
                              "updated_after cannot be combined with session_ids",
                              "value_error"}});
  }
  if (config.updated_after_mode == UpdatedAfterMode::ignored) updated_after.reset();
  const bool updated_after_exclusive = config.updated_after_mode == UpdatedAfterMode::exclusive;
  const auto ids = query.all("session_ids");
  const auto tag_filter = query.all("tags");
  const auto playbook = query.last("playbook_id");
  const bool by_schedule = query.has("schedule_id");  // API-created sessions have no schedule
  const bool by_category = query.has("category");     // nor a category (rendered null)
  const auto origins = query.all("origins");
  const auto user_ids = query.all("user_ids");
  const auto service_user_ids = query.all("service_user_ids");
  if (by_ids) ++stats.list_requests_with_session_ids;

  auto contains = [](const std::vector<std::string>& list, std::string_view v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  // A lagging list is an index that has not caught up: it hides new sessions from every list
  // answer, counts included, whatever the filter.
  const bool lagging = config.list_lag_ms > 0;
  const bool filtered = !tag_filter.empty() || created_after || created_before || updated_after ||
                        updated_before || archived || playbook || by_schedule || by_category ||
                        !origins.empty() ||
                        !user_ids.empty() || !service_user_ids.empty() || lagging;
  auto matches = [&](const Session& s) {
    if (s.org != route.org || by_schedule || by_category) return false;
    if (lagging && now < s.created + config.list_lag_ms) return false;
    for (const auto& tag : tag_filter) {
      if (!contains(s.tags, tag)) return false;
    }
    const auto created_at = s.created / 1000;
    if (created_after && created_at < *created_after) return false;
    if (created_before && created_at >= *created_before) return false;
    if (updated_after || updated_before) {
      const auto updated_at = std::max(phase(s, now).since, s.created) / 1000;
      if (updated_after && (updated_after_exclusive ? updated_at <= *updated_after
                                                    : updated_at < *updated_after)) {
        return false;
      }
      if (updated_before && updated_at >= *updated_before) return false;
    }
    if (archived && s.archived != *archived) return false;
    if (playbook && s.playbook_id != *playbook) return false;
    if (!origins.empty() && !contains(origins, "api")) return false;
    if (!user_ids.empty() && (!s.user_id || !contains(user_ids, *s.user_id))) return false;
    if (!service_user_ids.empty() && !contains(service_user_ids, "svc-sim")) return false;
    return true;
  };

  const bool total_wanted = want_total();
  std::optional<std::size_t> total;
  // Counting needs a full pass only when something beyond the org narrows the set.
  const bool count_while_scanning = total_wanted && (by_ids || filtered);
  if (total_wanted && !count_while_scanning) {
    const auto it = per_org.find(route.org);
    total = it == per_org.end() ? 0 : it->second;
  }

  std::vector<const Session*> page;
  bool has_next = false;
  std::size_t counted = 0;
  auto visit = [&](const Session& s) {  // newest first; false stops the walk
    if (!matches(s)) return true;
    ++counted;
    if (after && s.seq >= *after) return true;
    if (page.size() < static_cast<std::size_t>(first)) {
      page.push_back(&s);
      return true;
    }
    has_next = true;
    return count_while_scanning;
  };

  if (by_ids) {
    std::vector<std::uint64_t> seqs;
    for (const auto& id : ids) {
      if (const auto it = by_id.find(id); it != by_id.end()) seqs.push_back(it->second);
    }
    std::sort(seqs.begin(), seqs.end(), std::greater<>{});
    seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
    for (const auto seq : seqs) {
      if (!visit(sessions.at(seq))) break;
    }
  } else if (!tag_filter.empty()) {
    const std::set<std::uint64_t>* smallest = nullptr;
    for (const auto& tag : tag_filter) {
      const auto it = by_tag.find(tag);
      if (it == by_tag.end()) {
        smallest = nullptr;
        break;
      }
      if (!smallest || it->second.size() < smallest->size()) smallest = &it->second;
    }
    if (smallest) {
      for (auto it = smallest->rbegin(); it != smallest->rend(); ++it) {
        if (!visit(sessions.at(*it))) break;
      }
    }
  } else {
    // Without a count to take, start right below the cursor instead of walking to it.
    auto start = (after && !count_while_scanning) ? sessions.lower_bound(*after) : sessions.end();
    for (auto it = std::make_reverse_iterator(start); it != sessions.rend(); ++it) {
      if (!visit(it->second)) break;
    }
  }
  if (count_while_scanning) total = counted;

  json::array items;
  for (const auto* s : page) items.push_back(render(*s, now, true));
  json::value end_cursor = nullptr;
  if (has_next && !page.empty()) end_cursor = encode_cursor(page.back()->seq);
  return json_reply(200, json::object{{"items", std::move(items)},
                                      {"end_cursor", end_cursor},
                                      {"has_next_page", has_next},
                                      {"total", total ? json::value(*total) : json::value(nullptr)}});
}

Reply World::State::post_message(Session& s, const Request& request, TimeMs now) {
  json::value storage;
  auto check = parse_body_object(request.body, storage);
  if (!check.object) return validation_reply(check.errors);
  FieldChecker fields{*check.object, check.errors};
  const auto* message = fields.required_string("message");
  fields.string("message_as_user_id");
  if (!check.errors.empty()) return validation_reply(check.errors);

  if (s.archived) return detail_reply(400, "Session is archived");
  const auto p = phase(s, now);
  if (p.status == "new" || p.status == "creating" || p.status == "claimed") {
    return detail_reply(400, "Devin session still initializing");
  }
  if (p.status == "exit" || p.status == "error") return detail_reply(400, "Session has ended");
  // Reference §12: a session created with resumable=false cannot be woken once it stops.
  if (p.status == "suspended" && s.resumable == false) {
    return detail_reply(400, "Session is not resumable");
  }

  devin_writes(s, now);  // what Devin wrote before, in order
  s.messages.push_back(Message{.event_id = "event-" + hex64(event_rng.next()) + hex64(event_rng.next()),
                               .created = now,
                               .text = std::string{*message},
                               .source = "user"});
  const bool hold = config.hold_running || s.path.ending == Ending::hold;
  if (p.status == "suspended") {
    start_run(s, SessionRun{.kind = RunKind::resume, .origin = now, .hold = hold}, now);
  } else if (p.status == "running" && (p.detail == "finished" || p.detail == "waiting_for_user")) {
    // Devin picks the conversation up again: back to work, then the same ending as before.
    start_run(s, SessionRun{.kind = RunKind::continue_working, .origin = now, .hold = hold}, now);
  }
  return json_reply(200, render(s, now, false));
}

// A [sim:chatty] session's Devin writes a message every minute (scaled by the time factor)
// while it works, and its updated_at does not move for them: the reference does not say that
// messages move it. Written when the messages are next read or added, so they stay in order.
void World::State::devin_writes(Session& s, TimeMs now) {
  if (s.prompt.find("[sim:chatty]") == std::string::npos) return;
  constexpr std::size_t kMaxMessages = 10'000;
  const auto every = std::max<TimeMs>(1, static_cast<TimeMs>(60'000 * config.time_factor));
  TimeMs at = std::max(s.devin_wrote_until, s.created) + every;
  for (; at <= now && s.messages.size() < kMaxMessages; at += every) {
    const auto p = phase(s, at);
    if (p.status != "running" || p.detail != "working") continue;
    s.messages.push_back(Message{.event_id = "event-" + hex64(event_rng.next()) + hex64(event_rng.next()),
                                 .created = at,
                                 .text = "Still working on it (" + std::to_string(s.messages.size() + 1) + ")",
                                 .source = "devin"});
  }
  s.devin_wrote_until = at - every;
}

Reply World::State::list_messages(Session& s, const Query& query, TimeMs now) {
  devin_writes(s, now);
  std::vector<FieldError> errors;
  const auto first = first_param(query, errors);
  const std::uint64_t start = offset_cursor(query, s.messages.size(), errors);
  if (!errors.empty()) return validation_reply(errors);
  json::array items;
  auto i = static_cast<std::size_t>(start);
  for (; i < s.messages.size() && items.size() < static_cast<std::size_t>(first); ++i) {
    const auto& m = s.messages[i];
    items.push_back(json::object{{"event_id", m.event_id},
                                 {"created_at", m.created / 1000},
                                 {"message", m.text},
                                 {"source", m.source}});
  }
  const bool has_next = i < s.messages.size();
  return json_reply(
      200, json::object{{"items", std::move(items)},
                        {"end_cursor", has_next ? json::value(encode_cursor(i)) : json::value(nullptr)},
                        {"has_next_page", has_next},
                        {"total", want_total() ? json::value(s.messages.size()) : json::value(nullptr)}});
}

Reply World::State::terminate(Session& s, const Query& query, TimeMs now) {
  std::vector<FieldError> errors;
  const auto archive_flag = bool_param(query, "archive", errors);
  if (!errors.empty()) return validation_reply(errors);
  const auto p = phase(s, now);
  // Ended sessions keep their final status: termination cannot undo an error.
  if (p.status != "exit" && p.status != "error") pin(s, "exit", std::nullopt, now);
  s.archived = s.archived || archive_flag.value_or(false);
  return json_reply(200, render(s, now, false));
}

Reply World::State::archive(Session& s, TimeMs now) {
  if (is_active_status(phase(s, now).status)) pin(s, "suspended", "user_request", now);
  s.archived = true;
  return json_reply(200, render(s, now, false));
}

// ---------------------------------------------------------------------------------------------
// Attachments (reference §5): POST /attachments takes multipart/form-data with the file in the
// part named `file` and answers {attachment_id, name, url}; the URL goes in a create's
// attachment_urls. FastAPI's answers for bad input: 422 when the `file` part is missing (or is
// not a file), 400 when the multipart body cannot be parsed.

namespace {

// The value of `name` in a header's parameters (`; boundary=...`, `; filename="..."`).
std::optional<std::string> header_parameter(std::string_view header, std::string_view name) {
  std::size_t at = 0;
  while ((at = header.find(';', at)) != std::string_view::npos) {
    ++at;
    while (at < header.size() && header[at] == ' ') ++at;
    const auto equals = header.find('=', at);
    if (equals == std::string_view::npos) return std::nullopt;
    std::string key{header.substr(at, equals - at)};
    for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::size_t start = equals + 1;
    std::string value;
    if (start < header.size() && header[start] == '"') {
      const auto close = header.find('"', start + 1);
      if (close == std::string_view::npos) return std::nullopt;
      value = std::string{header.substr(start + 1, close - start - 1)};
      at = close + 1;
    } else {
      const auto end = header.find(';', start);
      value = std::string{header.substr(start, end == std::string_view::npos ? header.size() - start
                                                                             : end - start)};
      at = start;
    }
    if (key == name) return value;
  }
  return std::nullopt;
}

struct FormPart {
  std::string name;
  std::optional<std::string> filename;
  std::string_view content;
};

// The parts of a multipart/form-data body, or nullopt when it is malformed.
std::optional<std::vector<FormPart>> parse_form(std::string_view body, std::string_view boundary) {
  const std::string delimiter = "--" + std::string{boundary};
  if (!body.starts_with(delimiter)) return std::nullopt;
  std::vector<FormPart> parts;
  std::size_t at = delimiter.size();
  for (;;) {
    if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(at, 2) != "\r\n") return std::nullopt;
    at += 2;
    const auto headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) return std::nullopt;
    FormPart part;
    bool disposition = false;
    std::string_view headers = body.substr(at, headers_end - at);
    while (!headers.empty()) {
      const auto line_end = headers.find("\r\n");
      const std::string_view line = headers.substr(0, line_end);
      headers = line_end == std::string_view::npos ? std::string_view{} : headers.substr(line_end + 2);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) return std::nullopt;
      std::string field{line.substr(0, colon)};
      for (auto& ch : field) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (field != "content-disposition") continue;
      const std::string_view value = line.substr(colon + 1);
      if (value.find("form-data") == std::string_view::npos) return std::nullopt;
      disposition = true;
      part.name = header_parameter(value, "name").value_or("");
      part.filename = header_parameter(value, "filename");
    }
    if (!disposition) return std::nullopt;
    const std::size_t content_start = headers_end + 4;
    const auto next = body.find("\r\n" + delimiter, content_start);
    if (next == std::string_view::npos) return std::nullopt;
    part.content = body.substr(content_start, next - content_start);
    parts.push_back(std::move(part));
    at = next + 2 + delimiter.size();
  }
}

std::string url_segment(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (std::isalnum(byte) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4U]);
      out.push_back(kHex[byte & 15U]);
    }
  }
  return out;
}

}  // namespace

Reply World::State::upload_attachment(const std::string& org, const Request& request) {
  const FieldError missing{json::array{"body", "file"}, "Field required", "missing"};
  std::string media{request.content_type.substr(0, request.content_type.find(';'))};
  for (auto& ch : media) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  // Anything but a form has no `file` field at all.
  if (media != "multipart/form-data") return validation_reply({missing});
  const auto boundary = header_parameter(request.content_type, "boundary");
  if (!boundary || boundary->empty()) {
    return detail_reply(400, "There was an error parsing the body");
  }
  const auto parts = parse_form(request.body, *boundary);
  if (!parts) return detail_reply(400, "There was an error parsing the body");
  const auto file = std::find_if(parts->begin(), parts->end(),
                                 [](const FormPart& part) { return part.name == "file"; });
  if (file == parts->end()) return validation_reply({missing});
  if (!file->filename) {
    return validation_reply({FieldError{json::array{"body", "file"},
                                        "Expected UploadFile, received: <class 'str'>",
                                        "value_error"}});
  }
  Attachment attachment;
  const std::string hex = hex64(id_rng.next()) + hex64(id_rng.next());
  attachment.id = hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
                  hex.substr(16, 4) + "-" + hex.substr(20, 12);
  attachment.org = org;
  attachment.name = *file->filename;
  attachment.url = "https://app.devin.ai/attachments/" + attachment.id + "/" +
                   url_segment(attachment.name);
  attachment.bytes = file->content.size();
  ++stats.attachments_uploaded;
  attachments.push_back(attachment);
  return json_reply(200, json::object{{"attachment_id", attachment.id},
                                      {"name", attachment.name},
                                      {"url", attachment.url}});
}

// The common-flows guide's shape ({"items": [...]}); the SDK's bare array is the other reading.
// A URL uploaded elsewhere is listed with the name its path ends in.
Reply World::State::session_attachments(const Session& s) const {
  json::array items;
  for (const auto& url : s.attachment_urls) {
    const auto found = std::find_if(attachments.begin(), attachments.end(),
                                    [&](const Attachment& a) { return a.url == url; });
    if (found != attachments.end()) {
      items.push_back(json::object{{"attachment_id", found->id}, {"name", found->name},
                                   {"url", found->url}});
    } else {
      items.push_back(json::object{{"attachment_id", nullptr},
                                   {"name", url.substr(url.rfind('/') + 1)},
                                   {"url", url}});
    }
  }
  return json_reply(200, json::object{{"items", std::move(items)}});
}

Reply World::State::tags(Session& s, std::string_view method, const Request& request) {
  if (method != "GET") {
    json::value storage;
    auto check = parse_body_object(request.body, storage);
    if (!check.object) return validation_reply(check.errors);
    FieldChecker fields{*check.object, check.errors};
    const json::array* given = nullptr;
    if (!check.object->contains("tags")) {
      check.errors.push_back({{"body", "tags"}, "Field required", "missing"});
    } else {
      given = fields.string_list("tags");
      if (!given && check.errors.empty()) {
        check.errors.push_back({{"body", "tags"}, "Input should be a valid list", "list_type"});
      }
    }
    if (!check.errors.empty()) return validation_reply(check.errors);
    unindex_tags(s);
    if (method == "PUT") s.tags.clear();
    for (auto& tag : to_strings(given)) {
      if (std::find(s.tags.begin(), s.tags.end(), tag) == s.tags.end()) s.tags.push_back(tag);
    }
    index_tags(s);
  }
  json::array out;
  for (const auto& tag : s.tags) out.emplace_back(tag);
  return json_reply(200, json::object{{"tags", std::move(out)}});
}

// ---------------------------------------------------------------------------------------------
// The legacy v1 API (reference §8): no org in the path (an apk_ key belongs to one org: the
// first configured), ISO-8601 timestamps, offset paging, `status_enum`, and idempotent creates.

namespace {

constexpr std::int64_t kV1DefaultLimit = 100;
constexpr std::int64_t kV1MaxLimit = 1000;  // the reference gives none; a bound of our own

// Python's datetime.isoformat() of an aware UTC time, as FastAPI writes one.
std::string iso8601(TimeMs ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[96];  // room for any int the compiler cannot bound
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000) * 1000);
  return text;
}

bool same_tag_set(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return a == b;
}

}  // namespace

Reply World::State::v1_api(const Route& route, const Request& request, const Query& query,
                           TimeMs now) {
  if (org_list.empty()) return detail_reply(404, "Organization not found");
  const std::string& org = org_list.front();
  if (route.kind == RouteKind::v1_sessions) {
    return request.method == "POST" ? v1_create(org, request, now) : v1_list(org, query, now);
  }
  Session* s = find(route.session_id);
  if (!s || s->org != org) return detail_reply(404, "Session not found");
  if (route.kind == RouteKind::v1_message) {
    auto reply = post_message(*s, request, now);
    // v1 answers a delivered message with a null body (a {detail} only in special states).
    if (reply.status == 200) reply.body = "null";
    return reply;
  }
  if (request.method == "GET") return json_reply(200, render_v1(*s, now, true));
  const auto p = phase(*s, now);
  if (p.status != "exit" && p.status != "error") pin(*s, "exit", std::nullopt, now);
  return json_reply(200, json::object{{"detail", "Session terminated"}});
}

// The reference leaves the idempotency key undocumented ("same request returns existing
// session"). The simulator's key: the same org, the same prompt and the same set of tags, on a
// session that has not ended (not exit or error) and is not a spawned child. A session that
// has ended is never answered again: a new one is created.
const Session* World::State::v1_idempotent_match(const std::string& org, std::string_view prompt,
                                                 const std::vector<std::string>& tags,
                                                 TimeMs now) const {
  auto matches = [&](const Session& s) {
    if (s.org != org || s.parent_id || s.prompt != prompt || !same_tag_set(s.tags, tags)) {
      return false;
    }
    const auto status = phase(s, now).status;
    return status != "exit" && status != "error";
  };
  if (!tags.empty()) {
    const auto it = by_tag.find(tags.front());
    if (it == by_tag.end()) return nullptr;
    for (auto seq = it->second.rbegin(); seq != it->second.rend(); ++seq) {
      const auto& s = sessions.at(*seq);
      if (matches(s)) return &s;
    }
    return nullptr;
  }
  for (auto it = sessions.rbegin(); it != sessions.rend(); ++it) {
    if (matches(it->second)) return &it->second;
  }
  return nullptr;
}

Reply World::State::v1_create(const std::string& org, const Request& request, TimeMs now) {
  json::value storage;
  auto check = parse_body_object(request.body, storage);
  if (!check.object) return validation_reply(check.errors);
  FieldChecker fields{*check.object, check.errors};
  const auto* prompt = fields.required_string("prompt");
  fields.boolean("idempotent");
  const auto* snapshot = fields.string("snapshot_id");
  fields.boolean("unlisted");
  const auto* playbook = fields.string("playbook_id");
  fields.string_list("knowledge_ids");
  fields.string_list("secret_ids");
  fields.secrets("session_secrets");
  fields.integer("max_acu_limit");
  const auto* schema = fields.object("structured_output_schema");
  const auto* tags = fields.string_list("tags");
  const auto* title = fields.string("title");
  fields.one_of("planning_mode_agency", {"auto_confirm", "sync_confirm"},
                "Input should be 'auto_confirm' or 'sync_confirm'");
  if (const auto* limit = fields.present("max_acu_limit");
      limit && as_number(*limit) && *as_number(*limit) <= 0) {
    check.errors.push_back(
        {{"body", "max_acu_limit"}, "Input should be greater than 0", "greater_than"});
  }
  if (!check.errors.empty()) return validation_reply(check.errors);
  // v3-only fields (create_as_user_id, devin_mode, repos, ...) are not in v1's model: FastAPI
  // ignores unknown fields, and so does this.

  const auto* idempotent_value = fields.present("idempotent");
  const bool idempotent = idempotent_value && idempotent_value->get_bool();
  auto answer = [&](const Session& s, bool is_new) {
    json::object body{{"session_id", s.id}, {"url", "https://app.devin.ai/sessions/" + s.id}};
    if (idempotent) body["is_new_session"] = is_new;  // present only when asked for
    return json_reply(200, body);
  };
  const auto tag_list = to_strings(tags);
  if (idempotent) {
    if (const auto* existing = v1_idempotent_match(org, std::string_view{*prompt}, tag_list, now)) {
      return answer(*existing, false);
    }
  }
  if (auto refusal = over_concurrency_cap(org, now)) return std::move(*refusal);

  Session s;
  s.org = org;
  s.prompt = std::string{*prompt};
  if (title) s.title = std::string{*title};
  s.tags = tag_list;
  if (playbook) s.playbook_id = std::string{*playbook};
  if (snapshot) s.snapshot_id = std::string{*snapshot};
  s.has_schema = schema != nullptr;
  return answer(start_session(std::move(s), now), true);
}

Reply World::State::v1_list(const std::string& org, const Query& query, TimeMs now) {
  std::vector<FieldError> errors;
  const auto limit = int_param(query, "limit", errors).value_or(kV1DefaultLimit);
  const auto offset = int_param(query, "offset", errors).value_or(0);
  if (limit < 1 || limit > kV1MaxLimit) {
    errors.push_back({{"query", "limit"}, "Input should be between 1 and 1000", "value_error"});
  }
  if (offset < 0) {
    errors.push_back({{"query", "offset"}, "Input should be greater than or equal to 0",
                      "greater_than_equal"});
  }
  if (!errors.empty()) return validation_reply(errors);
  const auto tag_filter = query.all("tags");
  // Sessions created through the API with a service key have no requesting user.
  const bool by_user = query.has("user_email");

  json::array out;
  std::int64_t skipped = 0;
  for (auto it = sessions.rbegin(); it != sessions.rend(); ++it) {  // newest first
    const Session& s = it->second;
    if (s.org != org || by_user) continue;
    if (config.list_lag_ms > 0 && now < s.created + config.list_lag_ms) continue;
    const bool tagged = std::all_of(tag_filter.begin(), tag_filter.end(), [&](const auto& tag) {
      return std::find(s.tags.begin(), s.tags.end(), tag) != s.tags.end();
    });
    if (!tagged) continue;
    if (skipped < offset) {
      ++skipped;
      continue;
    }
    if (static_cast<std::int64_t>(out.size()) >= limit) break;
    out.push_back(render_v1(s, now, false));
  }
  return json_reply(200, json::object{{"sessions", std::move(out)}});
}

// `detail`: GET /v1/session/{id} (with messages); otherwise a list summary.
json::object World::State::render_v1(const Session& s, TimeMs now, bool detail) const {
  const auto p = phase(s, now);
  const bool finished = s.finished_before || p.reached_finished;
  const auto status = v1_status(p.status, p.detail);
  json::array tags;
  for (const auto& tag : s.tags) tags.emplace_back(tag);
  auto opt = [](const std::optional<std::string>& v) -> json::value {
    return v ? json::value(*v) : json::value(nullptr);
  };
  json::value pull_request = nullptr;
  if (finished) {
    pull_request = json::object{
        {"url", "https://github.com/example/repo/pull/" + std::to_string(s.seq)}};
  }
  json::value structured_output = nullptr;
  if (finished && s.has_schema) {
    structured_output = json::object{{"summary", "Simulated result of " + s.id}};
  }
  json::object out{
      {"session_id", s.id},
      {"status", status.text},
      {"status_enum", status.status_enum},
      {"title", opt(s.title)},
      {"created_at", iso8601(s.created)},
      {"updated_at", iso8601(std::max(p.since, s.created))},
      {"snapshot_id", opt(s.snapshot_id)},
      {"playbook_id", opt(s.playbook_id)},
      {"tags", std::move(tags)},
      {"pull_request", std::move(pull_request)},
      {"structured_output", std::move(structured_output)},
  };
  if (detail) {
    json::array messages;
    for (const auto& m : s.messages) {
      messages.push_back(json::object{{"type", m.source == "user" ? "user_message" : "devin_message"},
                                      {"message", m.text},
                                      {"timestamp", iso8601(m.created)}});
    }
    out["messages"] = std::move(messages);
  } else {
    out["requesting_user_email"] = nullptr;
  }
  return out;
}

Reply World::State::enterprise_orgs(const Query& query) {
  std::vector<FieldError> errors;
  const auto first = first_param(query, errors);
  const std::uint64_t start = offset_cursor(query, org_list.size(), errors);
  if (!errors.empty()) return validation_reply(errors);
  json::array items;
  auto i = static_cast<std::size_t>(start);
  for (; i < org_list.size() && items.size() < static_cast<std::size_t>(first); ++i) {
    items.push_back(json::object{{"org_id", org_list[i]},
                                 {"name", org_list[i]},
                                 {"created_at", kOrgCreatedAt},
                                 {"updated_at", kOrgCreatedAt},
                                 {"max_cycle_acu_limit", nullptr},
                                 {"max_session_acu_limit", nullptr}});
  }
  const bool has_next = i < org_list.size();
  return json_reply(
      200, json::object{{"items", std::move(items)},
                        {"end_cursor", has_next ? json::value(encode_cursor(i)) : json::value(nullptr)},
                        {"has_next_page", has_next},
                        {"total", want_total() ? json::value(org_list.size()) : json::value(nullptr)}});
}

Reply World::State::self() const {
  // An org-scoped service user knows its org; one spanning several orgs is enterprise-scoped.
  json::value org = nullptr;
  if (org_list.size() == 1) org = org_list.front();
  return json_reply(200, json::object{{"principal_type", "service_user"},
                                      {"service_user_id", "svc-sim"},
                                      {"service_user_name", "devin-sim"},
                                      {"org_id", org}});
}

// ---------------------------------------------------------------------------------------------
// Admin

json::object World::State::stats_json(TimeMs now) const {
  json::object requests;
  for (const auto& [route, by_status] : stats.requests) {
    json::object counts;
    for (const auto& [status, count] : by_status) counts[status] = count;
    requests[route] = std::move(counts);
  }
  json::object by_status;
  for (const auto status : kStatuses) by_status[status] = 0;
  std::uint64_t active = 0;
  for (const auto& [seq, s] : sessions) {
    const auto p = phase(s, now);
    auto& slot = by_status[p.status];
    slot = slot.is_null() ? 1 : slot.to_number<std::uint64_t>() + 1;
    if (is_active_status(p.status)) ++active;
  }
  std::uint64_t duplicate_groups = 0;
  for (const auto& [tag, seqs] : by_tag) {
    if (!tag.starts_with("orch-")) continue;
    // Children carry their parent's tags; they are not duplicates of it.
    const auto own = std::count_if(seqs.begin(), seqs.end(), [&](std::uint64_t seq) {
      return !sessions.at(seq).parent_id;
    });
    if (own > 1) ++duplicate_groups;
  }
  const auto& f = stats.faults;
  return json::object{
      {"requests_total", stats.requests_total},
      {"requests", std::move(requests)},
      {"sessions_created", stats.sessions_created},
      {"rate_limited_total", stats.rate_limited_total},
      {"concurrency_limited_total", stats.concurrency_limited_total},
      {"early_requests_after_429", stats.early_requests_after_429},
      {"early_requests_in_retry_after", stats.early_requests_in_retry_after},
      {"retry_after_windows", stats.retry_after_windows},
      {"child_sessions_created", stats.child_sessions_created},
      {"attachments_uploaded", stats.attachments_uploaded},
      {"faults", json::object{{"reset", f.reset},
                              {"500", f.http_500},
                              {"503", f.http_503},
                              {"429", f.http_429},
                              {"502_html", f.http_502_html},
                              {"drop_after_create", f.drop_after_create},
                              {"slow", f.slow},
                              {"garbage", f.garbage}}},
      {"duplicate_tag_groups", duplicate_groups},
      {"sessions_by_status", std::move(by_status)},
      {"list_requests_with_session_ids", stats.list_requests_with_session_ids},
      {"active_sessions", active},
  };
}

json::object World::State::settings_json() const {
  const auto& f = config.faults;
  json::array orgs;
  for (const auto& org : org_list) orgs.emplace_back(org);
  return json::object{
      {"seed", config.seed},
      {"time_factor", config.time_factor},
      {"orgs", std::move(orgs)},
      {"fault_reset", f.reset},
      {"fault_500", f.http_500},
      {"fault_503", f.http_503},
      {"fault_429", f.http_429},
      {"fault_502_html", f.http_502_html},
      {"fault_drop_after_create", f.drop_after_create},
      {"fault_slow", f.slow},
      {"fault_garbage", f.garbage},
      {"fault_creating", f.creating},
      {"slow_ms", config.slow_ms},
      {"rate_limit_rpm", config.rate_limit_rpm},
      {"rate_limit_burst", config.rate_limit_burst},
      {"retry_after_mode", retry_after_mode_name(config.retry_after_mode)},
      {"max_concurrent_sessions", config.max_concurrent_sessions},
      {"hold_running", config.hold_running},
      {"total_mode", total_mode_name(config.total_mode)},
      {"updated_after_mode", updated_after_mode_name(config.updated_after_mode)},
      {"in_flight_grace_ms", config.in_flight_grace_ms},
      {"fault_retry_after_ms", config.fault_retry_after_ms},
      {"fault_retry_after_mode", retry_after_mode_name(config.fault_retry_after_mode)},
      {"list_lag_ms", config.list_lag_ms},
      {"child_sessions", config.child_sessions},
      {"user_acu_quota",
       config.user_acu_quota ? json::value(*config.user_acu_quota) : json::value(nullptr)},
  };
}

Reply World::State::configure(std::string_view body, TimeMs now) {
  boost::system::error_code ec;
  const auto parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) return detail_reply(400, "body must be a JSON object");
  WorldConfig next = config;
  auto& f = next.faults;
  const std::map<std::string_view, double*> probabilities = {
      {"fault_reset", &f.reset},           {"fault_500", &f.http_500},
      {"fault_503", &f.http_503},          {"fault_502_html", &f.http_502_html},
      {"fault_429", &f.http_429},
      {"fault_drop_after_create", &f.drop_after_create},
      {"fault_slow", &f.slow},             {"fault_garbage", &f.garbage},
      {"fault_creating", &f.creating}};
  const std::map<std::string_view, int*> integers = {
      {"slow_ms", &next.slow_ms},
      {"max_concurrent_sessions", &next.max_concurrent_sessions},
      {"in_flight_grace_ms", &next.in_flight_grace_ms},
      {"fault_retry_after_ms", &next.fault_retry_after_ms},
      {"list_lag_ms", &next.list_lag_ms},
      {"child_sessions", &next.child_sessions}};
  for (const auto& [key, value] : parsed.as_object()) {
    const auto number = as_number(value);
    if (const auto it = probabilities.find(key); it != probabilities.end()) {
      if (!number || *number < 0 || *number > 1) {
        return detail_reply(400, std::string{key} + " must be a number in [0, 1]");
      }
      *it->second = *number;
    } else if (key == "rate_limit_rpm" || key == "rate_limit_burst") {
      if (!number || *number < 0) return detail_reply(400, std::string{key} + " must be >= 0");
      (key == "rate_limit_rpm" ? next.rate_limit_rpm : next.rate_limit_burst) = *number;
    } else if (const auto int_it = integers.find(key); int_it != integers.end()) {
      if (!number || *number < 0 || *number != std::floor(*number) || *number > 1e9) {
        return detail_reply(400, std::string{key} + " must be a non-negative integer");
      }
      *int_it->second = static_cast<int>(*number);
    } else if (key == "user_acu_quota") {
      if (value.is_null()) {
        next.user_acu_quota.reset();
      } else if (!number || *number < 0) {
        return detail_reply(400, "user_acu_quota must be a non-negative number or null");
      } else {
        next.user_acu_quota = *number;
      }
    } else if (key == "retry_after_mode" || key == "fault_retry_after_mode") {
      const auto mode =
          parse_retry_after_mode(value.is_string() ? std::string_view{value.get_string()} : "");
      if (!mode) {
        return detail_reply(400, std::string{key} + " must be seconds, date, ms, both or none");
      }
      (key == "retry_after_mode" ? next.retry_after_mode : next.fault_retry_after_mode) = *mode;
    } else if (key == "hold_running") {
      if (!value.is_bool()) return detail_reply(400, "hold_running must be a boolean");
      next.hold_running = value.get_bool();
    } else if (key == "total_mode") {
      const std::string_view mode = value.is_string() ? std::string_view{value.get_string()} : "";
      if (mode == "always") next.total_mode = TotalMode::always;
      else if (mode == "never") next.total_mode = TotalMode::never;
      else if (mode == "random") next.total_mode = TotalMode::random;
      else return detail_reply(400, "total_mode must be always, never or random");
    } else if (key == "updated_after_mode") {
      const std::string_view mode = value.is_string() ? std::string_view{value.get_string()} : "";
      const auto it = std::find_if(kUpdatedAfterModes.begin(), kUpdatedAfterModes.end(),
                                   [&](const auto& entry) { return entry.first == mode; });
      if (it == kUpdatedAfterModes.end()) {
        return detail_reply(
            400, "updated_after_mode must be inclusive, exclusive, ignored or rejected-with-ids");
      }
      next.updated_after_mode = it->second;
    } else {
      return detail_reply(400, "unknown setting: " + std::string{key});
    }
  }
  config = std::move(next);
  for (auto& [key, state] : keys) {
    state.bucket.reconfigure(config.rate_limit_rpm, config.rate_limit_burst, now);
  }
  return json_reply(200, settings_json());
}

Reply World::State::force(Session& s, std::string_view body, TimeMs now) {
  boost::system::error_code ec;
  const auto parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) return detail_reply(400, "body must be a JSON object");
  const auto& object = parsed.as_object();
  const auto* status = object.if_contains("status");
  if (!status || !status->is_string() ||
      std::find(kStatuses.begin(), kStatuses.end(), std::string_view{status->get_string()}) ==
          kStatuses.end()) {
    return detail_reply(400, "status must be one of new, creating, claimed, running, resuming, "
                             "suspended, exit, error");
  }
  std::optional<std::string> detail;
  if (const auto* d = object.if_contains("status_detail"); d && !d->is_null()) {
    if (!d->is_string()) return detail_reply(400, "status_detail must be a string or null");
    detail = std::string{d->get_string()};
  }
  pin(s, std::string{status->get_string()}, std::move(detail), now);
  return json_reply(200, render(s, now, true));
}

void World::State::forget(const Session& s) {
  unindex_tags(s);
  if (auto it = per_org.find(s.org); it != per_org.end() && it->second > 0) --it->second;
  by_id.erase(s.id);
  sessions.erase(s.seq);
}

Reply World::State::admin(const Request& request, const std::vector<std::string>& segs,
                          TimeMs now) {
  const auto& method = request.method;
  auto not_allowed = [] { return detail_reply(405, "Method Not Allowed"); };
  if (segs.size() == 2 && segs[1] == "stats") {
    return method == "GET" ? json_reply(200, stats_json(now)) : not_allowed();
  }
  if (segs.size() == 2 && segs[1] == "config") {
    if (method == "GET") return json_reply(200, settings_json());
    return method == "POST" ? configure(request.body, now) : not_allowed();
  }
  if (segs.size() == 2 && segs[1] == "sessions") {
    if (method != "GET") return not_allowed();
    json::array items;
    for (const auto& [seq, s] : sessions) {
      // The API never echoes `resumable`; the admin view does, so tests can see it arrived.
      auto item = render(s, now, true);
      item["resumable"] = s.resumable ? json::value(*s.resumable) : json::value(nullptr);
      // Likewise the attachment URLs the create carried (the API lists them per session).
      json::array urls;
      for (const auto& url : s.attachment_urls) urls.emplace_back(url);
      item["attachment_urls"] = std::move(urls);
      items.push_back(std::move(item));
    }
    return json_reply(200, json::object{{"items", std::move(items)}});
  }
  if (segs.size() >= 3 && segs[1] == "sessions") {
    Session* s = find(segs[2]);
    if (segs.size() == 3) {
      if (method != "DELETE") return not_allowed();
      if (!s) return detail_reply(404, "Session not found");
      const std::string id = s->id;
      forget(*s);
      return json_reply(200, json::object{{"deleted", id}});
    }
    if (segs.size() == 4 && segs[3] == "force") {
      if (method != "POST") return not_allowed();
      if (!s) return detail_reply(404, "Session not found");
      return force(*s, request.body, now);
    }
  }
  return detail_reply(404, "Not Found");
}

// ---------------------------------------------------------------------------------------------
// World

World::World(WorldConfig config) : state_{std::make_unique<State>(std::move(config))} {}
World::~World() = default;
World::World(World&&) noexcept = default;
World& World::operator=(World&&) noexcept = default;

const WorldConfig& World::config() const noexcept { return state_->config; }
std::size_t World::session_count() const noexcept { return state_->sessions.size(); }

Reply World::handle(const Request& request, TimeMs now) {
  auto& st = *state_;
  const auto parsed = urls::parse_origin_form(request.target);
  if (!parsed) {
    auto reply = detail_reply(400, "Invalid request target");
    reply.route = std::string{request.method} + " {invalid}";
    ++st.stats.requests_total;
    ++st.stats.requests[reply.route]["400"];
    return reply;
  }
  std::vector<std::string> segs;
  for (const auto& seg : parsed->segments()) segs.push_back(seg);
  const Query query{parsed->params()};

  if (!segs.empty() && segs[0] == "_sim") {
    auto reply = st.admin(request, segs, now);
    reply.route = std::string{request.method} + " /_sim/" + (segs.size() > 1 ? segs[1] : "");
    return reply;
  }

  const auto route = match_route(segs);
  auto reply = st.api(request, query, route, now);
  reply.route = std::string{request.method} + " " +
                (route.kind == RouteKind::none ? std::string{"{unknown}"} : route.template_path);
  ++st.stats.requests_total;
  const std::string label = reply.delivery == Delivery::reset  ? "reset"
                            : reply.delivery == Delivery::drop ? "dropped"
                                                               : std::to_string(reply.status);
  ++st.stats.requests[reply.route][label];
  return reply;
}

}  // namespace devin_orch::sim
