// The ownership lease of a queue, as a sans-I/O state machine: who may work the queue, for how
// long, and what a process does when it cannot prove that it still may.
//
// One lease row per queue (or per organisation, later) holds an owner, an epoch and an expiry.
// Every write made on the queue's behalf is fenced by the epoch in the store, so a process that
// lost the lease cannot write; this machine decides when to ask for the lease, when to renew it,
// and until when the holder may send requests at all. Its clock is monotonic: the store judges
// expiry on its own clock, the holder judges its own validity from when it asked.
#pragma once

#include "devin_orch/core/time.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <variant>

namespace devin_orch::core {

// Time that only moves forward, for a process's own deadlines (a wall-clock jump never shortens
// or extends a lease its holder believes it has).
using MonotonicTime = std::chrono::time_point<std::chrono::steady_clock, Duration>;

inline MonotonicTime monotonic_now() noexcept {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

// The lease row every daemon on one database competes for: the whole queue.
inline constexpr std::string_view kQueueLeaseName = "queue";

struct LeasePolicy {
  Duration ttl{15'000};          // a granted or renewed lease lapses this long after the grant
  Duration renew_every{5'000};   // the holder renews this often (a third of the lapse)
  Duration standby_poll{1'000};  // a standby asks this often whether the lease is free
  Duration retry{500};           // after a store call failed, before asking again
  // The holder stops sending requests this long before the lease could lapse in the store, so
  // that what it sent is answered (or cut short) before a successor starts.
  Duration guard{3'000};
};

// Who holds a lease, as the store reports it.
struct LeaseHolder {
  std::string owner;          // e.g. "host:pid:nonce"
  std::int64_t epoch = 0;     // bumped at every change of owner
  std::int64_t expires_at_ms = 0;  // wall clock of the store

  bool operator==(const LeaseHolder&) const = default;
};

// Inputs.
struct LeaseStart { MonotonicTime now; };
// The store granted or renewed the lease with `epoch`; the request left at `sent_at`.
struct LeaseGranted { std::int64_t epoch; MonotonicTime sent_at; MonotonicTime now; };
// Another process holds the lease (an acquire that found it taken and unexpired).
struct LeaseHeldElsewhere { LeaseHolder holder; MonotonicTime now; };
// A renewal found the row with another owner or epoch: the lease is gone for good.
struct LeaseSuperseded { LeaseHolder holder; MonotonicTime now; };
// The store could not answer (busy, disk full, I/O error).
struct LeaseStoreFailed { std::string reason; MonotonicTime now; };
struct LeaseTimer { MonotonicTime now; };
// The store refused a fenced write: the lease may have moved. Ask now rather than at the next
// renewal, so that a stale holder stops within one round trip.
struct LeaseDoubted { MonotonicTime now; };

using LeaseInput = std::variant<LeaseStart, LeaseGranted, LeaseHeldElsewhere, LeaseSuperseded,
                                LeaseStoreFailed, LeaseTimer, LeaseDoubted>;

enum class LeaseRole {
  standby,         // someone else holds the lease (or nobody could be asked yet)
  owner,           // holds the lease and can prove it until valid_until
  owner_unproven,  // held it, but no renewal came through in time: sends nothing, keeps asking
};

// What the caller does next: first the role change, if any, then the step.
struct LeaseAction {
  enum class Step {
    acquire,  // ask the store for the lease now (take it if free or lapsed)
    renew,    // extend the lease with `epoch` now
    sleep,    // resume(LeaseTimer) at `wake_at`
    abandon,  // another process took the queue: drop all in-memory work (restart as standby)
  };
  enum class Change {
    none,
    took_over,  // start working the queue as owner `epoch` (reconcile what was in flight)
    paused,     // stop sending requests: the lease can no longer be proven
    resumed,    // proven again with the same epoch: nobody wrote meanwhile, carry on
  };
  Step step = Step::sleep;
  Change change = Change::none;
  MonotonicTime wake_at{};
  std::int64_t epoch = 0;
  std::string reason;  // abandon, paused: why

  bool operator==(const LeaseAction&) const = default;
};

std::ostream& operator<<(std::ostream& out, const LeaseAction& action);

class LeaseMachine {
 public:
  explicit LeaseMachine(LeasePolicy policy) noexcept : policy_{policy} {}

  LeaseAction resume(const LeaseInput& input);

  LeaseRole role() const noexcept { return role_; }
  std::int64_t epoch() const noexcept { return epoch_; }
  // Whether the holder may send requests and start work at `now`: it owns the lease and a
  // grant proves it until later than `now`.
  bool may_act(MonotonicTime now) const noexcept {
    return role_ == LeaseRole::owner && now < valid_until_;
  }
  MonotonicTime valid_until() const noexcept { return valid_until_; }
  const LeasePolicy& policy() const noexcept { return policy_; }

 private:
  LeaseAction on_granted(const LeaseGranted& granted);
  LeaseAction on_held_elsewhere(const LeaseHeldElsewhere& held);
  LeaseAction on_store_failed(const LeaseStoreFailed& failed);
  LeaseAction on_timer(MonotonicTime now);
  LeaseAction sleep_until(MonotonicTime at, LeaseAction::Change change = {}) const;
  LeaseAction abandon(std::string reason);

  LeasePolicy policy_;
  LeaseRole role_ = LeaseRole::standby;
  std::int64_t epoch_ = 0;
  MonotonicTime valid_until_{};
  MonotonicTime renew_at_{};
};

}  // namespace devin_orch::core
