// A small YAML value tree with source marks, built from parser events one subtree at a time:
// a job file is read job by job, and a config file, which is small, as one tree.
#pragma once

#include "devin_orch/app/formats/diagnostic.hpp"
#include "devin_orch/app/formats/yaml_events.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace devin_orch::app {

struct YamlEntry;

struct YamlValue {
  enum class Kind { null, scalar, sequence, map };

  Kind kind = Kind::null;
  YamlMark mark;
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

  // The YAML 1.1 booleans job files have always accepted (true/yes/on, false/no/off, y/n; all
  // lower case, all upper case or capitalised); nullopt for anything else.
  std::optional<bool> as_bool() const;

  bool operator==(const YamlValue&) const;
};

struct YamlEntry {
  YamlValue key;
  YamlValue value;

  bool operator==(const YamlEntry&) const = default;
};

// Receives the events of one value (a scalar, or a collection from its start to its end) and
// puts its tree together.
class YamlValueBuilder {
 public:
  void scalar(const YamlMark& mark, std::string_view tag, std::string_view text);
  void null(const YamlMark& mark);
  void open(YamlValue::Kind kind, const YamlMark& mark);
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

// Screens `text` (screen_yaml with `limits`: one document, no aliases unless allowed, bounded
// size) and returns its document as one tree; an empty document is a null value. For small
// files only (a config): job files are read one job at a time instead.
std::variant<YamlValue, Diagnostic> load_yaml_document(const std::string& text,
                                                       const std::string& file,
                                                       const YamlScreenLimits& limits);

// How a value reads in an error message: "a map", "a list", "nothing", or the scalar quoted.
std::string describe_yaml(const YamlValue& value);

}  // namespace devin_orch::app
