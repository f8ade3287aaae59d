// Building YamlValue trees from parser events, and the lookups job-file reading needs.
#include "devin_orch/app/jobs/yaml_value.hpp"

#include "devin_orch/app/formats/diagnostic.hpp"

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
  // yaml-cpp's convert<bool>: these words, all lower case, all upper case or capitalised.
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

void YamlValueBuilder::scalar(const YAML::Mark& mark, const std::string& tag,
                              const std::string& text) {
  attach(YamlValue{.kind = YamlValue::Kind::scalar, .mark = mark, .tag = tag, .scalar = text});
  complete_ = open_.empty();
}

void YamlValueBuilder::null(const YAML::Mark& mark) {
  attach(YamlValue{.kind = YamlValue::Kind::null, .mark = mark});
  complete_ = open_.empty();
}

void YamlValueBuilder::open(YamlValue::Kind kind, const YAML::Mark& mark) {
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
