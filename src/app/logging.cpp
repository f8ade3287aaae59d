// spdlog configuration, including a JSON line format with properly escaped messages, and the
// stderr sink that batches the lines of one event-loop turn.
#include "devin_orch/app/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <unistd.h>

namespace devin_orch::app {
namespace {

// The fields of the line being logged, lent by LogFieldsInScope (null: none).
thread_local const LogFields* current_fields = nullptr;

// `text` as the body of a JSON string: quotes, backslashes and controls escaped.
void append_json_escaped(std::string_view text, spdlog::memory_buf_t& dest) {
  for (const char c : text) {
    switch (c) {
      case '"': dest.append(std::string_view{"\\\""}); break;
      case '\\': dest.append(std::string_view{"\\\\"}); break;
      case '\n': dest.append(std::string_view{"\\n"}); break;
      case '\r': dest.append(std::string_view{"\\r"}); break;
      case '\t': dest.append(std::string_view{"\\t"}); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
          dest.append(std::string_view{buffer});
        } else {
          dest.push_back(c);
        }
    }
  }
}

// %* in the pattern: the message as a JSON string body.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append_json_escaped(std::string_view{msg.payload.data(), msg.payload.size()}, dest);
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

// %& in the pattern: `"name":"value",` for each field of the line that is set.
class JsonFields final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    if (current_fields == nullptr) return;
    const LogFields& fields = *current_fields;
    for (const auto& [name, value] : {std::pair{"event", fields.event},
                                      std::pair{"key", fields.key},
                                      std::pair{"session_id", fields.session_id},
                                      std::pair{"org_id", fields.org_id},
                                      std::pair{"user_id", fields.user_id},
                                      std::pair{"state", fields.state},
                                      std::pair{"status", fields.status},
                                      std::pair{"event_id", fields.event_id}}) {
      if (value.empty()) continue;
      dest.push_back('"');
      dest.append(std::string_view{name});
      dest.append(std::string_view{"\":\""});
      append_json_escaped(value, dest);
      dest.append(std::string_view{"\","});
    }
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonFields>();
  }
};

// Writes each line at once, like spdlog's stderr sink, until a DeferredLogWrites hands it a
// way to defer; then it buffers below warn until the posted write runs.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex>,
                         public std::enable_shared_from_this<StderrSink> {
 public:
  static constexpr std::size_t kMaxBuffered = 64U << 10U;

  void defer_to(PostLogWrite post) {
    const std::lock_guard lock(mutex_);
    post_ = std::move(post);
    posted_ = false;
    if (!post_) write_buffer();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    buffer_.append(line.data(), line.size());
    if (!post_ || msg.level >= spdlog::level::warn || buffer_.size() >= kMaxBuffered) {
      write_buffer();
    } else if (!posted_) {
      posted_ = true;
      post_([self = shared_from_this()] {
        const std::lock_guard lock(self->mutex_);
        self->posted_ = false;
        self->write_buffer();
      });
    }
  }

  void flush_() override { write_buffer(); }

 private:
  void write_buffer() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const auto wrote = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) break;  // nowhere to log to: drop the lines rather than spin or grow
      done += static_cast<std::size_t>(wrote);
    }
    buffer_.clear();
  }

  std::string buffer_;
  PostLogWrite post_;
  bool posted_ = false;
};

std::shared_ptr<StderrSink> current_stderr_sink() {
  for (const auto& sink : spdlog::default_logger()->sinks()) {
    if (auto ours = std::dynamic_pointer_cast<StderrSink>(sink)) return ours;
  }
  return nullptr;
}

}  // namespace

namespace detail {
LogFieldsInScope::LogFieldsInScope(const LogFields& fields) noexcept
    : previous_{current_fields} {
  current_fields = &fields;
}
LogFieldsInScope::~LogFieldsInScope() { current_fields = previous_; }
}  // namespace detail

DeferredLogWrites::DeferredLogWrites(PostLogWrite post) {
  if (const auto sink = current_stderr_sink()) sink->defer_to(std::move(post));
}

DeferredLogWrites::~DeferredLogWrites() {
  if (const auto sink = current_stderr_sink()) sink->defer_to(nullptr);
}

std::optional<std::string> setup_logging(const LogConfig& log) {
  const auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") {
    return "unknown log level '" + log.level + "' (trace, debug, info, warn, error)";
  }
  const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
  // UTC, written with its zone (RFC 3339 "Z"): the same instant reads the same on every host,
  // and log lines line up with the CLI's times, which are UTC too.
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (log.format == "json") {
    formatter->add_flag<JsonEscapedMessage>('*').add_flag<JsonFields>('&').set_pattern(
        journald ? R"({"level":"%l",%&"msg":"%*"})"
                 : R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%&"msg":"%*"})");
  } else if (log.format == "text") {
    formatter->set_pattern(journald ? "[%l] %v" : "%Y-%m-%dT%H:%M:%S.%eZ [%l] %v");
  } else {
    return "unknown log format '" + log.format + "' (text or json)";
  }
  auto logger = std::make_shared<spdlog::logger>("devin-orch", std::make_shared<StderrSink>());
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  // The sink decides when to write (at once, or at the end of the loop's turn).
  logger->flush_on(spdlog::level::off);
  spdlog::set_default_logger(std::move(logger));
  return std::nullopt;
}

}  // namespace devin_orch::app
