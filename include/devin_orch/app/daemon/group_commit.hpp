// Group commit on the event loop: writes asked for in the same turn of the loop (or, with a
// linger, within that long of the first) share one transaction, and each caller resumes with
// its own outcome.
#pragma once

#include "devin_orch/core/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

namespace devin_orch::app {

// `Error` is the error type of the store's answers (store::Error), so a failure reaches each
// caller with the database's own words.
template <class Write, class Error = boost::system::error_code>
class GroupCommit {
 public:
  using Outcome = boost::system::result<void, Error>;
  // Writes a batch in one transaction: one outcome per write, in order, or an error for all.
  using Outcomes = boost::system::result<std::vector<Outcome>, Error>;
  using Flush = std::function<Outcomes(std::span<const Write>)>;
  // How long a batch's first write may wait for others, asked when the batch opens. Zero: the
  // batch is written once the handlers already queued on the loop have run.
  using Linger = std::function<std::chrono::milliseconds()>;

  GroupCommit(boost::asio::io_context& io, Flush flush, Linger linger = {})
      : io_{io}, flush_{std::move(flush)}, linger_{std::move(linger)}, window_{io} {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Creation flows started together (a dispatch of many jobs) all join one batch. Without a
  // linger a lone write waits for nothing but the loop's current turn.
  boost::asio::awaitable<Outcome> commit(Write write) {
    boost::asio::steady_timer written{io_, boost::asio::steady_timer::time_point::max()};
    Pending pending{.write = std::move(write), .outcome = std::nullopt, .written = &written};
    queue_.push_back(&pending);
    if (!flush_posted_) {
      flush_posted_ = true;
      const auto linger = linger_ ? linger_() : std::chrono::milliseconds{0};
      if (linger.count() > 0) {
        window_.expires_after(linger);
        // Only the destructor cancels the window, and then nobody waits any more.
        window_.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) flush();
        });
      } else {
        boost::asio::post(io_, [this] { flush(); });
      }
    }
    while (!pending.outcome) {
      co_await written.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    co_return std::move(*pending.outcome);
  }

  std::size_t batches() const noexcept { return batches_; }

  // Writes the open batch now instead of at the end of its linger (shutting down).
  void flush_now() {
    if (queue_.empty()) return;
    window_.cancel();
    flush();
  }

 private:
  struct Pending {
    Write write;
    std::optional<Outcome> outcome;
    boost::asio::steady_timer* written;
  };

  void flush() {
    flush_posted_ = false;
    if (queue_.empty()) return;  // flush_now() took the batch already
    const std::vector<Pending*> batch = std::exchange(queue_, {});
    std::vector<Write> writes;
    writes.reserve(batch.size());
    for (Pending* pending : batch) writes.push_back(std::move(pending->write));
    ++batches_;
    const Outcomes outcomes = flush_(writes);
    if (outcomes && outcomes->size() != batch.size()) {
      throw std::logic_error("group commit: one outcome per write expected");
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->outcome = outcomes ? (*outcomes)[i] : Outcome{outcomes.error()};
      batch[i]->written->cancel();
    }
  }

  boost::asio::io_context& io_;
  Flush flush_;
  Linger linger_;
  boost::asio::steady_timer window_;
  std::vector<Pending*> queue_;
  bool flush_posted_ = false;
  std::size_t batches_ = 0;
};

}  // namespace devin_orch::app
