// The queue's ownership lease on the event loop: drives core::LeaseMachine against the store,
// fences the store's writes with the epoch it holds, and tells the daemon when to start, pause
// and resume working the queue, or to give it up. Private to the app module.
#pragma once

#include "devin_orch/core/lease.hpp"
#include "devin_orch/store/queue_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <optional>
#include <string>

namespace devin_orch::app::detail {

class QueueLease {
 public:
  static constexpr std::string_view kQueueLease = core::kQueueLeaseName;

  struct Callbacks {
    std::function<void(std::int64_t epoch)> took_over;     // start working the queue
    std::function<void(const std::string& why)> paused;    // send nothing until resumed
    std::function<void()> resumed;                         // the same epoch, proven again
    std::function<void(const std::string& why)> abandoned; // another process took the queue
    std::function<void(const core::LeaseHolder&)> waiting; // standby: the current holder
  };

  QueueLease(boost::asio::io_context& io, store::QueueStore& store, core::LeasePolicy policy,
             Callbacks callbacks);

  // A name unique to this process: host, pid and a random nonce (a pid can be reused).
  static std::string make_owner_id();

  void start();
  // Stops asking; if this process holds the lease, lets it lapse at once so that a standby
  // takes over without waiting for the expiry. Synchronous (the store is).
  void stop_and_release();

  bool may_act() const noexcept { return machine_.may_act(core::monotonic_now()); }
  const std::string& owner() const noexcept { return owner_; }
  std::int64_t epoch() const noexcept { return machine_.epoch(); }
  core::LeaseRole role() const noexcept { return machine_.role(); }
  // For /readyz, the log and status: who works the queue, seen from here.
  std::string describe() const;

 private:
  void step(const core::LeaseInput& input);
  void ask(core::LeaseAction::Step step);

  store::QueueStore& store_;
  core::LeaseMachine machine_;
  Callbacks callbacks_;
  std::string owner_;
  boost::asio::steady_timer timer_;
  std::optional<core::LeaseHolder> other_holder_;  // last holder seen while standing by
  std::string last_failure_;
  bool stopped_ = false;
};

}  // namespace devin_orch::app::detail
