// stream_json_items: a Boost.JSON basic_parser handler that builds each item of the page's
// array in a small reusable arena and hands it over, and the rest of the document aside.
#include "devin_orch/api/json_item_stream.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value_stack.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace devin_orch::api {
namespace json = boost::json;

namespace {

using json_error = boost::system::error_code;

// Forwards the parser's events to one of two value stacks: the item being built while inside
// the items array, the outer document otherwise. Depths count open containers, so the top
// object is depth 1 and the items array, once open, depth 2.
class ItemStreamHandler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  ItemStreamHandler(std::string_view items_key, const JsonItemReader& read_item)
      : items_key_{items_key}, read_item_{read_item} {
    document_.reset();  // the heap: the document outlives this handler
    item_.reset(&item_memory_);
  }

  json::value take_document() { return document_.release(); }
  std::optional<errc> failure() const noexcept { return failure_; }

  bool on_document_begin(json_error& /*ec*/) { return true; }
  bool on_document_end(json_error& /*ec*/) { return true; }

  bool on_object_begin(json_error& /*ec*/) {
    open(Container::object);
    return true;
  }
  bool on_object_end(std::size_t n, json_error& ec) {
    return close([n](json::value_stack& stack) { stack.push_object(n); }, ec);
  }
  bool on_array_begin(json_error& /*ec*/) {
    if (depth_ == 1 && top_is_object_ && key_is_items_) {
      streamed_ = true;
      ++depth_;
      in_items_ = true;
      return true;
    }
    open(Container::array);
    return true;
  }
  bool on_array_end(std::size_t n, json_error& ec) {
    if (in_items_ && depth_ == items_depth) {
      --depth_;
      in_items_ = false;
      document_.push_array(0);
      return true;
    }
    return close([n](json::value_stack& stack) { stack.push_array(n); }, ec);
  }

  bool on_key_part(json::string_view s, std::size_t /*n*/, json_error& /*ec*/) {
    if (depth_ == 1) key_.append(s.data(), s.size());
    target().push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t /*n*/, json_error& ec) {
    if (depth_ == 1) {
      key_.append(s.data(), s.size());
      key_is_items_ = std::string_view{key_} == items_key_;
      key_.clear();
      // The document would keep the later value, but the items are already handed over.
      if (key_is_items_ && streamed_) return fail(errc::unexpected_shape, ec);
    }
    target().push_key(s);
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t /*n*/, json_error& /*ec*/) {
    target().push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t /*n*/, json_error& ec) {
    return scalar([s](json::value_stack& stack) { stack.push_string(s); }, ec);
  }
  bool on_number_part(json::string_view /*s*/, json_error& /*ec*/) { return true; }
  bool on_int64(std::int64_t i, json::string_view /*s*/, json_error& ec) {
    return scalar([i](json::value_stack& stack) { stack.push_int64(i); }, ec);
  }
  bool on_uint64(std::uint64_t u, json::string_view /*s*/, json_error& ec) {
    return scalar([u](json::value_stack& stack) { stack.push_uint64(u); }, ec);
  }
  bool on_double(double d, json::string_view /*s*/, json_error& ec) {
    return scalar([d](json::value_stack& stack) { stack.push_double(d); }, ec);
  }
  bool on_bool(bool b, json_error& ec) {
    return scalar([b](json::value_stack& stack) { stack.push_bool(b); }, ec);
  }
  bool on_null(json_error& ec) {
    return scalar([](json::value_stack& stack) { stack.push_null(); }, ec);
  }
  // Comments are off in the parse options; these only satisfy the handler concept.
  bool on_comment_part(json::string_view /*s*/, json_error& /*ec*/) { return true; }
  bool on_comment(json::string_view /*s*/, json_error& /*ec*/) { return true; }

 private:
  enum class Container : std::uint8_t { object, array };
  static constexpr std::size_t items_depth = 2;
  // Large enough for any session the API describes; a bigger item spills to the heap and is
  // given back with the item.
  static constexpr std::size_t item_buffer_bytes = 16 * 1024;

  json::value_stack& target() { return in_items_ ? item_ : document_; }

  void open(Container kind) {
    if (depth_ == 0) top_is_object_ = kind == Container::object;
    ++depth_;
  }

  // A container closes: pushed where it was built; an item that ends here is handed over.
  template <class Push>
  bool close(const Push& push, json_error& ec) {
    push(target());
    --depth_;
    return !(in_items_ && depth_ == items_depth) || hand_over(ec);
  }

  // A scalar directly in the items array is an item of its own.
  template <class Push>
  bool scalar(const Push& push, json_error& ec) {
    push(target());
    return !(in_items_ && depth_ == items_depth) || hand_over(ec);
  }

  bool hand_over(json_error& ec) {
    bool readable = false;
    {
      const json::value item = item_.release();
      readable = read_item_(item);
    }
    item_memory_.release();
    item_.reset(&item_memory_);
    return readable || fail(errc::unexpected_shape, ec);
  }

  bool fail(errc reason, json_error& ec) {
    failure_ = reason;
    ec = make_error_code(reason);
    return false;
  }

  std::string_view items_key_;
  const JsonItemReader& read_item_;
  std::array<unsigned char, item_buffer_bytes> item_buffer_;  // NOLINT: no need to zero it
  json::monotonic_resource item_memory_{item_buffer_.data(), item_buffer_.size()};
  json::value_stack item_;
  json::value_stack document_;
  std::string key_;
  std::size_t depth_ = 0;
  bool top_is_object_ = false;
  bool key_is_items_ = false;
  bool in_items_ = false;
  bool streamed_ = false;
  std::optional<errc> failure_;
};

}  // namespace

result<json::value> stream_json_items(std::string_view body, std::string_view items_key,
                                      const JsonItemReader& read_item) {
  json::parse_options options;
  options.max_depth = max_json_depth;
  json::basic_parser<ItemStreamHandler> parser{options, items_key, read_item};
  json_error ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (const std::optional<errc> failure = parser.handler().failure()) {
    return make_error_code(*failure);
  }
  if (ec || used != body.size()) return make_error_code(errc::malformed_json);
  return parser.handler().take_document();
}

}  // namespace devin_orch::api
