// A strict checker of the Prometheus text exposition format 0.0.4 as our registry emits it, so the
// tests judge the rendered text by the format's rules and not only by golden strings.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devin_orch::server::testing {

namespace detail {

inline bool is_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                        (allow_colon && c == ':');
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

inline std::optional<double> parse_value(std::string_view s) {
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return NAN;
  if (s.empty()) return std::nullopt;
  const std::string text{s};
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  // strtod also takes "inf", "nan" and hex floats, which Prometheus spells differently or not at
  // all; only the spellings above are accepted.
  if (text.find_first_of("xXnN") != std::string::npos) return std::nullopt;
  return v;
}

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped values
  double value = 0;
};

// Parses `name{a="x",b="y"} value`; returns an error message or the sample.
inline std::pair<std::string, Sample> parse_sample(std::string_view line) {
  Sample sample;
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  sample.name = std::string{line.substr(0, i)};
  if (!is_name(sample.name, true)) return {"bad metric name '" + sample.name + "'", {}};
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::size_t start = i;
      while (i < line.size() && line[i] != '=') ++i;
      const std::string label{line.substr(start, i - start)};
      if (!is_name(label, false)) return {"bad label name '" + label + "'", {}};
      if (i + 1 >= line.size() || line[i + 1] != '"') return {"label value not quoted", {}};
      i += 2;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        const char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) return {"dangling escape", {}};
          const char e = line[i++];
          if (e == '\\') value += '\\';
          else if (e == '"') value += '"';
          else if (e == 'n') value += '\n';
          else return {std::string{"bad escape \\"} + e, {}};
        } else {
          value += c;
        }
      }
      if (!closed) return {"unterminated label value", {}};
      for (const auto& [existing, ignored] : sample.labels) {
        if (existing == label) return {"duplicate label '" + label + "'", {}};
      }
      sample.labels.emplace_back(label, value);
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return {"unterminated label set", {}};
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return {"missing space before value", {}};
  const auto value_text = line.substr(i + 1);
  const auto value = parse_value(value_text.substr(0, value_text.find(' ')));
  if (!value) return {"bad value '" + std::string{value_text} + "'", {}};
  sample.value = *value;
  return {{}, std::move(sample)};
}

struct HistogramSeries {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count) in text order
  std::optional<double> sum;
  std::optional<double> count;
};

}  // namespace detail

// Every problem found, each naming its line; empty means the text is valid.
inline std::vector<std::string> exposition_problems(std::string_view text) {
  using namespace detail;
  std::vector<std::string> problems;
  if (!text.empty() && text.back() != '\n') problems.push_back("text does not end in a newline");

  std::set<std::string> seen_families;
  std::set<std::string> seen_series;
  std::string family;       // current family, after its HELP
  std::string family_type;  // after its TYPE
  std::map<std::string, HistogramSeries> histograms;  // key: labels without le

  const auto finish_family = [&] {
    for (const auto& [key, series] : histograms) {
      const std::string where = family + "{" + key + "}";
      if (series.buckets.empty()) problems.push_back(where + ": no buckets");
      for (std::size_t i = 1; i < series.buckets.size(); ++i) {
        if (!(series.buckets[i - 1].first < series.buckets[i].first)) {
          problems.push_back(where + ": le bounds not increasing");
        }
        if (series.buckets[i - 1].second > series.buckets[i].second) {
          problems.push_back(where + ": buckets not cumulative");
        }
      }
      if (!series.buckets.empty() && !std::isinf(series.buckets.back().first)) {
        problems.push_back(where + ": last bucket is not +Inf");
      }
      if (!series.sum) problems.push_back(where + ": no _sum");
      if (!series.count) problems.push_back(where + ": no _count");
      if (series.count && !series.buckets.empty() &&
          series.buckets.back().second != *series.count) {
        problems.push_back(where + ": +Inf bucket differs from _count");
      }
    }
    histograms.clear();
  };

  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto end = text.find('\n', pos);
    const auto line = text.substr(pos, end == std::string_view::npos ? text.size() - pos
                                                                     : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    ++line_number;
    const std::string at = "line " + std::to_string(line_number) + ": ";
    if (line.empty()) {
      problems.push_back(at + "empty line");
      continue;
    }
    if (line.starts_with("# HELP ")) {
      finish_family();
      const auto rest = line.substr(7);
      family = std::string{rest.substr(0, rest.find(' '))};
      family_type.clear();
      if (!is_name(family, true)) problems.push_back(at + "bad family name in HELP");
      if (!seen_families.insert(family).second) problems.push_back(at + "family repeated");
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      const auto rest = line.substr(7);
      const auto space = rest.find(' ');
      const std::string name{rest.substr(0, space)};
      if (name != family) problems.push_back(at + "TYPE without a HELP just before it");
      family_type = space == std::string_view::npos ? "" : std::string{rest.substr(space + 1)};
      static const std::set<std::string> types{"counter", "gauge", "histogram", "summary",
                                               "untyped"};
      if (!types.contains(family_type)) problems.push_back(at + "unknown type");
      continue;
    }
    if (line.starts_with("#")) {
      problems.push_back(at + "unexpected comment");
      continue;
    }
    auto [error, sample] = parse_sample(line);
    if (!error.empty()) {
      problems.push_back(at + error);
      continue;
    }
    if (family_type.empty()) {
      problems.push_back(at + "sample before its family's HELP and TYPE");
      continue;
    }
    std::string series_key = sample.name + "{";
    std::string labels_without_le;
    std::optional<double> le;
    for (const auto& [name, value] : sample.labels) {
      series_key += name + "=" + value + ",";
      if (family_type == "histogram" && name == "le") {
        le = parse_value(value);
        if (!le) problems.push_back(at + "bad le '" + value + "'");
      } else {
        labels_without_le += name + "=" + value + ",";
      }
    }
    if (!seen_series.insert(series_key).second) problems.push_back(at + "series repeated");

    if (family_type == "histogram") {
      auto& series = histograms[labels_without_le];
      if (sample.name == family + "_bucket") {
        if (!le) {
          problems.push_back(at + "bucket without le");
        } else {
          series.buckets.emplace_back(*le, sample.value);
        }
      } else if (sample.name == family + "_sum") {
        series.sum = sample.value;
      } else if (sample.name == family + "_count") {
        series.count = sample.value;
      } else {
        problems.push_back(at + "sample " + sample.name + " outside family " + family);
      }
    } else {
      if (sample.name != family) {
        problems.push_back(at + "sample " + sample.name + " outside family " + family);
      }
      if (family_type == "counter" && sample.value < 0) {
        problems.push_back(at + "negative counter");
      }
    }
  }
  finish_family();
  return problems;
}

}  // namespace devin_orch::server::testing
