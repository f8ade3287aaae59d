// What every command shares (command.hpp): its context, the one error style, value parsing and
// the output helpers.
#include "command.hpp"

#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/json/string.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace devin_orch::app {

ExitCode Command::usage(std::string_view message) const {
  io_.err << "devin-orch " << info_.name << ": " << message << "\nsee 'devin-orch " << info_.name
          << " --help'\n";
  return ExitCode::usage;
}

ExitCode Command::fail(ExitCode code, std::string_view message) const {
  io_.err << "devin-orch " << info_.name << ": " << message << '\n';
  return code;
}

ExitCode Command::database_error(const store::Error& error) const {
  return fail(ExitCode::failure,
              "database error: " + (error.detail.empty() ? error.code.message() : error.detail));
}

std::optional<ExitCode> Command::no_arguments() const {
  if (args_.positional.empty()) return std::nullopt;
  return usage("unexpected argument '" + args_.positional.front() + "'");
}

std::optional<ExitCode> Command::load(Config& config) const {
  const auto path = args_.value("--config");
  if (!path) return usage("--config FILE is required");
  auto loaded = load_config(*path);
  if (!loaded.config) {
    for (const auto& error : loaded.errors) io_.err << error.to_string() << '\n';
    return ExitCode::usage;
  }
  config = std::move(*loaded.config);
  return std::nullopt;
}

std::optional<ExitCode> Command::open(Opened& opened) const {
  if (const auto stop = load(opened.config)) return stop;
  auto store = store::open_store(store_options(opened.config.database));
  if (!store) {
    const store::Error& error = store.error();
    return fail(ExitCode::failure, "cannot open database " + opened.config.database.path + ": " +
                                       (error.detail.empty() ? error.code.message() : error.detail));
  }
  opened.outbox = &(*store)->outbox();
  opened.store = std::move(*store);
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<core::Duration> parse_age(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits > 0 && digits < text.size() && text[digits] == 'd') {
    const auto days = parse_int(text.substr(0, digits));
    if (!days || *days > 36'600) return std::nullopt;
    const core::Duration whole{*days * 86'400'000};
    const auto rest = text.substr(digits + 1);
    if (rest.empty()) return whole;
    const auto more = parse_duration(rest);
    if (!more) return std::nullopt;
    return whole + *more;
  }
  return parse_duration(text);
}

std::string dash(const std::optional<std::string>& value) {
  return value && !value->empty() ? *value : "-";
}

std::string timestamp_or_dash(const std::optional<std::int64_t>& epoch_ms) {
  return epoch_ms ? format_timestamp_ms(*epoch_ms) : "-";
}

boost::json::value nullable(const std::optional<std::string>& value) {
  if (value) return boost::json::string(*value);
  return nullptr;
}

boost::json::value timestamp_or_null(const std::optional<std::int64_t>& epoch_ms) {
  if (epoch_ms) return boost::json::string(format_timestamp_ms(*epoch_ms));
  return nullptr;
}

std::string shorten(std::string text, std::size_t limit) {
  if (text.size() > limit) text = text.substr(0, limit - 3) + "...";
  return text;
}

std::string format_age(std::int64_t milliseconds) {
  const std::int64_t seconds = std::max<std::int64_t>(milliseconds, 0) / 1000;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86'400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86'400) + "d";
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

std::string join(const std::vector<std::string>& values, std::string_view separator) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out += separator;
    out += value;
  }
  return out;
}

}  // namespace devin_orch::app
