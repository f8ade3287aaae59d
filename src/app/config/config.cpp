// Loading, validating and rendering the daemon's YAML configuration, and resolving the API key.
// Every problem in a config file is collected and located, so one run shows all of them.
#include "devin_orch/app/config/config.hpp"

#include "devin_orch/api/http_client.hpp"

#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/yaml_value.hpp"
#include "devin_orch/app/jobs/notify_yaml.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/store/types.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string_view>
#include <variant>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devin_orch::app {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxConfigBytes = 1U << 20U;
constexpr std::size_t kMaxKeyFileBytes = 64U << 10U;
constexpr YamlScreenLimits kConfigScreen{.max_depth = 16, .max_nodes = 10'000};

constexpr std::array<std::string_view, 5> kLogLevels{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> kLogFormats{"text", "json"};
constexpr long long kMaxConcurrencyActive = 100'000;

// Where a setting's effective value came from, for errors found after the whole file is read.
struct Origin {
  std::string file;
  int line = 0;
  int column = 0;
};


std::string format_number(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc{} ? std::string(buffer, end) : std::to_string(value);
}

template <class Int>
std::optional<Int> parse_integer(std::string_view text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_number(std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// One `key: value` pair of a section as the readers see it.
struct Entry {
  const YamlValue& key;
  const YamlValue& value;
  std::string field;  // "poll.initial_delay"
};

bool is_url_safe_id(std::string_view id);

class Reader {
 public:
  Reader(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  std::vector<Diagnostic>& errors() { return errors_; }
  const std::string& file() const { return file_; }

  void error_at(const YamlValue& node, std::string field, std::string reason) {
    errors_.push_back(located(file_, node.mark, std::move(reason), std::move(field)));
  }

  // A value error points at the value, except for an empty value, which has no position of
  // its own.
  void error_on(const Entry& entry, std::string reason) {
    const YamlValue& at = entry.value.is_null() ? entry.key : entry.value;
    error_at(at, entry.field, std::move(reason));
  }

  void error_from(const std::string& field, std::string reason) {
    const auto found = origins_.find(field);
    Origin origin = found != origins_.end() ? found->second : Origin{.file = file_};
    errors_.push_back(Diagnostic{.file = std::move(origin.file),
                                 .line = origin.line,
                                 .column = origin.column,
                                 .field = field,
                                 .reason = std::move(reason)});
  }

  bool has_error(std::string_view field) const {
    return std::any_of(errors_.begin(), errors_.end(),
                       [&](const Diagnostic& d) { return d.field == field; });
  }

  // A misspelt key or section already reported with "did you mean X": X was meant to be set.
  void misspelt(std::string meant) { misspelt_.insert(std::move(meant)); }

  // Whether a check of `field`'s effective value would only follow from an error already
  // reported: its own value was refused (so the default stands in), or a misspelling meant it
  // or its section. `api:\n  org_idd: x` is one mistake, not also "api.org_id is required".
  bool already_explained(std::string_view field) const {
    if (has_error(field)) return true;
    // A value from the environment is the variable's, whatever the file meant.
    if (const auto origin = origins_.find(field);
        origin != origins_.end() && origin->second.file.starts_with('$')) {
      return false;
    }
    if (misspelt_.contains(field)) return true;
    const auto dot = field.find('.');
    return dot != std::string_view::npos && misspelt_.contains(field.substr(0, dot));
  }

  void remember(const Entry& entry) {
    const YamlValue& at = entry.value.is_null() ? entry.key : entry.value;
    const YamlMark& mark = at.mark;
    origins_[entry.field] = Origin{.file = file_,
                                   .line = mark.line >= 0 ? mark.line + 1 : 0,
                                   .column = mark.line >= 0 ? mark.column + 1 : 0};
  }
  void error_at_mark(const YamlMark& mark, std::string field, std::string reason) {
    errors_.push_back(located(file_, mark, std::move(reason), std::move(field)));
  }
  void remember_node(const std::string& field, const YamlValue& at) {
    origins_[field] = Origin{.file = file_,
                             .line = at.mark.line >= 0 ? at.mark.line + 1 : 0,
                             .column = at.mark.line >= 0 ? at.mark.column + 1 : 0};
  }

  // A list of notification targets (notify.webhooks, notify.slack): the shape here, the values
  // by core's rules (one definition with a job's `notify:`).
  void notify_targets(const Entry& entry, std::vector<core::NotifyTarget>& out,
                      core::NotifyTarget::Format format) {
    auto read = read_notify_targets(
        entry.value, entry.field, format,
        [this](const std::string& field, const YamlValue& node) { remember_node(field, node); },
        [this](const std::string& path) { return resolve(path); });
    if (auto* problem = std::get_if<NotifyYamlError>(&read)) {
      error_at_mark(problem->mark, problem->field, problem->reason);
      return;
    }
    auto targets = std::move(std::get<std::vector<core::NotifyTarget>>(read));
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (auto found = core::validate(targets[i], entry.field + "[" + std::to_string(i) + "]")) {
        error_from(found->field, found->reason);
        return;
      }
    }
    out = std::move(targets);
  }

  // The top-level `concurrency:` list: [{key: PATTERN, max_active: N}, ...]. Each item is
  // checked on its own, so that one bad item does not hide the others' mistakes.
  void concurrency_limits(const Entry& entry, std::vector<core::ConcurrencyLimit>& out) {
    if (entry.value.is_null()) {
      out.clear();
      return;
    }
    if (!entry.value.is_sequence()) {
      error_on(entry, "expected a list of {key: PATTERN, max_active: N}, got " +
                          describe_yaml(entry.value));
      return;
    }
    std::vector<core::ConcurrencyLimit> limits;
    std::map<std::string, std::size_t, std::less<>> seen;
    bool ok = true;
    for (std::size_t i = 0; i < entry.value.items.size(); ++i) {
      const YamlValue& item = entry.value.items[i];
      const std::string field = entry.field + "[" + std::to_string(i) + "]";
      if (!item.is_map()) {
        error_at(item, field, "expected a map {key: PATTERN, max_active: N}, got " +
                                  describe_yaml(item));
        ok = false;
        continue;
      }
      core::ConcurrencyLimit limit;
      bool has_key = false;
      bool has_max = false;
      for (const auto& [name_node, value] : item.entries) {
        const std::string name = name_node.is_scalar() ? name_node.scalar : std::string{};
        const std::string at = field + "." + name;
        if (name == "key") {
          has_key = true;
          if (!value.is_scalar()) {
            error_at(value.is_null() ? name_node : value, at,
                     "expected a key or a pattern with *, got " + describe_yaml(value));
            ok = false;
          } else if (auto problem = core::concurrency_pattern_problem(value.scalar)) {
            error_at(value, at, std::move(*problem));
            ok = false;
          } else if (const auto [first, fresh] = seen.try_emplace(value.scalar, i); !fresh) {
            error_at(value, at, "'" + value.scalar + "' is already listed at " + entry.field +
                                    "[" + std::to_string(first->second) + "]");
            ok = false;
          } else {
            limit.pattern = value.scalar;
          }
        } else if (name == "max_active") {
          has_max = true;
          const std::size_t before = errors_.size();
          integer(Entry{.key = name_node, .value = value, .field = at}, limit.max_active, 1,
                  kMaxConcurrencyActive);
          ok = ok && errors_.size() == before;
        } else {
          error_at(name_node, at, "unknown key '" + name + "' (expected key and max_active)");
          ok = false;
        }
      }
      if (!has_key || !has_max) {
        error_at(item, field, std::string("needs ") + (has_key ? "max_active" : "key") +
                                  (!has_key && !has_max ? " and max_active" : ""));
        ok = false;
      }
      limits.push_back(std::move(limit));
    }
    if (ok) out = std::move(limits);
  }

  void remember_env(const std::string& field, const char* variable) {
    origins_[field] = Origin{.file = std::string("$") + variable};
  }

  // Readers leave `out` untouched on error, so later checks see the default, not garbage.
  bool scalar(const Entry& entry, std::string_view expected) {
    if (entry.value.is_scalar()) return true;
    error_on(entry, "expected " + std::string(expected) + ", got " + describe_yaml(entry.value));
    return false;
  }

  void string(const Entry& entry, std::string& out) {
    if (!scalar(entry, "a string")) return;
    out = entry.value.scalar;
  }

  void choice(const Entry& entry, std::string& out, std::span<const std::string_view> allowed) {
    if (!scalar(entry, "a string")) return;
    const std::string& text = entry.value.scalar;
    for (std::string_view option : allowed) {
      if (option == text) {
        out = text;
        return;
      }
    }
    std::string list;
    for (std::string_view option : allowed) list += (list.empty() ? "" : ", ") + std::string(option);
    error_on(entry, "must be one of " + list + ", got " + describe_yaml(entry.value));
  }

  // Only the two spellings YAML 1.2 and JSON agree on: `yes`, `on` and `1` are mistakes here.
  void boolean(const Entry& entry, bool& out) {
    static constexpr std::array<std::string_view, 2> kBooleans{"true", "false"};
    std::string chosen = out ? "true" : "false";
    choice(entry, chosen, kBooleans);
    out = chosen == "true";
  }

  void duration(const Entry& entry, core::Duration& out, bool allow_zero) {
    constexpr std::string_view kExpected = "expected a duration like 250ms, 10s, 5m";
    if (!entry.value.is_scalar()) {
      error_on(entry, std::string(kExpected) + ", got " + describe_yaml(entry.value));
      return;
    }
    const auto parsed = parse_duration(entry.value.scalar);
    if (!parsed) {
      error_on(entry, std::string(kExpected) + " or 1m30s, got " + describe_yaml(entry.value));
      return;
    }
    if (!allow_zero && parsed->count() == 0) {
      error_on(entry, "must be greater than 0s");
      return;
    }
    out = *parsed;
  }

  template <class Int>
  void integer(const Entry& entry, Int& out, long long min, long long max) {
    if (!scalar(entry, "an integer")) return;
    const auto parsed = parse_integer<long long>(entry.value.scalar);
    if (!parsed) {
      error_on(entry, "expected an integer, got " + describe_yaml(entry.value));
      return;
    }
    if (*parsed < min || *parsed > max) {
      error_on(entry, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                          ", got " + std::to_string(*parsed));
      return;
    }
    out = static_cast<Int>(*parsed);
  }

  // `min_exclusive`: the value must be strictly greater than `min`.
  void number(const Entry& entry, double& out, double min, bool min_exclusive,
              std::optional<double> max = std::nullopt) {
    if (!scalar(entry, "a number")) return;
    const auto parsed = parse_number(entry.value.scalar);
    if (!parsed) {
      error_on(entry, "expected a number, got " + describe_yaml(entry.value));
      return;
    }
    const bool too_low = min_exclusive ? *parsed <= min : *parsed < min;
    const bool too_high = max && *parsed > *max;
    if (too_low || too_high) {
      std::string rule = min_exclusive ? "must be greater than " + format_number(min)
                                       : "must be at least " + format_number(min);
      if (max) rule = "must be between " + format_number(min) + " and " + format_number(*max);
      error_on(entry, rule + ", got " + format_number(*parsed));
      return;
    }
    out = *parsed;
  }

  // A budget in ACUs, greater than 0; ~ for none.
  void optional_budget(const Entry& entry, std::optional<double>& out) {
    if (entry.value.is_null()) {
      out.reset();
      return;
    }
    double value = 0.0;
    const std::size_t errors = errors_.size();
    number(entry, value, 0, true);
    if (errors_.size() == errors) out = value;
  }

  // spending.organizations: org id -> {acus_per_day, acus_per_month}, each over the global
  // budget. Nothing is kept unless every entry is valid.
  void spending_organizations(const Entry& entry,
                              std::map<std::string, OrgSpendingConfig, std::less<>>& out) {
    if (entry.value.is_null()) {
      out.clear();
      return;
    }
    if (!entry.value.is_map()) {
      error_on(entry, "expected a map of organisation ids to {acus_per_day, acus_per_month}, "
                      "got " + describe_yaml(entry.value));
      return;
    }
    std::map<std::string, OrgSpendingConfig, std::less<>> organizations;
    const std::size_t errors = errors_.size();
    for (const YamlEntry& org : entry.value.entries) {
      const std::string& id = org.key.scalar;
      const std::string field = entry.field + "." + id;
      if (!org.key.is_scalar() || id.empty() || !is_url_safe_id(id)) {
        error_at(org.key, field,
                 "an organisation id may contain only letters, digits, '-', '_', '.' and '~'");
        continue;
      }
      if (organizations.contains(id)) {
        error_at(org.key, field, "duplicate organisation '" + id + "'");
        continue;
      }
      if (!org.value.is_map()) {
        error_at(org.value.is_null() ? org.key : org.value, field,
                 "expected a map with acus_per_day and/or acus_per_month, got " +
                     describe_yaml(org.value));
        continue;
      }
      OrgSpendingConfig budgets;
      for (const YamlEntry& setting : org.value.entries) {
        const std::string& name = setting.key.scalar;
        const Entry inner{setting.key, setting.value, field + "." + name};
        remember(inner);
        BudgetOverride* target = name == "acus_per_day"     ? &budgets.acus_per_day
                                 : name == "acus_per_month" ? &budgets.acus_per_month
                                                            : nullptr;
        if (target == nullptr) {
          error_at(setting.key, inner.field,
                   "unknown key; an organisation's budgets are acus_per_day and acus_per_month");
          continue;
        }
        if (target->set) {
          error_at(setting.key, inner.field, "duplicate key '" + name + "'");
          continue;
        }
        const std::size_t before = errors_.size();
        optional_budget(inner, target->acus);
        target->set = errors_.size() == before;
      }
      organizations.emplace(id, budgets);
    }
    if (errors_.size() == errors) out = std::move(organizations);
  }

  // spending.concurrency_keys: [{key: PATTERN, acus_per_day, acus_per_month}, ...], patterns
  // as the `concurrency:` list takes them. Each item is checked on its own.
  void spending_keys(const Entry& entry, std::vector<core::KeySpendingBudget>& out) {
    if (entry.value.is_null()) {
      out.clear();
      return;
    }
    constexpr std::string_view kShape = "{key: PATTERN, acus_per_day: N, acus_per_month: N}";
    if (!entry.value.is_sequence()) {
      error_on(entry, "expected a list of " + std::string{kShape} + ", got " +
                          describe_yaml(entry.value));
      return;
    }
    std::vector<core::KeySpendingBudget> budgets;
    std::map<std::string, std::size_t, std::less<>> seen;
    const std::size_t errors = errors_.size();
    for (std::size_t i = 0; i < entry.value.items.size(); ++i) {
      const YamlValue& item = entry.value.items[i];
      const std::string field = entry.field + "[" + std::to_string(i) + "]";
      if (!item.is_map()) {
        error_at(item, field, "expected a map " + std::string{kShape} + ", got " +
                                  describe_yaml(item));
        continue;
      }
      core::KeySpendingBudget budget;
      bool has_key = false;
      std::set<std::string, std::less<>> named;
      for (const auto& [name_node, value] : item.entries) {
        const std::string name = name_node.is_scalar() ? name_node.scalar : std::string{};
        const std::string at = field + "." + name;
        if (!named.insert(name).second) {
          error_at(name_node, at, "duplicate key '" + name + "'");
          continue;
        }
        if (name == "key") {
          has_key = true;
          if (!value.is_scalar()) {
            error_at(value.is_null() ? name_node : value, at,
                     "expected a key or a pattern with *, got " + describe_yaml(value));
          } else if (auto problem = core::concurrency_pattern_problem(value.scalar)) {
            error_at(value, at, std::move(*problem));
          } else if (const auto [first, fresh] = seen.try_emplace(value.scalar, i); !fresh) {
            error_at(value, at, "'" + value.scalar + "' is already listed at " + entry.field +
                                    "[" + std::to_string(first->second) + "]");
          } else {
            budget.pattern = value.scalar;
          }
        } else if (name == "acus_per_day" || name == "acus_per_month") {
          const Entry inner{.key = name_node, .value = value, .field = at};
          remember(inner);
          optional_budget(inner, name == "acus_per_day" ? budget.per_day : budget.per_month);
        } else {
          error_at(name_node, at,
                   "unknown key '" + name + "' (expected key, acus_per_day and acus_per_month)");
        }
      }
      if (!has_key) {
        error_at(item, field, "needs key");
      } else if (!budget.per_day && !budget.per_month && !has_error(field + ".acus_per_day") &&
                 !has_error(field + ".acus_per_month")) {
        error_at(item, field, "needs acus_per_day or acus_per_month (a budget in ACUs)");
      }
      budgets.push_back(std::move(budget));
    }
    if (errors_.size() == errors) out = std::move(budgets);
  }

  std::optional<std::string> path_value(const Entry& entry, const YamlValue& node,
                                        const std::string& field) {
    if (!node.is_scalar() || node.scalar.empty()) {
      error_at(node.is_null() ? entry.key : node, field,
               "expected a file path, got " + (node.is_scalar() ? std::string("an empty string")
                                                                 : describe_yaml(node)));
      return std::nullopt;
    }
    return resolve(node.scalar);
  }

  void path(const Entry& entry, std::string& out) {
    if (auto resolved = path_value(entry, entry.value, entry.field)) out = std::move(*resolved);
  }

  void optional_path(const Entry& entry, std::optional<std::string>& out) {
    if (entry.value.is_null()) {
      out.reset();
      return;
    }
    if (auto resolved = path_value(entry, entry.value, entry.field)) out = std::move(*resolved);
  }

  // api.organizations: org id -> {version, api_key_file}. Every entry is checked; nothing is
  // kept unless all are valid, so a mistake never leaves an organisation on the wrong API.
  void api_organizations(const Entry& entry,
                         std::map<std::string, OrgApiConfig, std::less<>>& out) {
    if (entry.value.is_null()) {
      out.clear();
      return;
    }
    if (!entry.value.is_map()) {
      error_on(entry, "expected a map of organisation ids to {version, api_key_file}, got " +
                          describe_yaml(entry.value));
      return;
    }
    std::map<std::string, OrgApiConfig, std::less<>> organizations;
    const std::size_t errors = errors_.size();
    for (const YamlEntry& org : entry.value.entries) {
      const std::string& id = org.key.scalar;
      const std::string field = entry.field + "." + id;
      if (!org.key.is_scalar() || id.empty() || !is_url_safe_id(id)) {
        error_at(org.key, field,
                 "an organisation id may contain only letters, digits, '-', '_', '.' and '~'");
        continue;
      }
      if (!org.value.is_map()) {
        error_at(org.value.is_null() ? org.key : org.value, field,
                 "expected a map with version (v1 or v3) and optionally api_key_file, got " +
                     describe_yaml(org.value));
        continue;
      }
      OrgApiConfig settings;
      bool has_version = false;
      bool unknown_key = false;  // perhaps a misspelt `version`: one mistake, one error
      for (const YamlEntry& setting : org.value.entries) {
        const std::string& name = setting.key.scalar;
        const Entry inner{setting.key, setting.value, field + "." + name};
        remember(inner);
        if (name == "version") {
          const auto version = setting.value.is_scalar()
                                   ? core::parse_api_version(setting.value.scalar)
                                   : std::nullopt;
          if (!version) {
            error_on(inner, "must be one of v1, v3, got " + describe_yaml(setting.value));
            continue;
          }
          settings.version = *version;
          has_version = true;
        } else if (name == "api_key_file") {
          if (setting.value.is_null()) continue;  // the global key (as render_config writes it)
          if (auto resolved = path_value(inner, setting.value, inner.field)) {
            settings.api_key_file = std::move(*resolved);
          }
        } else {
          std::string reason =
              "unknown key; an organisation's entry takes version and api_key_file";
          if (name == "api_key" || name == "key" || name == "token") {
            reason += "; the API key is never read from the config: set api_key_file";
          }
          error_at(setting.key, inner.field, std::move(reason));
          unknown_key = true;
        }
      }
      if (!has_version && !unknown_key && !has_error(field + ".version")) {
        error_at(org.key, field + ".version", "is required: v1 or v3");
      }
      organizations.emplace(id, std::move(settings));
    }
    if (errors_.size() == errors) out = std::move(organizations);
  }

  void path_list(const Entry& entry, std::vector<std::string>& out) {
    if (entry.value.is_null()) {
      out.clear();
      return;
    }
    if (!entry.value.is_sequence()) {
      error_on(entry, "expected a list of file paths, got " + describe_yaml(entry.value));
      return;
    }
    std::vector<std::string> paths;
    bool ok = true;
    std::size_t index = 0;
    for (const YamlValue& item : entry.value.items) {
      auto resolved = path_value(entry, item, entry.field + "[" + std::to_string(index++) + "]");
      if (resolved) {
        paths.push_back(std::move(*resolved));
      } else {
        ok = false;
      }
    }
    if (ok) out = std::move(paths);
  }

  std::string resolve(const std::string& text) const {
    const fs::path path(text);
    if (path.is_absolute()) return path.lexically_normal().string();
    return (base_dir_ / path).lexically_normal().string();
  }

 private:
  std::string file_;
  fs::path base_dir_;
  std::vector<Diagnostic> errors_;
  std::set<std::string, std::less<>> misspelt_;  // "api.org_id", or a section: "api"
  std::map<std::string, Origin, std::less<>> origins_;
};

using Setter = std::function<void(Reader&, const Entry&)>;

struct Setting {
  std::string_view key;
  Setter read;
};

struct Section {
  std::string_view name;
  std::vector<Setting> settings;
};

constexpr long long kIntMax = 1'000'000'000;

std::vector<Section> sections(Config& c) {
  return {
      {"api",
       {
           {"base_url", [&c](Reader& r, const Entry& e) { r.string(e, c.api.base_url); }},
           {"org_id", [&c](Reader& r, const Entry& e) { r.string(e, c.api.org_id); }},
           {"version",
            [&c](Reader& r, const Entry& e) {
              static constexpr std::array<std::string_view, 2> kVersions{"v1", "v3"};
              std::string chosen;
              r.choice(e, chosen, kVersions);
              if (const auto version = core::parse_api_version(chosen)) c.api.version = *version;
            }},
           {"api_key_file",
            [&c](Reader& r, const Entry& e) { r.optional_path(e, c.api.api_key_file); }},
           {"organizations",
            [&c](Reader& r, const Entry& e) { r.api_organizations(e, c.api.organizations); }},
           {"ca_file", [&c](Reader& r, const Entry& e) { r.optional_path(e, c.api.ca_file); }},
           {"connect_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.api.connect_timeout, false); }},
           {"request_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.api.request_timeout, false); }},
           {"create_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.api.create_timeout, false); }},
           {"max_body_bytes",
            [&c](Reader& r, const Entry& e) {
              r.integer(e, c.api.max_body_bytes, 1024, 1LL << 30);
            }},
           {"max_in_flight",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.api.max_in_flight, 1, 1024); }},
       }},
      {"rate",
       {
           {"requests_per_minute",
            [&c](Reader& r, const Entry& e) { r.number(e, c.rate.requests_per_minute, 0, true); }},
           {"burst", [&c](Reader& r, const Entry& e) { r.number(e, c.rate.burst, 1, false); }},
           {"concurrency_hold",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.rate.concurrency_hold, true); }},
       }},
      {"poll",
       {
           {"initial_delay",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.poll.initial_delay, false); }},
           {"max_delay",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.poll.max_delay, false); }},
           {"multiplier",
            [&c](Reader& r, const Entry& e) { r.number(e, c.poll.multiplier, 1, false); }},
           {"jitter",
            [&c](Reader& r, const Entry& e) { r.number(e, c.poll.jitter, 0, false, 1.0); }},
           {"batch_size",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.poll.batch_size, 1, 200); }},
           {"full_every",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.poll.full_every, true); }},
           {"incremental_max_delay",
            [&c](Reader& r, const Entry& e) {
              r.duration(e, c.poll.incremental_max_delay, false);
            }},
       }},
      {"create",
       {
           {"max_attempts",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.create.max_attempts, 1, 1000); }},
           {"retry_initial",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.create.retry_initial, false); }},
           {"retry_max",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.create.retry_max, false); }},
           {"settle_delay",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.create.settle_delay, true); }},
           {"settle_window",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.create.settle_window, true); }},
           {"duplicate_watch",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.create.duplicate_watch, true); }},
           {"max_cut_short",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.create.max_cut_short, 1, 1000); }},
           {"max_active_sessions",
            [&c](Reader& r, const Entry& e) {
              r.integer(e, c.create.max_active_sessions, 1, kIntMax);
            }},
           {"max_concurrent_creates",
            [&c](Reader& r, const Entry& e) {
              r.integer(e, c.create.max_concurrent_creates, 1, 1024);
            }},
       }},
      {"database",
       {
           {"path", [&c](Reader& r, const Entry& e) { r.path(e, c.database.path); }},
           {"url", [&c](Reader& r, const Entry& e) { r.string(e, c.database.url); }},
           {"password_file",
            [&c](Reader& r, const Entry& e) {
              // "" is the default: libpq's own PGPASSFILE or ~/.pgpass.
              if (e.value.is_scalar() && e.value.scalar.empty()) {
                c.database.password_file.clear();
              } else {
                r.path(e, c.database.password_file);
              }
            }},
           {"connect_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.database.connect_timeout, false); }},
           {"busy_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.database.busy_timeout, false); }},
           {"cache_kib",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.database.cache_kib, 64, 1LL << 20); }},
       }},
      {"jobs",
       {
           {"files", [&c](Reader& r, const Entry& e) { r.path_list(e, c.jobs.files); }},
           {"complete_on",
            [&c](Reader& r, const Entry& e) {
              static constexpr std::array<std::string_view, 2> kPolicies{"stop", "finished"};
              std::string chosen;
              r.choice(e, chosen, kPolicies);
              if (chosen == "stop") c.jobs.complete_on = core::CompletionPolicy::on_stop;
              if (chosen == "finished") c.jobs.complete_on = core::CompletionPolicy::on_finished;
            }},
           {"queue_watch",
            [&c](Reader& r, const Entry& e) { r.boolean(e, c.jobs.queue_watch); }},
           {"parent_acus_include_children",
            [&c](Reader& r, const Entry& e) {
              r.boolean(e, c.jobs.parent_acus_include_children);
            }},
           {"queue_check_interval",
            [&c](Reader& r, const Entry& e) {
              r.duration(e, c.jobs.queue_check_interval, false);
            }},
       }},
      {"shutdown",
       {
           {"drain_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.shutdown.drain_timeout, true); }},
       }},
      {"lease",
       {
           {"ttl",
            [&c](Reader& r, const Entry& e) {
              core::Duration ttl = c.lease.ttl;
              r.duration(e, ttl, false);
              if (ttl < 2s || ttl > 10min) {
                r.error_on(e, "must be between 2s and 10m, got " + format_duration(ttl));
              } else {
                c.lease.ttl = ttl;
              }
            }},
       }},
      {"retention",
       {
           {"ended_after",
            [&c](Reader& r, const Entry& e) {
              if (e.value.is_null()) {
                c.retention.ended_after.reset();
                return;
              }
              constexpr std::string_view kExpected =
                  "expected a duration like 30d, 12h or 1d12h, or ~ for never";
              const auto parsed = e.value.is_scalar() ? parse_age(e.value.scalar) : std::nullopt;
              if (!parsed) {
                r.error_on(e, std::string{kExpected} + ", got " + describe_yaml(e.value));
              } else if (parsed->count() == 0) {
                r.error_on(e, "must be greater than 0s (~ turns retention off)");
              } else {
                c.retention.ended_after = *parsed;
              }
            }},
       }},
      {"spending",
       {
           {"acus_per_day",
            [&c](Reader& r, const Entry& e) { r.optional_budget(e, c.spending.acus_per_day); }},
           {"acus_per_month",
            [&c](Reader& r, const Entry& e) { r.optional_budget(e, c.spending.acus_per_month); }},
           {"reserve_without_limit",
            [&c](Reader& r, const Entry& e) {
              r.number(e, c.spending.reserve_without_limit, 0, true);
            }},
           {"terminate_over_budget",
            [&c](Reader& r, const Entry& e) { r.boolean(e, c.spending.terminate_over_budget); }},
           {"organizations",
            [&c](Reader& r, const Entry& e) {
              r.spending_organizations(e, c.spending.organizations);
            }},
           {"concurrency_keys",
            [&c](Reader& r, const Entry& e) { r.spending_keys(e, c.spending.concurrency_keys); }},
       }},
      {"attachments",
       {
           {"max_bytes",
            [&c](Reader& r, const Entry& e) {
              r.integer(e, c.attachments.max_bytes, 1, 1LL << 40);
            }},
           {"upload_timeout",
            [&c](Reader& r, const Entry& e) {
              r.duration(e, c.attachments.upload_timeout, false);
            }},
       }},
      {"stall",
       {
           {"after",
            [&c](Reader& r, const Entry& e) {
              if (e.value.is_null()) {
                c.stall.stall_after.reset();
                return;
              }
              core::Duration after{0};
              r.duration(e, after, false);
              if (after.count() > 0) c.stall.stall_after = after;
            }},
           {"action",
            [&c](Reader& r, const Entry& e) {
              static constexpr std::array<std::string_view, 3> kActions{"report", "message",
                                                                        "terminate"};
              std::string chosen{core::to_string(c.stall.action)};
              r.choice(e, chosen, kActions);
              if (const auto action = core::parse_stall_action(chosen)) c.stall.action = *action;
            }},
           {"message",
            [&c](Reader& r, const Entry& e) {
              std::string message = c.stall.message;
              r.string(e, message);
              if (message.find_first_not_of(" \t\r\n") == std::string::npos) {
                r.error_on(e, "must not be empty");
              } else {
                c.stall.message = std::move(message);
              }
            }},
       }},
      {"metrics",
       {
           {"enabled", [&c](Reader& r, const Entry& e) { r.boolean(e, c.metrics.enabled); }},
           {"address", [&c](Reader& r, const Entry& e) { r.string(e, c.metrics.address); }},
           {"port", [&c](Reader& r, const Entry& e) { r.integer(e, c.metrics.port, 0, 65535); }},
       }},
      {"dashboard",
       {
           {"enabled", [&c](Reader& r, const Entry& e) { r.boolean(e, c.dashboard.enabled); }},
           {"address",
            [&c](Reader& r, const Entry& e) {
              if (!r.scalar(e, "an IP address")) return;
              // Checked here, with its line, rather than when the daemon fails to bind.
              unsigned char scratch[16];
              const std::string& text = e.value.scalar;
              if (inet_pton(AF_INET, text.c_str(), scratch) != 1 &&
                  inet_pton(AF_INET6, text.c_str(), scratch) != 1) {
                r.error_on(e, "expected an IP address such as 127.0.0.1 or ::1 (not a host "
                              "name), got " + describe_yaml(e.value));
                return;
              }
              c.dashboard.address = text;
            }},
           {"port",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.dashboard.port, 0, 65535); }},
           {"token_file",
            [&c](Reader& r, const Entry& e) { r.optional_path(e, c.dashboard.token_file); }},
       }},
      {"notify",
       {
           {"webhooks",
            [&c](Reader& r, const Entry& e) {
              r.notify_targets(e, c.notify.webhooks, core::NotifyTarget::Format::webhook);
            }},
           {"slack",
            [&c](Reader& r, const Entry& e) {
              r.notify_targets(e, c.notify.slack, core::NotifyTarget::Format::slack);
            }},
           {"connect_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.notify.connect_timeout, false); }},
           {"request_timeout",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.notify.request_timeout, false); }},
           {"retry_initial",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.notify.retry_initial, false); }},
           {"retry_max",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.notify.retry_max, false); }},
           {"max_age", [&c](Reader& r, const Entry& e) { r.duration(e, c.notify.max_age, false); }},
           {"max_in_flight",
            [&c](Reader& r, const Entry& e) { r.integer(e, c.notify.max_in_flight, 1, 10'000); }},
           {"max_in_flight_per_receiver",
            [&c](Reader& r, const Entry& e) {
              r.integer(e, c.notify.max_in_flight_per_receiver, 1, 1'000);
            }},
           {"check_interval",
            [&c](Reader& r, const Entry& e) { r.duration(e, c.notify.check_interval, false); }},
       }},
      // A list, not a map of settings: load_config reads it (Reader::concurrency_limits).
      {"concurrency", {}},
      {"log",
       {
           {"level", [&c](Reader& r, const Entry& e) { r.choice(e, c.log.level, kLogLevels); }},
           {"format",
            [&c](Reader& r, const Entry& e) { r.choice(e, c.log.format, kLogFormats); }},
       }},
  };
}

// Reads one map level, reporting non-scalar, duplicate and unknown keys; `on_key` handles the
// rest. `where` names the map in messages ("section 'poll'", "the top level").
template <class Known, class OnKey>
void for_each_key(Reader& reader, const YamlValue& map, const std::string& prefix,
                  const std::string& where, const Known& known, OnKey on_key) {
  std::map<std::string, int, std::less<>> first_line;
  for (const auto& [key, value] : map.entries) {
    if (!key.is_scalar()) {
      reader.error_at(key, prefix, "keys must be plain names, got " + describe_yaml(key));
      continue;
    }
    const std::string& name = key.scalar;
    const std::string field = prefix.empty() ? name : prefix + "." + name;
    const int line = key.mark.line + 1;
    if (const auto [found, inserted] = first_line.try_emplace(name, line); !inserted) {
      reader.error_at(key, field,
                      "duplicate key '" + name + "' (first defined at line " +
                          std::to_string(found->second) + ")");
      continue;
    }
    std::vector<std::string_view> names;
    for (const auto& candidate : known) names.push_back(candidate.first);
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string reason = prefix.empty() ? "unknown section '" + name + "'"
                                          : "unknown key '" + name + "' in " + where;
      if (const auto hint = closest_match(name, names)) {
        reason += " (did you mean '" + std::string(*hint) + "'?)";
        reader.misspelt(prefix.empty() ? std::string(*hint) : prefix + "." + std::string(*hint));
      } else if (prefix == "api" && (name == "api_key" || name == "key" || name == "token")) {
        reason += "; the API key is never read from the config: set api.api_key_file";
      }
      reader.error_at(key, field, std::move(reason));
      continue;
    }
    on_key(name, Entry{.key = key, .value = value, .field = field});
  }
}

bool is_loopback_host(const boost::urls::url_view& url) {
  switch (url.host_type()) {
    case boost::urls::host_type::ipv4: return url.host_ipv4_address().is_loopback();
    case boost::urls::host_type::ipv6: return url.host_ipv6_address().is_loopback();
    case boost::urls::host_type::name: {
      std::string host(url.encoded_host());
      for (char& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return host == "localhost" || host == "localhost.";
    }
    default: return false;
  }
}

// Returns the reason the URL is unusable, or nullopt. Trailing slashes are the caller's to strip.
std::optional<std::string> check_base_url(const std::string& text) {
  const auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) return "is not a valid absolute URL like https://api.devin.ai";
  const boost::urls::url_view& url = *parsed;
  const std::string scheme(url.scheme());
  if (scheme != "https" && scheme != "http") return "must start with https:// (got " + scheme + ")";
  if (!url.has_authority() || url.encoded_host().empty()) return "has no host";
  if (url.has_userinfo()) return "must not contain credentials (user@host)";
  if (url.has_query() || url.has_fragment()) return "must not have a query or fragment";
  if (scheme == "http" && !is_loopback_host(url)) {
    return "plain http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost)";
  }
  return std::nullopt;
}

// A PostgreSQL URL as libpq takes it, without a password anywhere in it: a password in the
// configuration would end up in backups, `config` output and process listings.
std::optional<std::string> check_database_url(const std::string& text) {
  if (!text.starts_with("postgresql://") && !text.starts_with("postgres://")) {
    return "must be a PostgreSQL URL (postgresql://user@host:port/database); leave it empty "
           "for the SQLite file database.path";
  }
  const auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return "is not a valid URL";
  const auto password_file = "; put the password in a password file (database.password_file, "
                             "or libpq's PGPASSFILE / ~/.pgpass)";
  if (parsed->has_password()) return std::string("must not contain a password") + password_file;
  for (const auto& param : parsed->params()) {
    if (param.key == "password") {
      return std::string("must not contain a password parameter") + password_file;
    }
  }
  return std::nullopt;
}

bool is_url_safe_id(std::string_view id) {
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '-' || ch == '_' ||
           ch == '.' || ch == '~';
  });
}

const char* non_empty_env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

void apply_environment(Config& config, Reader& reader) {
  if (const char* value = non_empty_env("DEVIN_ORCH_BASE_URL")) {
    config.api.base_url = value;
    reader.remember_env("api.base_url", "DEVIN_ORCH_BASE_URL");
  }
  if (const char* value = non_empty_env("DEVIN_ORCH_ORG_ID")) {
    config.api.org_id = value;
    reader.remember_env("api.org_id", "DEVIN_ORCH_ORG_ID");
  }
  if (const char* value = non_empty_env("DEVIN_ORCH_API_VERSION")) {
    reader.remember_env("api.version", "DEVIN_ORCH_API_VERSION");
    if (const auto version = core::parse_api_version(value)) {
      config.api.version = *version;
    } else {
      reader.error_from("api.version", "must be v1 or v3, got '" + std::string{value} + "'");
    }
  }
  if (const char* value = non_empty_env("DEVIN_ORCH_DATABASE")) {
    // Relative to the working directory, like any path given on a command line.
    config.database.path = value;
    reader.remember_env("database.path", "DEVIN_ORCH_DATABASE");
  }
  if (const char* value = non_empty_env("DEVIN_ORCH_DATABASE_URL")) {
    config.database.url = value;
    reader.remember_env("database.url", "DEVIN_ORCH_DATABASE_URL");
  }
}

// Checks of effective values, after the whole file and the environment: each is skipped when an
// error already reported explains it (Reader::already_explained), so one mistake is one error.
void validate(Config& config, Reader& reader) {
  if (reader.already_explained("api.org_id")) {
  } else if (config.api.org_id.empty()) {
    reader.error_from("api.org_id", "is required: set api.org_id or DEVIN_ORCH_ORG_ID");
  } else if (!is_url_safe_id(config.api.org_id)) {
    reader.error_from("api.org_id", "may contain only letters, digits, '-', '_', '.' and '~'");
  }
  if (reader.already_explained("api.base_url")) {
  } else if (const auto problem = check_base_url(config.api.base_url)) {
    reader.error_from("api.base_url", *problem);
  } else {
    while (config.api.base_url.ends_with('/')) config.api.base_url.pop_back();
  }
  const auto explained = [&](std::string_view a, std::string_view b) {
    return reader.already_explained(a) || reader.already_explained(b);
  };
  if (config.poll.max_delay < config.poll.initial_delay &&
      !explained("poll.max_delay", "poll.initial_delay")) {
    reader.error_from("poll.max_delay", "must be at least poll.initial_delay (" +
                                            format_duration(config.poll.initial_delay) + ")");
  }
  if (config.create.retry_max < config.create.retry_initial &&
      !explained("create.retry_max", "create.retry_initial")) {
    reader.error_from("create.retry_max", "must be at least create.retry_initial (" +
                                              format_duration(config.create.retry_initial) + ")");
  }
  if (reader.has_error("database.url")) {
  } else if (!config.database.url.empty()) {
    if (const auto problem = check_database_url(config.database.url)) {
      reader.error_from("database.url", *problem);
    }
  } else if (config.database.path.empty()) {
    reader.error_from("database.path", "must not be empty");
  }
  if (config.notify.retry_max < config.notify.retry_initial) {
    reader.error_from("notify.retry_max", "must be at least notify.retry_initial (" +
                                              format_duration(config.notify.retry_initial) + ")");
  }
}

// Why this process could not open or create a database at `path`, or nullopt. An existing file
// is opened for reading and writing; otherwise a file is created and removed again in the
// nearest directory that exists, which is where the store would create the missing ones (and
// SQLite its -wal and -shm files). Trying beats access(2): it also sees read-only mounts and
// filesystems that refuse new entries, for root too.
std::optional<std::string> database_location_problem(const std::string& path) {
  const fs::path database = path;
  struct stat info {};
  if (::stat(database.c_str(), &info) == 0) {
    if (!S_ISREG(info.st_mode)) return "'" + path + "' exists and is not a regular file";
    const int fd = ::open(database.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return "cannot open '" + path + "' for writing: " + std::strerror(errno);
    ::close(fd);
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return "cannot inspect '" + path + "': " + std::strerror(errno);
  }
  fs::path dir = database.parent_path();
  for (;;) {
    if (dir.empty()) dir = ".";
    if (::stat(dir.c_str(), &info) == 0) break;
    if (errno != ENOENT && errno != ENOTDIR) {
      return "cannot inspect '" + dir.string() + "': " + std::strerror(errno);
    }
    const fs::path parent = dir.parent_path();
    if (parent.empty() || parent == dir) return "no directory of '" + path + "' exists";
    dir = parent;
  }
  if (!S_ISDIR(info.st_mode)) {
    return "cannot be created: '" + dir.string() + "' is not a directory";
  }
  std::string probe = (dir / ".devin-orch-check-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    const std::string reason = std::strerror(errno);
    const fs::path own = database.parent_path().empty() ? fs::path(".") : database.parent_path();
    if (dir == own) {
      return "its directory '" + dir.string() + "' is not writable (" + reason +
             "); SQLite keeps -wal and -shm files beside the database";
    }
    return "cannot be created: cannot create directories in '" + dir.string() + "' (" + reason +
           ")";
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return std::nullopt;
}

// Closes the descriptor on every path out of resolve_api_key.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

std::string_view trim(std::string_view text) {
  const auto space = [](char ch) { return std::isspace(static_cast<unsigned char>(ch)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

// A usable key goes verbatim into an HTTP header: control characters or spaces inside would
// corrupt (or inject into) the request.
std::optional<std::string> check_key(std::string_view raw, const std::string& source,
                                     std::string* error) {
  const std::string_view key = trim(raw);
  if (key.empty()) {
    *error = source + " is empty";
    return std::nullopt;
  }
  for (char ch : key) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte <= 0x20 || byte == 0x7f) {
      *error = source + " contains whitespace or control characters inside the key";
      return std::nullopt;
    }
  }
  return std::string(key);
}

std::optional<std::string> read_key_file(const std::string& path, std::string* error) {
  const FdCloser fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) {
    *error = "cannot open key file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  // fstat on the open descriptor: the mode checked is the mode of the file actually read.
  struct stat info {};
  if (::fstat(fd.fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    *error = "key file " + path + " is not a regular file";
    return std::nullopt;
  }
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    *error = "key file " + path + " is readable by group or others (mode " + mode +
             "); chmod 600 it";
    return std::nullopt;
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot read key file " + path + ": " + std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxKeyFileBytes) {
      *error = "key file " + path + " is too large to be an API key";
      return std::nullopt;
    }
  }
  return check_key(text, "key file " + path, error);
}

// Writes the effective configuration: a comment, then one block map per section. Strings go
// out double-quoted so that values like "null" or "10s" can never change type.
class ConfigWriter {
 public:
  // A path may hold any byte but a line break would end the comment: those become spaces.
  void comment(std::string_view text) {
    out_ += "# ";
    for (const char ch : text) out_ += ch == '\n' || ch == '\r' ? ' ' : ch;
    out_ += '\n';
  }
  void section(std::string_view name) {
    out_ += name;
    out_ += ":\n";
  }
  void plain(std::string_view key, std::string_view value) {
    line(key) += value;
    end();
  }
  void string(std::string_view key, std::string_view value) {
    quote(line(key), value);
    end();
  }
  void optional(std::string_view key, const std::optional<std::string>& value) {
    if (value) {
      string(key, *value);
    } else {
      plain(key, "~");
    }
  }
  void duration(std::string_view key, core::Duration value) { plain(key, format_duration(value)); }
  void strings(std::string_view key, const std::vector<std::string>& values) {
    if (values.empty()) {
      plain(key, "[]");
      return;
    }
    out_ += "  ";
    out_ += key;
    out_ += ":\n";
    for (const std::string& value : values) {
      out_ += "    - ";
      quote(out_, value);
      end();
    }
  }
  // `name: value` at the top level (an empty list, say).
  void top_level(std::string_view name, std::string_view value) {
    out_ += name;
    out_ += ": ";
    out_ += value;
    end();
  }
  // `  - key: "string"\n    other: plain` under a section that is a list.
  void list_item(std::string_view key, std::string_view value, std::string_view other,
                 std::string_view other_value) {
    out_ += "  - ";
    out_ += key;
    out_ += ": ";
    quote(out_, value);
    end();
    out_ += "    ";
    out_ += other;
    out_ += ": ";
    out_ += other_value;
    end();
  }
  // api.organizations: one nested map per organisation (ids are URL-safe, so plain).
  void organizations(const std::map<std::string, OrgApiConfig, std::less<>>& organizations) {
    if (organizations.empty()) {
      plain("organizations", "{}");
      return;
    }
    out_ += "  organizations:\n";
    for (const auto& [id, org] : organizations) {
      out_ += "    " + id + ":\n      version: " + std::string{core::to_string(org.version)} +
              "\n      api_key_file: ";
      if (org.api_key_file) {
        quote(out_, *org.api_key_file);
      } else {
        out_ += "~";
      }
      end();
    }
  }
  // spending.organizations: the fields each organisation sets (a left-out one is the global).
  void spending_organizations(const std::map<std::string, OrgSpendingConfig, std::less<>>& orgs) {
    if (orgs.empty()) {
      plain("organizations", "{}");
      return;
    }
    out_ += "  organizations:\n";
    for (const auto& [id, org] : orgs) {
      std::string fields;
      for (const auto& [name, budget] : {std::pair{"acus_per_day", &org.acus_per_day},
                                         std::pair{"acus_per_month", &org.acus_per_month}}) {
        if (!budget->set) continue;
        fields += fields.empty() ? "" : ", ";
        fields += std::string{name} + ": " + (budget->acus ? format_number(*budget->acus) : "~");
      }
      out_ += "    " + id + ": {" + fields + "}";
      end();
    }
  }
  // spending.concurrency_keys: one item per pattern, in order.
  void spending_keys(const std::vector<core::KeySpendingBudget>& keys) {
    if (keys.empty()) {
      plain("concurrency_keys", "[]");
      return;
    }
    out_ += "  concurrency_keys:\n";
    for (const auto& key : keys) {
      out_ += "    - key: ";
      quote(out_, key.pattern);
      out_ += "\n      acus_per_day: " + (key.per_day ? format_number(*key.per_day) : "~");
      out_ += "\n      acus_per_month: " + (key.per_month ? format_number(*key.per_month) : "~");
      end();
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string& line(std::string_view key) {
    out_ += "  ";
    out_ += key;
    out_ += ": ";
    return out_;
  }
  void end() { out_ += '\n'; }

  // YAML's double-quoted style: escapes for the quote, the backslash and control characters;
  // UTF-8 text goes out as it is (the loader accepted it as valid UTF-8).
  static void quote(std::string& out, std::string_view value) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (const char ch : value) {
      const auto byte = static_cast<unsigned char>(ch);
      switch (ch) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
          if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += kHex[byte >> 4U];
            out += kHex[byte & 0xfU];
          } else {
            out += ch;
          }
      }
    }
    out += '"';
  }

  std::string out_;
};

}  // namespace

ConfigLoad load_config(const std::string& path, const ConfigChecks& checks) {
  ConfigLoad load;
  Diagnostic read_error;
  const auto text = read_input_file(path, kMaxConfigBytes, &read_error);
  if (!text) {
    load.errors.push_back(std::move(read_error));
    return load;
  }
  auto document = load_yaml_document(*text, path, kConfigScreen);
  if (auto* problem = std::get_if<Diagnostic>(&document)) {
    load.errors.push_back(std::move(*problem));
    return load;
  }
  const YamlValue root = std::move(std::get<YamlValue>(document));

  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) absolute = fs::path(path);
  Reader reader(path, absolute.parent_path());
  Config config;
  config.source_path = path;

  if (!root.is_null() && !root.is_map()) {
    reader.error_at(root, "",
                    "expected a map of sections (api, rate, poll, create, database, jobs, "
                    "shutdown, lease, retention, spending, concurrency, metrics, dashboard, notify, log), got " + describe_yaml(root));
  } else if (root.is_map()) {
    std::vector<Section> table = sections(config);
    std::vector<std::pair<std::string_view, const Section*>> known_sections;
    for (const Section& section : table) known_sections.emplace_back(section.name, &section);
    for_each_key(reader, root, "", "the top level", known_sections,
                 [&](const std::string& name, const Entry& entry) {
                   const Section* section = nullptr;
                   for (const auto& [known, candidate] : known_sections) {
                     if (known == name) section = candidate;
                   }
                   if (name == "concurrency") {
                     reader.remember(entry);
                     reader.concurrency_limits(entry, config.concurrency);
                     return;
                   }
                   if (entry.value.is_null()) return;  // `poll:` alone: all defaults
                   if (!entry.value.is_map()) {
                     reader.error_on(entry, "expected a map of settings, got " +
                                                describe_yaml(entry.value));
                     return;
                   }
                   std::vector<std::pair<std::string_view, const Setting*>> known_keys;
                   for (const Setting& setting : section->settings) {
                     known_keys.emplace_back(setting.key, &setting);
                   }
                   for_each_key(reader, entry.value, name, "section '" + name + "'",
                                known_keys, [&](const std::string& key, const Entry& setting) {
                                  for (const auto& [known, candidate] : known_keys) {
                                    if (known == key) {
                                      reader.remember(setting);
                                      candidate->read(reader, setting);
                                    }
                                  }
                                });
                 });
  }

  apply_environment(config, reader);
  validate(config, reader);
  // PostgreSQL (database.url) has no file to create; its server answers when it is opened.
  if (checks.database_location && config.database.url.empty() &&
      !reader.already_explained("database.path")) {
    if (const auto problem = database_location_problem(config.database.path)) {
      reader.error_from("database.path", *problem);
    }
  }

  load.errors = std::move(reader.errors());
  if (load.errors.empty()) load.config = std::move(config);
  return load;
}

std::string render_config(const Config& config) {
  ConfigWriter out;
  out.comment("effective configuration" +
              (config.source_path.empty() ? std::string() : " (from " + config.source_path + ")"));

  out.section("api");
  out.string("base_url", config.api.base_url);
  out.string("org_id", config.api.org_id);
  out.plain("version", std::string{core::to_string(config.api.version)});
  out.optional("api_key_file", config.api.api_key_file);
  out.organizations(config.api.organizations);
  out.optional("ca_file", config.api.ca_file);
  out.duration("connect_timeout", config.api.connect_timeout);
  out.duration("request_timeout", config.api.request_timeout);
  out.duration("create_timeout", config.api.create_timeout);
  out.plain("max_body_bytes", std::to_string(config.api.max_body_bytes));
  out.plain("max_in_flight", std::to_string(config.api.max_in_flight));

  out.section("rate");
  out.plain("requests_per_minute", format_number(config.rate.requests_per_minute));
  out.plain("burst", format_number(config.rate.burst));
  out.duration("concurrency_hold", config.rate.concurrency_hold);

  out.section("poll");
  out.duration("initial_delay", config.poll.initial_delay);
  out.duration("max_delay", config.poll.max_delay);
  out.plain("multiplier", format_number(config.poll.multiplier));
  out.plain("jitter", format_number(config.poll.jitter));
  out.plain("batch_size", std::to_string(config.poll.batch_size));
  out.duration("full_every", config.poll.full_every);
  out.duration("incremental_max_delay", config.poll.incremental_max_delay);

  out.section("create");
  out.plain("max_attempts", std::to_string(config.create.max_attempts));
  out.duration("retry_initial", config.create.retry_initial);
  out.duration("retry_max", config.create.retry_max);
  out.duration("settle_delay", config.create.settle_delay);
  out.duration("settle_window", config.create.settle_window);
  out.duration("duplicate_watch", config.create.duplicate_watch);
  out.plain("max_cut_short", std::to_string(config.create.max_cut_short));
  out.plain("max_active_sessions", std::to_string(config.create.max_active_sessions));
  out.plain("max_concurrent_creates", std::to_string(config.create.max_concurrent_creates));

  out.section("database");
  out.string("path", config.database.path);
  out.string("url", config.database.url);
  out.string("password_file", config.database.password_file);
  out.duration("connect_timeout", config.database.connect_timeout);
  out.duration("busy_timeout", config.database.busy_timeout);
  out.plain("cache_kib", std::to_string(config.database.cache_kib));

  out.section("jobs");
  out.strings("files", config.jobs.files);
  out.plain("complete_on",
             config.jobs.complete_on == core::CompletionPolicy::on_finished ? "finished" : "stop");
  out.plain("queue_watch", config.jobs.queue_watch ? "true" : "false");
  out.plain("parent_acus_include_children",
            config.jobs.parent_acus_include_children ? "true" : "false");
  out.duration("queue_check_interval", config.jobs.queue_check_interval);

  out.section("shutdown");
  out.duration("drain_timeout", config.shutdown.drain_timeout);

  out.section("lease");
  out.duration("ttl", config.lease.ttl);

  out.section("retention");
  if (config.retention.ended_after) {
    out.duration("ended_after", *config.retention.ended_after);
  } else {
    out.plain("ended_after", "~");
  }

  out.section("spending");
  out.plain("acus_per_day",
            config.spending.acus_per_day ? format_number(*config.spending.acus_per_day) : "~");
  out.plain("acus_per_month",
            config.spending.acus_per_month ? format_number(*config.spending.acus_per_month) : "~");
  out.plain("reserve_without_limit", format_number(config.spending.reserve_without_limit));
  out.plain("terminate_over_budget", config.spending.terminate_over_budget ? "true" : "false");
  out.spending_organizations(config.spending.organizations);
  out.spending_keys(config.spending.concurrency_keys);

  out.section("attachments");
  out.plain("max_bytes", std::to_string(config.attachments.max_bytes));
  out.duration("upload_timeout", config.attachments.upload_timeout);

  out.section("stall");
  if (config.stall.stall_after) {
    out.duration("after", *config.stall.stall_after);
  } else {
    out.plain("after", "~");
  }
  out.plain("action", std::string{core::to_string(config.stall.action)});
  out.string("message", config.stall.message);

  out.section("metrics");
  out.plain("enabled", config.metrics.enabled ? "true" : "false");
  out.string("address", config.metrics.address);
  out.plain("port", std::to_string(config.metrics.port));

  out.section("dashboard");
  out.plain("enabled", config.dashboard.enabled ? "true" : "false");
  out.string("address", config.dashboard.address);
  out.plain("port", std::to_string(config.dashboard.port));
  out.optional("token_file", config.dashboard.token_file);

  out.section("notify");
  const auto targets = [&out](std::string_view key, const std::vector<core::NotifyTarget>& list) {
    std::vector<std::string> urls;
    for (const auto& target : list) urls.push_back(target.url);
    out.strings(key, urls);  // the URLs only: the filters and secret files are as configured
  };
  targets("webhooks", config.notify.webhooks);
  targets("slack", config.notify.slack);
  out.duration("connect_timeout", config.notify.connect_timeout);
  out.duration("request_timeout", config.notify.request_timeout);
  out.duration("retry_initial", config.notify.retry_initial);
  out.duration("retry_max", config.notify.retry_max);
  out.duration("max_age", config.notify.max_age);
  out.plain("max_in_flight", std::to_string(config.notify.max_in_flight));
  out.plain("max_in_flight_per_receiver", std::to_string(config.notify.max_in_flight_per_receiver));
  out.duration("check_interval", config.notify.check_interval);

  if (config.concurrency.empty()) {
    out.top_level("concurrency", "[]");
  } else {
    out.section("concurrency");
    for (const auto& limit : config.concurrency) {
      out.list_item("key", limit.pattern, "max_active", std::to_string(limit.max_active));
    }
  }

  out.section("log");
  out.string("level", config.log.level);
  out.string("format", config.log.format);

  return out.take();
}

namespace {

// The one order the key is looked for in; resolve_api_key reads it, describe_api_key_source
// names it.
struct KeySource {
  enum class Kind { credential, file, environment, none } kind;
  std::string path;  // credential, file
};

KeySource find_key_source(const ApiConfig& api) {
  if (const char* directory = non_empty_env("CREDENTIALS_DIRECTORY")) {
    const std::string path = (fs::path(directory) / "devin-api-key").string();
    std::error_code ec;
    if (fs::exists(path, ec)) return {KeySource::Kind::credential, path};
  }
  if (api.api_key_file) return {KeySource::Kind::file, *api.api_key_file};
  if (std::getenv("DEVIN_API_KEY") != nullptr) return {KeySource::Kind::environment, {}};
  return {KeySource::Kind::none, {}};
}

}  // namespace

std::optional<std::string> resolve_api_key(const ApiConfig& api, std::string* error) {
  std::string scratch;
  std::string& message = error != nullptr ? *error : scratch;
  const KeySource source = find_key_source(api);
  switch (source.kind) {
    case KeySource::Kind::credential:
    case KeySource::Kind::file: return read_key_file(source.path, &message);
    case KeySource::Kind::environment:
      return check_key(std::getenv("DEVIN_API_KEY"), "DEVIN_API_KEY", &message);
    case KeySource::Kind::none: break;
  }
  // Callers say "no API key: " before the reason, as they do for a key file they cannot read.
  message =
      "provide the systemd credential devin-api-key, set api.api_key_file, or set DEVIN_API_KEY";
  return std::nullopt;
}

std::optional<std::string> resolve_webhook_secret(const core::NotifyTarget& target,
                                                  std::string* error) {
  if (target.secret_file) return read_key_file(*target.secret_file, error);
  if (const char* directory = non_empty_env("CREDENTIALS_DIRECTORY")) {
    return read_key_file(std::string(directory) + "/devin-orch-webhook-secret", error);
  }
  *error = "no signing secret: set secret_file, or pass the credential devin-orch-webhook-secret "
           "(systemd LoadCredential=)";
  return std::nullopt;
}

std::optional<std::string> resolve_dashboard_token(const DashboardConfig& dashboard,
                                                   std::string* error) {
  if (!dashboard.token_file) return std::nullopt;
  std::string scratch;
  auto token = read_key_file(*dashboard.token_file, error != nullptr ? error : &scratch);
  if (!token && error != nullptr) *error = "dashboard.token_file: " + *error;
  return token;
}

std::string describe_api_key_source(const ApiConfig& api) {
  const KeySource source = find_key_source(api);
  switch (source.kind) {
    case KeySource::Kind::credential: return "the systemd credential devin-api-key";
    case KeySource::Kind::file: return "api.api_key_file (" + source.path + ")";
    case KeySource::Kind::environment: return "DEVIN_API_KEY";
    case KeySource::Kind::none: break;
  }
  return "no key source";
}

core::ApiVersion api_version_for(const ApiConfig& api, std::string_view org_id) {
  const auto found = api.organizations.find(org_id);
  return found != api.organizations.end() ? found->second.version : api.version;
}

std::optional<std::string> resolve_org_api_key(const ApiConfig& api, std::string_view org_id,
                                               std::string* error) {
  std::string scratch;
  std::string& message = error != nullptr ? *error : scratch;
  const auto found = api.organizations.find(org_id);
  if (found == api.organizations.end()) return resolve_api_key(api, &message);
  const std::string field = "api.organizations." + std::string{org_id};
  std::optional<std::string> key;
  if (found->second.api_key_file) {
    key = read_key_file(*found->second.api_key_file, &message);
    if (!key) message = field + ".api_key_file: " + message;
  } else {
    key = resolve_api_key(api, &message);
  }
  if (!key) return std::nullopt;
  // Reference §1: apk_ keys work on v1 only; v3 refuses them. Caught here, not at the first
  // create, and without quoting the key.
  const bool v1_key = key->starts_with("apk_");
  if (found->second.version == core::ApiVersion::v1 && !v1_key) {
    message = field + ": version v1 needs a v1 key (apk_...), but the key from " +
              describe_org_api_key_source(api, org_id) + " is not one";
    return std::nullopt;
  }
  if (found->second.version == core::ApiVersion::v3 && v1_key) {
    message = field + ": version v3 refuses v1 keys (apk_...), and the key from " +
              describe_org_api_key_source(api, org_id) + " is one";
    return std::nullopt;
  }
  return key;
}

std::string describe_org_api_key_source(const ApiConfig& api, std::string_view org_id) {
  const auto found = api.organizations.find(org_id);
  if (found != api.organizations.end() && found->second.api_key_file) {
    return "api.organizations." + std::string{org_id} + ".api_key_file (" +
           *found->second.api_key_file + ")";
  }
  return describe_api_key_source(api);
}

api::HttpClientOptions http_client_options(const ApiConfig& api, std::string api_key,
                                           std::size_t max_idle_connections) {
  return api::HttpClientOptions{.base_url = api.base_url,
                                .bearer_token = std::move(api_key),
                                .ca_file = api.ca_file,
                                .connect_timeout = api.connect_timeout,
                                .request_timeout = api.request_timeout,
                                .max_body_bytes = api.max_body_bytes,
                                .max_idle_connections = max_idle_connections};
}

store::StoreOptions store_options(const DatabaseConfig& database) {
  return {.path = database.path,
          .url = database.url,
          .password_file = database.password_file,
          .connect_timeout = database.connect_timeout,
          .busy_timeout = database.busy_timeout,
          .cache_kib = database.cache_kib};
}

const std::string& database_name(const DatabaseConfig& database) {
  return database.url.empty() ? database.path : database.url;
}

}  // namespace devin_orch::app
