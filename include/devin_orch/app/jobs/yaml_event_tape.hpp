// A recording of a YAML document's parser events, compact enough to keep for a job file, so
// that the pass building jobs replays the screening pass's events instead of parsing the text
// a second time. Beyond a byte budget it stops recording and the caller parses again.
#pragma once

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/mark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace devin_orch::app {

class YamlEventTape final : public YAML::EventHandler {
 public:
  // Every event is also passed on to `forward` (may be null). `budget_bytes`: the most the
  // recording may hold; 0 records nothing.
  YamlEventTape(YAML::EventHandler* forward, std::size_t budget_bytes);

  // False when the document did not fit the budget: replay() must not be used.
  bool complete() const noexcept { return !overflowed_; }
  // Plays the first document's events, as the parser delivered them, into `handler`.
  void replay(YAML::EventHandler& handler) const;

  void OnDocumentStart(const YAML::Mark& mark) override;
  void OnDocumentEnd() override;
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override;
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override;
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override;
  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value style) override;
  void OnSequenceEnd() override;
  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value style) override;
  void OnMapEnd() override;
  void OnAnchor(const YAML::Mark& mark, const std::string& anchor_name) override;

 private:
  enum class Kind : std::uint8_t {
    document_start, document_end, null, alias, scalar, sequence_start, sequence_end,
    map_start, map_end, anchor,
  };
  // 32 bytes: a job of three fields is seven events. Strings live in one shared buffer.
  struct Event {
    Kind kind;
    std::uint8_t style;
    std::uint32_t anchor;
    std::int32_t pos, line, column;
    std::uint32_t tag_size;    // the tag, then the value, start at text_at
    std::uint32_t value_size;
    std::uint32_t text_at;
  };

  void record(Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor = 0,
              const std::string& tag = {}, const std::string& value = {},
              YAML::EmitterStyle::value style = YAML::EmitterStyle::Default);

  YAML::EventHandler* forward_;
  std::size_t budget_;
  bool overflowed_ = false;
  bool first_document_done_ = false;
  std::vector<Event> events_;
  std::string text_;
};

}  // namespace devin_orch::app
