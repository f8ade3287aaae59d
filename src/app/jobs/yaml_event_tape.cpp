// Recording and replaying YAML parser events (see the header for why).
#include "devin_orch/app/jobs/yaml_event_tape.hpp"

#include <limits>

namespace devin_orch::app {

YamlEventTape::YamlEventTape(YamlEventHandler* forward, std::size_t budget_bytes)
    : forward_(forward), budget_(budget_bytes), overflowed_(budget_bytes == 0) {}

void YamlEventTape::record(Kind kind, const YamlMark& mark, std::string_view tag,
                           std::string_view anchor, std::string_view value) {
  // Only the first document is replayed: the job file reader reads no other.
  if (overflowed_ || first_document_done_) return;
  constexpr auto kMax = std::numeric_limits<std::uint32_t>::max();
  const std::size_t strings = tag.size() + anchor.size() + value.size();
  const std::size_t used = (events_.size() + 1) * sizeof(Event) + text_.size() + strings;
  if (used > budget_ || text_.size() + strings > kMax) {
    overflowed_ = true;
    events_ = {};
    text_ = {};
    return;
  }
  events_.push_back(Event{.kind = kind,
                          .line = mark.line,
                          .column = mark.column,
                          .pos = mark.pos,
                          .tag_size = static_cast<std::uint32_t>(tag.size()),
                          .anchor_size = static_cast<std::uint32_t>(anchor.size()),
                          .value_size = static_cast<std::uint32_t>(value.size()),
                          .text_at = static_cast<std::uint32_t>(text_.size())});
  text_ += tag;
  text_ += anchor;
  text_ += value;
}

void YamlEventTape::replay(YamlEventHandler& handler) const {
  const std::string_view text(text_);
  for (const auto& event : events_) {
    const YamlMark mark{.pos = static_cast<long>(event.pos),
                        .line = event.line,
                        .column = event.column};
    const std::string_view tag = text.substr(event.text_at, event.tag_size);
    const std::string_view anchor = text.substr(event.text_at + event.tag_size, event.anchor_size);
    const std::string_view value =
        text.substr(event.text_at + event.tag_size + event.anchor_size, event.value_size);
    switch (event.kind) {
      case Kind::document_start: handler.on_document_start(mark); break;
      case Kind::document_end: handler.on_document_end(); break;
      case Kind::null: handler.on_null(mark, anchor); break;
      case Kind::alias: handler.on_alias(mark, anchor); break;
      case Kind::scalar: handler.on_scalar(mark, tag, anchor, value); break;
      case Kind::sequence_start: handler.on_sequence_start(mark, tag, anchor); break;
      case Kind::sequence_end: handler.on_sequence_end(); break;
      case Kind::map_start: handler.on_map_start(mark, tag, anchor); break;
      case Kind::map_end: handler.on_map_end(); break;
    }
  }
}

void YamlEventTape::on_document_start(const YamlMark& mark) {
  record(Kind::document_start, mark);
  if (forward_ != nullptr) forward_->on_document_start(mark);
}

void YamlEventTape::on_document_end() {
  record(Kind::document_end, {});
  first_document_done_ = true;
  if (forward_ != nullptr) forward_->on_document_end();
}

void YamlEventTape::on_null(const YamlMark& mark, std::string_view anchor) {
  record(Kind::null, mark, {}, anchor);
  if (forward_ != nullptr) forward_->on_null(mark, anchor);
}

void YamlEventTape::on_alias(const YamlMark& mark, std::string_view anchor) {
  record(Kind::alias, mark, {}, anchor);
  if (forward_ != nullptr) forward_->on_alias(mark, anchor);
}

void YamlEventTape::on_scalar(const YamlMark& mark, std::string_view tag,
                              std::string_view anchor, std::string_view value) {
  record(Kind::scalar, mark, tag, anchor, value);
  if (forward_ != nullptr) forward_->on_scalar(mark, tag, anchor, value);
}

void YamlEventTape::on_sequence_start(const YamlMark& mark, std::string_view tag,
                                      std::string_view anchor) {
  record(Kind::sequence_start, mark, tag, anchor);
  if (forward_ != nullptr) forward_->on_sequence_start(mark, tag, anchor);
}

void YamlEventTape::on_sequence_end() {
  record(Kind::sequence_end, {});
  if (forward_ != nullptr) forward_->on_sequence_end();
}

void YamlEventTape::on_map_start(const YamlMark& mark, std::string_view tag,
                                 std::string_view anchor) {
  record(Kind::map_start, mark, tag, anchor);
  if (forward_ != nullptr) forward_->on_map_start(mark, tag, anchor);
}

void YamlEventTape::on_map_end() {
  record(Kind::map_end, {});
  if (forward_ != nullptr) forward_->on_map_end();
}

}  // namespace devin_orch::app
