// The YAML parser as the rest of the code sees it: a stream of events with source marks, and
// the first syntax error as a located Diagnostic. Only yaml_events.cpp knows which library
// parses (libfyaml), so this header stays light.
#pragma once

#include "devin_orch/app/formats/diagnostic.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app {

// Where an event starts in the text. 0-based; line -1 when the parser gave no position (an
// empty value has no token of its own: it gets the end of the token before it).
struct YamlMark {
  long pos = -1;
  int line = -1;
  int column = -1;

  bool known() const noexcept { return line >= 0; }
  bool operator==(const YamlMark&) const = default;
};

// Receives the parser's events in document order. A handler may throw to stop the parse: the
// parser's resources are released on the way out.
//
// Scalar tags: "?" for a plain scalar without a tag, "!" for a quoted or block scalar without
// one (YAML's non-specific tags), else the tag fully resolved, like "tag:yaml.org,2002:str" for
// `!!str`. A plain untagged scalar that YAML 1.2's core schema reads as null (empty, `~`,
// `null`, `Null`, `NULL`) arrives as on_null instead.
class YamlEventHandler {
 public:
  virtual ~YamlEventHandler() = default;

  virtual void on_document_start(const YamlMark& mark) = 0;
  virtual void on_document_end() = 0;
  virtual void on_null(const YamlMark& mark, std::string_view anchor) = 0;
  virtual void on_scalar(const YamlMark& mark, std::string_view tag, std::string_view anchor,
                         std::string_view value) = 0;
  virtual void on_alias(const YamlMark& mark, std::string_view anchor) = 0;
  virtual void on_sequence_start(const YamlMark& mark, std::string_view tag,
                                 std::string_view anchor) = 0;
  virtual void on_sequence_end() = 0;
  virtual void on_map_start(const YamlMark& mark, std::string_view tag,
                            std::string_view anchor) = 0;
  virtual void on_map_end() = 0;
};

// Parses the whole stream in `text` (every document) into `handler`. Returns the first syntax
// error, located in `file` (1-based line and column); the handler has then seen the events
// before it. Nothing is printed: the parser's own messages become the Diagnostic's reason.
std::optional<Diagnostic> parse_yaml_events(std::string_view text, const std::string& file,
                                            YamlEventHandler& handler);

// A Diagnostic at `mark` (file only when the mark is unknown).
Diagnostic located(const std::string& file, const YamlMark& mark, std::string reason,
                   std::string field = {});

}  // namespace devin_orch::app
