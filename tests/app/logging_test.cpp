// The stderr sink: lines written at once by default, batched per loop turn under a
// DeferredLogWrites, with warnings, a full buffer and the guard's end writing immediately; the
// formats: times in UTC with their zone, and log_event's fields as JSON members of their own.
#include "devin_orch/app/logging.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace devin_orch::app {
namespace {

// Points fd 2 at a temporary file for the test's lifetime.
class CapturedStderr {
 public:
  CapturedStderr() {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    file_ = std::tmpfile();
    ::dup2(::fileno(file_), STDERR_FILENO);
  }
  ~CapturedStderr() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    std::fclose(file_);
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;

  std::string text() const {
    std::string out;
    char buffer[4096];
    std::size_t n = 0;
    std::rewind(file_);
    while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0) out.append(buffer, n);
    return out;
  }

 private:
  int saved_ = -1;
  std::FILE* file_ = nullptr;
};

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(setup_logging(LogConfig{.level = "info", .format = "text"}).has_value());
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  // Stands in for asio::post: keeps the writes until the test runs them.
  PostLogWrite queue_posts() {
    return [this](std::function<void()> write) { posted_.push_back(std::move(write)); };
  }
  void run_posted() {
    auto posted = std::move(posted_);
    posted_.clear();
    for (auto& write : posted) write();
  }

  std::shared_ptr<spdlog::logger> previous_ = spdlog::default_logger();
  std::vector<std::function<void()>> posted_;
};

TEST_F(LoggingTest, WritesEachLineAtOnceWithoutADeferral) {
  const CapturedStderr captured;
  spdlog::info("first");
  EXPECT_NE(captured.text().find("[info] first\n"), std::string::npos);
  spdlog::info("second");
  EXPECT_NE(captured.text().find("[info] second\n"), std::string::npos);
}

TEST_F(LoggingTest, BatchesInfoLinesUntilThePostedWriteRuns) {
  const CapturedStderr captured;
  const DeferredLogWrites deferred{queue_posts()};
  spdlog::info("one");
  spdlog::info("two");
  EXPECT_EQ(captured.text(), "");
  ASSERT_EQ(posted_.size(), 1U) << "one write per batch, however many lines";
  run_posted();
  const auto text = captured.text();
  const auto one = text.find("[info] one\n");
  const auto two = text.find("[info] two\n");
  ASSERT_NE(one, std::string::npos);
  ASSERT_NE(two, std::string::npos);
  EXPECT_LT(one, two);

  spdlog::info("three");
  EXPECT_EQ(posted_.size(), 1U) << "the next line starts a new batch";
  EXPECT_EQ(captured.text().find("three"), std::string::npos);
  run_posted();
  EXPECT_NE(captured.text().find("[info] three\n"), std::string::npos);
}

TEST_F(LoggingTest, AWarningWritesTheBufferAndItselfAtOnceInOrder) {
  const CapturedStderr captured;
  const DeferredLogWrites deferred{queue_posts()};
  spdlog::info("before");
  spdlog::warn("trouble");
  const auto text = captured.text();
  const auto before = text.find("[info] before\n");
  const auto trouble = text.find("[warning] trouble\n");
  ASSERT_NE(before, std::string::npos);
  ASSERT_NE(trouble, std::string::npos);
  EXPECT_LT(before, trouble);
  run_posted();
  EXPECT_EQ(captured.text(), text) << "nothing is written twice";
}

TEST_F(LoggingTest, AFullBufferIsWrittenWithoutWaitingForTheLoop) {
  const CapturedStderr captured;
  const DeferredLogWrites deferred{queue_posts()};
  const std::string long_line(1024, 'x');
  for (int i = 0; i < 70; ++i) spdlog::info("{}", long_line);
  EXPECT_GE(captured.text().size(), 64U * 1024U);
}

TEST_F(LoggingTest, EndingTheDeferralWritesWhatIsBuffered) {
  const CapturedStderr captured;
  {
    const DeferredLogWrites deferred{queue_posts()};
    spdlog::info("pending");
    EXPECT_EQ(captured.text(), "");
  }
  EXPECT_NE(captured.text().find("[info] pending\n"), std::string::npos);
  run_posted();  // a write the loop never ran is harmless afterwards
  spdlog::info("after");
  EXPECT_NE(captured.text().find("[info] after\n"), std::string::npos);
  EXPECT_EQ(captured.text().find("pending"), captured.text().rfind("pending"));
}

// Sets the process's time zone for the test's lifetime (a POSIX TZ string needs no tzdata).
class LocalZone {
 public:
  explicit LocalZone(const char* tz) {
    if (const char* old = std::getenv("TZ")) saved_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~LocalZone() {
    if (saved_) {
      ::setenv("TZ", saved_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  LocalZone(const LocalZone&) = delete;
  LocalZone& operator=(const LocalZone&) = delete;

 private:
  std::optional<std::string> saved_;
};

// "YYYY-MM-DDTHH:MM" of now in UTC, and of one minute later (a test may straddle a minute).
std::vector<std::string> utc_minutes_now() {
  std::vector<std::string> out;
  const auto now = std::chrono::system_clock::now();
  for (const auto at : {now, now + std::chrono::minutes{1}}) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M", &utc);
    out.emplace_back(buffer);
  }
  return out;
}

TEST_F(LoggingTest, TextTimesAreUtcAndSaySo) {
  const LocalZone india{"IST-5:30"};  // a local time 5.5 hours from UTC
  ASSERT_FALSE(setup_logging(LogConfig{.level = "info", .format = "text"}).has_value());
  const auto minutes = utc_minutes_now();
  const CapturedStderr captured;
  spdlog::info("when");
  const auto text = captured.text();
  // 2026-11-24T09:30:00.123Z [info] when
  ASSERT_GE(text.size(), 24U) << text;
  EXPECT_EQ(text.substr(23), "Z [info] when\n") << text;
  EXPECT_TRUE(text.starts_with(minutes[0]) || text.starts_with(minutes[1]))
      << "expected UTC (" << minutes[0] << "), got " << text;
}

TEST_F(LoggingTest, JsonTimesAreUtcAndSaySo) {
  const LocalZone india{"IST-5:30"};
  ASSERT_FALSE(setup_logging(LogConfig{.level = "info", .format = "json"}).has_value());
  const auto minutes = utc_minutes_now();
  const CapturedStderr captured;
  spdlog::info("when");
  const auto line = boost::json::parse(captured.text()).as_object();
  const std::string ts{line.at("ts").as_string()};
  EXPECT_TRUE(ts.ends_with("Z")) << ts;
  EXPECT_TRUE(ts.starts_with(minutes[0]) || ts.starts_with(minutes[1])) << ts;
}

TEST_F(LoggingTest, JsonLinesCarryTheEventsFieldsAsMembers) {
  ASSERT_FALSE(setup_logging(LogConfig{.level = "info", .format = "json"}).has_value());
  const CapturedStderr captured;
  const std::string key = "fix \"quoted\"\\key";
  log_event(spdlog::level::warn,
            {.event = "job_ended", .key = key, .session_id = "devin-1", .org_id = "org-a",
             .state = "failed", .status = "error"},
            "job '{}': {}", key, "failed");
  spdlog::info("plain");
  std::istringstream lines{captured.text()};
  std::string first;
  std::string second;
  ASSERT_TRUE(std::getline(lines, first));
  ASSERT_TRUE(std::getline(lines, second));
  const auto event = boost::json::parse(first).as_object();
  EXPECT_EQ(event.at("level").as_string(), "warning");
  EXPECT_EQ(event.at("event").as_string(), "job_ended");
  EXPECT_EQ(event.at("key").as_string(), key) << "escaped and read back whole";
  EXPECT_EQ(event.at("session_id").as_string(), "devin-1");
  EXPECT_EQ(event.at("org_id").as_string(), "org-a");
  EXPECT_EQ(event.at("state").as_string(), "failed");
  EXPECT_EQ(event.at("status").as_string(), "error");
  EXPECT_FALSE(event.contains("user_id")) << "a field not set is left out";
  EXPECT_FALSE(event.contains("event_id"));
  EXPECT_EQ(event.at("msg").as_string(), "job '" + key + "': failed");
  const auto plain = boost::json::parse(second).as_object();
  EXPECT_EQ(plain.size(), 3U) << second << ": no fields linger from the line before";
  EXPECT_EQ(plain.at("msg").as_string(), "plain");
}

TEST_F(LoggingTest, ANotificationsLineCarriesItsEventId) {
  ASSERT_FALSE(setup_logging(LogConfig{.level = "info", .format = "json"}).has_value());
  const CapturedStderr captured;
  log_event(spdlog::level::err,
            {.event = "notification_dead", .key = "k", .org_id = "org-a", .event_id = "evt_1"},
            "notification {} dead-lettered", "evt_1");
  const auto line = boost::json::parse(captured.text()).as_object();
  EXPECT_EQ(line.at("event").as_string(), "notification_dead");
  EXPECT_EQ(line.at("event_id").as_string(), "evt_1");
  EXPECT_EQ(line.at("key").as_string(), "k");
  EXPECT_EQ(line.at("org_id").as_string(), "org-a");
}

TEST_F(LoggingTest, TextLinesShowTheMessageAloneAndSkippedLevelsFormatNothing) {
  const CapturedStderr captured;
  log_event(spdlog::level::info, {.event = "session_created", .key = "k", .session_id = "s"},
            "job '{}': created session {}", "k", "s");
  log_event(spdlog::level::debug, {.event = "session_status", .key = "k"}, "not shown");
  const auto text = captured.text();
  EXPECT_NE(text.find("[info] job 'k': created session s\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("session_created"), std::string::npos) << text;
  EXPECT_EQ(text.find("not shown"), std::string::npos) << text;
}

}  // namespace
}  // namespace devin_orch::app
