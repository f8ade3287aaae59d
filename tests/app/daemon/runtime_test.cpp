// The daemon's runtime on a real io_context: the shutdown signal ends every wait at once,
// drained() completes when the last task ends, and a wake-up sent before the wait is kept.
#include "devin_orch/app/daemon/runtime.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

namespace net = boost::asio;
using std::chrono::hours;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Coroutines take what they use as parameters: a capturing lambda's captures live in the
// lambda, which is gone before the coroutine resumes.
net::awaitable<void> sleep_and_note(Runtime& runtime, core::Duration timeout,
                                    std::vector<bool>& answers) {
  answers.push_back(co_await runtime.sleep_for(timeout));
}

net::awaitable<void> wait_and_note(Runtime& runtime, net::steady_timer& timer,
                                   std::vector<bool>& answers) {
  answers.push_back(co_await runtime.wait(timer));
}

net::awaitable<void> sleep_then_log(Runtime& runtime, int ms, std::vector<std::string>& order) {
  co_await runtime.sleep_for(milliseconds{ms});
  order.push_back("task " + std::to_string(ms));
}

net::awaitable<void> log_when_drained(Runtime& runtime, std::vector<std::string>& order) {
  co_await runtime.drained();
  order.push_back("drained");
}

net::awaitable<void> wake_twice(Wakeup& wakeup, std::vector<bool>& answers) {
  answers.push_back(co_await wakeup.wait_for(hours{1}));
  answers.push_back(co_await wakeup.wait_for(hours{1}));
}

net::awaitable<void> throw_broken_invariant() {
  throw std::logic_error("broken invariant");
  co_return;
}

TEST(Runtime, StopEndsEveryWaitAtOnceAndAnswersFalse) {
  net::io_context io;
  Runtime runtime{io};
  std::vector<bool> answers;
  for (int i = 0; i < 3; ++i) runtime.spawn(sleep_and_note(runtime, hours{1}, answers));
  net::steady_timer parked{io, net::steady_timer::time_point::max()};
  runtime.spawn(wait_and_note(runtime, parked, answers));
  net::post(io, [&] { runtime.stop(); });
  const auto started = Clock::now();
  io.run();
  EXPECT_LT(Clock::now() - started, std::chrono::seconds{5});
  EXPECT_EQ(answers, (std::vector<bool>{false, false, false, false}));
  EXPECT_EQ(runtime.tasks(), 0u);
}

TEST(Runtime, AWaitAfterStopDoesNotWait) {
  net::io_context io;
  Runtime runtime{io};
  runtime.stop();
  std::vector<bool> answers;
  runtime.spawn(sleep_and_note(runtime, hours{1}, answers));
  io.run();
  EXPECT_EQ(answers, std::vector<bool>{false});
}

TEST(Runtime, ASleepThatIsNotStoppedAnswersTrue) {
  net::io_context io;
  Runtime runtime{io};
  std::vector<bool> answers;
  runtime.spawn(sleep_and_note(runtime, milliseconds{1}, answers));
  io.run();
  EXPECT_EQ(answers, std::vector<bool>{true});
}

TEST(Runtime, DrainedCompletesWhenTheLastTaskEnds) {
  net::io_context io;
  Runtime runtime{io};
  std::vector<std::string> order;
  for (const int ms : {5, 20}) runtime.spawn(sleep_then_log(runtime, ms, order));
  net::co_spawn(io, log_when_drained(runtime, order), net::detached);
  io.run();
  EXPECT_EQ(order, (std::vector<std::string>{"task 5", "task 20", "drained"}));
}

TEST(Runtime, AnExceptionEscapingATaskIsNotSwallowed) {
  net::io_context io;
  Runtime runtime{io};
  runtime.spawn(throw_broken_invariant());
  EXPECT_THROW(io.run(), std::logic_error);
}

TEST(Wakeup, ANotifySentBeforeTheWaitIsKept) {
  net::io_context io;
  Runtime runtime{io};
  Wakeup wakeup{runtime};
  wakeup.notify();
  std::vector<bool> answers;
  const auto started = Clock::now();
  runtime.spawn(wake_twice(wakeup, answers));
  net::post(io, [&] { net::post(io, [&] { runtime.stop(); }); });
  io.run();
  EXPECT_EQ(answers, (std::vector<bool>{true, false}));
  EXPECT_LT(Clock::now() - started, std::chrono::seconds{5});
}

TEST(Wakeup, ANotifyEndsAWaitEarlyAndStopEndsItWithFalse) {
  net::io_context io;
  Runtime runtime{io};
  Wakeup wakeup{runtime};
  std::vector<bool> answers;
  runtime.spawn(wake_twice(wakeup, answers));
  net::post(io, [&] {
    wakeup.notify();
    net::post(io, [&] { net::post(io, [&] { runtime.stop(); }); });
  });
  io.run();
  EXPECT_EQ(answers, (std::vector<bool>{true, false}));
}

}  // namespace
}  // namespace devin_orch::app
