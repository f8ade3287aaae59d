// stream_json_items and read_json_item: a Boost.JSON basic_parser handler that hands each
// item's events to a reader and builds the rest of the document aside.
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

// Forwards the parser's events either to the item reader (inside an item) or to the value
// stack of the outer document. Depths count open containers: with an items key the top object
// is depth 1 and the items array, once open, depth 2, so an item ends when the depth is back
// at 2; without one the document is the item, which ends at depth 0.
class ItemStreamHandler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  ItemStreamHandler(std::optional<std::string_view> items_key, JsonItemEvents& items)
      : items_key_{items_key},
        items_{items},
        item_depth_{items_key ? std::size_t{2} : std::size_t{0}},
        in_items_{!items_key} {
    document_.reset();  // the heap: the document outlives this handler
  }

  json::value take_document() { return document_.release(); }
  std::optional<errc> failure() const noexcept { return failure_; }

  bool on_document_begin(json_error& /*ec*/) { return true; }
  bool on_document_end(json_error& /*ec*/) { return true; }

  bool on_object_begin(json_error& /*ec*/) {
    if (in_items_) {
      items_.begin_object();
    } else if (depth_ == 0) {
      top_is_object_ = true;
    }
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t n, json_error& ec) {
    --depth_;
    if (!in_items_) {
      document_.push_object(n);
      return true;
    }
    items_.end_object(n);
    return item_may_end(ec);
  }
  bool on_array_begin(json_error& /*ec*/) {
    if (!in_items_ && depth_ == 1 && top_is_object_ && key_is_items_) {
      streamed_ = true;
      in_items_ = true;
    } else if (in_items_) {
      items_.begin_array();
    }
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t n, json_error& ec) {
    --depth_;
    if (in_items_ && items_key_ && depth_ + 1 == item_depth_) {  // the items array itself
      in_items_ = false;
      document_.push_array(0);
      return true;
    }
    if (!in_items_) {
      document_.push_array(n);
      return true;
    }
    items_.end_array(n);
    return item_may_end(ec);
  }

  bool on_key_part(json::string_view s, std::size_t /*n*/, json_error& /*ec*/) {
    if (in_items_) {
      text_.append(s.data(), s.size());
      return true;
    }
    if (depth_ == 1) key_.append(s.data(), s.size());
    document_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t /*n*/, json_error& ec) {
    if (in_items_) {
      items_.key(whole(s));
      text_.clear();
      return true;
    }
    if (depth_ == 1) {
      key_.append(s.data(), s.size());
      key_is_items_ = std::string_view{key_} == items_key_;
      key_.clear();
      // The document would keep the later value, but the items are already handed over.
      if (key_is_items_ && streamed_) return fail(errc::unexpected_shape, ec);
    }
    document_.push_key(s);
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t /*n*/, json_error& /*ec*/) {
    if (in_items_) {
      text_.append(s.data(), s.size());
    } else {
      document_.push_chars(s);
    }
    return true;
  }
  bool on_string(json::string_view s, std::size_t /*n*/, json_error& ec) {
    if (!in_items_) {
      document_.push_string(s);
      return true;
    }
    items_.string(whole(s));
    text_.clear();
    return item_may_end(ec);
  }
  bool on_number_part(json::string_view /*s*/, json_error& /*ec*/) { return true; }
  bool on_int64(std::int64_t i, json::string_view /*s*/, json_error& ec) {
    if (!in_items_) {
      document_.push_int64(i);
      return true;
    }
    items_.int64(i);
    return item_may_end(ec);
  }
  bool on_uint64(std::uint64_t u, json::string_view /*s*/, json_error& ec) {
    if (!in_items_) {
      document_.push_uint64(u);
      return true;
    }
    items_.uint64(u);
    return item_may_end(ec);
  }
  bool on_double(double d, json::string_view /*s*/, json_error& ec) {
    if (!in_items_) {
      document_.push_double(d);
      return true;
    }
    items_.real(d);
    return item_may_end(ec);
  }
  bool on_bool(bool b, json_error& ec) {
    if (!in_items_) {
      document_.push_bool(b);
      return true;
    }
    items_.boolean(b);
    return item_may_end(ec);
  }
  bool on_null(json_error& ec) {
    if (!in_items_) {
      document_.push_null();
      return true;
    }
    items_.null();
    return item_may_end(ec);
  }
  // Comments are off in the parse options; these only satisfy the handler concept.
  bool on_comment_part(json::string_view /*s*/, json_error& /*ec*/) { return true; }
  bool on_comment(json::string_view /*s*/, json_error& /*ec*/) { return true; }

 private:
  // The key or string whose last piece is `s`: the earlier pieces (before an escape, say)
  // were gathered in text_.
  std::string_view whole(json::string_view s) {
    if (text_.empty()) return {s.data(), s.size()};
    text_.append(s.data(), s.size());
    return text_;
  }

  // A value just ended; at the item depth that was a whole item. Without an items key the
  // caller asks the reader itself, once the body has parsed whole.
  bool item_may_end(json_error& ec) {
    if (depth_ != item_depth_ || !items_key_) return true;
    return items_.item_done() || fail(errc::unexpected_shape, ec);
  }

  bool fail(errc reason, json_error& ec) {
    failure_ = reason;
    ec = make_error_code(reason);
    return false;
  }

  std::optional<std::string_view> items_key_;
  JsonItemEvents& items_;
  std::size_t item_depth_;
  json::value_stack document_;
  std::string key_;   // a top-level key being gathered
  std::string text_;  // an item's key or string being gathered
  std::size_t depth_ = 0;
  bool top_is_object_ = false;
  bool key_is_items_ = false;
  bool in_items_;
  bool streamed_ = false;
  std::optional<errc> failure_;
};

// Builds each item as a value for a JsonItemReader, in a small reusable arena.
class ItemTreeBuilder final : public JsonItemEvents {
 public:
  explicit ItemTreeBuilder(const JsonItemReader& read_item) : read_item_{read_item} {
    item_.reset(&item_memory_);
  }

  void begin_object() override {}
  void end_object(std::size_t size) override { item_.push_object(size); }
  void begin_array() override {}
  void end_array(std::size_t size) override { item_.push_array(size); }
  void key(std::string_view key) override { item_.push_key(key); }
  void string(std::string_view text) override { item_.push_string(text); }
  void int64(std::int64_t value) override { item_.push_int64(value); }
  void uint64(std::uint64_t value) override { item_.push_uint64(value); }
  void real(double value) override { item_.push_double(value); }
  void boolean(bool value) override { item_.push_bool(value); }
  void null() override { item_.push_null(); }

  bool item_done() override {
    bool readable = false;
    {
      const json::value item = item_.release();
      readable = read_item_(item);
    }
    item_memory_.release();
    item_.reset(&item_memory_);
    return readable;
  }

 private:
  // Large enough for any session the API describes; a bigger item spills to the heap and is
  // given back with the item.
  static constexpr std::size_t item_buffer_bytes = 16 * 1024;

  const JsonItemReader& read_item_;
  std::array<unsigned char, item_buffer_bytes> item_buffer_;  // NOLINT: no need to zero it
  json::monotonic_resource item_memory_{item_buffer_.data(), item_buffer_.size()};
  json::value_stack item_;
};

// Runs the parser over the whole body; the handler's own failure outranks the parser's.
std::optional<errc> parse(json::basic_parser<ItemStreamHandler>& parser, std::string_view body) {
  json_error ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (const std::optional<errc> failure = parser.handler().failure()) return failure;
  if (ec || used != body.size()) return errc::malformed_json;
  return std::nullopt;
}

json::parse_options parse_options() {
  json::parse_options options;
  options.max_depth = max_json_depth;
  return options;
}

}  // namespace

result<json::value> stream_json_items(std::string_view body, std::string_view items_key,
                                      JsonItemEvents& items) {
  json::basic_parser<ItemStreamHandler> parser{parse_options(), items_key, items};
  if (const std::optional<errc> failure = parse(parser, body)) return make_error_code(*failure);
  return parser.handler().take_document();
}

result<json::value> stream_json_items(std::string_view body, std::string_view items_key,
                                      const JsonItemReader& read_item) {
  ItemTreeBuilder builder{read_item};
  return stream_json_items(body, items_key, builder);
}

result<void> read_json_item(std::string_view body, JsonItemEvents& item) {
  json::basic_parser<ItemStreamHandler> parser{parse_options(), std::nullopt, item};
  if (const std::optional<errc> failure = parse(parser, body)) return make_error_code(*failure);
  if (!item.item_done()) return make_error_code(errc::unexpected_shape);
  return {};
}

}  // namespace devin_orch::api
