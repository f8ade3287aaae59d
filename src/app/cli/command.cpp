// What every command shares (command.hpp): its context, the one error style, value parsing and
// the output helpers.
#include "command.hpp"

#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/json_text.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/json/string.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>

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

void Command::print_json(const boost::json::value& value) const {
  io_.out << json_text(value) << '\n';
}

std::optional<ExitCode> Command::no_arguments() const {
  if (args_.positional.empty()) return std::nullopt;
  return usage("unexpected argument '" + args_.positional.front() + "'");
}

std::optional<ExitCode> Command::load(Config& config, const ConfigChecks& checks) const {
  // --config, then $DEVIN_ORCH_CONFIG, then the default; a failure says which one was tried.
  std::string path;
  std::string tried;
  if (const auto given = args_.value("--config")) {
    path = *given;
  } else if (const char* variable = std::getenv("DEVIN_ORCH_CONFIG");
             variable != nullptr && *variable != '\0') {
    path = variable;
    tried = "tried " + path + " from DEVIN_ORCH_CONFIG: no --config FILE was given";
  } else {
    path = std::string{io_.default_config};
    tried = "tried the default configuration " + path +
            ": no --config FILE was given and DEVIN_ORCH_CONFIG is not set";
  }
  auto loaded = load_config(path, checks);
  if (!loaded.config) {
    for (const auto& error : loaded.errors) io_.err << error.to_string() << '\n';
    if (!tried.empty()) fail(ExitCode::usage, tried);
    return ExitCode::usage;
  }
  config = std::move(*loaded.config);
  return std::nullopt;
}

std::optional<ExitCode> Command::open(Opened& opened) const {
  if (const auto stop = load(opened.config)) return stop;
  std::unique_ptr<store::Store> store;
  if (const auto stop = open_database(opened.config, store)) return stop;
  opened.outbox = &store->outbox();
  opened.store = std::move(store);
  return std::nullopt;
}

std::optional<ExitCode> Command::open_database(const Config& config,
                                               std::unique_ptr<store::Store>& store) const {
  auto opened = store::open_store(store_options(config.database));
  if (!opened) {
    const store::Error& error = opened.error();
    return fail(ExitCode::failure,
                "cannot open database " + database_name(config.database) + ": " +
                    (error.detail.empty() ? error.code.message() : error.detail));
  }
  store = std::move(*opened);
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
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
