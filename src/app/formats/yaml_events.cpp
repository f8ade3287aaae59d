// The one place that talks to libfyaml: its event parser, driven to the end of the stream, its
// events turned into YamlEventHandler calls, and its diagnostics collected instead of printed.
#include "devin_orch/app/formats/yaml_events.hpp"

#include <libfyaml.h>

#include <memory>
#include <utility>

namespace devin_orch::app {
namespace {

struct DiagDeleter {
  void operator()(fy_diag* diag) const noexcept { fy_diag_destroy(diag); }
};
struct ParserDeleter {
  void operator()(fy_parser* parser) const noexcept { fy_parser_destroy(parser); }
};

// Owns one event until the next is asked for: the text of its tokens lives as long as it does.
class Event {
 public:
  Event(fy_parser* parser, fy_event* event) noexcept : parser_(parser), event_(event) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    if (event_ != nullptr) fy_parser_event_free(parser_, event_);
  }
  fy_event* get() const noexcept { return event_; }

 private:
  fy_parser* parser_;
  fy_event* event_;
};

// Nothing reaches stderr: with collection on, errors are kept for fy_diag_errors_iterate and
// this sink swallows whatever else the library would write.
void discard_output(fy_diag*, void*, const char*, size_t) {}

std::string_view text_of(fy_token* token) {
  if (token == nullptr) return {};
  std::size_t size = 0;
  const char* text = fy_token_get_text(token, &size);
  return text == nullptr ? std::string_view{} : std::string_view(text, size);
}

YamlMark mark_of(const fy_mark* mark) {
  if (mark == nullptr) return {};
  return YamlMark{.pos = static_cast<long>(mark->input_pos),
                  .line = mark->line,
                  .column = mark->column};
}

bool is_core_null(std::string_view text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

// See YamlEventHandler for the convention ("?" plain, "!" otherwise, else the resolved tag).
std::string_view scalar_tag(fy_token* tag, fy_token* value) {
  if (tag != nullptr) return text_of(tag);
  return fy_token_scalar_style(value) == FYSS_PLAIN ? "?" : "!";
}

std::string_view node_tag(fy_token* tag) { return tag != nullptr ? text_of(tag) : "?"; }

// libfyaml places a quoted scalar at its first character and an alias after its '*'; a reader
// pointing at a value wants the quote or the '*', where the value visibly starts.
void back_up_to(YamlMark& mark, std::string_view text, std::string_view opener) {
  if (mark.pos <= 0 || mark.column <= 0 || static_cast<std::size_t>(mark.pos) > text.size()) return;
  if (opener.find(text[static_cast<std::size_t>(mark.pos) - 1]) == std::string_view::npos) return;
  --mark.pos;
  --mark.column;
}

// The length of the well-formed UTF-8 sequence at the start of `text` (no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view text) {
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = at(0);
  std::size_t size = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xbf;
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) {
    size = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    size = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    size = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (text.size() < size) return 0;
  if (at(1) < low || at(1) > high) return 0;
  for (std::size_t i = 2; i < size; ++i) {
    if (at(i) < 0x80 || at(i) > 0xbf) return 0;
  }
  return size;
}

// Checked before libfyaml sees the text:
// - a YAML stream is UTF-8 text, and libfyaml 0.7.12 loops forever on some malformed UTF-8
//   (a '%' directive followed by a stray byte such as 0x9b, found by fuzz_yaml_events);
// - YAML allows no control character outside escapes, yet libfyaml accepts some in plain
//   scalars and stops reading at a NUL byte as if the stream ended there, which would drop
//   whatever follows.
std::optional<Diagnostic> find_unreadable_text(std::string_view text, const std::string& file) {
  int line = 1;
  int column = 1;  // in characters
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto fail = [&](std::string reason) {
      return Diagnostic{.file = file, .line = line, .column = column, .reason = std::move(reason)};
    };
    if (byte == '\n') {
      ++line;
      column = 1;
      ++i;
      continue;
    }
    if ((byte < 0x20 && byte != '\t' && byte != '\r') || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      std::string code = "U+00";
      code += kHex[byte >> 4U];
      code += kHex[byte & 0xfU];
      return fail("control character " + code +
                  " is not allowed in YAML (write it as an escape in a double-quoted string)");
    }
    const std::size_t size = utf8_sequence(text.substr(i));
    if (size == 0) return fail("not valid UTF-8 (a YAML file is UTF-8 text)");
    i += size;
    ++column;
  }
  return std::nullopt;
}

}  // namespace

Diagnostic located(const std::string& file, const YamlMark& mark, std::string reason,
                   std::string field) {
  Diagnostic diagnostic{.file = file, .field = std::move(field), .reason = std::move(reason)};
  if (mark.known()) {
    diagnostic.line = mark.line + 1;
    diagnostic.column = mark.column + 1;
  }
  return diagnostic;
}

std::optional<Diagnostic> parse_yaml_events(std::string_view text, const std::string& file,
                                            YamlEventHandler& handler) {
  if (auto problem = find_unreadable_text(text, file)) return problem;

  fy_diag_cfg diag_cfg{};
  fy_diag_cfg_default(&diag_cfg);
  diag_cfg.fp = nullptr;
  diag_cfg.output_fn = discard_output;
  diag_cfg.colorize = false;
  const std::unique_ptr<fy_diag, DiagDeleter> diag(fy_diag_create(&diag_cfg));
  if (!diag) throw std::bad_alloc();
  fy_diag_set_collect_errors(diag.get(), true);

  fy_parse_cfg cfg{};
  cfg.flags = FYPCF_QUIET;
  cfg.diag = diag.get();
  const std::unique_ptr<fy_parser, ParserDeleter> parser(fy_parser_create(&cfg));
  if (!parser) throw std::bad_alloc();
  // An empty string still needs a valid pointer; the text is not copied and outlives the parse.
  if (fy_parser_set_string(parser.get(), text.empty() ? "" : text.data(), text.size()) != 0) {
    return Diagnostic{.file = file, .reason = "cannot start the YAML parser"};
  }

  // An empty value has no token and no mark; where the token before it ended is the closest.
  YamlMark last_end{.pos = 0, .line = 0, .column = 0};
  for (;;) {
    const Event owned(parser.get(), fy_parser_parse(parser.get()));
    fy_event* event = owned.get();
    if (event == nullptr) break;
    YamlMark mark = mark_of(fy_event_start_mark(event));
    if (!mark.known()) mark = last_end;
    if (const fy_mark* end = fy_event_end_mark(event); end != nullptr) last_end = mark_of(end);

    switch (event->type) {
      case FYET_DOCUMENT_START: handler.on_document_start(mark); break;
      case FYET_DOCUMENT_END: handler.on_document_end(); break;
      case FYET_SCALAR: {
        const auto& scalar = event->scalar;
        const std::string_view value = text_of(scalar.value);
        const std::string_view anchor = text_of(scalar.anchor);
        const std::string_view tag = scalar_tag(scalar.tag, scalar.value);
        const enum fy_scalar_style style = fy_token_scalar_style(scalar.value);
        if (style == FYSS_SINGLE_QUOTED) back_up_to(mark, text, "'");
        if (style == FYSS_DOUBLE_QUOTED) back_up_to(mark, text, "\"");
        if (tag == "?" && is_core_null(value)) {
          handler.on_null(mark, anchor);
        } else {
          handler.on_scalar(mark, tag, anchor, value);
        }
        break;
      }
      case FYET_ALIAS:
        back_up_to(mark, text, "*");
        handler.on_alias(mark, text_of(event->alias.anchor));
        break;
      case FYET_SEQUENCE_START:
        handler.on_sequence_start(mark, node_tag(event->sequence_start.tag),
                                  text_of(event->sequence_start.anchor));
        break;
      case FYET_SEQUENCE_END: handler.on_sequence_end(); break;
      case FYET_MAPPING_START:
        handler.on_map_start(mark, node_tag(event->mapping_start.tag),
                             text_of(event->mapping_start.anchor));
        break;
      case FYET_MAPPING_END: handler.on_map_end(); break;
      default: break;  // stream start and end carry nothing a reader needs
    }
  }
  if (!fy_parser_get_stream_error(parser.get())) return std::nullopt;

  // The first error the parser collected; its line and column are already 1-based.
  void* cursor = nullptr;
  while (const fy_diag_error* error = fy_diag_errors_iterate(diag.get(), &cursor)) {
    if (error->type < FYET_ERROR) continue;
    Diagnostic diagnostic{.file = file,
                          .reason = error->msg != nullptr ? error->msg : "malformed YAML"};
    if (error->line > 0) {
      diagnostic.line = error->line;
      diagnostic.column = error->column > 0 ? error->column : 0;
    }
    return diagnostic;
  }
  return located(file, last_end, "malformed YAML");
}

}  // namespace devin_orch::app
