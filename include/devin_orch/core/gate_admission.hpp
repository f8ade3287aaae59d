// Admission order at one organisation's rate gate, sans I/O: who may send next, who waits for
// what, and whom to wake when something changes. The daemon only parks and wakes coroutines.
#pragma once

#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/rate_gate.hpp"
#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

namespace devin_orch::core {

// What a waiting request does until it is asked again.
enum class AdmissionStep {
  go,          // send now: a token and an in-flight slot are taken
  wait_turn,   // another request is ahead (of its kind, or the other kind's older head for a
               // token): wait to be woken
  wait_slot,   // head of its queue, every in-flight slot taken: wait to be woken
  wait_lease,  // head of its queue, the queue's lease cannot be proven: wait to be woken
  wait_until,  // head of its queue, no token yet: sleep until `until` (or an early wake-up)
};

struct Admission {
  AdmissionStep step = AdmissionStep::go;
  TimePoint until{};  // for wait_until
};

// Requests of each kind (creates, others) queue in arrival order. Only the head of a queue waits
// for a token or a slot; the others wait their turn, so a token wakes one waiter rather than
// all. The two kinds share the tokens: when both heads wait for one, it goes to the one that has
// been head longer, so neither kind starves the other (how long a poll gives way to waiting
// creates before it asks at all is decided in poll_timing.hpp).
class GateAdmission {
 public:
  using Ticket = std::uint64_t;

  GateAdmission(RateGatePolicy policy, int max_in_flight, TimePoint now);

  // A request asks to go. `may_send` is false while the queue's lease cannot be proven. When
  // the result is not `go`, the request holds `ticket` and asks again with next() after each
  // wake-up (or when a wait_until passes).
  struct Arrival {
    Ticket ticket = 0;
    Admission admission;
  };
  Arrival arrive(RequestKind kind, TimePoint now, bool may_send);
  Admission next(Ticket ticket, TimePoint now, bool may_send);

  // A waiting request gives up (shutdown): its place goes to the next in line.
  void leave(Ticket ticket);

  // An admitted request ended: its slot frees; the gate learns from the answer (a 429 pauses
  // or holds; any other HTTP answer counts as success, and one that asks for a wait, a 503
  // with Retry-After say, also pauses every request until it passes; no answer teaches
  // nothing).
  void finished(const CallOutcome& outcome, TimePoint now, Random& random);

  // Every request waits until `until` (a wait the server announced before a restart, kept in
  // the store); nothing if it has passed. Never shortens a longer pause.
  void hold(TimePoint now, TimePoint until);

  // One of our sessions ended: creates held by a concurrency cap may try again now.
  void session_ended(TimePoint now);

  // The lease is proven again: heads waiting for it may go on.
  void lease_resumed();

  // The tickets to wake since the last call; the I/O layer wakes each one's waiter.
  std::vector<Ticket> take_wakeups();

  int in_flight() const noexcept { return in_flight_; }
  int max_in_flight() const noexcept { return max_in_flight_; }
  std::size_t waiting(RequestKind kind) const noexcept { return queue(kind).size(); }
  const RateGate& gate() const noexcept { return gate_; }

 private:
  struct Waiter {
    RequestKind kind;
    AdmissionStep step;
    std::uint64_t head_order = 0;  // when it became the head of its queue; 0: not yet
  };

  std::deque<Ticket>& queue(RequestKind kind) noexcept {
    return kind == RequestKind::create ? creates_ : others_;
  }
  const std::deque<Ticket>& queue(RequestKind kind) const noexcept {
    return kind == RequestKind::create ? creates_ : others_;
  }
  Admission decide(Ticket ticket, Waiter& waiter, TimePoint now, bool may_send);
  void remove(Ticket ticket, RequestKind kind);
  void wake_heads_waiting_for(AdmissionStep step);
  bool give_way_to_older_head(RequestKind kind, std::uint64_t head_order, TimePoint now);
  void became_head(Ticket ticket);

  RateGate gate_;
  int max_in_flight_;
  int in_flight_ = 0;
  Ticket next_ticket_ = 1;
  std::uint64_t next_head_order_ = 1;
  std::deque<Ticket> creates_;
  std::deque<Ticket> others_;
  std::unordered_map<Ticket, Waiter> waiters_;
  std::vector<Ticket> wakeups_;
};

}  // namespace devin_orch::core
