// Parsing JSON one item at a time: the items of a page's top-level array (or a whole document
// that is one item) go to a reader as parser events, so a page costs the memory of one item
// rather than of the whole document, and a reader need not build a tree it only reads from.
#pragma once

#include "devin_orch/core/error.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace devin_orch::api {

// How deep any response may nest: far deeper than a real one; bounds the work a hostile body
// can cause. Every JSON reader of the API uses it.
inline constexpr std::size_t max_json_depth = 64;

// Receives each item's events in document order: containers open and close around their
// members (`size` counts an object's members, an array's elements), a key comes just before
// its value, and strings and keys arrive whole, unescaped.
class JsonItemEvents {
 public:
  virtual void begin_object() = 0;
  virtual void end_object(std::size_t size) = 0;
  virtual void begin_array() = 0;
  virtual void end_array(std::size_t size) = 0;
  virtual void key(std::string_view key) = 0;
  virtual void string(std::string_view text) = 0;
  virtual void int64(std::int64_t value) = 0;
  virtual void uint64(std::uint64_t value) = 0;
  virtual void real(double value) = 0;
  virtual void boolean(bool value) = 0;
  virtual void null() = 0;
  // The item whose events came since the last call is complete. False: it cannot be read.
  virtual bool item_done() = 0;

 protected:
  JsonItemEvents() = default;
  JsonItemEvents(const JsonItemEvents&) = default;
  JsonItemEvents& operator=(const JsonItemEvents&) = default;
  ~JsonItemEvents() = default;
};

// Parses `body` (at most 64 levels deep). Each element of the array under `items_key` in the
// top-level object goes to `items`, in order, and item_done() is called as each ends; the
// document returned keeps everything else, with `items_key` holding an empty array. Nothing
// is streamed unless the top level is an object and `items_key` an array. Errors:
// malformed_json for anything that is not one JSON value; unexpected_shape when item_done()
// returned false (the parse stops there, so a malformed rest goes unnoticed) or `items_key`
// appears again after its array was streamed (a parser keeping the last value would disagree
// about the items).
result<boost::json::value> stream_json_items(std::string_view body, std::string_view items_key,
                                             JsonItemEvents& items);

// The same, each item built as a value for `read_item`, gone once it returns; false from
// `read_item` is item_done()'s false.
using JsonItemReader = std::function<bool(const boost::json::value& item)>;
result<boost::json::value> stream_json_items(std::string_view body, std::string_view items_key,
                                             const JsonItemReader& read_item);

// The whole document is one item: its events go to `item`, and item_done() is asked only once
// the body has parsed whole (malformed_json before unexpected_shape).
result<void> read_json_item(std::string_view body, JsonItemEvents& item);

}  // namespace devin_orch::api
