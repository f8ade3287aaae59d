// QueueLease: the lease machine's actions mapped onto store calls and one timer.
#include "queue_lease.hpp"

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <random>

namespace devin_orch::app::detail {

QueueLease::QueueLease(boost::asio::io_context& io, store::QueueStore& store,
                       core::LeasePolicy policy, Callbacks callbacks)
    : store_{store},
      machine_{policy},
      callbacks_{std::move(callbacks)},
      owner_{make_owner_id()},
      timer_{io} {}

std::string QueueLease::make_owner_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device random;
  return fmt::format("{}:{}:{:08x}", host[0] != '\0' ? host : "unknown", ::getpid(),
                     static_cast<unsigned>(random()));
}

void QueueLease::start() { step(core::LeaseStart{core::monotonic_now()}); }

void QueueLease::stop_and_release() {
  stopped_ = true;
  timer_.cancel();
  if (machine_.role() == core::LeaseRole::standby) return;
  store_.set_fence(std::nullopt);
  if (auto released = store_.release_lease(kQueueLease, owner_, machine_.epoch(), core::wall_now());
      !released) {
    spdlog::warn("cannot release the queue's lease ({}); a standby takes over when it lapses",
                 released.error().message());
  } else {
    spdlog::info("released the queue's lease (epoch {})", machine_.epoch());
  }
}

std::string QueueLease::describe() const {
  switch (machine_.role()) {
    case core::LeaseRole::owner:
      return fmt::format("owner of the queue as {} (epoch {})", owner_, machine_.epoch());
    case core::LeaseRole::owner_unproven:
      return fmt::format("owner of the queue as {} (epoch {}), paused: the lease cannot be "
                         "renewed{}", owner_, machine_.epoch(),
                         last_failure_.empty() ? "" : " (" + last_failure_ + ")");
    case core::LeaseRole::standby:
      break;
  }
  if (!other_holder_) {
    return last_failure_.empty() ? "standby: asking for the queue's lease"
                                 : "standby: cannot read the queue's lease (" + last_failure_ + ")";
  }
  const std::int64_t left_ms = other_holder_->expires_at_ms - core::to_epoch_ms(core::wall_now());
  return fmt::format("standby: the queue is worked by {} (epoch {}); its lease lapses in {:.1f} s "
                     "unless renewed",
                     other_holder_->owner, other_holder_->epoch,
                     static_cast<double>(std::max<std::int64_t>(0, left_ms)) / 1000.0);
}

void QueueLease::step(const core::LeaseInput& input) {
  if (stopped_) return;
  const core::LeaseAction action = machine_.resume(input);
  using Change = core::LeaseAction::Change;
  switch (action.change) {
    case Change::took_over:
      other_holder_.reset();
      store_.set_fence(
          store::QueueStore::Fence{
              .name = std::string(kQueueLease), .owner = owner_, .epoch = action.epoch},
          // Inside the refused store call: look at the lease once that call is over.
          [this](const std::string&) {
            boost::asio::post(timer_.get_executor(), [this] {
              if (stopped_) return;
              timer_.cancel();
              step(core::LeaseDoubted{core::monotonic_now()});
            });
          });
      spdlog::info("took the queue's lease as {} (epoch {})", owner_, action.epoch);
      if (callbacks_.took_over) callbacks_.took_over(action.epoch);
      break;
    case Change::paused:
      spdlog::error("the queue's lease could not be renewed in time ({}); sending nothing until "
                    "it is", action.reason);
      if (callbacks_.paused) callbacks_.paused(action.reason);
      break;
    case Change::resumed:
      spdlog::info("the queue's lease is renewed again (epoch {}); carrying on", action.epoch);
      last_failure_.clear();
      if (callbacks_.resumed) callbacks_.resumed();
      break;
    case Change::none:
      break;
  }
  if (stopped_) return;
  switch (action.step) {
    case core::LeaseAction::Step::acquire:
    case core::LeaseAction::Step::renew:
      ask(action.step);
      return;
    case core::LeaseAction::Step::abandon:
      stopped_ = true;
      store_.set_fence(std::nullopt);
      if (callbacks_.abandoned) callbacks_.abandoned(action.reason);
      return;
    case core::LeaseAction::Step::sleep: {
      const auto delay = std::max(core::Duration{0}, action.wake_at - core::monotonic_now());
      timer_.expires_after(delay);
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) step(core::LeaseTimer{core::monotonic_now()});
      });
      return;
    }
  }
}

void QueueLease::ask(core::LeaseAction::Step what) {
  const auto sent_at = core::monotonic_now();
  const auto& policy = machine_.policy();
  const auto answer =
      what == core::LeaseAction::Step::acquire
          ? store_.acquire_lease(kQueueLease, owner_, policy.ttl, core::wall_now())
          : store_.renew_lease(kQueueLease, owner_, machine_.epoch(), policy.ttl,
                               core::wall_now());
  const auto now = core::monotonic_now();
  if (!answer) {
    // Once per cause, not at every retry: a full disk lasts.
    if (answer.error().message() != last_failure_) {
      last_failure_ = answer.error().message();
      spdlog::warn("cannot {} the queue's lease: {}; retrying",
                   what == core::LeaseAction::Step::acquire ? "ask for" : "renew", last_failure_);
    }
    step(core::LeaseStoreFailed{last_failure_, now});
    return;
  }
  if (answer->granted) {
    last_failure_.clear();
    step(core::LeaseGranted{answer->holder.epoch, sent_at, now});
    return;
  }
  if (what == core::LeaseAction::Step::renew) {
    step(core::LeaseSuperseded{answer->holder, now});
    return;
  }
  const bool changed = !other_holder_ || other_holder_->owner != answer->holder.owner ||
                       other_holder_->epoch != answer->holder.epoch;
  other_holder_ = answer->holder;
  last_failure_.clear();
  if (changed) {
    spdlog::info("standing by: {}", describe());
  }
  if (callbacks_.waiting) callbacks_.waiting(answer->holder);
  step(core::LeaseHeldElsewhere{answer->holder, now});
}

}  // namespace devin_orch::app::detail
