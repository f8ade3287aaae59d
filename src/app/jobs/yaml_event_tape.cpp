// Recording and replaying YAML parser events (see the header for why).
#include "devin_orch/app/jobs/yaml_event_tape.hpp"

#include <limits>

namespace devin_orch::app {

YamlEventTape::YamlEventTape(YAML::EventHandler* forward, std::size_t budget_bytes)
    : forward_(forward), budget_(budget_bytes), overflowed_(budget_bytes == 0) {}

void YamlEventTape::record(Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor,
                           const std::string& tag, const std::string& value,
                           YAML::EmitterStyle::value style) {
  // Only the first document is replayed: the job file reader reads no other.
  if (overflowed_ || first_document_done_) return;
  constexpr auto kMax = std::numeric_limits<std::uint32_t>::max();
  const std::size_t used = (events_.size() + 1) * sizeof(Event) + text_.size() + tag.size() +
                           value.size();
  if (used > budget_ || anchor > kMax || text_.size() + tag.size() + value.size() > kMax) {
    overflowed_ = true;
    events_ = {};
    text_ = {};
    return;
  }
  events_.push_back(Event{.kind = kind,
                          .style = static_cast<std::uint8_t>(style),
                          .anchor = static_cast<std::uint32_t>(anchor),
                          .pos = mark.pos,
                          .line = mark.line,
                          .column = mark.column,
                          .tag_size = static_cast<std::uint32_t>(tag.size()),
                          .value_size = static_cast<std::uint32_t>(value.size()),
                          .text_at = static_cast<std::uint32_t>(text_.size())});
  text_ += tag;
  text_ += value;
}

void YamlEventTape::replay(YAML::EventHandler& handler) const {
  std::string tag;
  std::string value;
  for (const auto& event : events_) {
    YAML::Mark mark;
    mark.pos = event.pos;
    mark.line = event.line;
    mark.column = event.column;
    tag.assign(text_, event.text_at, event.tag_size);
    value.assign(text_, event.text_at + event.tag_size, event.value_size);
    const auto style = static_cast<YAML::EmitterStyle::value>(event.style);
    switch (event.kind) {
      case Kind::document_start: handler.OnDocumentStart(mark); break;
      case Kind::document_end: handler.OnDocumentEnd(); break;
      case Kind::null: handler.OnNull(mark, event.anchor); break;
      case Kind::alias: handler.OnAlias(mark, event.anchor); break;
      case Kind::scalar: handler.OnScalar(mark, tag, event.anchor, value); break;
      case Kind::sequence_start: handler.OnSequenceStart(mark, tag, event.anchor, style); break;
      case Kind::sequence_end: handler.OnSequenceEnd(); break;
      case Kind::map_start: handler.OnMapStart(mark, tag, event.anchor, style); break;
      case Kind::map_end: handler.OnMapEnd(); break;
      case Kind::anchor: handler.OnAnchor(mark, value); break;
    }
  }
}

void YamlEventTape::OnDocumentStart(const YAML::Mark& mark) {
  record(Kind::document_start, mark);
  if (forward_ != nullptr) forward_->OnDocumentStart(mark);
}

void YamlEventTape::OnDocumentEnd() {
  record(Kind::document_end, YAML::Mark::null_mark());
  first_document_done_ = true;
  if (forward_ != nullptr) forward_->OnDocumentEnd();
}

void YamlEventTape::OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) {
  record(Kind::null, mark, anchor);
  if (forward_ != nullptr) forward_->OnNull(mark, anchor);
}

void YamlEventTape::OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) {
  record(Kind::alias, mark, anchor);
  if (forward_ != nullptr) forward_->OnAlias(mark, anchor);
}

void YamlEventTape::OnScalar(const YAML::Mark& mark, const std::string& tag,
                             YAML::anchor_t anchor, const std::string& value) {
  record(Kind::scalar, mark, anchor, tag, value);
  if (forward_ != nullptr) forward_->OnScalar(mark, tag, anchor, value);
}

void YamlEventTape::OnSequenceStart(const YAML::Mark& mark, const std::string& tag,
                                    YAML::anchor_t anchor, YAML::EmitterStyle::value style) {
  record(Kind::sequence_start, mark, anchor, tag, {}, style);
  if (forward_ != nullptr) forward_->OnSequenceStart(mark, tag, anchor, style);
}

void YamlEventTape::OnSequenceEnd() {
  record(Kind::sequence_end, YAML::Mark::null_mark());
  if (forward_ != nullptr) forward_->OnSequenceEnd();
}

void YamlEventTape::OnMapStart(const YAML::Mark& mark, const std::string& tag,
                               YAML::anchor_t anchor, YAML::EmitterStyle::value style) {
  record(Kind::map_start, mark, anchor, tag, {}, style);
  if (forward_ != nullptr) forward_->OnMapStart(mark, tag, anchor, style);
}

void YamlEventTape::OnMapEnd() {
  record(Kind::map_end, YAML::Mark::null_mark());
  if (forward_ != nullptr) forward_->OnMapEnd();
}

void YamlEventTape::OnAnchor(const YAML::Mark& mark, const std::string& anchor_name) {
  record(Kind::anchor, mark, 0, {}, anchor_name);
  if (forward_ != nullptr) forward_->OnAnchor(mark, anchor_name);
}

}  // namespace devin_orch::app
