// A located, human-readable problem with an input file: "file:line:column: field: reason", and
// the guards every loader of an untrusted input file shares (size cap, YAML screening, hints).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace devin_orch::app {

class YamlEventHandler;

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string field;   // dotted path, e.g. "jobs[3].prompt" or "poll.initial_delay"
  std::string reason;

  std::string to_string() const;
  bool operator==(const Diagnostic&) const = default;
};

// Reads a whole file of at most `max_bytes`. On failure returns nullopt and fills `error`
// (file set, reason with strerror or the size limit).
std::optional<std::string> read_input_file(const std::string& path, std::size_t max_bytes,
                                           Diagnostic* error);

struct YamlScreenLimits {
  int max_depth = 32;              // nested maps/sequences
  // Also caps the count of ',', '[' and '{' in the raw text, a bound on flow collections
  // ([...] or {...}) that holds before the parser has looked at any of it.
  std::size_t max_nodes = 100'000;
  bool allow_aliases = false;      // aliases can expand exponentially when walked
};

// Parses `text` as a stream of YAML events without building a tree and returns the first
// problem: malformed YAML, more than one document, too deep, too many nodes, an alias. Run it
// before any tree is built so hostile input never reaches a tree builder. Each event that
// passed the screen is also handed to `observer`, if given (one parse for both); when a problem
// is returned the observer may have seen the events before it, so act on its results only
// after a clean screen.
std::optional<Diagnostic> screen_yaml(const std::string& text, const std::string& file,
                                      const YamlScreenLimits& limits,
                                      YamlEventHandler* observer = nullptr);

// The entry of `known` nearest to `word` if it is within edit distance 2, for "did you mean".
std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> known);

// How a YAML scalar reads in an error message: quoted, cut at 40 bytes, never raw invalid
// UTF-8 (describe_yaml in yaml_value.hpp does whole values).
std::string describe_yaml_scalar(std::string_view scalar);

bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace devin_orch::app
