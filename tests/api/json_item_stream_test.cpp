// Tests of stream_json_items: which array is streamed, what the rest of the document keeps,
// and how malformed bodies and unreadable items end the parse.
#include "devin_orch/api/json_item_stream.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::api {
namespace {

namespace json = boost::json;

// Serialised items, in the order they were handed over, and the document that remained.
struct Streamed {
  std::vector<std::string> items;
  result<json::value> rest;
};

Streamed stream(std::string_view body, std::string_view key = "items",
                std::size_t refuse_at = static_cast<std::size_t>(-1)) {
  Streamed out{.items = {}, .rest = make_error_code(errc::malformed_json)};
  out.rest = stream_json_items(body, key, [&](const json::value& item) {
    if (out.items.size() == refuse_at) return false;
    out.items.push_back(json::serialize(item));
    return true;
  });
  return out;
}

// The same document as written compactly, to compare with what remained.
std::string reformat(std::string_view json_text) { return json::serialize(json::parse(json_text)); }

errc error_of(const result<json::value>& r) { return static_cast<errc>(r.error().value()); }

TEST(StreamJsonItems, HandsOverEachItemInOrderAndKeepsTheRest) {
  const Streamed s = stream(R"({"total": 3, "items": [{"id": "a", "tags": ["x", "y"]},
      {"id": "b", "nested": {"items": [1, 2]}}, 7, "text", null, [1, [2]]],
      "end_cursor": "c2", "has_next_page": true})");
  ASSERT_TRUE(s.rest) << s.rest.error().message();
  EXPECT_EQ(s.items, (std::vector<std::string>{R"({"id":"a","tags":["x","y"]})",
                                               R"({"id":"b","nested":{"items":[1,2]}})", "7",
                                               R"("text")", "null", "[1,[2]]"}));
  EXPECT_EQ(json::serialize(*s.rest), reformat(R"({"total": 3, "items": [], "end_cursor": "c2",
                                     "has_next_page": true})"));
}

TEST(StreamJsonItems, OnlyTheTopLevelArrayUnderTheKeyIsStreamed) {
  const Streamed nested = stream(R"({"page": {"items": [1, 2]}, "other": [3]})");
  ASSERT_TRUE(nested.rest);
  EXPECT_TRUE(nested.items.empty());
  EXPECT_EQ(json::serialize(*nested.rest), reformat(R"({"page": {"items": [1, 2]}, "other": [3]})"));

  const Streamed top_array = stream(R"([{"items": [1]}])");
  ASSERT_TRUE(top_array.rest);
  EXPECT_TRUE(top_array.items.empty());
  EXPECT_EQ(json::serialize(*top_array.rest), reformat(R"([{"items": [1]}])"));

  const Streamed not_an_array = stream(R"({"items": {"a": [1]}})");
  ASSERT_TRUE(not_an_array.rest);
  EXPECT_TRUE(not_an_array.items.empty());
  EXPECT_EQ(json::serialize(*not_an_array.rest), reformat(R"({"items": {"a": [1]}})"));

  const Streamed other_key = stream(R"({"items": [1], "sessions": [2, 3]})", "sessions");
  ASSERT_TRUE(other_key.rest);
  EXPECT_EQ(other_key.items, (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(json::serialize(*other_key.rest), reformat(R"({"items": [1], "sessions": []})"));
}

TEST(StreamJsonItems, EscapedKeysAndStringsAreDecoded) {
  const Streamed s = stream(R"({"it\u0065ms": ["a\"b\u00e9"], "k\n": "v\t"})");
  ASSERT_TRUE(s.rest);
  EXPECT_EQ(s.items, (std::vector<std::string>{R"("a\"bé")"}));
  EXPECT_EQ(json::serialize(*s.rest), reformat(R"({"items": [], "k\n": "v\t"})"));
}

TEST(StreamJsonItems, AnItemLargerThanTheArenaIsWhole) {
  std::string big = R"({"items": [{"a": ")" + std::string(100'000, 'x') + R"("}, {"b": 1}]})";
  const Streamed s = stream(big);
  ASSERT_TRUE(s.rest);
  ASSERT_EQ(s.items.size(), 2U);
  EXPECT_EQ(s.items[0].size(), 100'000U + 8U);
  EXPECT_EQ(s.items[1], R"({"b":1})");
}

TEST(StreamJsonItems, AnUnreadableItemStopsTheParse) {
  const Streamed s = stream(R"({"items": [1, 2, 3, 4]})", "items", 2);
  EXPECT_EQ(s.items, (std::vector<std::string>{"1", "2"}));
  ASSERT_FALSE(s.rest);
  EXPECT_EQ(error_of(s.rest), errc::unexpected_shape);
}

TEST(StreamJsonItems, TheKeyAgainAfterItsArrayIsAShapeError) {
  for (const char* body : {R"({"items": [1], "items": [2]})", R"({"items": [1], "items": null})"}) {
    const Streamed s = stream(body);
    ASSERT_FALSE(s.rest) << body;
    EXPECT_EQ(error_of(s.rest), errc::unexpected_shape) << body;
  }
  // Before the array, a parser keeping the last value agrees: the array is the items.
  const Streamed later = stream(R"({"items": null, "items": [1, 2]})");
  ASSERT_TRUE(later.rest);
  EXPECT_EQ(later.items, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(json::serialize(*later.rest), reformat(R"({"items": []})"));
}

TEST(StreamJsonItems, MalformedBodies) {
  for (const std::string& body : std::vector<std::string>{"", "{", R"({"items": [1, 2)", R"({"items": [1]} trailing)", R"({"items": [1]}{})",
        R"({"items": [1,]})", "// comment\n{}", std::string(65, '[') + std::string(65, ']')}) {
    const Streamed s = stream(body);
    ASSERT_FALSE(s.rest) << body;
    EXPECT_EQ(error_of(s.rest), errc::malformed_json) << body;
  }
  const std::string deep_but_allowed = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(stream(deep_but_allowed).rest);
}

}  // namespace
}  // namespace devin_orch::api
