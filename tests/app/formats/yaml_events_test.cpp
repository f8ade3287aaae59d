// The parser wrapper: events and their marks, errors located and worded by the parser but never
// printed, and the characters refused before parsing.
#include "devin_orch/app/formats/yaml_events.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

// Each event as "kind line:column tag anchor value" (1-based, like a Diagnostic).
class Lines final : public YamlEventHandler {
 public:
  std::vector<std::string> lines;

  void on_document_start(const YamlMark& m) override { add("doc", m); }
  void on_document_end() override { lines.emplace_back("end-doc"); }
  void on_null(const YamlMark& m, std::string_view a) override { add("null", m, "", a); }
  void on_scalar(const YamlMark& m, std::string_view tag, std::string_view a,
                 std::string_view value) override {
    add("scalar", m, tag, a, value);
  }
  void on_alias(const YamlMark& m, std::string_view a) override { add("alias", m, "", a); }
  void on_sequence_start(const YamlMark& m, std::string_view tag, std::string_view a) override {
    add("seq", m, tag, a);
  }
  void on_sequence_end() override { lines.emplace_back("end-seq"); }
  void on_map_start(const YamlMark& m, std::string_view tag, std::string_view a) override {
    add("map", m, tag, a);
  }
  void on_map_end() override { lines.emplace_back("end-map"); }

 private:
  void add(std::string_view kind, const YamlMark& m, std::string_view tag = {},
           std::string_view anchor = {}, std::string_view value = {}) {
    std::string line(kind);
    line += " " + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    if (!tag.empty()) line += " " + std::string(tag);
    if (!anchor.empty()) line += " &" + std::string(anchor);
    if (!value.empty()) line += " " + std::string(value);
    lines.push_back(std::move(line));
  }
};

TEST(YamlEvents, EventsCarryTagsAnchorsAndWhereEachValueVisiblyStarts) {
  Lines lines;
  const auto error = parse_yaml_events(
      "a: 'q'\nb: &x \"d\"\nc: *x\nd: ~\ne:\nf: !!str 1\ng: [plain]\n", "t.yaml", lines);
  ASSERT_FALSE(error.has_value()) << error->to_string();
  EXPECT_EQ(lines.lines,
            (std::vector<std::string>{
                "doc 1:1", "map 1:1 ?", "scalar 1:1 ? a", "scalar 1:4 ! q", "scalar 2:1 ? b",
                "scalar 2:7 ! &x d", "scalar 3:1 ? c", "alias 3:4 &x", "scalar 4:1 ? d",
                "null 4:4", "scalar 5:1 ? e", "null 5:2", "scalar 6:1 ? f",
                "scalar 6:10 tag:yaml.org,2002:str 1", "scalar 7:1 ? g", "seq 7:4 ?",
                "scalar 7:5 ? plain", "end-seq", "end-map", "end-doc"}));
}

TEST(YamlEvents, TheFirstSyntaxErrorIsLocatedAndNothingIsPrinted) {
  Lines lines;
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  const auto error = parse_yaml_events(
      "- key: m1\n  prompt: \"unterminated\n- key: m2\n  prompt: second\n", "jobs.yaml", lines);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->to_string(), "jobs.yaml:2:11: wrongly indented double-quoted scalar");
}

TEST(YamlEvents, ControlCharactersAreRefusedWhereTheyAre) {
  Lines lines;
  // A NUL would otherwise end the stream early, silently dropping the job after it.
  const auto nul = parse_yaml_events(std::string("- a\n- b\0\n- c\n", 12), "f.yaml", lines);
  ASSERT_TRUE(nul.has_value());
  EXPECT_EQ(nul->to_string(),
            "f.yaml:2:4: control character U+0000 is not allowed in YAML (write it as an "
            "escape in a double-quoted string)");
  EXPECT_TRUE(lines.lines.empty());
  // Columns count characters, not bytes.
  const auto escape = parse_yaml_events("k: \xc3\xa9\x1b\n", "f.yaml", lines);
  ASSERT_TRUE(escape.has_value());
  EXPECT_THAT(escape->to_string(), ::testing::StartsWith("f.yaml:1:5: control character U+001B"));
  // Tabs and CRLF line ends are fine; escapes are the way to write control characters.
  EXPECT_FALSE(parse_yaml_events("k:\t\"a\\x01\\0\"\r\n", "f.yaml", lines).has_value());
  EXPECT_EQ(lines.lines.back(), "end-doc");
}

// libfyaml 0.7.12 loops forever on this (found by fuzz_yaml_events); malformed UTF-8 never
// reaches it.
TEST(YamlEvents, MalformedUtf8IsRefusedWhereItIsBeforeTheParserSeesIt) {
  Lines lines;
  const auto directive = parse_yaml_events("%\x9b", "f.yaml", lines);
  ASSERT_TRUE(directive.has_value());
  EXPECT_EQ(directive->to_string(), "f.yaml:1:2: not valid UTF-8 (a YAML file is UTF-8 text)");
  for (const std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                                "\x80", "\xff"}) {
    const auto error = parse_yaml_events("ok: \xc3\xa9\nk: " + bad + "\n", "f.yaml", lines);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->to_string(), "f.yaml:2:4: not valid UTF-8 (a YAML file is UTF-8 text)");
  }
  // Every length of well-formed sequence passes, the BOM included.
  EXPECT_FALSE(parse_yaml_events("\xef\xbb\xbfk: \"\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"\n", "f.yaml",
                                 lines)
                   .has_value());
}

TEST(YamlEvents, AHandlerMayStopTheParseByThrowing) {
  struct Stop {};
  class Stopper final : public YamlEventHandler {
   public:
    void on_document_start(const YamlMark&) override {}
    void on_document_end() override {}
    void on_null(const YamlMark&, std::string_view) override {}
    void on_scalar(const YamlMark&, std::string_view, std::string_view,
                   std::string_view value) override {
      if (value == "stop") throw Stop{};
    }
    void on_alias(const YamlMark&, std::string_view) override {}
    void on_sequence_start(const YamlMark&, std::string_view, std::string_view) override {}
    void on_sequence_end() override {}
    void on_map_start(const YamlMark&, std::string_view, std::string_view) override {}
    void on_map_end() override {}
  } stopper;
  EXPECT_THROW(parse_yaml_events("[go, stop, never]", "f.yaml", stopper), Stop);
}

}  // namespace
}  // namespace devin_orch::app
