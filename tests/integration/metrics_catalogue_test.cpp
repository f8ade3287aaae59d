// /metrics after real work (jobs run against devin-sim, a 429 among the answers), judged by
// promtool (Prometheus's own checker, from Debian's prometheus package, which scripts/setup.sh
// installs) and by docs/metrics.md, whose table must list every family with its type and every
// label value the daemon exports.
#include "daemon_fixture.hpp"
#include "scraped_metrics.hpp"

#include "support/http.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace devin_orch::testing {
namespace {

// One row of the table in docs/metrics.md. A label whose parentheses hold only backticked values
// (`a`, `b`, ... with an optional `: why` after the last) has those values and no others; any
// other label is free-form (an organisation id, a version).
struct DocumentedFamily {
  std::string type;
  std::map<std::string, std::optional<std::set<std::string>>> labels;
};

std::optional<std::set<std::string>> enumerated_values(const std::string& inside) {
  static const std::regex value{R"(^`([^`]+)`(: .*)?$)"};
  std::set<std::string> values;
  std::stringstream pieces{inside};
  std::string piece;
  bool last_had_explanation = false;
  while (std::getline(pieces, piece, ',')) {
    if (last_had_explanation) return std::nullopt;
    piece.erase(0, piece.find_first_not_of(' '));
    std::smatch match;
    if (!std::regex_match(piece, match, value)) return std::nullopt;
    values.insert(match[1]);
    last_had_explanation = match[2].matched;
  }
  return values;
}

std::map<std::string, DocumentedFamily> documented_families() {
  const auto text = read_file(std::string{DEVIN_ORCH_SOURCE_DIR} + "/docs/metrics.md");
  const auto section = text.find("## Metrics exported by devin-orch");
  EXPECT_NE(section, std::string::npos);
  std::map<std::string, DocumentedFamily> families;
  std::map<std::string, std::optional<std::set<std::string>>> seen_labels;  // for "(as above)"
  std::stringstream lines{text.substr(section)};
  std::string line;
  static const std::regex row{R"(^\| `(devin_orch_\w+)` \| (\w+) \| (.*?) \| .*\|$)"};
  static const std::regex label{R"(`(\w+)`(?: \(([^()]*)\))?)"};
  while (std::getline(lines, line)) {
    std::smatch match;
    if (!std::regex_match(line, match, row)) continue;
    DocumentedFamily family{.type = match[2]};
    const std::string labels = match[3];
    if (labels != "—") {
      for (std::sregex_iterator it{labels.begin(), labels.end(), label}, end; it != end; ++it) {
        const std::string name = (*it)[1];
        const std::string inside = (*it)[2];
        if (!(*it)[2].matched) {
          family.labels[name] = std::nullopt;
        } else if (inside == "as above") {
          family.labels[name] = seen_labels.at(name);
        } else {
          family.labels[name] = enumerated_values(inside);
        }
        seen_labels[name] = family.labels[name];
      }
    }
    families[match[1]] = std::move(family);
  }
  return families;
}

std::string family_of(const Scrape& scrape, const std::string& sample_name) {
  if (scrape.types.contains(sample_name)) return sample_name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string_view name{sample_name};
    if (name.ends_with(suffix)) {
      const std::string base{name.substr(0, name.size() - std::string_view{suffix}.size())};
      if (scrape.types.contains(base)) return base;
    }
  }
  return sample_name;
}

std::optional<std::string> find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs{path ? path : ""};
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const auto candidate = (std::filesystem::path{dir} / program).string();
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

class MetricsCatalogue : public DaemonFixture {
 protected:
  // Jobs run to their end against a simulator whose rate limit the daemon's budget overshoots,
  // so at least one 429 is answered; the scrape is taken once all of that is counted.
  std::string scrape_after_jobs_and_a_429() {
    start_sim({"--time-factor", "0.005", "--rate-limit-rpm", "600", "--rate-limit-burst", "2",
               "--retry-after-mode", "ms"});
    write_config(DaemonSettings{});
    write_jobs(generate_jobs(6, {"[sim:exit]", "[sim:error]"}));
    auto daemon = spawn_service();
    const int port = wait_for_metrics_port(dir_.file("daemon.log"));
    EXPECT_NE(port, 0) << read_file(dir_.file("daemon.log"));
    if (port == 0) return {};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    std::string text;
    while (std::chrono::steady_clock::now() < deadline) {
      text = http_call(port, "GET", "/metrics").body;
      const auto scrape = parse_scrape(text);
      const auto ended = scrape.value("devin_orch_jobs_ended_total", {{"state", "finished"}})
                             .value_or(0) +
                         scrape.value("devin_orch_jobs_ended_total", {{"state", "failed"}})
                             .value_or(0);
      if (ended == 6 && scrape.value("devin_orch_rate_limited_total", {{"kind", "rate"}}) >= 1) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    const auto scrape = parse_scrape(text);
    EXPECT_GE(scrape.value("devin_orch_rate_limited_total", {{"kind", "rate"}}), 1.0) << text;
    EXPECT_GE(scrape.value("devin_orch_rate_gate_configured_requests_per_second",
                           {{"org_id", "org-demo"}}),
              1000.0)
        << "60000 per minute";
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait_for(std::chrono::seconds{15}), 0);
    return text;
  }
};

TEST_F(MetricsCatalogue, AScrapeAfterJobsAndA429PassesPromtool) {
  const auto promtool = find_on_path("promtool");
  ASSERT_TRUE(promtool) << "promtool is not on PATH: scripts/setup.sh installs it (Debian's "
                           "prometheus package)";
  const auto text = scrape_after_jobs_and_a_429();
  ASSERT_FALSE(text.empty());
  write_file(dir_.file("scrape.txt"), text);
  const auto checked = run_command(ProcessOptions{
      .args = {"/bin/sh", "-c", "'" + *promtool + "' check metrics < '" + dir_.file("scrape.txt") +
                                    "'"}});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err << "\n" << text;
  EXPECT_EQ(checked.out + checked.err, "") << text;
}

TEST_F(MetricsCatalogue, TheDocsListEveryMetricAndEveryLabelValue) {
  const auto documented = documented_families();
  ASSERT_GT(documented.size(), 20U) << "docs/metrics.md's table was not found";
  const auto text = scrape_after_jobs_and_a_429();
  ASSERT_FALSE(text.empty());
  const auto scrape = parse_scrape(text);

  for (const auto& [name, type] : scrape.types) {
    const auto doc = documented.find(name);
    if (doc == documented.end()) {
      ADD_FAILURE() << name << " is exported but not in docs/metrics.md";
      continue;
    }
    EXPECT_EQ(doc->second.type, type) << name;
  }
  for (const auto& [name, family] : documented) {
    EXPECT_TRUE(scrape.types.contains(name)) << name << " is documented but not exported";
  }
  // Label names and values, as exported, against the table.
  std::map<std::string, std::map<std::string, std::set<std::string>>> exported;
  for (const auto& sample : scrape.samples) {
    auto& labels = exported[family_of(scrape, sample.name)];
    for (const auto& [label, value] : sample.labels) {
      if (label != "le") labels[label].insert(value);
    }
  }
  for (const auto& [name, family] : documented) {
    const auto& labels = exported[name];
    std::set<std::string> exported_names;
    for (const auto& [label, values] : labels) exported_names.insert(label);
    std::set<std::string> documented_names;
    for (const auto& [label, values] : family.labels) documented_names.insert(label);
    EXPECT_EQ(exported_names, documented_names) << name;
    for (const auto& [label, values] : family.labels) {
      if (!values || !labels.contains(label)) continue;
      // Every listed value is exported (from start-up: no job ended lost or timed out here),
      // and none that is not listed.
      EXPECT_EQ(labels.at(label), *values) << name << " label " << label;
    }
  }
}

}  // namespace
}  // namespace devin_orch::testing
