// Building YamlValue trees from parser events, and the lookups job-file reading needs.
#include "devin_orch/app/formats/yaml_value.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

namespace devin_orch::app {

const YamlValue* YamlValue::find(std::string_view key) const noexcept {
  const auto found = std::find_if(entries.begin(), entries.end(), [&](const YamlEntry& entry) {
    return entry.key.is_scalar() && entry.key.scalar == key;
  });
  return found == entries.end() ? nullptr : &found->value;
}

std::optional<bool> YamlValue::as_bool() const {
  if (!is_scalar()) return std::nullopt;
  // These words, all lower case, all upper case or capitalised (YAML 1.1's booleans).
  static constexpr std::array<std::pair<std::string_view, bool>, 8> kWords{{
      {"y", true}, {"yes", true}, {"true", true}, {"on", true},
      {"n", false}, {"no", false}, {"false", false}, {"off", false},
  }};
  for (const auto& [word, meaning] : kWords) {
    if (scalar.size() != word.size()) continue;
    std::string lower;
    std::string upper;
    std::string capitalised;
    for (std::size_t i = 0; i < word.size(); ++i) {
      const char ch = word[i];
      const auto big = static_cast<char>(ch - 'a' + 'A');
      lower += ch;
      upper += big;
      capitalised += i == 0 ? big : ch;
    }
    if (scalar == lower || scalar == upper || scalar == capitalised) return meaning;
  }
  return std::nullopt;
}

YamlValue* YamlValueBuilder::attach(YamlValue value) {
  if (complete_) throw std::logic_error("YamlValueBuilder: value already complete");
  if (open_.empty()) {
    root_ = std::move(value);
    return &root_;
  }
  // Only the innermost open collection grows, so the pointers to the outer ones stay valid.
  Frame& parent = open_.back();
  if (parent.value->kind == YamlValue::Kind::sequence) {
    parent.value->items.push_back(std::move(value));
    return &parent.value->items.back();
  }
  if (parent.key_next) {
    parent.key_next = false;
    parent.value->entries.push_back(YamlEntry{.key = std::move(value), .value = {}});
    return &parent.value->entries.back().key;
  }
  parent.key_next = true;
  parent.value->entries.back().value = std::move(value);
  return &parent.value->entries.back().value;
}

void YamlValueBuilder::scalar(const YamlMark& mark, std::string_view tag, std::string_view text) {
  attach(YamlValue{.kind = YamlValue::Kind::scalar,
                   .mark = mark,
                   .tag = std::string(tag),
                   .scalar = std::string(text)});
  complete_ = open_.empty();
}

void YamlValueBuilder::null(const YamlMark& mark) {
  attach(YamlValue{.kind = YamlValue::Kind::null, .mark = mark});
  complete_ = open_.empty();
}

void YamlValueBuilder::open(YamlValue::Kind kind, const YamlMark& mark) {
  open_.push_back(Frame{.value = attach(YamlValue{.kind = kind, .mark = mark})});
}

void YamlValueBuilder::close() {
  if (open_.empty()) throw std::logic_error("YamlValueBuilder: close without open");
  open_.pop_back();
  complete_ = open_.empty();
}

YamlValue YamlValueBuilder::take() {
  complete_ = false;
  open_.clear();
  return std::exchange(root_, YamlValue{});
}

bool YamlValue::operator==(const YamlValue& other) const {
  return kind == other.kind && mark == other.mark && tag == other.tag && scalar == other.scalar &&
         items == other.items && entries == other.entries;
}

namespace {

// Builds the one document of a screened text (aliases were refused by the screen).
class TreeHandler final : public YamlEventHandler {
 public:
  YamlValue root;

  void on_document_start(const YamlMark&) override {}
  void on_document_end() override {}
  void on_null(const YamlMark& mark, std::string_view) override {
    builder_.null(mark);
    finish();
  }
  void on_scalar(const YamlMark& mark, std::string_view tag, std::string_view,
                 std::string_view value) override {
    builder_.scalar(mark, tag, value);
    finish();
  }
  void on_alias(const YamlMark& mark, std::string_view) override { on_null(mark, {}); }
  void on_sequence_start(const YamlMark& mark, std::string_view, std::string_view) override {
    builder_.open(YamlValue::Kind::sequence, mark);
  }
  void on_sequence_end() override {
    builder_.close();
    finish();
  }
  void on_map_start(const YamlMark& mark, std::string_view, std::string_view) override {
    builder_.open(YamlValue::Kind::map, mark);
  }
  void on_map_end() override {
    builder_.close();
    finish();
  }

 private:
  void finish() {
    if (builder_.complete()) root = builder_.take();
  }
  YamlValueBuilder builder_;
};

}  // namespace

std::variant<YamlValue, Diagnostic> load_yaml_document(const std::string& text,
                                                       const std::string& file,
                                                       const YamlScreenLimits& limits) {
  YamlScreenLimits screen = limits;
  screen.allow_aliases = false;  // the tree has no place for them
  TreeHandler tree;
  if (auto problem = screen_yaml(text, file, screen, &tree)) return std::move(*problem);
  return std::move(tree.root);
}

std::string describe_yaml(const YamlValue& value) {
  switch (value.kind) {
    case YamlValue::Kind::map: return "a map";
    case YamlValue::Kind::sequence: return "a list";
    case YamlValue::Kind::null: return "nothing";
    case YamlValue::Kind::scalar: break;
  }
  return describe_yaml_scalar(value.scalar);
}

}  // namespace devin_orch::app
