// The daemon's runtime: counted tasks and the shutdown signal that ends every wait.
#include "devin_orch/app/daemon/runtime.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>

namespace devin_orch::app {

namespace net = boost::asio;
namespace {
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
}  // namespace

Runtime::Runtime(net::io_context& io) : io_{io}, idle_{io} {
  idle_.expires_at(net::steady_timer::time_point::max());
}

void Runtime::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto* timer : waiting_) timer->cancel();
}

void Runtime::spawn(net::awaitable<void> task) {
  ++tasks_;
  net::co_spawn(io_, std::move(task), [this](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
    if (--tasks_ == 0) idle_.cancel();
  });
}

net::awaitable<bool> Runtime::wait(net::steady_timer& timer) {
  if (stopping_) co_return false;
  waiting_.insert(&timer);
  co_await timer.async_wait(kTuple);
  waiting_.erase(&timer);
  co_return !stopping_;
}

net::awaitable<bool> Runtime::sleep_for(core::Duration timeout) {
  net::steady_timer timer{io_};
  timer.expires_after(timeout);
  co_return co_await wait(timer);
}

net::awaitable<void> Runtime::drained() {
  while (tasks_ > 0) {
    idle_.expires_at(net::steady_timer::time_point::max());
    co_await idle_.async_wait(kTuple);
  }
}

Wakeup::Wakeup(Runtime& runtime) : runtime_{runtime}, timer_{runtime.io()} {}

net::awaitable<bool> Wakeup::wait_for(core::Duration timeout) {
  if (pending_) {
    pending_ = false;
    co_return !runtime_.stopping();
  }
  timer_.expires_after(timeout);
  const bool running = co_await runtime_.wait(timer_);
  pending_ = false;
  co_return running;
}

void Wakeup::notify() {
  pending_ = true;
  timer_.cancel();
}

}  // namespace devin_orch::app
