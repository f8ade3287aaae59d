// Devin v3 JSON <-> our types, error-body digests and request targets. The only place that
// knows Boost.JSON or the API's field names.
#include "devin_orch/api/json_mapping.hpp"

#include "devin_orch/api/json_item_stream.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <optional>

namespace devin_orch::api {
namespace json = boost::json;

namespace {

// Error texts end up in logs and the job store; a hostile server must not fill them.
constexpr std::size_t max_detail_bytes = 500;
constexpr std::size_t max_raw_excerpt_bytes = 200;

json::parse_options parse_options() {
  json::parse_options options;
  options.max_depth = max_json_depth;
  return options;
}

// Where an arena parse spills over: counted, so the next parse starts with a big enough arena.
class OverflowCounter final : public json::memory_resource {
 public:
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void* do_allocate(std::size_t n, std::size_t align) override {
    bytes_ += n;
    return ::operator new(n, std::align_val_t{align});
  }
  // Unsized: Boost.JSON 1.81's monotonic_resource frees its blocks with a size smaller than
  // it asked for (it leaves out its block header).
  void do_deallocate(void* p, std::size_t /*n*/, std::size_t align) override {
    ::operator delete(p, std::align_val_t{align});
  }
  bool do_is_equal(const json::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::size_t bytes_ = 0;
};

// Response documents other than session pages (which are streamed item by item, see
// parse_session_page) are built in one arena per thread, reused by every parse: with the
// default heap storage each key and string was its own allocation, and at 10,000 polled
// sessions the allocator was about 40 % of the daemon's CPU. The parser is
// kept too, so its value stack does not regrow per page. Readers copy what they keep into
// their own strings; nothing refers to the arena after with_document returns.
class ScratchParser {
 public:
  template <class T, class Read>
  result<T> with_document(std::string_view body, const Read& read) {
    // Only if a reader ever parsed again from inside a reader: it gets memory of its own
    // rather than the arena under the outer document.
    if (busy_) return with_own_memory<T>(body, read);
    busy_ = true;
    OverflowCounter overflow;
    std::optional<result<T>> out;
    {
      json::monotonic_resource arena{arena_.get(), arena_size_, &overflow};
      // Declared after the arena so it lets go of it first, whichever way this block ends.
      const Lease lease{*this};
      parser_.reset(&arena);
      boost::system::error_code ec;
      parser_.write(body.data(), body.size(), ec);
      if (ec) {
        out.emplace(make_error_code(errc::malformed_json));
      } else {
        const json::value document = parser_.release();
        out.emplace(read(document));
      }
    }
    grow_arena(overflow.bytes());
    return std::move(*out);
  }

 private:
  // Bounds what one huge response can leave pinned for the rest of the process.
  static constexpr std::size_t max_arena_bytes = std::size_t{1} << 20U;

  struct Lease {
    ScratchParser& owner;
    explicit Lease(ScratchParser& scratch) noexcept : owner{scratch} {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      owner.parser_.reset();  // drops any partial document and the arena pointer
      owner.busy_ = false;
    }
  };

  template <class T, class Read>
  static result<T> with_own_memory(std::string_view body, const Read& read) {
    json::monotonic_resource memory;
    boost::system::error_code ec;
    const json::value document = json::parse(body, ec, &memory, parse_options());
    if (ec) return make_error_code(errc::malformed_json);
    return read(document);
  }

  void grow_arena(std::size_t overflow) {
    if (overflow == 0 || arena_size_ >= max_arena_bytes) return;
    const std::size_t size = std::min(max_arena_bytes, arena_size_ + overflow);
    arena_ = std::make_unique_for_overwrite<unsigned char[]>(size);
    arena_size_ = size;
  }

  json::parser parser_{json::storage_ptr{}, parse_options()};
  std::unique_ptr<unsigned char[]> arena_;
  std::size_t arena_size_ = 0;
  bool busy_ = false;
};

// Parses `body` and returns what `read` makes of the document (malformed_json if it is not
// JSON). `read` must not keep references into the document.
template <class T, class Read>
result<T> read_json(std::string_view body, const Read& read) {
  thread_local ScratchParser scratch;
  return scratch.with_document<T>(body, read);
}

// The reading rule for every optional field: absent or null gives the default; present with
// another type is a shape error, because silently defaulting drifted data could make the
// daemon act on values the server never sent.
const json::value* field(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return (value == nullptr || value->is_null()) ? nullptr : value;
}

// Readers of one optional field's value, by the type it is read into: null leaves `out` as
// it is; false is a shape error.
bool read_value(const json::value& value, std::string& out) {
  if (value.is_null()) return true;
  if (!value.is_string()) return false;
  const json::string& text = value.get_string();
  out.assign(text.data(), text.size());
  return true;
}

bool read_value(const json::value& value, std::optional<std::string>& out) {
  if (value.is_null()) return true;
  if (!value.is_string()) return false;
  out.emplace(value.get_string());
  return true;
}

bool read_value(const json::value& value, bool& out) {
  if (value.is_null()) return true;
  if (!value.is_bool()) return false;
  out = value.get_bool();
  return true;
}

std::optional<double> as_double(const json::value& value) {
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  if (value.is_double()) return value.get_double();
  return std::nullopt;
}

bool read_value(const json::value& value, double& out) {
  if (value.is_null()) return true;
  const std::optional<double> number = as_double(value);
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

bool read_value(const json::value& value, std::int64_t& out) {
  if (value.is_null()) return true;
  const std::optional<std::int64_t> number = as_int64(value);
  if (!number) return false;
  out = *number;
  return true;
}

bool read_value(const json::value& value, std::vector<std::string>& out) {
  if (value.is_null()) return true;
  if (!value.is_array()) return false;
  out.clear();
  out.reserve(value.get_array().size());
  for (const json::value& item : value.get_array()) {
    if (!item.is_string()) return false;
    out.emplace_back(item.get_string());
  }
  return true;
}

// The same rule for a field looked up by name.
template <class T>
bool read_field(const json::object& object, std::string_view key, T& out) {
  const json::value* value = object.if_contains(key);
  return value == nullptr || read_value(*value, out);
}

bool read_value(const json::value& value, std::vector<PullRequest>& out) {
  if (value.is_null()) return true;
  if (!value.is_array()) return false;
  out.clear();
  out.reserve(value.get_array().size());
  for (const json::value& item : value.get_array()) {
    if (!item.is_object()) return false;
    const json::object& pr = item.get_object();
    const json::value* url = pr.if_contains("pr_url");
    if (url == nullptr || !url->is_string()) return false;
    PullRequest parsed{.pr_url = std::string{url->get_string()}};
    if (!read_field(pr, "pr_state", parsed.pr_state)) return false;
    out.push_back(std::move(parsed));
  }
  return true;
}

// Reads one member of a session object into `session`; unknown keys are ignored. False is a
// shape error.
bool read_session_member(std::string_view key, const json::value& value, Session& session) {
  if (key == "url") return read_value(value, session.url);
  if (key == "status_detail") return read_value(value, session.status_detail);
  if (key == "tags") return read_value(value, session.tags);
  if (key == "org_id") return read_value(value, session.org_id);
  if (key == "created_at") return read_value(value, session.created_at);
  if (key == "updated_at") return read_value(value, session.updated_at);
  if (key == "acus_consumed") return read_value(value, session.acus_consumed);
  if (key == "pull_requests") return read_value(value, session.pull_requests);
  if (key == "title") return read_value(value, session.title);
  if (key == "is_archived") return read_value(value, session.is_archived);
  if (key == "structured_output") {
    if (!value.is_null()) session.structured_output = json::serialize(value);
    return true;
  }
  return true;
}

// Fills a default-constructed `session` in place (a page's items are read straight into
// their vector slots, not built aside and moved); false is a shape error. One pass over the
// members, dispatching on the key: looking every field up by name scanned the object once per
// field, about a fifth of a page's parse time.
bool read_session(const json::value& value, Session& session) {
  if (!value.is_object()) return false;
  bool has_id = false;
  bool has_status = false;
  for (const json::key_value_pair& member : value.get_object()) {
    const std::string_view key = member.key();
    const json::value& item = member.value();
    if (key == "session_id" || key == "status") {
      // Required: null is as wrong as absent.
      if (!item.is_string()) return false;
      const json::string& text = item.get_string();
      (key == "status" ? session.status : session.session_id).assign(text.data(), text.size());
      (key == "status" ? has_status : has_id) = true;
    } else if (!read_session_member(key, item, session)) {
      return false;
    }
  }
  return has_id && has_status;
}

// The fields every cursor page shares.
template <class Page>
bool read_cursor(const json::object& object, Page& page) {
  return read_field(object, "end_cursor", page.end_cursor) &&
         read_field(object, "has_next_page", page.has_next_page);
}

const json::array* items_of(const json::value& value) {
  if (!value.is_object()) return nullptr;
  const json::value* items = value.get_object().if_contains("items");
  return (items != nullptr && items->is_array()) ? &items->get_array() : nullptr;
}

result<OrganizationPage> read_organization_page(const json::value& value) {
  const auto shape = make_error_code(errc::unexpected_shape);
  const json::array* items = items_of(value);
  if (items == nullptr) return shape;

  OrganizationPage page;
  page.items.reserve(items->size());
  for (const json::value& item : *items) {
    if (!item.is_object()) return shape;
    const json::object& object = item.get_object();
    const json::value* id = object.if_contains("org_id");
    if (id == nullptr || !id->is_string()) return shape;
    Organization org{.org_id = std::string{id->get_string()}};
    if (!read_field(object, "name", org.name)) return shape;
    page.items.push_back(std::move(org));
  }
  if (!read_cursor(value.get_object(), page)) return shape;
  return page;
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
  return read_json<Session>(body, [](const json::value& value) -> result<Session> {
    Session session;
    if (!read_session(value, session)) return make_error_code(errc::unexpected_shape);
    return session;
  });
}

// Streamed item by item: a 200-session page built as one document took half a megabyte of
// arena that then stayed with the process.
result<SessionPage> parse_session_page(std::string_view body) {
  SessionPage page;
  // One unreadable item fails the page: dropping it could hide the very session a lookup is
  // searching for.
  const result<json::value> rest = stream_json_items(body, "items", [&](const json::value& item) {
    return read_session(item, page.items.emplace_back());
  });
  if (!rest) return rest.error();
  const auto shape = make_error_code(errc::unexpected_shape);
  if (items_of(*rest) == nullptr) return shape;
  const json::object& object = rest->get_object();
  if (!read_cursor(object, page)) return shape;
  if (const json::value* total = field(object, "total")) {
    page.total = as_int64(*total);
    if (!page.total) return shape;
  }
  return page;
}

result<OrganizationPage> parse_organization_page(std::string_view body) {
  return read_json<OrganizationPage>(body, read_organization_page);
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
