// The session reading rules restated over a whole parsed tree: an oracle for the event-driven
// readers (parse_session, parse_session_page), shared by their unit tests and the fuzz target.
#pragma once

#include "devin_orch/api/types.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::api::oracle {

namespace json = boost::json;

// Null and absent give the default; another type than the field's is unreadable.
inline bool read(const json::value& v, std::string& out) {
  if (v.is_null()) return true;
  if (!v.is_string()) return false;
  out = std::string{v.get_string()};
  return true;
}

inline bool read(const json::value& v, std::optional<std::string>& out) {
  if (v.is_null()) return true;
  if (!v.is_string()) return false;
  out = std::string{v.get_string()};
  return true;
}

inline bool read(const json::value& v, bool& out) {
  if (v.is_null()) return true;
  if (!v.is_bool()) return false;
  out = v.get_bool();
  return true;
}

inline bool read(const json::value& v, double& out) {
  if (v.is_null()) return true;
  if (v.is_int64()) out = static_cast<double>(v.get_int64());
  else if (v.is_uint64()) out = static_cast<double>(v.get_uint64());
  else if (v.is_double()) out = v.get_double();
  else return false;
  return true;
}

// Integers as they are; floats truncated; anything outside int64 unreadable.
inline std::optional<std::int64_t> to_int64(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = std::trunc(v.get_double());
    if (!std::isfinite(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

inline bool read(const json::value& v, std::int64_t& out) {
  if (v.is_null()) return true;
  const auto number = to_int64(v);
  if (number) out = *number;
  return number.has_value();
}

inline bool read(const json::value& v, std::vector<std::string>& out) {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  for (const json::value& tag : v.get_array()) {
    if (!tag.is_string()) return false;
    out.emplace_back(tag.get_string());
  }
  return true;
}

inline bool read(const json::value& v, std::vector<PullRequest>& out) {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  for (const json::value& item : v.get_array()) {
    if (!item.is_object()) return false;
    const json::value* url = item.get_object().if_contains("pr_url");
    if (url == nullptr || !url->is_string()) return false;
    PullRequest pr{.pr_url = std::string{url->get_string()}};
    if (const json::value* state = item.get_object().if_contains("pr_state");
        state != nullptr && !read(*state, pr.pr_state)) {
      return false;
    }
    out.push_back(std::move(pr));
  }
  return true;
}

// A session as the API describes it, or nullopt where the readers must refuse it.
inline std::optional<Session> read_session(const json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  Session s;
  for (const char* required : {"session_id", "status"}) {
    const json::value* field = o.if_contains(required);
    if (field == nullptr || !field->is_string()) return std::nullopt;
  }
  s.session_id = std::string{o.at("session_id").get_string()};
  s.status = std::string{o.at("status").get_string()};
  const auto field = [&](const char* key, auto& out) {
    const json::value* value = o.if_contains(key);
    return value == nullptr || read(*value, out);
  };
  const bool readable =
      field("url", s.url) && field("status_detail", s.status_detail) && field("tags", s.tags) &&
      field("org_id", s.org_id) && field("created_at", s.created_at) &&
      field("updated_at", s.updated_at) && field("acus_consumed", s.acus_consumed) &&
      field("pull_requests", s.pull_requests) && field("title", s.title) &&
      field("is_archived", s.is_archived);
  if (!readable) return std::nullopt;
  if (const json::value* output = o.if_contains("structured_output");
      output != nullptr && !output->is_null()) {
    s.structured_output = json::serialize(*output);
  }
  // The family fields never make a session unreadable: a non-empty string parent, and the
  // strings directly in a child list; anything else reads as none.
  if (const json::value* parent = o.if_contains("parent_session_id");
      parent != nullptr && parent->is_string() && !parent->get_string().empty()) {
    s.parent_session_id = std::string{parent->get_string()};
  }
  if (const json::value* children = o.if_contains("child_session_ids");
      children != nullptr && children->is_array()) {
    for (const json::value& child : children->get_array()) {
      if (child.is_string()) s.child_session_ids.emplace_back(child.get_string());
    }
  }
  return s;
}

// A page's items, or nullopt where parse_session_page must answer unexpected_shape.
inline std::optional<std::vector<Session>> read_page_items(const json::value& document) {
  if (!document.is_object()) return std::nullopt;
  const json::object& o = document.get_object();
  const json::value* items = o.if_contains("items");
  if (items == nullptr || !items->is_array()) return std::nullopt;
  std::optional<std::string> cursor;
  bool next = false;
  std::int64_t total = 0;
  const auto field = [&](const char* key, auto& out) {
    const json::value* value = o.if_contains(key);
    return value == nullptr || read(*value, out);
  };
  if (!field("end_cursor", cursor) || !field("has_next_page", next) || !field("total", total)) {
    return std::nullopt;
  }
  std::vector<Session> sessions;
  for (const json::value& item : items->get_array()) {
    auto session = read_session(item);
    if (!session) return std::nullopt;
    sessions.push_back(std::move(*session));
  }
  return sessions;
}

// Equal as the daemon would use them; a NaN (Boost.JSON 1.81 reads 0e6000 as one) equals
// itself here.
inline bool same_session(const Session& a, const Session& b) {
  const bool same_acus = a.acus_consumed == b.acus_consumed ||
                         (std::isnan(a.acus_consumed) && std::isnan(b.acus_consumed));
  Session a_without = a;
  Session b_without = b;
  a_without.acus_consumed = 0;
  b_without.acus_consumed = 0;
  return same_acus && a_without == b_without;
}

}  // namespace devin_orch::api::oracle
