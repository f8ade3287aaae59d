// Devin v3 JSON <-> our types, error-body digests and request targets. The only place that
// knows Boost.JSON or the API's field names.
#include "devin_orch/api/json_mapping.hpp"

#include "devin_orch/api/json_item_stream.hpp"
#include "schema_value.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

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

// Response documents other than sessions and session pages (read from the parser's events,
// see SessionReader) are built in one arena per thread, reused by every parse: with the
// default heap storage each key and string was its own allocation, and with thousands of
// polled sessions the allocator became a large part of the daemon's CPU. The parser is
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

// The same rule for a field looked up by name.
template <class T>
bool read_field(const json::object& object, std::string_view key, T& out) {
  const json::value* value = object.if_contains(key);
  return value == nullptr || read_value(*value, out);
}

// Timestamps and counts arrive as integers, but a float (1718000000.25) is accepted and
// truncated; values outside int64 are a shape error rather than undefined behaviour.
std::optional<std::int64_t> to_int64(std::uint64_t u) {
  if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(u);
}

std::optional<std::int64_t> to_int64(double value) {
  const double d = std::trunc(value);
  // 2^63 is exactly representable; anything at or beyond it does not fit.
  if (!std::isfinite(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(d);
}

std::optional<std::int64_t> as_int64(const json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64()) return to_int64(value.get_uint64());
  if (value.is_double()) return to_int64(value.get_double());
  return std::nullopt;
}

// One scalar of a session item, as the parser reported it.
using Scalar =
    std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string_view>;

// The session fields the daemon reads; any other key is skipped, whatever its value holds.
enum class SessionField : std::uint8_t {
  other,
  session_id,
  status,
  url,
  status_detail,
  tags,
  org_id,
  created_at,
  updated_at,
  acus_consumed,
  pull_requests,
  title,
  is_archived,
  structured_output,
  parent_session_id,
  child_session_ids,
};

// By length first: every key of every item of a poll comes through here.
SessionField session_field(std::string_view key) {
  using enum SessionField;
  const auto either = [key](std::string_view a, SessionField fa, std::string_view b,
                            SessionField fb) { return key == a ? fa : key == b ? fb : other; };
  switch (key.size()) {
    case 3:
      return key == "url" ? url : other;
    case 4:
      return key == "tags" ? tags : other;
    case 5:
      return key == "title" ? title : other;
    case 6:
      return either("status", status, "org_id", org_id);
    case 10:
      if (key == "session_id") return session_id;
      return either("created_at", created_at, "updated_at", updated_at);
    case 11:
      return key == "is_archived" ? is_archived : other;
    case 13:
      if (key == "status_detail") return status_detail;
      return either("acus_consumed", acus_consumed, "pull_requests", pull_requests);
    case 17:
      if (key == "structured_output") return structured_output;
      return either("parent_session_id", parent_session_id, "child_session_ids",
                    child_session_ids);
    default:
      return other;
  }
}

// Readers of one scalar into a field, by the field's type. Null gives the default; another
// type is a shape error (false), because silently defaulting drifted data could make the
// daemon act on values the server never sent.
bool read_scalar(const Scalar& value, std::string& out) {
  if (std::holds_alternative<std::nullptr_t>(value)) {
    out.clear();
    return true;
  }
  const auto* text = std::get_if<std::string_view>(&value);
  if (text != nullptr) out.assign(*text);
  return text != nullptr;
}

bool read_scalar(const Scalar& value, std::optional<std::string>& out) {
  if (std::holds_alternative<std::nullptr_t>(value)) {
    out.reset();
    return true;
  }
  const auto* text = std::get_if<std::string_view>(&value);
  if (text != nullptr) out.emplace(*text);
  return text != nullptr;
}

bool read_scalar(const Scalar& value, std::int64_t& out) {
  std::optional<std::int64_t> number;
  if (std::holds_alternative<std::nullptr_t>(value)) number = 0;
  if (const auto* i = std::get_if<std::int64_t>(&value)) number = *i;
  if (const auto* u = std::get_if<std::uint64_t>(&value)) number = to_int64(*u);
  if (const auto* d = std::get_if<double>(&value)) number = to_int64(*d);
  if (number) out = *number;
  return number.has_value();
}

bool read_scalar(const Scalar& value, double& out) {
  std::optional<double> number;
  if (std::holds_alternative<std::nullptr_t>(value)) number = 0.0;
  if (const auto* i = std::get_if<std::int64_t>(&value)) number = static_cast<double>(*i);
  if (const auto* u = std::get_if<std::uint64_t>(&value)) number = static_cast<double>(*u);
  if (const auto* d = std::get_if<double>(&value)) number = *d;
  if (number) out = *number;
  return number.has_value();
}

bool read_scalar(const Scalar& value, bool& out) {
  if (std::holds_alternative<std::nullptr_t>(value)) {
    out = false;
    return true;
  }
  const auto* b = std::get_if<bool>(&value);
  if (b != nullptr) out = *b;
  return b != nullptr;
}

json::value to_value(const Scalar& scalar) {
  return std::visit(
      [](const auto& v) -> json::value {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string_view>) {
          return json::string(v);
        } else {
          return json::value(v);
        }
      },
      scalar);
}

// Reads sessions straight from the parser's events, one per item, into `out`: building each
// item's tree first (an object of twenty-odd keys, hashed) and then reading a dozen fields
// from it was most of the cost of a status poll. Boost.JSON keeps the last of duplicate keys,
// and so does this reader: each occurrence of a field replaces the earlier one, and the last
// decides whether the session is readable.
class SessionReader final : public JsonItemEvents {
 public:
  explicit SessionReader(std::vector<Session>& out) : out_{out} {}

  void begin_object() override { open(/*object=*/true); }
  void begin_array() override { open(/*object=*/false); }
  void end_object(std::size_t size) override { close(/*object=*/true, size); }
  void end_array(std::size_t size) override { close(/*object=*/false, size); }

  void key(std::string_view key) override {
    if (!item_is_object_) return;
    if (depth_ == 1) {
      field_ = session_field(key);
    } else if (nested_ == Nested::structured_output) {
      tree_.push_key(key);
    } else if (nested_ == Nested::pull_requests && depth_ == 3 && in_pr_) {
      pr_member_ = key == "pr_url" ? PrMember::url
                   : key == "pr_state" ? PrMember::state
                                       : PrMember::other;
    }
  }

  void string(std::string_view text) override { scalar(text); }
  void int64(std::int64_t value) override { scalar(value); }
  void uint64(std::uint64_t value) override { scalar(value); }
  void real(double value) override { scalar(value); }
  void boolean(bool value) override { scalar(value); }
  void null() override { scalar(nullptr); }

  // Only session_id and status are required: null is as wrong for them as absent.
  bool item_done() override {
    const std::uint32_t required = bit(SessionField::session_id) | bit(SessionField::status);
    const bool readable = item_is_object_ && (seen_ & required) == required && bad_ == 0;
    seen_ = 0;
    bad_ = 0;
    field_ = SessionField::other;
    nested_ = Nested::skip;
    return readable;
  }

 private:
  // What the events inside a field's value (depth 2 and deeper) are read into.
  enum class Nested : std::uint8_t { skip, tags, pull_requests, structured_output, child_ids };
  enum class PrMember : std::uint8_t { other, url, state };

  static std::uint32_t bit(SessionField field) {
    return std::uint32_t{1} << static_cast<unsigned>(field);
  }

  // A new occurrence of `field` begins: it alone decides whether the field is readable.
  void judge(SessionField field, bool readable) {
    seen_ |= bit(field);
    if (readable) {
      bad_ &= ~bit(field);
    } else {
      bad_ |= bit(field);
    }
  }
  void spoil(SessionField field) { bad_ |= bit(field); }

  void begin_item(bool object) {
    session_ = &out_.emplace_back();
    item_is_object_ = object;
  }

  void open(bool object) {
    if (depth_ == 0) {
      begin_item(object);
    } else if (item_is_object_ && depth_ == 1) {
      open_field(object);
    } else if (item_is_object_) {
      open_nested(object);
    }
    ++depth_;
  }

  void close(bool object, std::size_t size) {
    --depth_;
    if (depth_ == 0 || !item_is_object_) return;
    if (nested_ == Nested::structured_output) {
      if (object) {
        tree_.push_object(size);
      } else {
        tree_.push_array(size);
      }
      if (depth_ == 1) session_->structured_output = json::serialize(tree_.release());
    } else if (nested_ == Nested::pull_requests && depth_ == 2 && in_pr_) {
      in_pr_ = false;
      if (!(pr_url_read_ && pr_state_read_)) spoil(SessionField::pull_requests);
    }
  }

  // A field's value is an array or object.
  void open_field(bool object) {
    nested_ = Nested::skip;
    switch (field_) {
      case SessionField::other:
        return;
      case SessionField::tags:
        session_->tags.clear();
        judge(field_, !object);
        if (!object) nested_ = Nested::tags;
        return;
      case SessionField::pull_requests:
        session_->pull_requests.clear();
        judge(field_, !object);
        if (!object) nested_ = Nested::pull_requests;
        return;
      case SessionField::structured_output:
        judge(field_, true);
        tree_.reset();
        nested_ = Nested::structured_output;
        return;
      // The family fields are read tolerantly: a shape we do not expect leaves them empty
      // instead of making the whole session unreadable, since its status matters more.
      case SessionField::parent_session_id:
        session_->parent_session_id.reset();
        return;
      case SessionField::child_session_ids:
        session_->child_session_ids.clear();
        if (!object) nested_ = Nested::child_ids;
        return;
      default:
        judge(field_, false);  // a scalar field
        return;
    }
  }

  // An array or object inside a field's value.
  void open_nested(bool object) {
    if (nested_ == Nested::tags && depth_ == 2) spoil(SessionField::tags);
    if (nested_ != Nested::pull_requests) return;
    if (depth_ == 2) {
      if (!object) {
        spoil(SessionField::pull_requests);
        return;
      }
      session_->pull_requests.emplace_back();
      in_pr_ = true;
      pr_member_ = PrMember::other;
      pr_url_read_ = false;  // required
      pr_state_read_ = true;
    } else if (depth_ == 3 && in_pr_) {
      if (pr_member_ == PrMember::url) pr_url_read_ = false;
      if (pr_member_ == PrMember::state) pr_state_read_ = false;
    }
  }

  void scalar(const Scalar& value) {
    if (depth_ == 0) begin_item(/*object=*/false);
    if (!item_is_object_) return;
    if (depth_ == 1) {
      read_field(value);
      return;
    }
    switch (nested_) {
      case Nested::tags:
        if (depth_ != 2) return;
        if (const auto* text = std::get_if<std::string_view>(&value)) {
          session_->tags.emplace_back(*text);
        } else {
          spoil(SessionField::tags);
        }
        return;
      case Nested::pull_requests:
        if (depth_ == 2) spoil(SessionField::pull_requests);  // not an object
        if (depth_ == 3 && in_pr_) read_pr_member(value);
        return;
      case Nested::structured_output:
        push_scalar(value);
        return;
      case Nested::child_ids:
        // Only the strings directly in the array; anything else is skipped, not fatal.
        if (depth_ != 2) return;
        if (const auto* text = std::get_if<std::string_view>(&value)) {
          session_->child_session_ids.emplace_back(*text);
        }
        return;
      case Nested::skip:
        return;
    }
  }

  void read_field(const Scalar& value) {
    Session& s = *session_;
    const auto* text = std::get_if<std::string_view>(&value);
    switch (field_) {
      case SessionField::other:
        return;
      case SessionField::session_id:
      case SessionField::status:
        if (text != nullptr) {
          (field_ == SessionField::status ? s.status : s.session_id).assign(*text);
        }
        judge(field_, text != nullptr);
        return;
      case SessionField::url:
        return judge(field_, read_scalar(value, s.url));
      case SessionField::org_id:
        return judge(field_, read_scalar(value, s.org_id));
      case SessionField::status_detail:
        return judge(field_, read_scalar(value, s.status_detail));
      case SessionField::title:
        return judge(field_, read_scalar(value, s.title));
      case SessionField::created_at:
        return judge(field_, read_scalar(value, s.created_at));
      case SessionField::updated_at:
        return judge(field_, read_scalar(value, s.updated_at));
      case SessionField::acus_consumed:
        return judge(field_, read_scalar(value, s.acus_consumed));
      case SessionField::is_archived:
        return judge(field_, read_scalar(value, s.is_archived));
      case SessionField::tags:
        s.tags.clear();
        return judge(field_, std::holds_alternative<std::nullptr_t>(value));
      case SessionField::pull_requests:
        s.pull_requests.clear();
        return judge(field_, std::holds_alternative<std::nullptr_t>(value));
      case SessionField::structured_output:
        judge(field_, true);
        if (std::holds_alternative<std::nullptr_t>(value)) {
          s.structured_output.reset();
        } else {
          s.structured_output = json::serialize(to_value(value));
        }
        return;
      case SessionField::parent_session_id:
        if (text != nullptr && !text->empty()) {
          s.parent_session_id.emplace(*text);
        } else {
          s.parent_session_id.reset();
        }
        return;
      case SessionField::child_session_ids:
        s.child_session_ids.clear();  // null, or a scalar where a list belongs
        return;
    }
  }

  void read_pr_member(const Scalar& value) {
    PullRequest& pr = session_->pull_requests.back();
    if (pr_member_ == PrMember::url) {
      const auto* text = std::get_if<std::string_view>(&value);
      if (text != nullptr) pr.pr_url.assign(*text);
      pr_url_read_ = text != nullptr;
    } else if (pr_member_ == PrMember::state) {
      pr_state_read_ = read_scalar(value, pr.pr_state);
    }
  }

  void push_scalar(const Scalar& value) {
    std::visit(
        [this](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>) {
            tree_.push_null();
          } else if constexpr (std::is_same_v<T, bool>) {
            tree_.push_bool(v);
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            tree_.push_int64(v);
          } else if constexpr (std::is_same_v<T, std::uint64_t>) {
            tree_.push_uint64(v);
          } else if constexpr (std::is_same_v<T, double>) {
            tree_.push_double(v);
          } else {
            tree_.push_string(v);
          }
        },
        value);
  }

  std::vector<Session>& out_;
  Session* session_ = nullptr;     // the item being read, the last of out_
  std::size_t depth_ = 0;          // containers open within the item
  bool item_is_object_ = false;
  SessionField field_ = SessionField::other;  // whose value comes next at depth 1
  Nested nested_ = Nested::skip;
  std::uint32_t seen_ = 0;  // fields present, by bit(field)
  std::uint32_t bad_ = 0;   // fields whose last occurrence cannot be read
  bool in_pr_ = false;  // inside a pull request's object (depth 3)
  PrMember pr_member_ = PrMember::other;
  bool pr_url_read_ = false;
  bool pr_state_read_ = true;
  json::value_stack tree_;  // a structured_output being built
};

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

// Only principal_type is required: without it we cannot tell a service user from a person.
result<Principal> read_principal(const json::value& value) {
  const auto shape = make_error_code(errc::unexpected_shape);
  if (!value.is_object()) return shape;
  const json::object& object = value.get_object();
  const json::value* type = object.if_contains("principal_type");
  if (type == nullptr || !type->is_string()) return shape;
  Principal principal{.principal_type = std::string{type->get_string()}};
  if (!read_field(object, "service_user_id", principal.service_user_id) ||
      !read_field(object, "service_user_name", principal.service_user_name) ||
      !read_field(object, "user_id", principal.user_id) ||
      !read_field(object, "org_id", principal.org_id)) {
    return shape;
  }
  return principal;
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

constexpr bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

// One load per character instead of a chain of range tests: a poll's target carries 200
// session ids, so this loop runs about 8,000 times per status request.
constexpr std::array<bool, 256> kUnreserved = [] {
  std::array<bool, 256> table{};
  for (unsigned c = 0; c < table.size(); ++c) {
    table[c] = is_unreserved(static_cast<unsigned char>(c));
  }
  return table;
}();

// RFC 3986: everything but unreserved characters is percent-encoded, so the same encoder is
// safe for a path segment and a query value (a '/', '&', '=', '+' or '#' never leaks through).
void append_encoded(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  // Runs of unreserved characters (a whole session id, typically) go in one append: a poll's
  // target holds 200 ids, and a push_back per character was most of building it.
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (kUnreserved[c]) continue;
    out.append(text.substr(run, i - run));
    out.push_back('%');
    out.push_back(hex[c >> 4U]);
    out.push_back(hex[c & 0x0FU]);
    run = i + 1;
  }
  out.append(text.substr(run));
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
                                const std::vector<SessionSecret>& secrets,
                                const std::vector<std::string>& attachment_urls) {
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
  if (spec.child_playbook_id) body["child_playbook_id"] = *spec.child_playbook_id;
  // Absent means "all" to the API and [] means "none", so an empty list is sent as [].
  if (spec.knowledge_ids) body["knowledge_ids"] = string_array(*spec.knowledge_ids);
  if (spec.secret_ids) body["secret_ids"] = string_array(*spec.secret_ids);
  if (!spec.repos.empty()) body["repos"] = string_array(spec.repos);
  if (spec.max_acu_limit) body["max_acu_limit"] = *spec.max_acu_limit;
  if (spec.structured_output_schema) {
    body["structured_output_schema"] =
        detail::structured_output_schema_value(*spec.structured_output_schema);
  }
  // Sent as given: the set of modes grows, and the API (not us) says which it takes.
  if (spec.devin_mode) body["devin_mode"] = *spec.devin_mode;
  if (spec.resumable) body["resumable"] = *spec.resumable;
  if (!secrets.empty()) {
    json::array list;
    for (const auto& secret : secrets) {
      list.push_back(json::object{
          {"key", secret.key}, {"value", secret.value}, {"sensitive", secret.sensitive}});
    }
    body["session_secrets"] = std::move(list);
  }
  if (!attachment_urls.empty()) body["attachment_urls"] = string_array(attachment_urls);
  return json::serialize(body);
}

std::string attachment_upload_body(std::string_view file_name, std::string_view bytes,
                                   std::string_view boundary, std::string* content_type) {
  // The name goes in a quoted-string: quotes, backslashes and line breaks would end it early
  // or forge a header, so they are replaced (RFC 7578 leaves the encoding to the sender).
  std::string quoted;
  for (const char ch : file_name) {
    const bool unsafe = ch == '"' || ch == '\\' || ch == '\r' || ch == '\n' ||
                        static_cast<unsigned char>(ch) < 0x20;
    quoted.push_back(unsafe ? '_' : ch);
  }
  std::string body;
  body.reserve(bytes.size() + boundary.size() * 2 + quoted.size() + 160);
  body += "--";
  body += boundary;
  body += "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"";
  body += quoted;
  body += "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
  body += bytes;
  body += "\r\n--";
  body += boundary;
  body += "--\r\n";
  if (content_type != nullptr) {
    *content_type = "multipart/form-data; boundary=" + std::string{boundary};
  }
  return body;
}

std::string send_message_body(std::string_view message) {
  return json::serialize(json::object{{"message", message}});
}

result<Session> parse_session(std::string_view body) {
  std::vector<Session> read;
  SessionReader reader{read};
  if (auto parsed = read_json_item(body, reader); !parsed) return parsed.error();
  return std::move(read.front());
}

// Streamed item by item, each read from the parser's events: a full page built as one document
// grew the arena to hold all of it at once, and the arena then stayed with the process.
result<SessionPage> parse_session_page(std::string_view body) {
  SessionPage page;
  // One unreadable item fails the page: dropping it could hide the very session a lookup is
  // searching for.
  SessionReader reader{page.items};
  const result<json::value> rest = stream_json_items(body, "items", reader);
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

result<MessagePage> parse_message_page(std::string_view body) {
  return read_json<MessagePage>(body, [](const json::value& value) -> result<MessagePage> {
    const auto shape = make_error_code(errc::unexpected_shape);
    const json::array* items = items_of(value);
    if (items == nullptr) return shape;
    MessagePage page;
    for (const json::value& item : *items) {
      if (!item.is_object()) return shape;
      ++page.items;
      const json::value* source = item.get_object().if_contains("source");
      if (source != nullptr && source->is_string() && source->get_string() == "devin") {
        ++page.from_devin;
      }
    }
    if (!read_cursor(value.get_object(), page)) return shape;
    return page;
  });
}

result<Attachment> parse_attachment(std::string_view body) {
  return read_json<Attachment>(body, [](const json::value& value) -> result<Attachment> {
    const auto shape = make_error_code(errc::unexpected_shape);
    if (!value.is_object()) return shape;
    const json::object& object = value.get_object();
    // The URL is what a create needs; id and name are kept when given.
    const json::value* url = object.if_contains("url");
    if (url == nullptr || !url->is_string() || url->get_string().empty()) return shape;
    Attachment attachment{.url = std::string{url->get_string()}};
    std::optional<std::string> id;
    std::optional<std::string> name;
    if (!read_field(object, "attachment_id", id) || !read_field(object, "name", name)) {
      return shape;
    }
    attachment.attachment_id = id.value_or("");
    attachment.name = name.value_or("");
    return attachment;
  });
}

std::string attachments_path(std::string_view org_id) {
  std::string path = "/v3/organizations/";
  append_encoded(path, org_id);
  path += "/attachments";
  return path;
}

result<Principal> parse_principal(std::string_view body) {
  return read_json<Principal>(body, read_principal);
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

std::string messages_target(std::string_view org_id, std::string_view session_id, int first,
                            const std::optional<std::string>& after) {
  QueryBuilder target{session_path(org_id, session_id) + "/messages"};
  target.add("first", std::to_string(first));
  if (after) target.add("after", *after);
  return std::move(target).take();
}

std::string organizations_target(int first, const std::optional<std::string>& after) {
  QueryBuilder target{"/v3/enterprise/organizations"};
  target.add("first", std::to_string(first));
  if (after) target.add("after", *after);
  return std::move(target).take();
}

}  // namespace devin_orch::api
