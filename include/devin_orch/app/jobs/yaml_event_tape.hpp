// A recording of a YAML document's parser events, compact enough to keep for a job file, so
// that the pass building jobs replays the screening pass's events instead of parsing the text
// a second time. Beyond a byte budget it stops recording and the caller parses again.
#pragma once

#include "devin_orch/app/formats/yaml_events.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

class YamlEventTape final : public YamlEventHandler {
 public:
  // Every event is also passed on to `forward` (may be null). `budget_bytes`: the most the
  // recording may hold; 0 records nothing.
  YamlEventTape(YamlEventHandler* forward, std::size_t budget_bytes);

  // False when the document did not fit the budget: replay() must not be used.
  bool complete() const noexcept { return !overflowed_; }
  // Plays the first document's events, as the parser delivered them, into `handler`.
  void replay(YamlEventHandler& handler) const;

  void on_document_start(const YamlMark& mark) override;
  void on_document_end() override;
  void on_null(const YamlMark& mark, std::string_view anchor) override;
  void on_scalar(const YamlMark& mark, std::string_view tag, std::string_view anchor,
                 std::string_view value) override;
  void on_alias(const YamlMark& mark, std::string_view anchor) override;
  void on_sequence_start(const YamlMark& mark, std::string_view tag,
                         std::string_view anchor) override;
  void on_sequence_end() override;
  void on_map_start(const YamlMark& mark, std::string_view tag, std::string_view anchor) override;
  void on_map_end() override;

 private:
  enum class Kind : std::uint8_t {
    document_start, document_end, null, alias, scalar, sequence_start, sequence_end,
    map_start, map_end,
  };
  // 40 bytes: a job of three fields is seven events. Strings live in one shared buffer.
  struct Event {
    Kind kind;
    std::int32_t line, column;
    std::int64_t pos;
    std::uint32_t tag_size;    // the tag, the anchor, then the value, start at text_at
    std::uint32_t anchor_size;
    std::uint32_t value_size;
    std::uint32_t text_at;
  };

  void record(Kind kind, const YamlMark& mark, std::string_view tag = {},
              std::string_view anchor = {}, std::string_view value = {});

  YamlEventHandler* forward_;
  std::size_t budget_;
  bool overflowed_ = false;
  bool first_document_done_ = false;
  std::vector<Event> events_;
  std::string text_;
};

}  // namespace devin_orch::app
