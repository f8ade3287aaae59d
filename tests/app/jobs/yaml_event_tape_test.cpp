// The YAML event tape: forwarding while recording, replaying the first document exactly as the
// parser delivered it, and giving up beyond its budget.
#include "devin_orch/app/jobs/yaml_event_tape.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

// Writes each event down as a line, marks included.
class EventLog final : public YamlEventHandler {
 public:
  std::vector<std::string> lines;

  void on_document_start(const YamlMark& m) override { add("doc", m); }
  void on_document_end() override { lines.emplace_back("end-doc"); }
  void on_null(const YamlMark& m, std::string_view a) override { add("null", m, a); }
  void on_alias(const YamlMark& m, std::string_view a) override { add("alias", m, a); }
  void on_scalar(const YamlMark& m, std::string_view tag, std::string_view a,
                 std::string_view value) override {
    add("scalar", m, a, std::string(tag) + "|" + std::string(value));
  }
  void on_sequence_start(const YamlMark& m, std::string_view tag, std::string_view a) override {
    add("seq", m, a, std::string(tag));
  }
  void on_sequence_end() override { lines.emplace_back("end-seq"); }
  void on_map_start(const YamlMark& m, std::string_view tag, std::string_view a) override {
    add("map", m, a, std::string(tag));
  }
  void on_map_end() override { lines.emplace_back("end-map"); }

 private:
  void add(const std::string& kind, const YamlMark& m, std::string_view a = {},
           const std::string& text = {}) {
    lines.push_back(kind + " " + std::to_string(m.pos) + ":" + std::to_string(m.line) + ":" +
                    std::to_string(m.column) + " &" + std::string(a) + " " + text);
  }
};

void parse_all(const std::string& text, YamlEventHandler& handler) {
  ASSERT_FALSE(parse_yaml_events(text, "t.yaml", handler).has_value());
}

const std::string kDocuments =
    "- key: a\n  prompt: \"two\\nlines\"\n  tags: [x, !!str 1, ~]\n  base: &b {k: v}\n"
    "  copy: *b\n- !custom tagged\n- \n---\nsecond: document\n";

TEST(YamlEventTape, ForwardsEveryEventAndReplaysTheFirstDocument) {
  EventLog direct;
  parse_all(kDocuments, direct);
  EventLog forwarded;
  YamlEventTape tape(&forwarded, 1U << 20U);
  parse_all(kDocuments, tape);
  EXPECT_EQ(forwarded.lines, direct.lines);
  ASSERT_TRUE(tape.complete());

  EventLog replayed;
  tape.replay(replayed);
  const auto first_end = std::find(direct.lines.begin(), direct.lines.end(), "end-doc");
  ASSERT_NE(first_end, direct.lines.end());
  EXPECT_EQ(replayed.lines, std::vector<std::string>(direct.lines.begin(), first_end + 1));
  EXPECT_GT(replayed.lines.size(), 20U);
}

TEST(YamlEventTape, GivesUpBeyondItsBudgetButStillForwards) {
  for (const std::size_t budget : {std::size_t{0}, std::size_t{100}}) {
    EventLog forwarded;
    YamlEventTape tape(&forwarded, budget);
    parse_all(kDocuments, tape);
    EXPECT_FALSE(tape.complete()) << budget;
    EXPECT_FALSE(forwarded.lines.empty());
  }
}

}  // namespace
}  // namespace devin_orch::app
