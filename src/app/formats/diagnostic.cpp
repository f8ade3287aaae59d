// Diagnostic formatting and the input guards shared by the config and job file loaders: a
// size-capped read, a streaming YAML screen that runs before any tree is built, and typo hints.
#include "devin_orch/app/formats/diagnostic.hpp"

#include "devin_orch/app/formats/yaml_events.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devin_orch::app {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// Thrown from inside the parser's event callbacks: the way to stop the parse at the first
// problem (yaml_events.cpp releases the parser on the way out).
struct ScreenStop {
  Diagnostic diagnostic;
};

class ScreeningHandler final : public YamlEventHandler {
 public:
  ScreeningHandler(const std::string& file, const YamlScreenLimits& limits,
                   YamlEventHandler* observer)
      : file_(file), limits_(limits), observer_(observer) {}

  void on_document_start(const YamlMark& mark) override {
    if (++documents_ > 1) {
      throw ScreenStop{located(file_, mark, "more than one YAML document; use a single one")};
    }
    if (observer_ != nullptr) observer_->on_document_start(mark);
  }
  void on_document_end() override {
    if (observer_ != nullptr) observer_->on_document_end();
  }
  void on_null(const YamlMark& mark, std::string_view anchor) override {
    count(mark);
    if (observer_ != nullptr) observer_->on_null(mark, anchor);
  }
  void on_scalar(const YamlMark& mark, std::string_view tag, std::string_view anchor,
                 std::string_view value) override {
    count(mark);
    if (observer_ != nullptr) observer_->on_scalar(mark, tag, anchor, value);
  }
  void on_alias(const YamlMark& mark, std::string_view anchor) override {
    if (!limits_.allow_aliases) {
      throw ScreenStop{located(file_, mark,
                               "YAML aliases (*name) are not allowed here; write the value out")};
    }
    count(mark);
    if (observer_ != nullptr) observer_->on_alias(mark, anchor);
  }
  void on_sequence_start(const YamlMark& mark, std::string_view tag,
                         std::string_view anchor) override {
    open(mark);
    if (observer_ != nullptr) observer_->on_sequence_start(mark, tag, anchor);
  }
  void on_sequence_end() override {
    --depth_;
    if (observer_ != nullptr) observer_->on_sequence_end();
  }
  void on_map_start(const YamlMark& mark, std::string_view tag, std::string_view anchor) override {
    open(mark);
    if (observer_ != nullptr) observer_->on_map_start(mark, tag, anchor);
  }
  void on_map_end() override {
    --depth_;
    if (observer_ != nullptr) observer_->on_map_end();
  }

 private:
  void count(const YamlMark& mark) {
    if (++nodes_ > limits_.max_nodes) {
      throw ScreenStop{located(file_, mark,
                               "more than " + std::to_string(limits_.max_nodes) + " YAML nodes")};
    }
  }
  void open(const YamlMark& mark) {
    count(mark);
    if (++depth_ > limits_.max_depth) {
      throw ScreenStop{located(file_, mark,
                               "nested deeper than " + std::to_string(limits_.max_depth) +
                                   " levels")};
    }
  }

  const std::string& file_;
  const YamlScreenLimits& limits_;
  YamlEventHandler* observer_;
  int documents_ = 0;
  int depth_ = 0;
  std::size_t nodes_ = 0;
};

// Optimal string alignment distance: a swapped pair of letters counts as one edit, which is
// the most common typo in a key.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

}  // namespace

std::string Diagnostic::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += (out.empty() ? "line " : ":") + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  if (!out.empty()) out += ": ";
  if (!field.empty()) out += field + ": ";
  out += reason;
  return out;
}

std::optional<std::string> read_input_file(const std::string& path, std::size_t max_bytes,
                                           Diagnostic* error) {
  const auto fail = [&](std::string reason) -> std::optional<std::string> {
    if (error != nullptr) *error = Diagnostic{.file = path, .reason = std::move(reason)};
    return std::nullopt;
  };
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return fail(std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) return fail("is a directory, not a file");
  const std::string limit_reason = "file is larger than the limit of " + std::to_string(max_bytes) +
                                   " bytes";
  if (S_ISREG(info.st_mode) && static_cast<std::size_t>(info.st_size) > max_bytes) {
    return fail(limit_reason);
  }
  // Read to the cap plus one byte whatever stat said: pipes and growing files lie about size.
  // Straight into the string: a 64 KiB buffer on the stack stayed resident for the daemon's
  // whole life after reading one file.
  constexpr std::size_t chunk = 64 * 1024;
  std::string text;
  for (;;) {
    const std::size_t used = text.size();
    text.resize(used + chunk);
    const ssize_t n = ::read(fd.get(), text.data() + used, chunk);
    text.resize(used + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(std::string("cannot read: ") + std::strerror(errno));
    }
    if (n == 0) break;
    if (text.size() > max_bytes) return fail(limit_reason);
  }
  text.shrink_to_fit();
  return text;
}

std::optional<Diagnostic> screen_yaml(const std::string& text, const std::string& file,
                                      const YamlScreenLimits& limits,
                                      YamlEventHandler* observer) {
  // Counted on the raw text, so no quoting or comment can hide a flow collection from it.
  const auto flow_marks = static_cast<std::size_t>(std::count_if(
      text.begin(), text.end(), [](char ch) { return ch == ',' || ch == '[' || ch == '{'; }));
  if (flow_marks > limits.max_nodes) {
    return Diagnostic{.file = file,
                      .reason = "more than " + std::to_string(limits.max_nodes) +
                                " of the characters ',', '[' and '{' (a limit on flow-style "
                                "YAML)"};
  }
  ScreeningHandler handler(file, limits, observer);
  try {
    return parse_yaml_events(text, file, handler);
  } catch (const ScreenStop& stop) {
    return stop.diagnostic;
  }
}

std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> known) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (std::string_view candidate : known) {
    // The length gap bounds the distance from below; skipping keeps hostile long words cheap.
    const std::size_t gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                           : candidate.size() - word.size();
    if (gap >= best_distance) continue;
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance && distance < std::max(word.size(), candidate.size())) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string describe_yaml_scalar(std::string_view scalar) {
  std::string text(scalar.substr(0, 40));
  if (scalar.size() > 40) text += "...";
  return is_valid_utf8(text) ? "'" + text + "'" : "a string that is not valid UTF-8";
}

bool is_valid_utf8(std::string_view text) noexcept {
  return core::utf8_characters(text).has_value();
}

}  // namespace devin_orch::app
