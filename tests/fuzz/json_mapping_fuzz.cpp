// libFuzzer target for the Devin JSON readers (api::parse_session, parse_session_page,
// parse_organization_page, error_detail): every body is mapped or refused, never a crash; the
// item stream under parse_session_page agrees with Boost.JSON's own parser; and the sessions
// read from parser events are those that reading the parsed tree gives.
#include "devin_orch/api/json_item_stream.hpp"
#include "devin_orch/api/json_mapping.hpp"

#include "../api/session_oracle.hpp"
#include "fuzz_check.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

namespace json = boost::json;

// The stream hands over exactly the elements of the top-level "items" array and returns the
// rest of the document that json::parse builds; it refuses exactly what json::parse refuses.
void check_item_stream(std::string_view body) {
  namespace api = devin_orch::api;
  json::parse_options options;
  options.max_depth = 64;
  boost::system::error_code ec;
  json::value whole = json::parse(body, ec, {}, options);

  json::array items;
  const auto streamed = api::stream_json_items(body, "items", [&](const json::value& item) {
    items.push_back(item);
    return true;
  });
  if (ec) {
    DEVIN_ORCH_FUZZ_CHECK(!streamed, "the item stream accepted what json::parse refused");
    return;
  }
  if (!streamed) {
    // The only refusal of a valid document: "items" again after its array.
    DEVIN_ORCH_FUZZ_CHECK(streamed.error() == devin_orch::make_error_code(
                                                 devin_orch::errc::unexpected_shape),
                          "the item stream refused a valid document as malformed");
    return;
  }
  json::value expected_items = json::array{};
  if (whole.is_object()) {
    if (json::value* list = whole.get_object().if_contains("items"); list && list->is_array()) {
      std::swap(expected_items, *list);  // leaves [] in the document, as the stream does
    }
  }
  // Compared as text: Boost.JSON 1.81 reads a number like 0e6000 as NaN, never equal to itself.
  DEVIN_ORCH_FUZZ_CHECK(json::serialize(items) == json::serialize(expected_items),
                        "the item stream handed over other items than the document holds");
  DEVIN_ORCH_FUZZ_CHECK(json::serialize(*streamed) == json::serialize(whole),
                        "the item stream kept another document");
}

// parse_session and parse_session_page read what the oracle reads from json::parse's tree, and
// refuse what it refuses: malformed_json for what json::parse refuses, unexpected_shape else.
void check_session_readers(std::string_view body) {
  namespace api = devin_orch::api;
  using devin_orch::errc;
  json::parse_options options;
  options.max_depth = api::max_json_depth;
  boost::system::error_code ec;
  const json::value whole = json::parse(body, ec, {}, options);
  const auto code = [](errc e) { return devin_orch::make_error_code(e); };

  const auto session = api::parse_session(body);
  const auto page = api::parse_session_page(body);
  if (ec) {
    DEVIN_ORCH_FUZZ_CHECK(!session && session.error() == code(errc::malformed_json),
                          "parse_session accepted what json::parse refused");
    // An unreadable item ends the page's parse before a malformed rest is reached.
    DEVIN_ORCH_FUZZ_CHECK(!page, "parse_session_page accepted what json::parse refused");
    return;
  }
  const auto expected = api::oracle::read_session(whole);
  DEVIN_ORCH_FUZZ_CHECK(session.has_value() == expected.has_value(),
                        "parse_session and the tree disagree on whether a session is readable");
  if (expected) {
    DEVIN_ORCH_FUZZ_CHECK(api::oracle::same_session(*session, *expected),
                          "parse_session read another session than the tree holds");
  } else {
    DEVIN_ORCH_FUZZ_CHECK(session.error() == code(errc::unexpected_shape),
                          "parse_session refused a valid document as malformed");
  }

  const auto expected_items = api::oracle::read_page_items(whole);
  if (!page) {
    // The stream also refuses "items" again after its array, which json::parse allows.
    DEVIN_ORCH_FUZZ_CHECK(page.error() == code(errc::unexpected_shape),
                          "parse_session_page refused a valid document as malformed");
    const bool items_twice = !api::stream_json_items(body, "items", [](const json::value&) {
      return true;
    });
    DEVIN_ORCH_FUZZ_CHECK(!expected_items || items_twice,
                          "parse_session_page refused a page the tree reads");
    return;
  }
  DEVIN_ORCH_FUZZ_CHECK(expected_items.has_value(),
                        "parse_session_page read a page the tree refuses");
  DEVIN_ORCH_FUZZ_CHECK(page->items.size() == expected_items->size(),
                        "parse_session_page read another number of sessions");
  for (std::size_t i = 0; i < expected_items->size(); ++i) {
    DEVIN_ORCH_FUZZ_CHECK(api::oracle::same_session(page->items[i], (*expected_items)[i]),
                          "parse_session_page read another session than the tree holds");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  namespace api = devin_orch::api;

  (void)api::parse_organization_page(body);
  check_item_stream(body);
  check_session_readers(body);

  // The detail goes into logs and the database: bounded and free of control characters.
  const std::string detail = api::error_detail(body);
  DEVIN_ORCH_FUZZ_CHECK(detail.size() <= 500, "error_detail longer than its 500-byte cap");
  for (const char ch : detail) {
    const auto c = static_cast<unsigned char>(ch);
    DEVIN_ORCH_FUZZ_CHECK(c >= 0x20 && c != 0x7F, "error_detail kept a control character");
  }
  return 0;
}
