// A small YAML value tree with source marks, built from parser events one subtree at a time:
// a job file is read job by job instead of as one yaml-cpp tree of the whole file.
#pragma once

#include <yaml-cpp/mark.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

struct YamlEntry;

struct YamlValue {
  enum class Kind { null, scalar, sequence, map };

  Kind kind = Kind::null;
  YAML::Mark mark = YAML::Mark::null_mark();
  std::string tag;     // a scalar's: "?" plain, "!" quoted, or its explicit tag
  std::string scalar;
  std::vector<YamlValue> items;     // a sequence's
  std::vector<YamlEntry> entries;   // a map's, in file order

  bool is_null() const noexcept { return kind == Kind::null; }
  bool is_scalar() const noexcept { return kind == Kind::scalar; }
  bool is_sequence() const noexcept { return kind == Kind::sequence; }
  bool is_map() const noexcept { return kind == Kind::map; }

  // The value of the first entry whose key is the plain text `key`; null when absent or not
  // a map.
  const YamlValue* find(std::string_view key) const noexcept;

  // YAML 1.1 booleans as yaml-cpp reads them (true/yes/on, false/no/off, any capitalisation
  // yaml-cpp accepts); nullopt for anything else.
  std::optional<bool> as_bool() const;
};

struct YamlEntry {
  YamlValue key;
  YamlValue value;
};

// Receives the events of one value (a scalar, or a collection from its start to its end) and
// puts its tree together.
class YamlValueBuilder {
 public:
  void scalar(const YAML::Mark& mark, const std::string& tag, const std::string& text);
  void null(const YAML::Mark& mark);
  void open(YamlValue::Kind kind, const YAML::Mark& mark);
  void close();

  bool complete() const noexcept { return complete_; }
  // The finished value; the builder starts over.
  YamlValue take();

 private:
  struct Frame {
    YamlValue* value;
    bool key_next = true;
  };
  YamlValue* attach(YamlValue value);

  YamlValue root_;
  std::vector<Frame> open_;
  bool complete_ = false;
};

// How a value reads in an error message, like describe_yaml for a yaml-cpp node.
std::string describe_yaml(const YamlValue& value);

}  // namespace devin_orch::app
