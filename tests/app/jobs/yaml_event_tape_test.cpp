// The YAML event tape: forwarding while recording, replaying the first document exactly as the
// parser delivered it, and giving up beyond its budget.
#include "devin_orch/app/jobs/yaml_event_tape.hpp"

#include <yaml-cpp/parser.h>

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

// Writes each event down as a line, marks included.
class EventLog final : public YAML::EventHandler {
 public:
  std::vector<std::string> lines;

  void OnDocumentStart(const YAML::Mark& m) override { add("doc", m); }
  void OnDocumentEnd() override { lines.emplace_back("end-doc"); }
  void OnNull(const YAML::Mark& m, YAML::anchor_t a) override { add("null", m, a); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t a) override { add("alias", m, a); }
  void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t a,
                const std::string& value) override {
    add("scalar", m, a, tag + "|" + value);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string& tag, YAML::anchor_t a,
                       YAML::EmitterStyle::value style) override {
    add("seq", m, a, tag + "|" + std::to_string(style));
  }
  void OnSequenceEnd() override { lines.emplace_back("end-seq"); }
  void OnMapStart(const YAML::Mark& m, const std::string& tag, YAML::anchor_t a,
                  YAML::EmitterStyle::value style) override {
    add("map", m, a, tag + "|" + std::to_string(style));
  }
  void OnMapEnd() override { lines.emplace_back("end-map"); }
  void OnAnchor(const YAML::Mark& m, const std::string& name) override { add("anchor", m, 0, name); }

 private:
  void add(const std::string& kind, const YAML::Mark& m, YAML::anchor_t a = 0,
           const std::string& text = {}) {
    lines.push_back(kind + " " + std::to_string(m.pos) + ":" + std::to_string(m.line) + ":" +
                    std::to_string(m.column) + " &" + std::to_string(a) + " " + text);
  }
};

void parse_all(const std::string& text, YAML::EventHandler& handler) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  while (parser.HandleNextDocument(handler)) {
  }
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
