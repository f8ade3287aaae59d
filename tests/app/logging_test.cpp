// The stderr sink: lines written at once by default, batched per loop turn under a
// DeferredLogWrites, with warnings, a full buffer and the guard's end writing immediately.
#include "devin_orch/app/logging.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <functional>
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

}  // namespace
}  // namespace devin_orch::app
