// Waits on the store's notification descriptor (PostgreSQL's LISTEN socket) on the event loop,
// so the daemon looks at the queue as soon as a producer's commit is announced, with the
// once-a-second look as the fallback. Private to the app module.
#pragma once

#include "devin_orch/store/change_feed.hpp"

#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace devin_orch::app::detail {

class NotificationWatch {
 public:
  NotificationWatch(boost::asio::io_context& io, store::ChangeFeed& feed,
                    std::function<void()> on_notice);
  ~NotificationWatch();
  NotificationWatch(const NotificationWatch&) = delete;
  NotificationWatch& operator=(const NotificationWatch&) = delete;

  // Waits, once, for the descriptor to turn readable (at once if it already is), then calls
  // `on_notice`. The owner arms it again after each look (change_mark() reads what arrived;
  // waiting before that would wake at once for the same bytes). Does nothing while the store has
  // no descriptor (no connection): the next look reconnects, and arms it again.
  void arm();
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the pending wait's handler
  store::ChangeFeed& feed_;
};

}  // namespace devin_orch::app::detail
