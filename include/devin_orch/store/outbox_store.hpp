// OutboxStore: the notifications waiting to leave. The store's transitions append an event row
// in the same transaction as the state change that causes it (a job's end, a session waiting
// for its user, a duplicate terminated, an organisation paused or resumed); the daemon routes
// each event once to the receivers that want it (one delivery each) and records every attempt;
// the operator lists and retries dead letters. Pure virtual, backend-neutral.
#pragma once

#include "devin_orch/core/notify_target.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/store/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace devin_orch::store {

// An event as the outbox keeps it. `body` is the JSON sent to webhooks, byte for byte.
struct OutboxEvent {
  std::int64_t seq = 0;  // commit order; never reused
  std::string id;        // "evt_<32 hex>", in the body too: receivers de-duplicate on it
  core::EventType type = core::EventType::job_finished;
  std::optional<std::string> job_key;  // job events
  std::string org_id;                  // the job's own org_id ("" = the default), or the org's
  std::int64_t created_at_ms = 0;
  std::vector<std::string> tags;                 // the job's tags, for routing
  std::vector<core::NotifyTarget> job_targets;   // the job's own `notify:`, for routing
  std::string body;
};

enum class DeliveryState { pending, delivered, dead };
std::string_view to_string(DeliveryState state) noexcept;

// One receiver chosen for an event. `sink` names the receiver ("webhook https://...",
// "slack https://..."): deliveries to one sink share its concurrency, and a job's events reach
// it in order.
struct DeliveryRoute {
  std::string sink;
  core::NotifyTarget target;
};

// One event to one receiver.
struct Delivery {
  std::int64_t seq = 0;
  std::string event_id;
  core::EventType type = core::EventType::job_finished;
  std::optional<std::string> job_key;
  std::string org_id;  // the event's (OutboxEvent::org_id)
  std::string sink;
  core::NotifyTarget target;
  std::string body;
  DeliveryState state = DeliveryState::pending;
  std::int64_t attempts = 0;
  std::int64_t event_created_at_ms = 0;
  std::int64_t next_attempt_at_ms = 0;
  // The maximum age counts from here: the event's time, or an operator's retry.
  std::int64_t age_from_ms = 0;
  std::optional<std::string> last_error;
  std::optional<std::int64_t> delivered_at_ms;
};

// The outcome of one attempt (record_attempt).
struct DeliveryAttempt {
  std::int64_t seq = 0;
  std::string sink;
  DeliveryState state = DeliveryState::pending;  // delivered, dead, or pending again
  std::int64_t attempts = 0;                     // including this one
  std::int64_t next_attempt_at_ms = 0;           // pending: when to try again
  std::optional<std::string> error;              // why it failed
};

// Which deliveries a listing selects; each field set narrows it.
struct DeliveryFilter {
  std::vector<DeliveryState> states;   // empty: all
  std::optional<std::string> event_id;
  std::optional<std::string> job_key;
  std::optional<std::size_t> limit;    // the first N, by event order
};

struct OutboxCounts {
  std::int64_t unrouted = 0;  // events no daemon has routed yet
  std::int64_t pending = 0;
  std::int64_t delivered = 0;
  std::int64_t dead = 0;
};

// Errors, for every call: a storage errc with the backend's words; lease_lost for a fenced
// write refused (route_event, record_attempt: only the queue's owner delivers, so that with
// several daemons one delivers each event); not_found where stated.
class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  // ---- the daemon ----
  // Events not routed yet, by seq, at most `limit`.
  virtual StoreResult<std::vector<OutboxEvent>> unrouted_events(std::size_t limit) = 0;
  // Records the event's deliveries (pending, due at `now`) and marks it routed, in one
  // transaction; no routes marks it routed with none. An event routed already: nothing done.
  // Fenced.
  virtual StoreResult<void> route_event(std::int64_t seq, std::span<const DeliveryRoute> routes,
                                        core::TimePoint now) = 0;
  // Pending deliveries by seq: for each sink, its first `per_sink_limit` (so every delivery of
  // a job that precedes a returned one is returned too, and a backed-up receiver does not hide
  // the others' deliveries).
  virtual StoreResult<std::vector<Delivery>> pending_deliveries(std::size_t per_sink_limit) = 0;
  // Stores an attempt's outcome, only on a delivery still pending (one an operator meanwhile
  // changed is left as it is). Fenced.
  virtual StoreResult<void> record_attempt(const DeliveryAttempt& attempt,
                                           core::TimePoint now) = 0;
  virtual StoreResult<OutboxCounts> outbox_counts() = 0;

  // ---- the operator ----
  virtual StoreResult<std::vector<Delivery>> list_deliveries(const DeliveryFilter& filter) = 0;
  // Dead deliveries back to pending, due now, their maximum age counted from `now`: those of
  // `event_id`, or every dead one when it is empty. Returns how many. Not fenced.
  virtual StoreResult<std::int64_t> retry_deliveries(std::optional<std::string> event_id,
                                                     core::TimePoint now) = 0;
  // Deletes events created before `cutoff` that have nothing left to deliver (routed, with no
  // pending delivery), and their deliveries. Returns how many events. Not fenced.
  virtual StoreResult<std::int64_t> prune_events(core::TimePoint cutoff) = 0;
};

}  // namespace devin_orch::store
