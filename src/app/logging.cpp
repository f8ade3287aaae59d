// spdlog configuration, including a JSON line format with properly escaped messages.
#include "devin_orch/app/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace devin_orch::app {
namespace {

// %* in the pattern: the message as a JSON string body (quotes, backslashes, controls escaped).
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (const char c : msg.payload) {
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

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

}  // namespace

std::optional<std::string> setup_logging(const LogConfig& log) {
  const auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") {
    return "unknown log level '" + log.level + "' (trace, debug, info, warn, error)";
  }
  const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (log.format == "json") {
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        journald ? R"({"level":"%l","msg":"%*"})"
                 : R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
  } else if (log.format == "text") {
    formatter->set_pattern(journald ? "[%l] %v" : "%Y-%m-%d %H:%M:%S.%e [%l] %v");
  } else {
    return "unknown log format '" + log.format + "' (text or json)";
  }
  auto logger = std::make_shared<spdlog::logger>(
      "devin-orch", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return std::nullopt;
}

}  // namespace devin_orch::app
