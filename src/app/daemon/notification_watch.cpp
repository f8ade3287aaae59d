// The LISTEN socket's wait on the event loop (notification_watch.hpp).
#include "notification_watch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <unistd.h>

#include <optional>

namespace devin_orch::app::detail {

namespace net = boost::asio;

struct NotificationWatch::State {
  explicit State(net::io_context& context, std::function<void()> notice)
      : io{context}, on_notice{std::move(notice)} {}
  net::io_context& io;
  std::function<void()> on_notice;
  // A duplicate of the store's descriptor, registered afresh for each wait: a new registration
  // reports a descriptor that is readable already, so bytes that arrived between two waits
  // are never missed. Closing it leaves the store's own descriptor open.
  std::optional<net::posix::stream_descriptor> descriptor;
  bool stopped = false;
};

NotificationWatch::NotificationWatch(net::io_context& io, store::ChangeFeed& feed,
                                     std::function<void()> on_notice)
    : state_{std::make_shared<State>(io, std::move(on_notice))}, feed_{feed} {}

NotificationWatch::~NotificationWatch() { stop(); }

void NotificationWatch::arm() {
  if (state_->stopped || state_->descriptor) return;  // stopped, or a wait is pending
  const int fd = feed_.notification_descriptor();
  if (fd < 0) return;
  const int copy = ::dup(fd);
  if (copy < 0) return;  // out of descriptors: the once-a-second look still finds everything
  state_->descriptor.emplace(state_->io, copy);
  state_->descriptor->async_wait(
      net::posix::stream_descriptor::wait_read,
      [state = state_](const boost::system::error_code& error) {
        state->descriptor.reset();
        if (!error && !state->stopped) state->on_notice();
      });
}

void NotificationWatch::stop() {
  state_->stopped = true;
  if (state_->descriptor) state_->descriptor->cancel();
}

}  // namespace devin_orch::app::detail
