// The YAML layer (parse_yaml_events, YamlValueBuilder, screen_yaml) against the YAML test
// suite's 402 cases (../shared/yaml-test-suite beside the checkout, as the project provides it,
// or $DEVIN_ORCH_YAML_TEST_SUITE_DIR at configure time): every case that must fail is rejected with a
// located error, every valid case yields the data of its in.json, and the screen in front of
// job files and the config refuses only errors and the two things those files may not use.
#include "devin_orch/app/formats/yaml_events.hpp"
#include "devin_orch/app/formats/yaml_value.hpp"

#include "support/process.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace devin_orch::app {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// No case is left out of the comparison: the parser reads every stream, multi-document ones
// and aliases included. What our own files may not use is the screen's policy, checked case by
// case in the second test:
// - more than one document: a job file or a config is one document, and a second one would
//   otherwise be silently ignored;
// - aliases (*name): expanding them can blow up exponentially (a "billion laughs" file).
constexpr std::string_view kMoreThanOneDocument = "more than one YAML document; use a single one";
constexpr std::string_view kAliasesRefused =
    "YAML aliases (*name) are not allowed here; write the value out";

// Found by CMake at configure time (see tests/CMakeLists.txt); this test is built only then.
fs::path suite_dir() { return DEVIN_ORCH_YAML_TEST_SUITE_DIR; }

struct Case {
  std::string id;  // "229Q", or "SM9W/01" for a numbered sub-case
  fs::path dir;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  const fs::path root = suite_dir();
  if (!fs::is_directory(root)) return cases;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file() && entry.path().filename() == "in.yaml") {
      cases.push_back(Case{.id = entry.path().parent_path().lexically_relative(root).string(),
                           .dir = entry.path().parent_path()});
    }
  }
  std::sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.id < b.id; });
  return cases;
}

// Builds each document's YamlValue with YamlValueBuilder. The layer's screen refuses aliases
// in our own files; the suite uses them, so this handler expands each alias by replaying the
// events recorded for its anchor, as a loader that accepts aliases would.
class DocumentCollector final : public YamlEventHandler {
 public:
  std::vector<YamlValue> documents;

  void on_document_start(const YamlMark&) override { anchors_.clear(); }
  void on_document_end() override {}
  void on_null(const YamlMark& mark, std::string_view anchor) override {
    begin(anchor);
    add({.kind = Recorded::null, .mark = mark});
    builder_.null(mark);
    finish_node();
  }
  void on_scalar(const YamlMark& mark, std::string_view tag, std::string_view anchor,
                 std::string_view value) override {
    begin(anchor);
    add({.kind = Recorded::scalar, .mark = mark, .tag = std::string(tag),
         .value = std::string(value)});
    builder_.scalar(mark, tag, value);
    finish_node();
  }
  void on_alias(const YamlMark&, std::string_view anchor) override {
    const auto found = anchors_.find(anchor);
    if (found == anchors_.end()) {
      ADD_FAILURE() << "alias to an unknown anchor '" << anchor << "' was not rejected";
      return;
    }
    const std::vector<Recorded> events = found->second;  // a copy: replaying may add anchors
    for (const Recorded& event : events) replay(event);
  }
  void on_sequence_start(const YamlMark& mark, std::string_view, std::string_view anchor) override {
    begin(anchor);
    add({.kind = Recorded::sequence_start, .mark = mark});
    builder_.open(YamlValue::Kind::sequence, mark);
    ++depth_;
  }
  void on_sequence_end() override {
    add({.kind = Recorded::sequence_end});
    builder_.close();
    --depth_;
    finish_node();
  }
  void on_map_start(const YamlMark& mark, std::string_view, std::string_view anchor) override {
    begin(anchor);
    add({.kind = Recorded::map_start, .mark = mark});
    builder_.open(YamlValue::Kind::map, mark);
    ++depth_;
  }
  void on_map_end() override {
    add({.kind = Recorded::map_end});
    builder_.close();
    --depth_;
    finish_node();
  }

 private:
  struct Recorded {
    enum Kind { null, scalar, sequence_start, sequence_end, map_start, map_end } kind;
    YamlMark mark;
    std::string tag;
    std::string value;
  };
  struct Recording {
    std::string anchor;
    int depth;  // depth_ before its node started
    std::vector<Recorded> events;
  };

  void replay(const Recorded& event) {
    switch (event.kind) {
      case Recorded::null: on_null(event.mark, {}); break;
      case Recorded::scalar: on_scalar(event.mark, event.tag, {}, event.value); break;
      case Recorded::sequence_start: on_sequence_start(event.mark, {}, {}); break;
      case Recorded::sequence_end: on_sequence_end(); break;
      case Recorded::map_start: on_map_start(event.mark, {}, {}); break;
      case Recorded::map_end: on_map_end(); break;
    }
  }
  void begin(std::string_view anchor) {
    if (!anchor.empty()) recordings_.push_back({std::string(anchor), depth_, {}});
  }
  void add(const Recorded& event) {
    for (Recording& recording : recordings_) recording.events.push_back(event);
  }
  // A node ended: recordings that started at this depth are complete.
  void finish_node() {
    while (!recordings_.empty() && recordings_.back().depth == depth_) {
      anchors_[recordings_.back().anchor] = std::move(recordings_.back().events);
      recordings_.pop_back();
    }
    if (builder_.complete()) documents.push_back(builder_.take());
  }

  YamlValueBuilder builder_;
  int depth_ = 0;
  std::vector<Recording> recordings_;
  std::map<std::string, std::vector<Recorded>, std::less<>> anchors_;
};

bool is_one_of(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), text) != words.end();
}

bool all_of(std::string_view text, std::string_view allowed) {
  return !text.empty() && text.find_first_not_of(allowed) == std::string_view::npos;
}

// YAML 1.2's core schema, which the suite's in.json follows: how a scalar reads as JSON.
// nullopt for what JSON cannot hold (.inf, .nan).
std::optional<json::value> scalar_json(const YamlValue& value) {
  constexpr std::string_view kStr = "tag:yaml.org,2002:str";
  const std::string& text = value.scalar;
  const std::string& tag = value.tag;
  // Quoted and block scalars ("!"), explicit strings and tags the core schema does not know
  // are strings.
  if (tag != "?" && tag.rfind("tag:yaml.org,2002:", 0) != 0) return json::value(text);
  if (tag == kStr) return json::value(text);
  if (tag == "tag:yaml.org,2002:null" || is_one_of(text, {"~", "null", "Null", "NULL", ""})) {
    return json::value(nullptr);
  }
  if (is_one_of(text, {"true", "True", "TRUE"})) return json::value(true);
  if (is_one_of(text, {"false", "False", "FALSE"})) return json::value(false);
  std::string_view digits = text;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
  if (all_of(digits, "0123456789")) return json::value(std::strtod(text.c_str(), nullptr));
  if (text.size() > 2 && text.starts_with("0o") && all_of(text.substr(2), "01234567")) {
    return json::value(static_cast<double>(std::strtoll(text.c_str() + 2, nullptr, 8)));
  }
  if (text.size() > 2 && text.starts_with("0x") &&
      all_of(text.substr(2), "0123456789abcdefABCDEF")) {
    return json::value(static_cast<double>(std::strtoll(text.c_str() + 2, nullptr, 16)));
  }
  if (is_one_of(digits, {".inf", ".Inf", ".INF"}) || is_one_of(text, {".nan", ".NaN", ".NAN"})) {
    return std::nullopt;
  }
  // [-+]? ( . [0-9]+ | [0-9]+ ( . [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
  std::size_t i = 0;
  const auto run = [&] {
    const std::size_t start = i;
    while (i < digits.size() && digits[i] >= '0' && digits[i] <= '9') ++i;
    return i - start;
  };
  const std::size_t whole = run();
  std::size_t fraction = 0;
  bool point = false;
  if (i < digits.size() && digits[i] == '.') {
    point = true;
    ++i;
    fraction = run();
  }
  bool number = whole > 0 || (point && fraction > 0);
  if (number && i < digits.size() && (digits[i] == 'e' || digits[i] == 'E')) {
    ++i;
    if (i < digits.size() && (digits[i] == '-' || digits[i] == '+')) ++i;
    number = run() > 0;
  }
  if (number && i == digits.size()) return json::value(std::strtod(text.c_str(), nullptr));
  return json::value(text);
}

// The document as JSON, or why it has no JSON form.
std::variant<json::value, std::string> to_json(const YamlValue& value) {
  switch (value.kind) {
    case YamlValue::Kind::null: return json::value(nullptr);
    case YamlValue::Kind::scalar: {
      if (auto converted = scalar_json(value)) return std::move(*converted);
      return "the scalar " + value.scalar + " has no JSON form";
    }
    case YamlValue::Kind::sequence: {
      json::array array;
      for (const YamlValue& item : value.items) {
        auto converted = to_json(item);
        if (auto* why = std::get_if<std::string>(&converted)) return *why;
        array.push_back(std::move(std::get<json::value>(converted)));
      }
      return json::value(std::move(array));
    }
    case YamlValue::Kind::map: {
      json::object object;
      for (const YamlEntry& entry : value.entries) {
        if (entry.key.is_sequence() || entry.key.is_map()) return std::string("a collection as a key");
        auto converted = to_json(entry.value);
        if (auto* why = std::get_if<std::string>(&converted)) return *why;
        object[entry.key.scalar] = std::move(std::get<json::value>(converted));
      }
      return json::value(std::move(object));
    }
  }
  return std::string("unknown kind");
}

// Numbers compare by value whatever their JSON spelling (1, 1.0, 1e0).
json::value normalised(const json::value& value) {
  if (value.is_number()) return json::value(value.to_number<double>());
  if (value.is_array()) {
    json::array array;
    for (const auto& item : value.as_array()) array.push_back(normalised(item));
    return array;
  }
  if (value.is_object()) {
    json::object object;
    for (const auto& [key, item] : value.as_object()) object[key] = normalised(item);
    return object;
  }
  return value;
}

// in.json holds one JSON value per document, one after the other.
std::vector<json::value> read_json_values(const std::string& text) {
  std::vector<json::value> values;
  json::stream_parser parser;
  std::size_t at = 0;
  for (;;) {
    at = text.find_first_not_of(" \t\r\n", at);
    if (at == std::string::npos) break;
    parser.reset();
    boost::system::error_code ec;
    at += parser.write_some(text.data() + at, text.size() - at, ec);
    if (!ec && !parser.done()) parser.finish(ec);
    if (ec) throw std::runtime_error("in.json: " + ec.message());
    values.push_back(normalised(parser.release()));
  }
  return values;
}

// What the layer made of one case: the error, or the documents as JSON.
struct Outcome {
  std::optional<Diagnostic> error;
  std::vector<json::value> documents;
  std::optional<std::string> no_json;  // why some document has no JSON form
};

Outcome run_layer(const std::string& text, const std::string& id) {
  Outcome outcome;
  DocumentCollector collector;
  outcome.error = parse_yaml_events(text, id + "/in.yaml", collector);
  if (outcome.error) return outcome;
  for (const YamlValue& document : collector.documents) {
    auto converted = to_json(document);
    if (auto* why = std::get_if<std::string>(&converted)) {
      outcome.no_json = *why;
      continue;
    }
    outcome.documents.push_back(normalised(std::get<json::value>(converted)));
  }
  return outcome;
}

std::string describe(const std::vector<json::value>& values) {
  std::string out;
  for (const auto& value : values) out += json::serialize(value) + "\n";
  return out;
}

TEST(YamlTestSuite, EveryCaseIsRejectedOrYieldsItsJson) {
  const std::vector<Case> cases = all_cases();
  // The suite as copied: a missing or partial copy must fail here, not pass with fewer cases.
  ASSERT_EQ(cases.size(), 402U) << "YAML test suite data not found in " << suite_dir();

  std::size_t rejected = 0;
  std::size_t compared = 0;
  std::size_t parsed_only = 0;
  for (const Case& c : cases) {
    const std::string text = testing::read_file((c.dir / "in.yaml").string());
    const std::string name = testing::read_file((c.dir / "===").string());
    SCOPED_TRACE(c.id + ": " + name);
    const Outcome outcome = run_layer(text, c.id);

    if (fs::exists(c.dir / "error")) {
      if (!outcome.error) {
        ADD_FAILURE() << c.id << " must be rejected; it parsed as\n" << describe(outcome.documents);
        continue;
      }
      // Located: a reader must be able to say where the file is wrong.
      EXPECT_GT(outcome.error->line, 0) << outcome.error->to_string();
      EXPECT_EQ(outcome.error->file, c.id + "/in.yaml");
      ++rejected;
      continue;
    }
    if (outcome.error) {
      ADD_FAILURE() << c.id << " is valid YAML but was rejected: " << outcome.error->to_string();
      continue;
    }
    if (!fs::exists(c.dir / "in.json")) {
      ++parsed_only;  // valid, but its data has no JSON form (the suite gives none)
      continue;
    }
    if (outcome.no_json) {
      ADD_FAILURE() << c.id << ": " << *outcome.no_json;
      continue;
    }
    const auto expected = read_json_values(testing::read_file((c.dir / "in.json").string()));
    // json::value equality: objects compare regardless of key order, as JSON data does.
    EXPECT_TRUE(outcome.documents == expected)
        << c.id << ": got\n" << describe(outcome.documents) << "expected\n" << describe(expected);
    ++compared;
  }
  EXPECT_EQ(rejected, 94U);
  EXPECT_EQ(compared + parsed_only + rejected, cases.size());
  std::cout << "YAML test suite: " << rejected << " rejected, " << compared
            << " compared with in.json, " << parsed_only << " valid without in.json\n";
}

// Counts what a stream holds that the screen's policy is about.
class PolicyCounter final : public YamlEventHandler {
 public:
  int documents = 0;
  int aliases = 0;

  void on_document_start(const YamlMark&) override { ++documents; }
  void on_document_end() override {}
  void on_null(const YamlMark&, std::string_view) override {}
  void on_scalar(const YamlMark&, std::string_view, std::string_view, std::string_view) override {}
  void on_alias(const YamlMark&, std::string_view) override { ++aliases; }
  void on_sequence_start(const YamlMark&, std::string_view, std::string_view) override {}
  void on_sequence_end() override {}
  void on_map_start(const YamlMark&, std::string_view, std::string_view) override {}
  void on_map_end() override {}
};

TEST(YamlTestSuite, TheScreenRefusesErrorsAndOnlyWhatOurFilesMayNotUse) {
  const std::vector<Case> cases = all_cases();
  ASSERT_EQ(cases.size(), 402U) << "YAML test suite data not found in " << suite_dir();
  std::size_t accepted = 0;
  std::size_t several_documents = 0;
  std::size_t with_aliases = 0;
  for (const Case& c : cases) {
    const std::string text = testing::read_file((c.dir / "in.yaml").string());
    SCOPED_TRACE(c.id);
    // The screen's default limits, as the config loader and (with larger counts) job files use.
    const std::optional<Diagnostic> screened = screen_yaml(text, c.id, YamlScreenLimits{});
    if (fs::exists(c.dir / "error")) {
      EXPECT_TRUE(screened.has_value()) << c.id << " must be rejected";
      continue;
    }
    PolicyCounter counter;
    ASSERT_FALSE(parse_yaml_events(text, c.id, counter).has_value());
    std::vector<std::string_view> allowed_reasons;
    if (counter.documents > 1) allowed_reasons.push_back(kMoreThanOneDocument);
    if (counter.aliases > 0) allowed_reasons.push_back(kAliasesRefused);
    if (allowed_reasons.empty()) {
      EXPECT_FALSE(screened.has_value()) << screened->to_string();
      ++accepted;
      continue;
    }
    ASSERT_TRUE(screened.has_value()) << c.id << " has " << counter.documents
                                      << " documents and " << counter.aliases << " aliases";
    EXPECT_NE(std::find(allowed_reasons.begin(), allowed_reasons.end(), screened->reason),
              allowed_reasons.end())
        << screened->to_string();
    EXPECT_GT(screened->line, 0) << screened->to_string();
    if (screened->reason == kMoreThanOneDocument) ++several_documents;
    if (screened->reason == kAliasesRefused) ++with_aliases;
  }
  std::cout << "YAML test suite through the screen: " << accepted << " accepted, "
            << several_documents << " refused for a second document, " << with_aliases
            << " refused for an alias\n";
  EXPECT_EQ(accepted + several_documents + with_aliases + 94, cases.size());
  // Pinned so that a change of policy or parser shows up here as a number that moved.
  EXPECT_EQ(several_documents, 19U);
  EXPECT_EQ(with_aliases, 16U);
}

}  // namespace
}  // namespace devin_orch::app
