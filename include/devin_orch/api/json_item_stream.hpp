// Parsing a JSON page one item at a time: the items of its top-level array are handed over as
// each completes, so a page costs the memory of one item rather than of the whole document.
#pragma once

#include "devin_orch/core/error.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <functional>
#include <string_view>

namespace devin_orch::api {

// How deep any response may nest: far deeper than a real one; bounds the work a hostile body
// can cause. Every JSON reader of the API uses it.
inline constexpr std::size_t max_json_depth = 64;

// Returns false when an item cannot be read; the parse stops there.
using JsonItemReader = std::function<bool(const boost::json::value& item)>;

// Parses `body` (at most 64 levels deep). Each element of the array under `items_key` in the
// top-level object goes to `read_item`, in order, and is gone once it returns; the document
// returned keeps everything else, with `items_key` holding an empty array. Nothing is
// streamed unless the top level is an object and `items_key` an array. Errors:
// malformed_json for anything that is not one JSON value; unexpected_shape when `read_item`
// returned false or `items_key` appears again after its array was streamed (a parser keeping
// the last value would disagree about the items).
result<boost::json::value> stream_json_items(std::string_view body, std::string_view items_key,
                                             const JsonItemReader& read_item);

}  // namespace devin_orch::api
