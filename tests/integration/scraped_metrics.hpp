// A /metrics scrape as tests read it: each family's type and samples, and one series' value by
// name and exact label set. Parsing is the exposition validator's (tests/server).
#pragma once

#include "server/exposition_validator.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devin_orch::testing {

using SampleLabels = std::vector<std::pair<std::string, std::string>>;

struct Scrape {
  std::map<std::string, std::string> types;  // family name -> counter, gauge, histogram
  std::vector<server::testing::detail::Sample> samples;

  // The value of the series with exactly these labels (in any order); nullopt if absent.
  std::optional<double> value(std::string_view name, SampleLabels labels = {}) const {
    std::sort(labels.begin(), labels.end());
    for (const auto& sample : samples) {
      if (sample.name != name) continue;
      auto have = sample.labels;
      std::sort(have.begin(), have.end());
      if (have == labels) return sample.value;
    }
    return std::nullopt;
  }
};

inline Scrape parse_scrape(const std::string& text) {
  Scrape scrape;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto end = text.find('\n', pos);
    const std::string_view line{text.data() + pos,
                                (end == std::string::npos ? text.size() : end) - pos};
    pos = end == std::string::npos ? text.size() : end + 1;
    if (line.starts_with("# TYPE ")) {
      const auto rest = line.substr(7);
      const auto space = rest.find(' ');
      scrape.types[std::string{rest.substr(0, space)}] = std::string{rest.substr(space + 1)};
    } else if (!line.empty() && !line.starts_with('#')) {
      auto [error, sample] = server::testing::detail::parse_sample(line);
      if (error.empty()) scrape.samples.push_back(std::move(sample));
    }
  }
  return scrape;
}

}  // namespace devin_orch::testing
