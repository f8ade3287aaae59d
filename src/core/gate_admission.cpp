// Admission order at one organisation's rate gate: arrival order per kind, heads only.
#include "devin_orch/core/gate_admission.hpp"

#include <algorithm>
#include <stdexcept>

namespace devin_orch::core {

GateAdmission::GateAdmission(RateGatePolicy policy, int max_in_flight, TimePoint now)
    : gate_{policy, now}, max_in_flight_{max_in_flight} {
  if (max_in_flight_ < 1) throw std::invalid_argument("gate admission: max_in_flight must be >= 1");
}

GateAdmission::Arrival GateAdmission::arrive(RequestKind kind, TimePoint now, bool may_send) {
  const Ticket ticket = next_ticket_++;
  auto& line = queue(kind);
  line.push_back(ticket);
  auto& waiter = waiters_.emplace(ticket, Waiter{kind, AdmissionStep::wait_turn}).first->second;
  if (line.size() == 1) became_head(ticket);
  return Arrival{ticket, decide(ticket, waiter, now, may_send)};
}

Admission GateAdmission::next(Ticket ticket, TimePoint now, bool may_send) {
  const auto it = waiters_.find(ticket);
  if (it == waiters_.end()) throw std::logic_error("gate admission: unknown ticket");
  return decide(ticket, it->second, now, may_send);
}

Admission GateAdmission::decide(Ticket ticket, Waiter& waiter, TimePoint now, bool may_send) {
  auto& line = queue(waiter.kind);
  Admission admission;
  if (line.front() != ticket) {
    admission.step = AdmissionStep::wait_turn;
  } else if (!may_send) {
    admission.step = AdmissionStep::wait_lease;
  } else if (in_flight_ >= max_in_flight_) {
    admission.step = AdmissionStep::wait_slot;
  } else if (give_way_to_older_head(waiter.kind, waiter.head_order, now)) {
    admission.step = AdmissionStep::wait_turn;  // woken when that head goes
  } else if (gate_.try_acquire(waiter.kind, now)) {
    ++in_flight_;
    remove(ticket, waiter.kind);
    return Admission{AdmissionStep::go, {}};
  } else {
    admission.step = AdmissionStep::wait_until;
    admission.until = std::max(now, gate_.batch_ready_at(waiter.kind, line.size(), now));
  }
  waiter.step = admission.step;
  return admission;
}

// The other kind's head became head earlier, waits for a token, and one is there for it: it
// goes first (and is woken to take it).
bool GateAdmission::give_way_to_older_head(RequestKind kind, std::uint64_t head_order,
                                           TimePoint now) {
  const RequestKind other = kind == RequestKind::create ? RequestKind::other : RequestKind::create;
  const auto& line = queue(other);
  if (line.empty()) return false;
  const Waiter& head = waiters_.at(line.front());
  if (head.step != AdmissionStep::wait_until || head.head_order >= head_order) return false;
  if (gate_.ready_at(other, now) > now) return false;
  wakeups_.push_back(line.front());
  return true;
}

void GateAdmission::became_head(Ticket ticket) { waiters_.at(ticket).head_order = next_head_order_++; }

void GateAdmission::leave(Ticket ticket) {
  const auto it = waiters_.find(ticket);
  if (it == waiters_.end()) return;
  remove(ticket, it->second.kind);
}

// The next in line asks at once: it may go now that the head left. So does a head of the other
// kind that gave way to the one leaving.
void GateAdmission::remove(Ticket ticket, RequestKind kind) {
  auto& line = queue(kind);
  const bool was_head = !line.empty() && line.front() == ticket;
  line.erase(std::find(line.begin(), line.end(), ticket));
  waiters_.erase(ticket);
  if (!was_head) return;
  if (!line.empty()) {
    became_head(line.front());
    wakeups_.push_back(line.front());
  }
  const auto& other = queue(kind == RequestKind::create ? RequestKind::other : RequestKind::create);
  if (!other.empty() && waiters_.at(other.front()).step == AdmissionStep::wait_turn) {
    wakeups_.push_back(other.front());
  }
}

void GateAdmission::finished(const CallOutcome& outcome, TimePoint now, Random& random) {
  if (in_flight_ <= 0) throw std::logic_error("gate admission: finished without an admission");
  --in_flight_;
  if (outcome.cls == CallClass::rate_limited) {
    gate_.on_rate_limited(now, outcome.retry_after, outcome.concurrency_cap, random);
  } else if (outcome.http_status != 0) {
    gate_.on_success(now);
    // A 503 (or any answer) that names a wait is honoured like a 429's: the reference says to
    // honour Retry-After whenever present. The rate is left alone (see on_server_wait).
    if (const auto wait = outcome.requested_wait()) gate_.on_server_wait(now, *wait);
  }
  wake_heads_waiting_for(AdmissionStep::wait_slot);
}

void GateAdmission::hold(TimePoint now, TimePoint until) {
  if (until <= now) return;
  gate_.on_server_wait(now, until - now);
  // Heads already asleep until an earlier instant wake to learn the new one; nothing else
  // changes for the others.
  wake_heads_waiting_for(AdmissionStep::wait_until);
}

void GateAdmission::session_ended(TimePoint now) {
  if (!gate_.creates_held(now)) return;
  gate_.release_hold();
  wake_heads_waiting_for(AdmissionStep::wait_until);
}

void GateAdmission::lease_resumed() { wake_heads_waiting_for(AdmissionStep::wait_lease); }

void GateAdmission::wake_heads_waiting_for(AdmissionStep step) {
  for (const auto* line : {&creates_, &others_}) {
    if (line->empty()) continue;
    const auto it = waiters_.find(line->front());
    if (it != waiters_.end() && it->second.step == step) wakeups_.push_back(line->front());
  }
}

std::vector<GateAdmission::Ticket> GateAdmission::take_wakeups() {
  std::vector<Ticket> woken;
  woken.swap(wakeups_);
  return woken;
}

}  // namespace devin_orch::core
