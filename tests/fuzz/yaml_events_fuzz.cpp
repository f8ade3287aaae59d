// libFuzzer target for the YAML reader (app::parse_yaml_events, screen_yaml,
// load_yaml_document): any text yields well-nested events with marks inside the text, or a
// located error, never a crash; the screen and the tree loader agree with each other.
#include "devin_orch/app/formats/yaml_events.hpp"
#include "devin_orch/app/formats/yaml_value.hpp"

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace {

namespace app = devin_orch::app;

// Checks the event stream's shape as it arrives.
class ShapeChecker final : public app::YamlEventHandler {
 public:
  explicit ShapeChecker(std::size_t size) : size_(size) {}

  void on_document_start(const app::YamlMark& mark) override {
    DEVIN_ORCH_FUZZ_CHECK(!in_document_ && open_.empty(), "a document inside a document");
    in_document_ = true;
    check(mark);
  }
  void on_document_end() override {
    DEVIN_ORCH_FUZZ_CHECK(in_document_ && open_.empty(), "a document ended with open nodes");
    in_document_ = false;
  }
  void on_null(const app::YamlMark& mark, std::string_view) override { node(mark); }
  void on_scalar(const app::YamlMark& mark, std::string_view tag, std::string_view,
                 std::string_view) override {
    DEVIN_ORCH_FUZZ_CHECK(!tag.empty(), "a scalar without a tag ('?' or '!' at least)");
    node(mark);
  }
  void on_alias(const app::YamlMark& mark, std::string_view anchor) override {
    DEVIN_ORCH_FUZZ_CHECK(!anchor.empty(), "an alias without a name");
    node(mark);
  }
  void on_sequence_start(const app::YamlMark& mark, std::string_view, std::string_view) override {
    node(mark);
    open_.push_back('s');
  }
  void on_sequence_end() override { close('s'); }
  void on_map_start(const app::YamlMark& mark, std::string_view, std::string_view) override {
    node(mark);
    open_.push_back('m');
  }
  void on_map_end() override { close('m'); }

  bool balanced() const { return !in_document_ && open_.empty(); }

 private:
  void check(const app::YamlMark& mark) const {
    DEVIN_ORCH_FUZZ_CHECK(mark.known(), "an event without a position");
    DEVIN_ORCH_FUZZ_CHECK(mark.pos >= 0 && static_cast<std::size_t>(mark.pos) <= size_,
                          "a mark outside the text");
    DEVIN_ORCH_FUZZ_CHECK(mark.column >= 0, "a negative column");
  }
  void node(const app::YamlMark& mark) {
    DEVIN_ORCH_FUZZ_CHECK(in_document_, "a node outside a document");
    check(mark);
  }
  void close(char kind) {
    DEVIN_ORCH_FUZZ_CHECK(!open_.empty() && open_.back() == kind, "an end without its start");
    open_.pop_back();
  }

  std::size_t size_;
  bool in_document_ = false;
  std::vector<char> open_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ShapeChecker checker(size);
  const auto error = app::parse_yaml_events(text, "fuzz.yaml", checker);
  if (error) {
    DEVIN_ORCH_FUZZ_CHECK(error->file == "fuzz.yaml", "an error names another file");
    DEVIN_ORCH_FUZZ_CHECK(!error->reason.empty(), "an error without a reason");
    DEVIN_ORCH_FUZZ_CHECK(error->line > 0, "an error without a line");
  } else {
    DEVIN_ORCH_FUZZ_CHECK(checker.balanced(), "a clean parse left documents or nodes open");
  }

  // Small caps, so that the depth and count limits are reached by small inputs.
  const app::YamlScreenLimits limits{.max_depth = 8, .max_nodes = 200};
  const auto screened = app::screen_yaml(text, "fuzz.yaml", limits);
  if (error) DEVIN_ORCH_FUZZ_CHECK(screened.has_value(), "the screen passed a malformed text");
  const auto document = app::load_yaml_document(text, "fuzz.yaml", limits);
  DEVIN_ORCH_FUZZ_CHECK(std::holds_alternative<app::Diagnostic>(document) == screened.has_value(),
                        "the tree loader and the screen disagree");
  if (const auto* problem = std::get_if<app::Diagnostic>(&document)) {
    DEVIN_ORCH_FUZZ_CHECK(*problem == *screened, "the tree loader reports another problem");
  }
  return 0;
}
