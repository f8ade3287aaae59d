// The daemon's runtime: the event loop's tasks and the one shutdown signal every wait obeys.
// Parts spawn their work here and wait through it, so stopping needs no bookkeeping of theirs.
#pragma once

#include "devin_orch/core/time.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstddef>
#include <unordered_set>

namespace devin_orch::app {

class Runtime {
 public:
  explicit Runtime(boost::asio::io_context& io);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  boost::asio::io_context& io() noexcept { return io_; }
  bool stopping() const noexcept { return stopping_; }

  // The shutdown signal: every wait made through wait() or sleep_for() ends at once and
  // answers false, and every later one answers false without waiting. Idempotent.
  void stop();

  // Runs `task` on the loop; drained() completes once every task spawned here has ended. An
  // exception escaping a task is a broken invariant: it ends the loop with it.
  void spawn(boost::asio::awaitable<void> task);
  std::size_t tasks() const noexcept { return tasks_; }

  // Waits for `timer` (already set) to expire or be cancelled by whoever wakes it. False when
  // the runtime is stopping.
  boost::asio::awaitable<bool> wait(boost::asio::steady_timer& timer);
  boost::asio::awaitable<bool> sleep_for(core::Duration timeout);

  // Completes once no spawned task runs (the caller is not one of them).
  boost::asio::awaitable<void> drained();

 private:
  boost::asio::io_context& io_;
  bool stopping_ = false;
  std::size_t tasks_ = 0;
  std::unordered_set<boost::asio::steady_timer*> waiting_;
  boost::asio::steady_timer idle_;  // cancelled when the last task ends
};

// A one-shot wake-up for a single waiter that never loses a notify sent before the wait.
class Wakeup {
 public:
  explicit Wakeup(Runtime& runtime);

  // False when the runtime is stopping.
  boost::asio::awaitable<bool> wait_for(core::Duration timeout);
  void notify();

 private:
  Runtime& runtime_;
  boost::asio::steady_timer timer_;
  bool pending_ = false;
};

}  // namespace devin_orch::app
