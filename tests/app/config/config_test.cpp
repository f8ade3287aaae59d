// Config loading against real files in a temp dir: defaults, every key, environment overrides,
// located diagnostics (all of them, 1-based), hostile input, rendering, and API key resolution.
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/app/config/job_api.hpp"
#include "devin_orch/store/types.hpp"

#include "support/process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace devin_orch::app {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;
using testing::write_file;

// Sets or unsets one environment variable for a test's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_, previous_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> previous_;
};

std::vector<std::string> rendered(const std::vector<Diagnostic>& errors) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : errors) lines.push_back(d.to_string());
  return lines;
}

class ConfigTest : public ::testing::Test {
 protected:
  // The runner's own environment must not leak into what the tests expect.
  ScopedEnv base_url_{"DEVIN_ORCH_BASE_URL", nullptr};
  ScopedEnv org_id_{"DEVIN_ORCH_ORG_ID", nullptr};
  ScopedEnv api_version_{"DEVIN_ORCH_API_VERSION", nullptr};
  ScopedEnv database_{"DEVIN_ORCH_DATABASE", nullptr};
  ScopedEnv database_url_{"DEVIN_ORCH_DATABASE_URL", nullptr};
  ScopedEnv credentials_{"CREDENTIALS_DIRECTORY", nullptr};
  ScopedEnv api_key_{"DEVIN_API_KEY", nullptr};
  TempDir dir_;

  std::string write(const std::string& text, const std::string& name = "devin-orch.yaml") {
    const std::string path = dir_.file(name);
    write_file(path, text);
    return path;
  }

  ConfigLoad load(const std::string& text) { return load_config(write(text)); }

  std::string key_file(const std::string& content, mode_t mode,
                       const std::string& name = "api-key") {
    const std::string path = dir_.file(name);
    write_file(path, content);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
};

TEST(DiagnosticText, OmitsUnknownParts) {
  EXPECT_EQ((Diagnostic{"c.yaml", 3, 7, "poll.jitter", "too big"}).to_string(),
            "c.yaml:3:7: poll.jitter: too big");
  EXPECT_EQ((Diagnostic{"c.yaml", 3, 7, "", "bad"}).to_string(), "c.yaml:3:7: bad");
  EXPECT_EQ((Diagnostic{"c.yaml", 0, 0, "api.org_id", "is required"}).to_string(),
            "c.yaml: api.org_id: is required");
  EXPECT_EQ((Diagnostic{"c.yaml", 4, 0, "", "bad"}).to_string(), "c.yaml:4: bad");
  EXPECT_EQ((Diagnostic{"", 0, 0, "", "bad"}).to_string(), "bad");
}

TEST_F(ConfigTest, DefaultsWhenSectionsAbsent) {
  const std::string path = write("api:\n  org_id: org-1\n");
  const ConfigLoad result = load_config(path);
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  ASSERT_TRUE(result.config.has_value());
  const Config& c = *result.config;
  const Config defaults;
  EXPECT_EQ(c.api.org_id, "org-1");
  EXPECT_EQ(c.api.base_url, "https://api.devin.ai");
  EXPECT_EQ(c.api.api_key_file, std::nullopt);
  EXPECT_EQ(c.api.connect_timeout, defaults.api.connect_timeout);
  EXPECT_EQ(c.api.create_timeout, defaults.api.create_timeout);
  EXPECT_EQ(c.api.max_body_bytes, defaults.api.max_body_bytes);
  EXPECT_EQ(c.rate.requests_per_minute, 60.0);
  EXPECT_EQ(c.rate.burst, 5.0);
  EXPECT_EQ(c.poll.initial_delay, 10s);
  EXPECT_EQ(c.poll.max_delay, 60s);
  EXPECT_EQ(c.poll.batch_size, 200);
  EXPECT_EQ(c.poll.full_every, 5min);
  EXPECT_EQ(c.create.max_attempts, 5);
  EXPECT_EQ(c.create.settle_window, 30s);
  EXPECT_EQ(c.create.duplicate_watch, 15min);
  EXPECT_EQ(c.create.max_cut_short, 10);
  EXPECT_EQ(c.database.path, "/var/lib/devin-orch/devin-orch.db");
  EXPECT_TRUE(c.jobs.files.empty());
  EXPECT_EQ(c.jobs.complete_on, core::CompletionPolicy::on_stop);
  EXPECT_TRUE(c.jobs.queue_watch);
  EXPECT_FALSE(c.jobs.parent_acus_include_children);
  EXPECT_EQ(c.shutdown.drain_timeout, 10s);
  EXPECT_EQ(c.lease.ttl, 15s);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.source_path, path);
}

// retention.ended_after: off unless set; days are the natural unit; check-config (which loads
// and renders) says what is wrong and where.
TEST_F(ConfigTest, RetentionIsOffByDefaultAndTakesDays) {
  auto result = load("api:\n  org_id: o\n");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->retention.ended_after, std::nullopt);
  EXPECT_THAT(render_config(*result.config), HasSubstr("retention:\n  ended_after: ~\n"));

  result = load("api:\n  org_id: o\nretention:\n  ended_after: 30d\n");
  ASSERT_TRUE(result.config) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->retention.ended_after, 30 * 24h);
  const std::string text = render_config(*result.config);
  EXPECT_THAT(text, HasSubstr("retention:\n  ended_after: 720h\n"));
  // What check-config prints loads back to the same setting.
  const auto again = load_config(write(text, "rendered.yaml"));
  ASSERT_TRUE(again.config) << rendered(again.errors)[0];
  EXPECT_EQ(again.config->retention.ended_after, 30 * 24h);

  result = load("api:\n  org_id: o\nretention:\n  ended_after: 1d12h\n");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->retention.ended_after, 36h);
  result = load("api:\n  org_id: o\nretention:\n  ended_after: ~\n");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->retention.ended_after, std::nullopt);

  for (const auto& [bad, reason] : std::vector<std::pair<std::string, std::string>>{
           {"0s", "must be greater than 0s (~ turns retention off)"},
           {"0d", "must be greater than 0s (~ turns retention off)"},
           {"soon", "expected a duration like 30d, 12h or 1d12h, or ~ for never, got 'soon'"},
           {"30", "expected a duration like 30d, 12h or 1d12h, or ~ for never, got '30'"},
           {"[1d]", "expected a duration like 30d, 12h or 1d12h, or ~ for never, got a list"}}) {
    result = load("api:\n  org_id: o\nretention:\n  ended_after: " + bad + "\n");
    ASSERT_EQ(result.errors.size(), 1U) << bad;
    EXPECT_EQ(result.errors[0].field, "retention.ended_after") << bad;
    EXPECT_EQ(result.errors[0].line, 4) << bad;
    EXPECT_EQ(result.errors[0].reason, reason) << bad;
  }
  result = load("api:\n  org_id: o\nretention:\n  keep: 30d\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].field, "retention.keep");
}

// spending: no budget unless set; budgets are positive ACU figures; check-config's rendering
// loads back to the same settings.
TEST_F(ConfigTest, AttachmentLimitsHaveDefaultsAndRoundTrip) {
  auto result = load("api:\n  org_id: o\n");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->attachments.max_bytes, 10 * 1024 * 1024);
  EXPECT_EQ(result.config->attachments.upload_timeout, std::chrono::seconds{60});
  result = load("api:\n  org_id: o\nattachments:\n  max_bytes: 2048\n  upload_timeout: 5m\n");
  ASSERT_TRUE(result.config) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->attachments.max_bytes, 2048);
  EXPECT_THAT(render_config(*result.config),
              HasSubstr("attachments:\n  max_bytes: 2048\n  upload_timeout: 5m\n"));
  const auto again = load_config(write(render_config(*result.config), "rendered.yaml"));
  ASSERT_TRUE(again.config) << rendered(again.errors)[0];
  EXPECT_EQ(again.config->attachments.max_bytes, 2048);
  EXPECT_EQ(again.config->attachments.upload_timeout, std::chrono::minutes{5});
  const auto zero = load("api:\n  org_id: o\nattachments:\n  max_bytes: 0\n");
  ASSERT_FALSE(zero.config);
  EXPECT_THAT(rendered(zero.errors)[0], HasSubstr("attachments.max_bytes"));
}

TEST_F(ConfigTest, SpendingBudgetsAreOffByDefaultAndRoundTrip) {
  auto result = load("api:\n  org_id: o\n");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->spending.acus_per_day, std::nullopt);
  EXPECT_EQ(result.config->spending.acus_per_month, std::nullopt);
  EXPECT_DOUBLE_EQ(result.config->spending.reserve_without_limit, 10.0);
  EXPECT_FALSE(result.config->spending.terminate_over_budget);
  EXPECT_THAT(render_config(*result.config),
              HasSubstr("spending:\n  acus_per_day: ~\n  acus_per_month: ~\n"));

  result = load("api:\n  org_id: o\nspending:\n  acus_per_day: 10\n  acus_per_month: 250.5\n"
                "  reserve_without_limit: 4\n  terminate_over_budget: true\n");
  ASSERT_TRUE(result.config) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->spending.acus_per_day, 10.0);
  EXPECT_EQ(result.config->spending.acus_per_month, 250.5);
  EXPECT_DOUBLE_EQ(result.config->spending.reserve_without_limit, 4.0);
  EXPECT_TRUE(result.config->spending.terminate_over_budget);
  const auto again = load_config(write(render_config(*result.config), "rendered.yaml"));
  ASSERT_TRUE(again.config) << rendered(again.errors)[0];
  EXPECT_EQ(again.config->spending.acus_per_day, 10.0);
  EXPECT_EQ(again.config->spending.acus_per_month, 250.5);
  EXPECT_TRUE(again.config->spending.terminate_over_budget);

  for (const auto& [bad, reason] : std::vector<std::pair<std::string, std::string>>{
           {"0", "must be greater than 0, got 0"},
           {"-3", "must be greater than 0, got -3"},
           {"lots", "expected a number, got 'lots'"}}) {
    result = load("api:\n  org_id: o\nspending:\n  acus_per_day: " + bad + "\n");
    ASSERT_EQ(result.errors.size(), 1U) << bad;
    EXPECT_EQ(result.errors[0].field, "spending.acus_per_day") << bad;
    EXPECT_EQ(result.errors[0].line, 4) << bad;
    EXPECT_EQ(result.errors[0].reason, reason) << bad;
  }
}

// spending.organizations: an organisation's own budgets, each field over the global one (~:
// none for it); spending.concurrency_keys: budgets per key pattern, in order. Both round-trip
// through check-config's rendering; mistakes are located.
TEST_F(ConfigTest, SpendingBudgetsPerOrganisationAndPerKeyRoundTrip) {
  auto result = load("api:\n  org_id: o\n");
  ASSERT_TRUE(result.config);
  EXPECT_TRUE(result.config->spending.organizations.empty());
  EXPECT_TRUE(result.config->spending.concurrency_keys.empty());
  EXPECT_THAT(render_config(*result.config),
              HasSubstr("  organizations: {}\n  concurrency_keys: []\n"));

  result = load(
      "api:\n  org_id: o\nspending:\n  acus_per_day: 10\n  acus_per_month: 100\n"
      "  organizations:\n    org-big:\n      acus_per_day: 40\n"
      "    org-free: {acus_per_day: ~, acus_per_month: ~}\n"
      "  concurrency_keys:\n    - key: \"repo:*\"\n      acus_per_day: 6\n"
      "    - key: team:infra\n      acus_per_month: 50.5\n");
  ASSERT_TRUE(result.config) << rendered(result.errors)[0];
  const auto check = [](const Config& config) {
    const auto& spending = config.spending;
    ASSERT_EQ(spending.organizations.size(), 2U);
    const auto& big = spending.organizations.at("org-big");
    EXPECT_EQ(big.acus_per_day, (BudgetOverride{.set = true, .acus = 40.0}));
    EXPECT_FALSE(big.acus_per_month.set) << "left out: the global budget";
    const auto& free = spending.organizations.at("org-free");
    EXPECT_EQ(free.acus_per_day, (BudgetOverride{.set = true, .acus = std::nullopt}));
    EXPECT_EQ(free.acus_per_month, (BudgetOverride{.set = true, .acus = std::nullopt}));
    const std::vector<core::KeySpendingBudget> keys{
        {.pattern = "repo:*", .per_day = 6.0},
        {.pattern = "team:infra", .per_month = 50.5}};
    EXPECT_EQ(spending.concurrency_keys, keys);
  };
  check(*result.config);
  const auto text = render_config(*result.config);
  EXPECT_THAT(text, HasSubstr("  organizations:\n    org-big: {acus_per_day: 40}\n"
                              "    org-free: {acus_per_day: ~, acus_per_month: ~}\n"));
  EXPECT_THAT(text, HasSubstr("  concurrency_keys:\n    - key: \"repo:*\"\n      acus_per_day: 6\n"
                              "      acus_per_month: ~\n"));
  const auto again = load_config(write(text, "rendered.yaml"));
  ASSERT_TRUE(again.config) << rendered(again.errors)[0];
  check(*again.config);

  struct Bad {
    std::string yaml;
    std::string field;
    int line;
    std::string reason;
  };
  for (const auto& bad : std::vector<Bad>{
           {"  organizations: [a]\n", "spending.organizations", 4,
            "expected a map of organisation ids to {acus_per_day, acus_per_month}, got a list"},
           {"  organizations:\n    org-a:\n      acus_per_day: 0\n",
            "spending.organizations.org-a.acus_per_day", 6, "must be greater than 0, got 0"},
           {"  organizations:\n    org-a:\n      acus_per_week: 3\n",
            "spending.organizations.org-a.acus_per_week", 6,
            "unknown key; an organisation's budgets are acus_per_day and acus_per_month"},
           {"  organizations:\n    \"org a\": {acus_per_day: 3}\n",
            "spending.organizations.org a", 5,
            "an organisation id may contain only letters, digits, '-', '_', '.' and '~'"},
           {"  concurrency_keys:\n    key: x\n", "spending.concurrency_keys", 5,
            "expected a list of {key: PATTERN, acus_per_day: N, acus_per_month: N}, got a map"},
           {"  concurrency_keys:\n    - key: \"repo x\"\n      acus_per_day: 2\n",
            "spending.concurrency_keys[0].key", 5,
            "must hold only letters, digits and - _ . : / @ + = # (and * as a wildcard), got "
            "byte 32"},
           {"  concurrency_keys:\n    - key: a\n      acus_per_day: lots\n",
            "spending.concurrency_keys[0].acus_per_day", 6, "expected a number, got 'lots'"},
           {"  concurrency_keys:\n    - key: a\n", "spending.concurrency_keys[0]", 5,
            "needs acus_per_day or acus_per_month (a budget in ACUs)"},
           {"  concurrency_keys:\n    - acus_per_day: 3\n", "spending.concurrency_keys[0]", 5,
            "needs key"},
           {"  concurrency_keys:\n    - key: a\n      acus_per_day: 1\n    - key: a\n"
            "      acus_per_day: 2\n",
            "spending.concurrency_keys[1].key", 7,
            "'a' is already listed at spending.concurrency_keys[0]"},
           {"  concurrency_keys:\n    - key: a\n      acus_per_day: 1\n      max_active: 2\n",
            "spending.concurrency_keys[0].max_active", 7,
            "unknown key 'max_active' (expected key, acus_per_day and acus_per_month)"},
       }) {
    result = load("api:\n  org_id: o\nspending:\n" + bad.yaml);
    ASSERT_EQ(result.errors.size(), 1U) << bad.yaml << rendered(result.errors)[0];
    EXPECT_EQ(result.errors[0].field, bad.field) << bad.yaml;
    EXPECT_EQ(result.errors[0].line, bad.line) << bad.yaml;
    EXPECT_EQ(result.errors[0].reason, bad.reason) << bad.yaml;
  }
}

// concurrency: a list of {key, max_active}, in order; none by default; check-config's
// rendering loads back; each mistake is named with its item, line and reason.
TEST_F(ConfigTest, ConcurrencyGroupsAreAListOfPatternsWithLimits) {
  auto result = load("api:\n  org_id: o\n");
  ASSERT_TRUE(result.config);
  EXPECT_TRUE(result.config->concurrency.empty());
  EXPECT_THAT(render_config(*result.config), HasSubstr("concurrency: []\n"));

  result = load("api:\n  org_id: o\nconcurrency:\n  - key: repo:acme/backend\n    max_active: 1\n"
                "  - key: \"repo:*\"\n    max_active: 3\n");
  ASSERT_TRUE(result.config) << rendered(result.errors)[0];
  const std::vector<core::ConcurrencyLimit> expected{{"repo:acme/backend", 1}, {"repo:*", 3}};
  EXPECT_EQ(result.config->concurrency, expected);
  const auto again = load_config(write(render_config(*result.config), "rendered.yaml"));
  ASSERT_TRUE(again.config) << rendered(again.errors)[0];
  EXPECT_EQ(again.config->concurrency, expected);

  struct Bad {
    std::string yaml;
    std::string field;
    int line;
    std::string reason;
  };
  for (const auto& bad : std::vector<Bad>{
           {"concurrency:\n  key: x\n", "concurrency", 4,
            "expected a list of {key: PATTERN, max_active: N}, got a map"},
           {"concurrency:\n  - key: x\n    max_active: 0\n", "concurrency[0].max_active", 5,
            "must be between 1 and 100000, got 0"},
           {"concurrency:\n  - key: \"repo x\"\n    max_active: 2\n", "concurrency[0].key", 4,
            "must hold only letters, digits and - _ . : / @ + = # (and * as a wildcard), got "
            "byte 32"},
           {"concurrency:\n  - key: a\n    max_active: 1\n  - key: a\n    max_active: 2\n",
            "concurrency[1].key", 6, "'a' is already listed at concurrency[0]"},
           {"concurrency:\n  - key: a\n", "concurrency[0]", 4, "needs max_active"},
           {"concurrency:\n  - key: a\n    max_active: 1\n    limit: 2\n",
            "concurrency[0].limit", 6, "unknown key 'limit' (expected key and max_active)"},
       }) {
    result = load("api:\n  org_id: o\n" + bad.yaml);
    ASSERT_EQ(result.errors.size(), 1U) << bad.yaml;
    EXPECT_EQ(result.errors[0].field, bad.field) << bad.yaml;
    EXPECT_EQ(result.errors[0].line, bad.line) << bad.yaml;
    EXPECT_EQ(result.errors[0].reason, bad.reason) << bad.yaml;
  }
}

TEST_F(ConfigTest, StallDetectionIsOffByDefaultAndRoundTrips) {
  auto result = load("api:\n  org_id: o\n");
  ASSERT_TRUE(result.config);
  EXPECT_FALSE(result.config->stall.stall_after);
  EXPECT_EQ(result.config->stall.action, core::StallAction::report);
  EXPECT_THAT(render_config(*result.config), HasSubstr("stall:\n  after: ~\n  action: report\n"));

  result = load("api:\n  org_id: o\nstall:\n  after: 30m\n  action: message\n"
                "  message: \"Still with us?\"\n");
  ASSERT_TRUE(result.config) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->stall.stall_after, core::Duration{30min});
  EXPECT_EQ(result.config->stall.action, core::StallAction::message);
  EXPECT_EQ(result.config->stall.message, "Still with us?");
  const auto again = load_config(write(render_config(*result.config), "rendered.yaml"));
  ASSERT_TRUE(again.config) << rendered(again.errors)[0];
  EXPECT_EQ(again.config->stall, result.config->stall);

  for (const auto& [bad, reason] : std::vector<std::pair<std::string, std::string>>{
           {"  after: 0s\n", "must be greater than 0s"},
           {"  action: kill\n", "must be one of report, message, terminate, got 'kill'"},
           {"  message: \" \"\n", "must not be empty"}}) {
    result = load("api:\n  org_id: o\nstall:\n" + bad);
    ASSERT_EQ(result.errors.size(), 1U) << bad;
    EXPECT_EQ(result.errors[0].line, 4) << bad;
    EXPECT_EQ(result.errors[0].reason, reason) << bad;
  }
}

TEST_F(ConfigTest, TheLeaseLapseHasSaneBounds) {
  auto result = load("api:\n  org_id: o\nlease:\n  ttl: 4s\n");
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->lease.ttl, 4s);
  EXPECT_THAT(render_config(*result.config), HasSubstr("lease:\n  ttl: 4s"));
  for (const char* bad : {"1s", "11m", "0s"}) {
    result = load(std::string("api:\n  org_id: o\nlease:\n  ttl: ") + bad + "\n");
    ASSERT_EQ(result.errors.size(), 1U) << bad;
    EXPECT_EQ(result.errors[0].field, "lease.ttl");
    EXPECT_EQ(result.errors[0].line, 4);
  }
  result = load("api:\n  org_id: o\nlease:\n  ttl: 1s\n");
  EXPECT_THAT(result.errors[0].reason, HasSubstr("must be between 2s and 10m, got 1s"));
}

TEST_F(ConfigTest, EmptySectionsMeanDefaults) {
  const ConfigLoad result = load("api:\n  org_id: o\npoll:\nrate:\n");
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->poll.initial_delay, 10s);
}

TEST_F(ConfigTest, EveryKeyParsed) {
  const ConfigLoad result = load(R"(api:
  base_url: https://devin.example.com/
  org_id: org-abc123
  api_key_file: /etc/devin-orch/key
  ca_file: /etc/ssl/extra.pem
  connect_timeout: 3s
  request_timeout: 20s
  create_timeout: 2m
  max_body_bytes: 4096
  max_in_flight: 3
rate:
  requests_per_minute: 120.5
  burst: 7
  concurrency_hold: 0s
poll:
  initial_delay: 250ms
  max_delay: 1m30s
  multiplier: 2
  jitter: 0
  batch_size: 1
  full_every: 0s
create:
  max_attempts: 9
  retry_initial: 1s
  retry_max: 45s
  settle_delay: 3s
  settle_window: 1m
  duplicate_watch: 2h
  max_cut_short: 3
  max_active_sessions: 12
  max_concurrent_creates: 2
database:
  path: /tmp/x/orch.db
  busy_timeout: 750ms
  cache_kib: 4096
jobs:
  files: [/srv/jobs/a.yaml, /srv/jobs/b.yaml]
  complete_on: finished
  queue_watch: false
  queue_check_interval: 20ms
  parent_acus_include_children: true
shutdown:
  drain_timeout: 25s
log:
  level: debug
  format: json
)");
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  const Config& c = *result.config;
  EXPECT_EQ(c.api.base_url, "https://devin.example.com");  // trailing slash dropped
  EXPECT_EQ(c.api.org_id, "org-abc123");
  EXPECT_EQ(c.api.api_key_file, "/etc/devin-orch/key");
  EXPECT_EQ(c.api.ca_file, "/etc/ssl/extra.pem");
  EXPECT_EQ(c.api.connect_timeout, 3s);
  EXPECT_EQ(c.api.request_timeout, 20s);
  EXPECT_EQ(c.api.create_timeout, 2min);
  EXPECT_EQ(c.api.max_body_bytes, 4096U);
  EXPECT_EQ(c.api.max_in_flight, 3);
  EXPECT_EQ(c.rate.requests_per_minute, 120.5);
  EXPECT_EQ(c.rate.burst, 7.0);
  EXPECT_EQ(c.rate.concurrency_hold, 0ms);
  EXPECT_EQ(c.poll.initial_delay, 250ms);
  EXPECT_EQ(c.poll.max_delay, 90s);
  EXPECT_EQ(c.poll.multiplier, 2.0);
  EXPECT_EQ(c.poll.jitter, 0.0);
  EXPECT_EQ(c.poll.batch_size, 1);
  EXPECT_EQ(c.poll.full_every, 0s);  // incremental polls off
  EXPECT_EQ(c.create.max_attempts, 9);
  EXPECT_EQ(c.create.retry_initial, 1s);
  EXPECT_EQ(c.create.retry_max, 45s);
  EXPECT_EQ(c.create.settle_delay, 3s);
  EXPECT_EQ(c.create.settle_window, 60s);
  EXPECT_EQ(c.create.duplicate_watch, 2h);
  EXPECT_EQ(c.create.max_cut_short, 3);
  EXPECT_EQ(c.create.max_active_sessions, 12);
  EXPECT_EQ(c.create.max_concurrent_creates, 2);
  EXPECT_EQ(c.database.path, "/tmp/x/orch.db");
  EXPECT_EQ(c.database.busy_timeout, 750ms);
  EXPECT_EQ(c.database.cache_kib, 4096);
  EXPECT_EQ(c.jobs.files, (std::vector<std::string>{"/srv/jobs/a.yaml", "/srv/jobs/b.yaml"}));
  EXPECT_EQ(c.jobs.complete_on, core::CompletionPolicy::on_finished);
  EXPECT_EQ(c.jobs.queue_check_interval, 20ms);
  EXPECT_FALSE(c.jobs.queue_watch);
  EXPECT_TRUE(c.jobs.parent_acus_include_children);
  EXPECT_EQ(c.shutdown.drain_timeout, 25s);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "json");
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  ScopedEnv url("DEVIN_ORCH_BASE_URL", "http://127.0.0.1:18080");
  ScopedEnv org("DEVIN_ORCH_ORG_ID", "org-from-env");
  ScopedEnv db("DEVIN_ORCH_DATABASE", "/tmp/env.db");
  const ConfigLoad result = load(
      "api:\n  base_url: https://api.devin.ai\n  org_id: org-file\ndatabase:\n  path: file.db\n");
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->api.base_url, "http://127.0.0.1:18080");
  EXPECT_EQ(result.config->api.org_id, "org-from-env");
  EXPECT_EQ(result.config->database.path, "/tmp/env.db");
}

TEST_F(ConfigTest, ApiVersionIsV3UnlessTheFileOrTheEnvironmentSaysV1) {
  auto loaded = load("api:\n  org_id: org-1\n");
  ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
  EXPECT_EQ(loaded.config->api.version, core::ApiVersion::v3);
  loaded = load("api:\n  org_id: org-1\n  version: v1\n");
  ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
  EXPECT_EQ(loaded.config->api.version, core::ApiVersion::v1);
  const std::string path = write("api:\n  org_id: org-1\n  version: v2\n");
  loaded = load_config(path);
  ASSERT_EQ(loaded.errors.size(), 1U);
  EXPECT_EQ(rendered(loaded.errors)[0],
            path + ":3:12: api.version: must be one of v1, v3, got 'v2'");
  {
    ScopedEnv version("DEVIN_ORCH_API_VERSION", "v1");
    loaded = load("api:\n  org_id: org-1\n  version: v3\n");
    ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
    EXPECT_EQ(loaded.config->api.version, core::ApiVersion::v1);
  }
  ScopedEnv version("DEVIN_ORCH_API_VERSION", "1");
  loaded = load("api:\n  org_id: org-1\n");
  ASSERT_EQ(loaded.errors.size(), 1U);
  EXPECT_EQ(rendered(loaded.errors)[0],
            "$DEVIN_ORCH_API_VERSION: api.version: must be v1 or v3, got '1'");
}

TEST_F(ConfigTest, EnvironmentSuppliesTheRequiredOrgId) {
  ScopedEnv org("DEVIN_ORCH_ORG_ID", "org-env");
  const ConfigLoad result = load("log:\n  level: warn\n");
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->api.org_id, "org-env");
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  ScopedEnv url("DEVIN_ORCH_BASE_URL", "http://devin.example.com");
  const ConfigLoad result = load("api:\n  org_id: o\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].to_string(),
            "$DEVIN_ORCH_BASE_URL: api.base_url: plain http:// is only allowed for loopback "
            "hosts (127.0.0.0/8, ::1, localhost)");
}

TEST_F(ConfigTest, MissingOrgIdIsAnError) {
  const std::string path = write("poll:\n  jitter: 0.1\n");
  const ConfigLoad result = load_config(path);
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].to_string(),
            path + ": api.org_id: is required: set api.org_id or DEVIN_ORCH_ORG_ID");
}

TEST_F(ConfigTest, UnknownKeySuggestsTheClosest) {
  const std::string path = write("api:\n  org_id: o\npoll:\n  inital_delay: 5s\n");
  const ConfigLoad result = load_config(path);
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].to_string(),
            path + ":4:3: poll.inital_delay: unknown key 'inital_delay' in section 'poll' "
                   "(did you mean 'initial_delay'?)");
}

TEST_F(ConfigTest, UnknownKeysWithoutCloseMatchAndUnknownSections) {
  const ConfigLoad result = load("api:\n  org_id: o\n  colour: blue\npol:\n  x: 1\nzzz: 1\n");
  ASSERT_EQ(result.errors.size(), 3U);
  EXPECT_EQ(result.errors[0].reason, "unknown key 'colour' in section 'api'");
  EXPECT_EQ(result.errors[1].reason, "unknown section 'pol' (did you mean 'poll'?)");
  EXPECT_EQ(result.errors[1].line, 4);
  EXPECT_EQ(result.errors[2].reason, "unknown section 'zzz'");
}

// Issue 24: a misspelt key was reported, then the setting it meant was reported too, as if
// it were missing or wrong ("api.org_id: is required"). One mistake is one error now.
TEST_F(ConfigTest, AMisspeltKeyIsOneErrorNotAlsoTheSettingItMeant) {
  std::string path = write("api:\n  org_idd: org-demo\n");
  EXPECT_EQ(rendered(load_config(path).errors),
            std::vector<std::string>{path + ":2:3: api.org_idd: unknown key 'org_idd' in section "
                                            "'api' (did you mean 'org_id'?)"});

  path = write("apii:\n  org_id: org-demo\n");
  EXPECT_EQ(rendered(load_config(path).errors),
            std::vector<std::string>{path + ":1:1: apii: unknown section 'apii' (did you mean "
                                            "'api'?)"});

  // Not "poll.max_delay: must be at least poll.initial_delay": that compared the default.
  path = write("api:\n  org_id: o\npoll:\n  initial_delay: 2m\n  max_dely: 5m\n");
  EXPECT_EQ(rendered(load_config(path).errors),
            std::vector<std::string>{path + ":5:3: poll.max_dely: unknown key 'max_dely' in "
                                            "section 'poll' (did you mean 'max_delay'?)"});
  path = write("api:\n  org_id: o\ncreate:\n  retry_inital: 1s\n  retry_max: 100ms\n");
  EXPECT_EQ(load_config(path).errors.size(), 1U);
  // A value refused where it was written is not compared again.
  path = write("api:\n  org_id: o\npoll:\n  initial_delay: 2m\n  max_delay: 1 minute\n");
  EXPECT_EQ(load_config(path).errors.size(), 1U);
}

TEST_F(ConfigTest, ACheckStillRunsWhenNoMisspellingExplainsIt) {
  // Nothing close to org_id: the key is unknown and org_id is missing, two facts.
  std::string path = write("api:\n  organisation: org-demo\n");
  auto errors = rendered(load_config(path).errors);
  ASSERT_EQ(errors.size(), 2U);
  EXPECT_THAT(errors[1], HasSubstr("api.org_id: is required"));
  {
    // The environment's value is checked whatever the file misspelt.
    ScopedEnv org("DEVIN_ORCH_ORG_ID", "org/with/slashes");
    path = write("api:\n  org_idd: x\n");
    errors = rendered(load_config(path).errors);
    ASSERT_EQ(errors.size(), 2U);
    EXPECT_EQ(errors[1], "$DEVIN_ORCH_ORG_ID: api.org_id: may contain only letters, digits, '-', "
                         "'_', '.' and '~'");
  }
  // Two real mistakes in one comparison are both reported.
  path = write("api:\n  org_id: o\npoll:\n  initial_delay: 2m\n  max_delay: 1m\n");
  errors = rendered(load_config(path).errors);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_THAT(errors[0], HasSubstr(":5:14: poll.max_delay: must be at least poll.initial_delay"));
}

TEST_F(ConfigTest, CheckConfigRefusesADatabaseItCannotCreate) {
  const auto load_with_check = [&](const std::string& database) {
    return load_config(write("api:\n  org_id: o\ndatabase:\n  path: " + database + "\n"),
                       ConfigChecks{.database_location = true});
  };
  // A missing directory that can be made is fine, and the check makes nothing.
  const std::string fine = dir_.file("state/deeper/orch.db");
  auto result = load_with_check(fine);
  EXPECT_TRUE(result.config.has_value()) << rendered(result.errors).front();
  EXPECT_FALSE(std::filesystem::exists(dir_.file("state")));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path()), {}), 1)
      << "only the config: the probe file is gone";
  // An existing database is opened, not changed.
  write_file(dir_.file("existing.db"), "");
  EXPECT_TRUE(load_with_check(dir_.file("existing.db")).config.has_value());

  // A parent that is a file.
  write_file(dir_.file("plain-file"), "x");
  result = load_with_check(dir_.file("plain-file/state/orch.db"));
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].to_string(),
            dir_.file("devin-orch.yaml") + ":4:9: database.path: cannot be created: '" +
                dir_.file("plain-file") + "' is not a directory");
  // A directory nobody may create entries in (sysfs refuses even root).
  result = load_with_check("/sys/devin-orch-test/orch.db");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_THAT(result.errors[0].to_string(),
              HasSubstr(":4:9: database.path: cannot be created: cannot create directories in "
                        "'/sys' ("));
  // The database itself is a directory.
  result = load_with_check(dir_.path());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("exists and is not a regular file"));
  // Without the check (every command but check-config) the store reports it when it opens.
  EXPECT_TRUE(load_config(write("api:\n  org_id: o\ndatabase:\n  path: /sys/x/orch.db\n"))
                  .config.has_value());
  // The environment's path is the one checked, and named.
  ScopedEnv database("DEVIN_ORCH_DATABASE", "/sys/devin-orch-test/orch.db");
  result = load_with_check(fine);
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_THAT(result.errors[0].to_string(), HasSubstr("$DEVIN_ORCH_DATABASE: database.path: "));
}

TEST_F(ConfigTest, InlineApiKeyIsRefusedWithoutEchoingIt) {
  const ConfigLoad result = load("api:\n  org_id: o\n  api_key: sk-very-secret\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("set api.api_key_file"));
  EXPECT_THAT(result.errors[0].to_string(), Not(HasSubstr("sk-very-secret")));
}

TEST_F(ConfigTest, AllProblemsAreCollectedWithOneBasedPositions) {
  const std::string path = write(
      "api:\n"                              // 1
      "  org_id: o\n"                       // 2
      "  connect_timeout: soon\n"           // 3
      "poll:\n"                             // 4
      "  batch_size: 500\n"                 // 5
      "  jitter: 2\n"                       // 6
      "  multiplier: fast\n"                // 7
      "log:\n"                              // 8
      "  level: loud\n");                   // 9
  const ConfigLoad result = load_config(path);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(rendered(result.errors),
            (std::vector<std::string>{
                path + ":3:20: api.connect_timeout: expected a duration like 250ms, 10s, 5m or "
                       "1m30s, got 'soon'",
                path + ":5:15: poll.batch_size: must be between 1 and 200, got 500",
                path + ":6:11: poll.jitter: must be between 0 and 1, got 2",
                path + ":7:15: poll.multiplier: expected a number, got 'fast'",
                path + ":9:10: log.level: must be one of trace, debug, info, warn, error, got "
                       "'loud'",
            }));
}

TEST_F(ConfigTest, TypeErrors) {
  const ConfigLoad result = load(
      "api:\n"
      "  org_id: [a, b]\n"
      "  max_in_flight: many\n"
      "rate:\n"
      "  burst: {x: 1}\n"
      "poll:\n"
      "  initial_delay: 10\n"
      "  max_delay:\n"
      "jobs:\n"
      "  files: one.yaml\n"
      "  complete_on: always\n"
      "database: /tmp/db\n");
  EXPECT_EQ(rendered(result.errors).size(), 8U);
  std::vector<std::string> reasons;
  for (const Diagnostic& d : result.errors) reasons.push_back(d.field + ": " + d.reason);
  EXPECT_EQ(reasons, (std::vector<std::string>{
                         "api.org_id: expected a string, got a list",
                         "api.max_in_flight: expected an integer, got 'many'",
                         "rate.burst: expected a number, got a map",
                         "poll.initial_delay: expected a duration like 250ms, 10s, 5m or 1m30s, "
                         "got '10'",
                         "poll.max_delay: expected a duration like 250ms, 10s, 5m, got nothing",
                         "jobs.files: expected a list of file paths, got 'one.yaml'",
                         "jobs.complete_on: must be one of stop, finished, got 'always'",
                         "database: expected a map of settings, got '/tmp/db'",
                     }));
  // An empty value is reported at its key, not at whatever token follows it.
  EXPECT_EQ(result.errors[4].line, 8);
  EXPECT_EQ(result.errors[4].column, 3);
}

TEST_F(ConfigTest, RangesAreEnforced) {
  const ConfigLoad result = load(
      "api:\n"
      "  org_id: o\n"
      "  request_timeout: 0s\n"
      "  max_in_flight: 0\n"
      "rate:\n"
      "  requests_per_minute: 0\n"
      "  burst: 0.5\n"
      "poll:\n"
      "  initial_delay: 30s\n"
      "  max_delay: 10s\n"
      "  multiplier: 0.9\n"
      "  jitter: -0.1\n"
      "  batch_size: 0\n"
      "create:\n"
      "  max_attempts: 0\n"
      "  retry_initial: 5s\n"
      "  retry_max: 1s\n"
      "database:\n"
      "  cache_kib: 16\n");
  std::vector<std::string> reasons;
  for (const Diagnostic& d : result.errors) reasons.push_back(d.field + ": " + d.reason);
  EXPECT_EQ(reasons, (std::vector<std::string>{
                         "api.request_timeout: must be greater than 0s",
                         "api.max_in_flight: must be between 1 and 1024, got 0",
                         "rate.requests_per_minute: must be greater than 0, got 0",
                         "rate.burst: must be at least 1, got 0.5",
                         "poll.multiplier: must be at least 1, got 0.9",
                         "poll.jitter: must be between 0 and 1, got -0.1",
                         "poll.batch_size: must be between 1 and 200, got 0",
                         "create.max_attempts: must be between 1 and 1000, got 0",
                         "database.cache_kib: must be between 64 and 1048576, got 16",
                         "poll.max_delay: must be at least poll.initial_delay (30s)",
                         "create.retry_max: must be at least create.retry_initial (5s)",
                     }));
  // Cross-field problems point at the second key's value.
  EXPECT_EQ(result.errors[9].line, 10);
  EXPECT_EQ(result.errors[9].column, 14);
}

TEST_F(ConfigTest, BaseUrlMustBeHttpsUnlessLoopback) {
  const auto reason_for = [&](const std::string& url) -> std::string {
    const ConfigLoad result = load("api:\n  org_id: o\n  base_url: '" + url + "'\n");
    return result.errors.empty() ? "ok" : result.errors[0].reason;
  };
  const std::string http_refused =
      "plain http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost)";
  EXPECT_EQ(reason_for("http://api.devin.ai"), http_refused);
  EXPECT_EQ(reason_for("http://10.0.0.1:8080"), http_refused);
  EXPECT_EQ(reason_for("http://127.example.com"), http_refused);
  EXPECT_EQ(reason_for("ftp://api.devin.ai"), "must start with https:// (got ftp)");
  EXPECT_EQ(reason_for("api.devin.ai"), "is not a valid absolute URL like https://api.devin.ai");
  EXPECT_EQ(reason_for("https://user:pw@api.devin.ai"),
            "must not contain credentials (user@host)");
  EXPECT_EQ(reason_for("https://api.devin.ai/?x=1"), "must not have a query or fragment");
  EXPECT_EQ(reason_for("http://127.0.0.1:8080"), "ok");
  EXPECT_EQ(reason_for("http://127.3.4.5"), "ok");
  EXPECT_EQ(reason_for("http://[::1]:9000"), "ok");
  EXPECT_EQ(reason_for("http://LocalHost:1"), "ok");
  EXPECT_EQ(reason_for("https://api.devin.ai"), "ok");
}

// A password in the configuration would end up in backups, `config` output and process
// listings: it comes from a password file instead.
TEST_F(ConfigTest, APostgresUrlIsTakenWithoutAPasswordAndChoosesTheBackend) {
  const auto reason_for = [&](const std::string& url) -> std::string {
    const ConfigLoad result = load("api:\n  org_id: o\ndatabase:\n  url: '" + url + "'\n");
    return result.errors.empty() ? "ok" : result.errors[0].reason;
  };
  const std::string password_file = "put the password in a password file "
                                    "(database.password_file, or libpq's PGPASSFILE / ~/.pgpass)";
  EXPECT_EQ(reason_for("postgresql://orch:hunter2@db:5432/orch"),
            "must not contain a password; " + password_file);
  EXPECT_EQ(reason_for("postgresql://orch@db/orch?sslmode=require&password=hunter2"),
            "must not contain a password parameter; " + password_file);
  EXPECT_TRUE(reason_for("mysql://db/orch").starts_with("must be a PostgreSQL URL")) ;
  EXPECT_EQ(reason_for("postgresql://orch@db:5432/orch?sslmode=verify-full"), "ok");
  EXPECT_EQ(reason_for("postgres://orch@db/orch"), "ok");

  const ConfigLoad loaded = load(
      "api:\n  org_id: o\ndatabase:\n  url: postgresql://orch@db/orch\n"
      "  password_file: secrets/pgpass\n  connect_timeout: 3s\n");
  ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
  const auto options = store_options(loaded.config->database);
  EXPECT_EQ(options.url, "postgresql://orch@db/orch");
  EXPECT_EQ(options.password_file, dir_.file("secrets/pgpass"));  // relative to the config
  EXPECT_EQ(options.connect_timeout, 3s);
  EXPECT_EQ(database_name(loaded.config->database), "postgresql://orch@db/orch");

  ScopedEnv url("DEVIN_ORCH_DATABASE_URL", "postgresql://orch:hunter2@db/orch");
  const ConfigLoad from_env = load("api:\n  org_id: o\n");
  ASSERT_EQ(from_env.errors.size(), 1U);
  EXPECT_EQ(from_env.errors[0].field, "database.url");
  EXPECT_EQ(rendered(from_env.errors)[0].find("hunter2"), std::string::npos);
}

TEST_F(ConfigTest, OrgIdMustBeSafeInAUrlPath) {
  const ConfigLoad result = load("api:\n  org_id: 'org/../x'\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].line, 2);
  EXPECT_EQ(result.errors[0].field, "api.org_id");
}

TEST_F(ConfigTest, MalformedYamlIsLocated) {
  const std::string path = write("api:\n  org_id: o\npoll: [1, 2\nlog:\n  level: info\n");
  const ConfigLoad result = load_config(path);
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].file, path);
  // The parser notices the missing ']' where the flow sequence cannot go on.
  EXPECT_EQ(result.errors[0].line, 5);
  EXPECT_EQ(result.errors[0].column, 8);
  EXPECT_EQ(result.errors[0].reason, "missing comma in flow sequence");
}

TEST_F(ConfigTest, NonMapDocumentIsAnError) {
  const ConfigLoad result = load("- a\n- b\n");
  ASSERT_FALSE(result.errors.empty());
  EXPECT_THAT(result.errors[0].reason, HasSubstr("expected a map of sections"));
  EXPECT_EQ(result.errors[0].line, 1);
}

TEST_F(ConfigTest, DuplicateKeysAreErrors) {
  const ConfigLoad result = load("api:\n  org_id: a\n  org_id: b\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].line, 3);
  EXPECT_EQ(result.errors[0].reason, "duplicate key 'org_id' (first defined at line 2)");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigDirectory) {
  std::filesystem::create_directories(dir_.file("etc"));
  const std::string path = write(
      "api:\n  org_id: o\n  api_key_file: secrets/key\n  ca_file: ../ca.pem\n"
      "database:\n  path: data/orch.db\njobs:\n  files: [jobs.yaml, /abs/x.yaml, ./a/../b.yaml]\n",
      "etc/devin-orch.yaml");
  const ConfigLoad result = load_config(path);
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  const std::string base = std::filesystem::path(dir_.path()).lexically_normal().string();
  const Config& c = *result.config;
  EXPECT_EQ(c.api.api_key_file, base + "/etc/secrets/key");
  EXPECT_EQ(c.api.ca_file, base + "/ca.pem");
  EXPECT_EQ(c.database.path, base + "/etc/data/orch.db");
  EXPECT_EQ(c.jobs.files, (std::vector<std::string>{base + "/etc/jobs.yaml", "/abs/x.yaml",
                                                    base + "/etc/b.yaml"}));
}

TEST_F(ConfigTest, AliasesAreRefused) {
  const ConfigLoad result =
      load("api:\n  org_id: &o org-1\njobs:\n  files: [a.yaml]\nlog:\n  level: *o\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].line, 6);
  EXPECT_EQ(result.errors[0].column, 10);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("aliases"));
}

TEST_F(ConfigTest, HugeFileIsRefusedBeforeParsing) {
  std::string text = "api:\n  org_id: o\n";
  text += "# " + std::string(1U << 20U, 'x') + "\n";
  const ConfigLoad result = load(text);
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].reason, "file is larger than the limit of 1048576 bytes");
}

TEST_F(ConfigTest, DeepNestingAndManyDocumentsAreRefused) {
  const ConfigLoad deep = load(std::string(5000, '[') + std::string(5000, ']'));
  ASSERT_EQ(deep.errors.size(), 1U);
  EXPECT_THAT(deep.errors[0].reason, HasSubstr("nested deeper than"));
  const ConfigLoad two = load("api:\n  org_id: o\n---\napi:\n  org_id: p\n");
  ASSERT_EQ(two.errors.size(), 1U);
  EXPECT_THAT(two.errors[0].reason, HasSubstr("more than one YAML document"));
}

TEST_F(ConfigTest, UnreadableFileGivesTheSystemReason) {
  const ConfigLoad result = load_config(dir_.file("missing.yaml"));
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].to_string(),
            dir_.file("missing.yaml") + ": cannot open: No such file or directory");
}

TEST_F(ConfigTest, GarbageNeverCrashes) {
  for (const std::string& text :
       {std::string("\x00\x01\x02", 3), std::string("\xff\xfe\x00a"), std::string(": : :"),
        std::string("{a: [}"), std::string("api: !!binary AAAA"), std::string("? [a]\n: b\n"),
        std::string("api:\n  ? {x: 1}\n  : 2\n"), std::string("'unterminated"),
        std::string("%YAML 9.9\n---\na: 1\n"), std::string("&a [*a]")}) {
    const ConfigLoad result = load(text);
    EXPECT_FALSE(result.errors.empty()) << text;
    EXPECT_FALSE(result.config.has_value());
  }
}

TEST_F(ConfigTest, RenderedConfigLoadsBackToTheSameValues) {
  const std::string key = key_file("sk-render-secret\n", 0600);
  const ConfigLoad good = load("api:\n  org_id: org-9\n  api_key_file: " + key +
                               "\npoll:\n  jitter: 0.2\njobs:\n  files: ['a: b.yaml', '#c']\n"
                               "  complete_on: finished\n");
  ASSERT_TRUE(good.errors.empty()) << rendered(good.errors)[0];
  const std::string text = render_config(*good.config);
  EXPECT_THAT(text, HasSubstr("jitter: 0.2\n"));
  EXPECT_THAT(text, HasSubstr("initial_delay: 10s\n"));
  EXPECT_THAT(text, HasSubstr("complete_on: finished\n"));
  EXPECT_THAT(text, HasSubstr(key));
  EXPECT_THAT(text, Not(HasSubstr("sk-render-secret")));

  const std::string again_path = write(text, "rendered.yaml");
  const ConfigLoad again = load_config(again_path);
  ASSERT_TRUE(again.errors.empty()) << rendered(again.errors)[0] << "\n" << text;
  const Config& a = *good.config;
  const Config& b = *again.config;
  EXPECT_EQ(b.api.org_id, a.api.org_id);
  EXPECT_EQ(b.api.api_key_file, a.api.api_key_file);
  EXPECT_EQ(b.api.ca_file, a.api.ca_file);
  EXPECT_EQ(b.api.create_timeout, a.api.create_timeout);
  EXPECT_EQ(b.rate.requests_per_minute, a.rate.requests_per_minute);
  EXPECT_EQ(b.poll.jitter, a.poll.jitter);
  EXPECT_EQ(b.poll.multiplier, a.poll.multiplier);
  EXPECT_EQ(b.jobs.files, a.jobs.files);
  EXPECT_EQ(b.jobs.complete_on, a.jobs.complete_on);
  EXPECT_EQ(b.database.path, a.database.path);
  EXPECT_EQ(b.log.format, a.log.format);
  // Identical apart from the first line, which names the file it came from.
  const std::string text_again = render_config(b);
  EXPECT_EQ(text_again.substr(text_again.find('\n')), text.substr(text.find('\n')));
}

TEST_F(ConfigTest, ReferenceConfigIsExactlyTheDefaults) {
  const std::string path = std::string(DEVIN_ORCH_SOURCE_DIR) + "/config/devin-orch.yaml";
  // Without an organisation the reference config is rejected: org_id has no default.
  const ConfigLoad bare = load_config(path);
  ASSERT_EQ(bare.errors.size(), 1U);
  EXPECT_EQ(bare.errors[0].field, "api.org_id");

  ScopedEnv org("DEVIN_ORCH_ORG_ID", "org-ref");
  const ConfigLoad result = load_config(path);
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  Config defaults;
  defaults.api.org_id = "org-ref";
  defaults.source_path = path;
  EXPECT_EQ(render_config(*result.config), render_config(defaults));

  // Every key the daemon knows is documented there.
  const std::string reference = testing::read_file(path);
  const std::string text = render_config(defaults);
  std::size_t start = text.find('\n') + 1;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::size_t colon = line.find(':');
    if (line.find_first_not_of(' ') == std::string::npos || line.find("- ") != std::string::npos ||
        colon == std::string::npos) {
      continue;
    }
    const std::string key = line.substr(0, colon + 1);
    EXPECT_NE(reference.find("\n" + key), std::string::npos) << key;
  }
}

TEST_F(ConfigTest, DemoConfigLoadsAndPointsAtTheExampleJobs) {
  ScopedEnv url("DEVIN_ORCH_BASE_URL", "http://127.0.0.1:40123");
  const std::string source = std::filesystem::path(DEVIN_ORCH_SOURCE_DIR).lexically_normal().string();
  const ConfigLoad result = load_config(source + "/config/demo.yaml");
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  EXPECT_EQ(result.config->api.base_url, "http://127.0.0.1:40123");
  EXPECT_EQ(result.config->api.org_id, "org-demo");
  EXPECT_EQ(result.config->jobs.files, std::vector<std::string>{source + "/examples/jobs.yaml"});
  EXPECT_EQ(result.config->poll.initial_delay, 500ms);
  EXPECT_EQ(result.config->poll.max_delay, 2s);
  EXPECT_EQ(result.config->rate.requests_per_minute, 600.0);
  EXPECT_EQ(result.config->rate.burst, 20.0);
}

TEST_F(ConfigTest, KeyFileWithOwnerOnlyModeIsRead) {
  ApiConfig api{.api_key_file = key_file("  sk-abc123 \n\n", 0600)};
  std::string error;
  EXPECT_EQ(resolve_api_key(api, &error), "sk-abc123");
  EXPECT_EQ(error, "");
}

TEST_F(ConfigTest, KeyFileReadableByOthersIsRefused) {
  const std::string path = key_file("sk-leaky-key\n", 0644);
  ApiConfig api{.api_key_file = path};
  std::string error;
  EXPECT_EQ(resolve_api_key(api, &error), std::nullopt);
  EXPECT_EQ(error,
            "key file " + path + " is readable by group or others (mode 0644); chmod 600 it");
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_EQ(resolve_api_key(api, &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("(mode 0640)"));
}

TEST_F(ConfigTest, EnvironmentKeyIsTheLastResort) {
  ScopedEnv key("DEVIN_API_KEY", "sk-env\n");
  std::string error;
  EXPECT_EQ(resolve_api_key(ApiConfig{}, &error), "sk-env");
  // A configured key file wins over the environment.
  ApiConfig api{.api_key_file = key_file("sk-file", 0600)};
  EXPECT_EQ(resolve_api_key(api, &error), "sk-file");
}

TEST_F(ConfigTest, CredentialsDirectoryComesFirst) {
  std::filesystem::create_directories(dir_.file("creds"));
  key_file("sk-credential\n", 0400, "creds/devin-api-key");
  ScopedEnv creds("CREDENTIALS_DIRECTORY", dir_.file("creds").c_str());
  ScopedEnv key("DEVIN_API_KEY", "sk-env");
  ApiConfig api{.api_key_file = key_file("sk-file", 0600)};
  std::string error;
  EXPECT_EQ(resolve_api_key(api, &error), "sk-credential");
}

TEST_F(ConfigTest, CredentialsDirectoryWithoutTheKeyFallsThrough) {
  std::filesystem::create_directories(dir_.file("creds"));
  ScopedEnv creds("CREDENTIALS_DIRECTORY", dir_.file("creds").c_str());
  ApiConfig api{.api_key_file = key_file("sk-file", 0600)};
  std::string error;
  EXPECT_EQ(resolve_api_key(api, &error), "sk-file");
}

TEST_F(ConfigTest, UnusableKeysNeverAppearInErrors) {
  std::string error;
  EXPECT_EQ(resolve_api_key(ApiConfig{.api_key_file = key_file(" \n\t\n", 0600)}, &error),
            std::nullopt);
  EXPECT_THAT(error, HasSubstr("is empty"));

  EXPECT_EQ(resolve_api_key(ApiConfig{.api_key_file = key_file("sk-part1 sk-part2\n", 0600)},
                            &error),
            std::nullopt);
  EXPECT_THAT(error, HasSubstr("whitespace or control characters"));
  EXPECT_THAT(error, Not(HasSubstr("sk-part")));

  ScopedEnv key("DEVIN_API_KEY", "sk-env\r\nX-Injected: 1");
  EXPECT_EQ(resolve_api_key(ApiConfig{}, &error), std::nullopt);
  EXPECT_THAT(error, Not(HasSubstr("sk-env")));
  EXPECT_THAT(error, Not(HasSubstr("Injected")));
}

TEST_F(ConfigTest, MissingKeyEverywhereExplainsTheOptions) {
  std::string error;
  EXPECT_EQ(resolve_api_key(ApiConfig{}, &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("DEVIN_API_KEY"));
  EXPECT_THAT(error, HasSubstr("api.api_key_file"));
  EXPECT_EQ(resolve_api_key(ApiConfig{.api_key_file = dir_.file("nope")}, &error), std::nullopt);
  EXPECT_EQ(error, "cannot open key file " + dir_.file("nope") + ": No such file or directory");
}

}  // namespace
}  // namespace devin_orch::app

namespace devin_orch::app {
namespace {

class NotifyConfigTest : public ConfigTest {};

// Both stores have the outbox: receivers are taken with a PostgreSQL database as with SQLite.
TEST_F(NotifyConfigTest, ReceiversAreTakenWithAPostgresDatabase) {
  const ConfigLoad loaded = load(
      "api:\n  org_id: o\ndatabase:\n  url: postgresql://orch@db/orch\n"
      "notify:\n  webhooks:\n    - url: https://ci.example.com/hook\n"
      "  slack:\n    - url: https://hooks.slack.com/services/T/B/X\n");
  ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
  ASSERT_TRUE(loaded.config);
  EXPECT_EQ(loaded.config->database.url, "postgresql://orch@db/orch");
  EXPECT_EQ(loaded.config->notify.webhooks.size(), 1U);
  EXPECT_EQ(loaded.config->notify.slack.size(), 1U);
}

TEST_F(NotifyConfigTest, WebhooksAndSlackAreReadWithTheirFilters) {
  const std::string path = write(
      "api:\n  org_id: o\n"
      "notify:\n"
      "  webhooks:\n"
      "    - url: https://ci.example.com/hook\n"
      "      secret_file: secrets/hook.secret\n"
      "      events: [job.finished, job.failed]\n"
      "      tags: [ci]\n"
      "    - url: http://127.0.0.1:8080/local\n"
      "  slack:\n"
      "    - url: https://hooks.slack.com/services/T/B/X\n"
      "      events: [org.paused]\n"
      "  max_age: 1h\n"
      "  max_in_flight_per_receiver: 2\n");
  const ConfigLoad result = load_config(path);
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  const NotifyConfig& notify = result.config->notify;
  ASSERT_EQ(notify.webhooks.size(), 2U);
  EXPECT_EQ(notify.webhooks[0].url, "https://ci.example.com/hook");
  // A relative secret_file is relative to the config file, like every path in it.
  const std::string dir = path.substr(0, path.rfind('/'));
  EXPECT_EQ(notify.webhooks[0].secret_file, dir + "/secrets/hook.secret");
  EXPECT_EQ(notify.webhooks[0].events,
            (std::vector<core::EventType>{core::EventType::job_finished,
                                          core::EventType::job_failed}));
  EXPECT_EQ(notify.webhooks[0].tags, std::vector<std::string>{"ci"});
  EXPECT_FALSE(notify.webhooks[1].secret_file);
  ASSERT_EQ(notify.slack.size(), 1U);
  EXPECT_EQ(notify.slack[0].format, core::NotifyTarget::Format::slack);
  EXPECT_EQ(notify.max_age, std::chrono::hours{1});
  EXPECT_EQ(notify.max_in_flight_per_receiver, 2);
}

TEST_F(NotifyConfigTest, BadReceiversAreLocated) {
  const auto error_for = [&](const std::string& notify) -> std::string {
    const std::string path = write("api:\n  org_id: o\nnotify:\n" + notify);
    const ConfigLoad result = load_config(path);
    if (result.errors.empty()) return "ok";
    const std::string text = result.errors[0].to_string();
    return text.substr(path.size());
  };
  EXPECT_EQ(error_for("  webhooks:\n    - url: http://hooks.example.com/x\n"),
            ":5:12: notify.webhooks[0].url: plain http:// is only allowed for loopback hosts "
            "(127.0.0.0/8, ::1, localhost)");
  EXPECT_EQ(error_for("  webhooks:\n    - url: https://a.example/x\n      events: [job.done]\n"),
            ":6:16: notify.webhooks[0].events[0]: unknown event 'job.done'; the events are "
            "job.finished, job.failed, job.suspended, job.dead, job.lost, job.timed_out, "
            "job.cancelled, job.waiting_for_user, job.duplicate_terminated, job.stalled, "
            "org.paused, org.resumed");
  EXPECT_EQ(error_for("  webhooks:\n    - events: [job.failed]\n"),
            ":5:7: notify.webhooks[0].url: missing required field 'url'");
  EXPECT_EQ(error_for("  slack:\n    - url: https://hooks.slack.com/x\n      secret_file: /s\n"),
            ":6:7: notify.slack[0].secret_file: unknown field 'secret_file'; expected a list "
            "of {url, events, tags}");
  EXPECT_EQ(error_for("  webhooks: https://a.example/x\n"),
            ":4:13: notify.webhooks: expected a list of {url, secret_file, events, tags}, got "
            "'https://a.example/x'");
  EXPECT_EQ(error_for("  retry_initial: 10s\n  retry_max: 1s\n"),
            ":5:14: notify.retry_max: must be at least notify.retry_initial (10s)");
}

TEST_F(NotifyConfigTest, WebhookSecretComesFromItsFileOrTheCredential) {
  const std::string secret = write("whsec_abc\n", "hook.secret");
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  std::string error;
  core::NotifyTarget target{.url = "https://a.example/x", .secret_file = secret};
  EXPECT_EQ(resolve_webhook_secret(target, &error), "whsec_abc");
  ASSERT_EQ(::chmod(secret.c_str(), 0644), 0);
  EXPECT_FALSE(resolve_webhook_secret(target, &error));
  EXPECT_NE(error.find("readable by group or others"), std::string::npos) << error;

  const std::string credential = write("whsec_cred", "devin-orch-webhook-secret");
  ASSERT_EQ(::chmod(credential.c_str(), 0600), 0);
  const std::string directory_path = credential.substr(0, credential.rfind('/'));
  ScopedEnv directory("CREDENTIALS_DIRECTORY", directory_path.c_str());
  EXPECT_EQ(resolve_webhook_secret({.url = "https://a.example/x"}, &error), "whsec_cred");
}

}  // namespace
}  // namespace devin_orch::app

namespace devin_orch::app {
namespace {

class DashboardConfigTest : public ConfigTest {};

TEST_F(DashboardConfigTest, IsOffByDefaultOnLoopback) {
  const ConfigLoad result = load("api:\n  org_id: org-1\n");
  ASSERT_TRUE(result.config);
  EXPECT_FALSE(result.config->dashboard.enabled);
  EXPECT_EQ(result.config->dashboard.address, "127.0.0.1");
  EXPECT_EQ(result.config->dashboard.port, 9465);
  EXPECT_EQ(result.config->dashboard.token_file, std::nullopt);
}

TEST_F(DashboardConfigTest, ReadsEveryKeyAndResolvesTheTokenFile) {
  const ConfigLoad result = load(
      "api:\n  org_id: org-1\ndashboard:\n  enabled: true\n  address: \"::1\"\n  port: 0\n"
      "  token_file: dashboard-token\n");
  ASSERT_TRUE(result.errors.empty()) << rendered(result.errors)[0];
  const auto& dashboard = result.config->dashboard;
  EXPECT_TRUE(dashboard.enabled);
  EXPECT_EQ(dashboard.address, "::1");
  EXPECT_EQ(dashboard.port, 0);
  EXPECT_EQ(dashboard.token_file, dir_.file("dashboard-token"));  // relative to the config
  EXPECT_THAT(render_config(*result.config), ::testing::HasSubstr("dashboard:\n  enabled: true"));
}

TEST_F(DashboardConfigTest, BadValuesAreLocated) {
  const ConfigLoad result = load(
      "api:\n  org_id: org-1\ndashboard:\n  address: localhost\n  port: 70000\n  tokenfile: x\n");
  const auto errors = rendered(result.errors);
  ASSERT_EQ(errors.size(), 3U);
  EXPECT_THAT(errors[0], ::testing::HasSubstr(":4:12: dashboard.address: expected an IP address"));
  EXPECT_THAT(errors[1], ::testing::HasSubstr(":5:9: dashboard.port"));
  EXPECT_THAT(errors[2], ::testing::HasSubstr("did you mean 'token_file'"));
}

TEST_F(DashboardConfigTest, TheTokenFileFollowsTheKeyFileRules) {
  DashboardConfig dashboard;
  std::string error;
  EXPECT_EQ(resolve_dashboard_token(dashboard, &error), std::nullopt);
  EXPECT_EQ(error, "");  // none configured: read-only, not an error
  dashboard.token_file = key_file("s3cret\n", 0600, "token");
  EXPECT_EQ(resolve_dashboard_token(dashboard, &error), "s3cret");
  dashboard.token_file = key_file("s3cret\n", 0644, "open-token");
  EXPECT_EQ(resolve_dashboard_token(dashboard, &error), std::nullopt);
  EXPECT_THAT(error, ::testing::HasSubstr("dashboard.token_file: key file"));
  EXPECT_THAT(error, ::testing::HasSubstr("chmod 600"));
}

// api.organizations (issue 29): each listed organisation its own API version and, optionally,
// its own key file; the others keep api.version and the global key.
TEST_F(ConfigTest, OrganizationsGiveEachListedOrgItsVersionAndKeyFile) {
  const std::string v1_key = key_file("apk_legacy_key\n", 0600, "v1-key");
  const std::string path = write("api:\n  org_id: org-main\n  organizations:\n"
                                 "    org-legacy:\n      version: v1\n      api_key_file: " +
                                 v1_key + "\n    org-new:\n      version: v3\n");
  const ConfigLoad loaded = load_config(path);
  ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
  const ApiConfig& api = loaded.config->api;
  ASSERT_EQ(api.organizations.size(), 2U);
  EXPECT_EQ(api.organizations.at("org-legacy"),
            (OrgApiConfig{.version = core::ApiVersion::v1, .api_key_file = v1_key}));
  EXPECT_EQ(api.organizations.at("org-new"), (OrgApiConfig{.version = core::ApiVersion::v3}));
  EXPECT_EQ(api_version_for(api, "org-legacy"), core::ApiVersion::v1);
  EXPECT_EQ(api_version_for(api, "org-new"), core::ApiVersion::v3);
  EXPECT_EQ(api_version_for(api, "org-main"), core::ApiVersion::v3);
  EXPECT_EQ(api_version_for(api, "org-unlisted"), core::ApiVersion::v3);

  // check-config's rendering loads back to the same organisations, without any key.
  const std::string text = render_config(*loaded.config);
  EXPECT_THAT(text, HasSubstr("  organizations:\n    org-legacy:\n      version: v1\n"));
  EXPECT_THAT(text, Not(HasSubstr("apk_legacy_key")));
  const ConfigLoad again = load_config(write(text, "rendered.yaml"));
  ASSERT_TRUE(again.errors.empty()) << rendered(again.errors)[0] << "\n" << text;
  EXPECT_EQ(again.config->api.organizations, api.organizations);
}

TEST_F(ConfigTest, GlobalV1KeepsItsVersionForOrganizationsNotListed) {
  const ConfigLoad loaded = load("api:\n  org_id: org-main\n  version: v1\n  organizations:\n"
                                 "    org-new:\n      version: v3\n");
  ASSERT_TRUE(loaded.errors.empty()) << rendered(loaded.errors)[0];
  EXPECT_EQ(api_version_for(loaded.config->api, "org-main"), core::ApiVersion::v1);
  EXPECT_EQ(api_version_for(loaded.config->api, "org-new"), core::ApiVersion::v3);
  EXPECT_THAT(render_config(*loaded.config), HasSubstr("  organizations:\n    org-new:\n"));
  const ConfigLoad none = load("api:\n  org_id: org-main\n");
  ASSERT_TRUE(none.errors.empty());
  EXPECT_THAT(render_config(*none.config), HasSubstr("  organizations: {}\n"));
}

TEST_F(ConfigTest, OrganizationsMistakesAreLocatedAndNothingOfTheMapIsKept) {
  const std::string path = write("api:\n  org_id: org-main\n  organizations:\n"
                                 "    org-a:\n      version: v2\n"         // line 5
                                 "    org-b:\n      versoin: v1\n"         // line 7
                                 "    org-c:\n      version: v3\n      api_key: apk_x\n"
                                 "    org/d:\n      version: v3\n"         // line 11
                                 "    org-e: v1\n");                       // line 13
  const ConfigLoad loaded = load_config(path);
  const auto lines = rendered(loaded.errors);
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre(
                         path + ":5:16: api.organizations.org-a.version: must be one of v1, v3, "
                                "got 'v2'",
                         path + ":7:7: api.organizations.org-b.versoin: unknown key; an "
                                "organisation's entry takes version and api_key_file",
                         path + ":10:7: api.organizations.org-c.api_key: unknown key; an "
                                "organisation's entry takes version and api_key_file; the API "
                                "key is never read from the config: set api_key_file",
                         path + ":11:5: api.organizations.org/d: an organisation id may contain "
                                "only letters, digits, '-', '_', '.' and '~'",
                         path + ":13:12: api.organizations.org-e: expected a map with version "
                                "(v1 or v3) and optionally api_key_file, got 'v1'"));
  EXPECT_FALSE(loaded.config.has_value());
  for (const auto& line : lines) EXPECT_THAT(line, Not(HasSubstr("apk_x")));

  const std::string no_version =
      write("api:\n  org_id: org-main\n  organizations:\n    org-f:\n      api_key_file: k\n",
            "no-version.yaml");
  EXPECT_THAT(
      rendered(load_config(no_version).errors),
      ::testing::ElementsAre(no_version +
                             ":4:5: api.organizations.org-f.version: is required: v1 or v3"));

  const ConfigLoad list = load("api:\n  org_id: org-main\n  organizations: [org-a]\n");
  ASSERT_EQ(list.errors.size(), 1U);
  EXPECT_THAT(rendered(list.errors)[0],
              HasSubstr("api.organizations: expected a map of organisation ids to {version, "
                        "api_key_file}"));
}

TEST_F(ConfigTest, AnOrganizationsKeyIsItsOwnFileElseTheGlobalKey) {
  ScopedEnv global("DEVIN_API_KEY", "cog_global");
  ApiConfig api{.org_id = "org-main"};
  api.organizations["org-legacy"] = {.version = core::ApiVersion::v1,
                                     .api_key_file = key_file("apk_legacy\n", 0600, "legacy")};
  api.organizations["org-new"] = {.version = core::ApiVersion::v3};
  std::string error;
  EXPECT_EQ(resolve_org_api_key(api, "org-legacy", &error), "apk_legacy");
  EXPECT_EQ(resolve_org_api_key(api, "org-new", &error), "cog_global");
  EXPECT_EQ(resolve_org_api_key(api, "org-main", &error), "cog_global");
  EXPECT_EQ(resolve_org_api_key(api, "org-unlisted", &error), "cog_global");
  EXPECT_THAT(describe_org_api_key_source(api, "org-legacy"),
              HasSubstr("api.organizations.org-legacy.api_key_file ("));
  EXPECT_EQ(describe_org_api_key_source(api, "org-new"), "DEVIN_API_KEY");

  // An unreadable (or too open) key file is refused, naming the setting.
  api.organizations["org-legacy"].api_key_file = key_file("apk_leaky\n", 0644, "leaky");
  EXPECT_EQ(resolve_org_api_key(api, "org-legacy", &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("api.organizations.org-legacy.api_key_file: key file "));
  EXPECT_THAT(error, HasSubstr("chmod 600"));
  api.organizations["org-legacy"].api_key_file = dir_.file("missing");
  EXPECT_EQ(resolve_org_api_key(api, "org-legacy", &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("api.organizations.org-legacy.api_key_file: "));
}

// A v1 key (apk_...) works on v1 only and v3 refuses it (reference §1): a listed organisation
// whose key does not fit its version is refused at start, without quoting the key.
TEST_F(ConfigTest, AListedOrganizationsKeyMustFitItsVersion) {
  ScopedEnv global("DEVIN_API_KEY", "apk_global_v1");
  ApiConfig api{.org_id = "org-main", .version = core::ApiVersion::v1};
  api.organizations["org-new"] = {.version = core::ApiVersion::v3};
  api.organizations["org-legacy"] = {.version = core::ApiVersion::v1,
                                     .api_key_file = key_file("cog_not_v1\n", 0600, "cog")};
  std::string error;
  EXPECT_EQ(resolve_org_api_key(api, "org-main", &error), "apk_global_v1");
  EXPECT_EQ(resolve_org_api_key(api, "org-new", &error), std::nullopt);
  EXPECT_EQ(error,
            "api.organizations.org-new: version v3 refuses v1 keys (apk_...), and the key from "
            "DEVIN_API_KEY is one");
  EXPECT_EQ(resolve_org_api_key(api, "org-legacy", &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("api.organizations.org-legacy: version v1 needs a v1 key "
                               "(apk_...), but the key from api.organizations.org-legacy."
                               "api_key_file ("));
  EXPECT_THAT(error, Not(HasSubstr("cog_not_v1")));
}

// Jobs are checked against their organisation's API: a v1 organisation listed with its own key
// may be named by org_id (its key acts on it); v3-only fields are refused there only.
TEST_F(ConfigTest, JobsAreValidatedAgainstTheirOrganizationsApi) {
  ApiConfig api{.org_id = "org-main"};
  api.organizations["org-legacy"] = {.version = core::ApiVersion::v1};
  core::JobDefinition job{.key = "j"};
  job.spec.prompt = "p";
  EXPECT_EQ(validate_for_api(api, job), std::nullopt);
  job.spec.devin_mode = "fast";
  EXPECT_EQ(validate_for_api(api, job), std::nullopt);  // org-main: v3
  job.org_id = "org-legacy";
  const auto refused = validate_for_api(api, job);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->field, "devin_mode");
  EXPECT_THAT(refused->reason, HasSubstr("api.version v1"));
  job.spec.devin_mode.reset();
  EXPECT_EQ(validate_for_api(api, job), std::nullopt);
  EXPECT_EQ(api_version_of(api, job), core::ApiVersion::v1);

  // The global v1 key acts on api.org_id only: naming an unlisted organisation stays refused.
  ApiConfig global_v1{.org_id = "org-main", .version = core::ApiVersion::v1};
  job.org_id = "org-other";
  const auto other = validate_for_api(global_v1, job);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->field, "org_id");
  // The default organisation listed on v1: a job naming none is checked against v1.
  api.organizations["org-main"] = {.version = core::ApiVersion::v1};
  job.org_id.reset();
  job.spec.devin_mode = "fast";
  ASSERT_TRUE(validate_for_api(api, job).has_value());
  EXPECT_EQ(validate_for_api(api, job)->field, "devin_mode");
}

}  // namespace
}  // namespace devin_orch::app
