// LeaseMachine: acquiring, renewing and losing the ownership lease of a queue.
#include "devin_orch/core/lease.hpp"

#include <algorithm>
#include <ostream>

namespace devin_orch::core {
namespace {

std::string_view step_name(LeaseAction::Step step) {
  switch (step) {
    case LeaseAction::Step::acquire: return "acquire";
    case LeaseAction::Step::renew: return "renew";
    case LeaseAction::Step::sleep: return "sleep";
    case LeaseAction::Step::abandon: return "abandon";
  }
  return "?";
}

std::string_view change_name(LeaseAction::Change change) {
  switch (change) {
    case LeaseAction::Change::none: return "none";
    case LeaseAction::Change::took_over: return "took_over";
    case LeaseAction::Change::paused: return "paused";
    case LeaseAction::Change::resumed: return "resumed";
  }
  return "?";
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const LeaseAction& action) {
  out << step_name(action.step) << "{change=" << change_name(action.change)
      << ", epoch=" << action.epoch
      << ", wake_at=" << action.wake_at.time_since_epoch().count() << "ms";
  if (!action.reason.empty()) out << ", reason=\"" << action.reason << '"';
  return out << '}';
}

LeaseAction LeaseMachine::resume(const LeaseInput& input) {
  return std::visit(
      [this](const auto& in) -> LeaseAction {
        using T = std::decay_t<decltype(in)>;
        if constexpr (std::is_same_v<T, LeaseStart>) {
          return LeaseAction{.step = LeaseAction::Step::acquire, .epoch = epoch_};
        } else if constexpr (std::is_same_v<T, LeaseGranted>) {
          return on_granted(in);
        } else if constexpr (std::is_same_v<T, LeaseHeldElsewhere>) {
          return on_held_elsewhere(in);
        } else if constexpr (std::is_same_v<T, LeaseSuperseded>) {
          if (role_ == LeaseRole::standby) return sleep_until(in.now + policy_.standby_poll);
          return abandon("the queue's lease now belongs to " + in.holder.owner + " (epoch " +
                         std::to_string(in.holder.epoch) + ")");
        } else if constexpr (std::is_same_v<T, LeaseStoreFailed>) {
          return on_store_failed(in);
        } else if constexpr (std::is_same_v<T, LeaseDoubted>) {
          if (role_ == LeaseRole::standby) return sleep_until(in.now);
          return LeaseAction{.step = LeaseAction::Step::renew, .epoch = epoch_};
        } else {
          return on_timer(in.now);
        }
      },
      input);
}

LeaseAction LeaseMachine::on_granted(const LeaseGranted& granted) {
  // Validity counts from when the request left, not from the answer: the store may have
  // granted it at any moment in between.
  const MonotonicTime proven_until = granted.sent_at + policy_.ttl - policy_.guard;
  if (role_ == LeaseRole::standby) {
    role_ = LeaseRole::owner;
    epoch_ = granted.epoch;
    valid_until_ = proven_until;
    renew_at_ = granted.sent_at + policy_.renew_every;
    if (granted.now >= valid_until_) {
      // Granted, but the answer took so long that it proves nothing any more.
      role_ = LeaseRole::owner_unproven;
      return LeaseAction{.step = LeaseAction::Step::renew,
                         .change = LeaseAction::Change::took_over,
                         .epoch = epoch_};
    }
    return sleep_until(renew_at_, LeaseAction::Change::took_over);
  }
  if (granted.epoch != epoch_) {
    return abandon("the lease came back with epoch " + std::to_string(granted.epoch) +
                   " instead of " + std::to_string(epoch_) +
                   ": another process held the queue meanwhile");
  }
  valid_until_ = std::max(valid_until_, proven_until);
  renew_at_ = granted.sent_at + policy_.renew_every;
  if (granted.now >= valid_until_) {
    return LeaseAction{.step = LeaseAction::Step::renew, .epoch = epoch_};
  }
  if (role_ == LeaseRole::owner_unproven) {
    role_ = LeaseRole::owner;
    return sleep_until(renew_at_, LeaseAction::Change::resumed);
  }
  return sleep_until(renew_at_);
}

LeaseAction LeaseMachine::on_held_elsewhere(const LeaseHeldElsewhere& held) {
  if (role_ == LeaseRole::standby) return sleep_until(held.now + policy_.standby_poll);
  return abandon("the queue's lease is held by " + held.holder.owner + " (epoch " +
                 std::to_string(held.holder.epoch) + ")");
}

LeaseAction LeaseMachine::on_store_failed(const LeaseStoreFailed& failed) {
  if (role_ == LeaseRole::standby) return sleep_until(failed.now + policy_.retry);
  renew_at_ = failed.now + policy_.retry;
  if (role_ == LeaseRole::owner && failed.now >= valid_until_) {
    role_ = LeaseRole::owner_unproven;
    LeaseAction action = sleep_until(renew_at_, LeaseAction::Change::paused);
    action.reason = failed.reason;
    return action;
  }
  // Wake at the latest when the proof runs out, so the pause is reported on time.
  if (role_ == LeaseRole::owner) return sleep_until(std::min(renew_at_, valid_until_));
  return sleep_until(renew_at_);
}

LeaseAction LeaseMachine::on_timer(MonotonicTime now) {
  if (role_ == LeaseRole::standby) {
    return LeaseAction{.step = LeaseAction::Step::acquire, .epoch = epoch_};
  }
  LeaseAction action{.step = LeaseAction::Step::renew, .epoch = epoch_};
  if (role_ == LeaseRole::owner && now >= valid_until_) {
    role_ = LeaseRole::owner_unproven;
    action.change = LeaseAction::Change::paused;
    action.reason = "no renewal of the lease came through in time";
    return action;
  }
  if (role_ == LeaseRole::owner && now < renew_at_) return sleep_until(renew_at_);
  return action;
}

LeaseAction LeaseMachine::sleep_until(MonotonicTime at, LeaseAction::Change change) const {
  return LeaseAction{.step = LeaseAction::Step::sleep, .change = change, .wake_at = at,
                     .epoch = epoch_};
}

LeaseAction LeaseMachine::abandon(std::string reason) {
  role_ = LeaseRole::standby;
  const std::int64_t lost = epoch_;
  epoch_ = 0;
  valid_until_ = {};
  return LeaseAction{.step = LeaseAction::Step::abandon, .epoch = lost, .reason = std::move(reason)};
}

}  // namespace devin_orch::core
