// The metrics registry: name and label validation at registration, family bookkeeping, and
// rendering in the Prometheus text exposition format 0.0.4.
#include "devin_orch/server/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>
#include <system_error>

namespace devin_orch::server {
namespace {

enum class Kind { counter, gauge, histogram };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::counter: return "counter";
    case Kind::gauge: return "gauge";
    case Kind::histogram: return "histogram";
  }
  return "untyped";
}

bool is_name_start(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool is_name_char(char c, bool allow_colon) {
  return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

bool is_valid_name(std::string_view name, bool allow_colon) {
  if (name.empty() || !is_name_start(name.front(), allow_colon)) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return is_name_char(c, allow_colon); });
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void validate_metric_name(std::string_view name, Kind kind) {
  if (!is_valid_name(name, /*allow_colon=*/true)) {
    throw std::invalid_argument("invalid metric name '" + std::string{name} + "'");
  }
  if (kind == Kind::counter && !ends_with(name, "_total")) {
    throw std::invalid_argument("counter name '" + std::string{name} + "' must end in _total");
  }
}

void validate_labels(std::string_view metric, const Labels& labels, Kind kind) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& label = labels[i].first;
    if (!is_valid_name(label, /*allow_colon=*/false) || label.starts_with("__")) {
      throw std::invalid_argument("invalid label name '" + label + "' on " + std::string{metric});
    }
    if (kind == Kind::histogram && label == "le") {
      throw std::invalid_argument("histogram " + std::string{metric} + " may not use label 'le'");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (labels[j].first == label) {
        throw std::invalid_argument("duplicate label '" + label + "' on " + std::string{metric});
      }
    }
  }
}

// Integers print without exponent so counters read naturally; everything else uses the shortest
// representation that round-trips, which Prometheus (Go's ParseFloat) accepts.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53
  if (v == std::trunc(v) && std::fabs(v) < kExactIntegerLimit) {
    return std::to_string(static_cast<std::int64_t>(v));  // also turns -0 into "0"
  }
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  if (ec != std::errc{}) return "NaN";  // cannot happen with 64 bytes for a double
  return std::string(buffer, end);
}

void append_escaped(std::string& out, std::string_view text, bool escape_quote) {
  for (const char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        out += escape_quote ? "\\\"" : "\"";
        break;
      default: out += c;
    }
  }
}

using LabelValues = std::vector<std::string>;

struct Family {
  Kind kind = Kind::counter;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> upper_bounds;  // histograms only, as normalised by Histogram
  std::map<LabelValues, std::unique_ptr<Counter>> counters;
  std::map<LabelValues, std::unique_ptr<Gauge>> gauges;
  std::map<LabelValues, std::unique_ptr<Histogram>> histograms;
};

// The names a family's samples appear under; two families must never share one.
std::vector<std::string> sample_names(std::string_view name, Kind kind) {
  std::string base{name};
  if (kind != Kind::histogram) return {base};
  return {base, base + "_bucket", base + "_sum", base + "_count"};
}

// `{a="x",b="y"` without the closing brace, so a histogram can append `le`.
void append_open_labels(std::string& out, const std::vector<std::string>& names,
                        const LabelValues& values) {
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], /*escape_quote=*/true);
    out += '"';
  }
}

void append_sample(std::string& out, std::string_view name, const std::vector<std::string>& names,
                   const LabelValues& values, double value) {
  out += name;
  if (!names.empty()) {
    append_open_labels(out, names, values);
    out += '}';
  }
  out += ' ';
  out += format_value(value);
  out += '\n';
}

void append_histogram(std::string& out, std::string_view name,
                      const std::vector<std::string>& names, const LabelValues& values,
                      const Histogram& histogram) {
  const auto& bounds = histogram.upper_bounds();
  const auto& counts = histogram.bucket_counts();
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    out += name;
    out += "_bucket";
    append_open_labels(out, names, values);
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += i < bounds.size() ? format_value(bounds[i]) : "+Inf";
    out += "\"} ";
    out += std::to_string(cumulative);
    out += '\n';
  }
  append_sample(out, std::string{name} + "_sum", names, values, histogram.sum());
  append_sample(out, std::string{name} + "_count", names, values,
                static_cast<double>(histogram.count()));
}

}  // namespace

void Counter::inc(double amount) {
  if (!(amount >= 0)) {
    throw std::invalid_argument("a counter cannot be increased by " + format_value(amount));
  }
  value_ += amount;
}

Histogram::Histogram(std::vector<double> upper_bounds) : upper_bounds_{std::move(upper_bounds)} {
  if (!upper_bounds_.empty() && std::isinf(upper_bounds_.back()) && upper_bounds_.back() > 0) {
    upper_bounds_.pop_back();
  }
  for (std::size_t i = 0; i < upper_bounds_.size(); ++i) {
    if (!std::isfinite(upper_bounds_[i])) {
      throw std::invalid_argument("histogram bucket bounds must be finite");
    }
    if (i > 0 && !(upper_bounds_[i - 1] < upper_bounds_[i])) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
    }
  }
  bucket_counts_.assign(upper_bounds_.size() + 1, 0);
}

void Histogram::observe(double value) noexcept {
  if (std::isnan(value)) return;
  // A bucket counts values less than or equal to its bound (`le`).
  const auto bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value);
  ++bucket_counts_[static_cast<std::size_t>(bucket - upper_bounds_.begin())];
  ++count_;
  sum_ += value;
}

struct MetricsRegistry::State {
  std::map<std::string, Family, std::less<>> families;
  std::map<std::string, std::string, std::less<>> sample_owner;  // sample name -> family name

  // Finds or creates the family, enforcing one type and one label set per name; returns it with
  // the label values in the family's label order.
  std::pair<Family*, LabelValues> family_for(std::string_view name, std::string_view help,
                                             Kind kind, const Labels& labels) {
    validate_metric_name(name, kind);
    validate_labels(name, labels, kind);
    const std::string family_name{name};

    auto found = families.find(name);
    if (found == families.end()) {
      for (const auto& sample : sample_names(name, kind)) {
        if (const auto owner = sample_owner.find(sample); owner != sample_owner.end()) {
          throw std::logic_error("metric " + family_name + " collides with the samples of " +
                                 owner->second);
        }
      }
      Family family;
      family.kind = kind;
      family.help = std::string{help};
      for (const auto& [label, value] : labels) family.label_names.push_back(label);
      found = families.emplace(family_name, std::move(family)).first;
      for (const auto& sample : sample_names(name, kind)) sample_owner.emplace(sample, family_name);
    }

    Family& family = found->second;
    if (family.kind != kind) {
      throw std::logic_error("metric " + family_name + " is a " + kind_name(family.kind) +
                             ", not a " + kind_name(kind));
    }
    if (family.label_names.size() != labels.size()) {
      throw std::logic_error("metric " + family_name + " registered with other label names");
    }
    LabelValues values;
    values.reserve(labels.size());
    for (const auto& label_name : family.label_names) {
      const auto it = std::find_if(labels.begin(), labels.end(),
                                   [&](const auto& label) { return label.first == label_name; });
      if (it == labels.end()) {
        throw std::logic_error("metric " + family_name + " registered with other label names");
      }
      values.push_back(it->second);
    }
    return {&family, std::move(values)};
  }
};

MetricsRegistry::MetricsRegistry() : state_{std::make_unique<State>()} {}
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, Labels labels) {
  auto [family, values] = state_->family_for(name, help, Kind::counter, labels);
  auto& slot = family->counters[std::move(values)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, Labels labels) {
  auto [family, values] = state_->family_for(name, help, Kind::gauge, labels);
  auto& slot = family->gauges[std::move(values)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> upper_bounds, Labels labels) {
  // Validate the buckets before the family exists, so a bad call leaves no empty family behind.
  auto candidate = std::make_unique<Histogram>(std::move(upper_bounds));
  const bool is_new_family = state_->families.find(name) == state_->families.end();
  auto [family, values] = state_->family_for(name, help, Kind::histogram, labels);
  if (is_new_family) {
    family->upper_bounds = candidate->upper_bounds();
  } else if (family->upper_bounds != candidate->upper_bounds()) {
    throw std::logic_error("histogram " + std::string{name} + " registered with other buckets");
  }
  auto& slot = family->histograms[std::move(values)];
  if (!slot) slot = std::move(candidate);
  return *slot;
}

std::string MetricsRegistry::render() const {
  std::string out;
  for (const auto& [name, family] : state_->families) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, family.help, /*escape_quote=*/false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += kind_name(family.kind);
    out += '\n';
    for (const auto& [values, counter] : family.counters) {
      append_sample(out, name, family.label_names, values, counter->value());
    }
    for (const auto& [values, gauge] : family.gauges) {
      append_sample(out, name, family.label_names, values, gauge->value());
    }
    for (const auto& [values, histogram] : family.histograms) {
      append_histogram(out, name, family.label_names, values, *histogram);
    }
  }
  return out;
}

std::vector<double> default_latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> default_duration_buckets() {
  return {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400};
}

}  // namespace devin_orch::server
