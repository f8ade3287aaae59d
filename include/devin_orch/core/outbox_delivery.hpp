// When the outbox delivers what: the retry schedule of one delivery (capped, jittered backoff
// until a maximum age, then dead-lettered) and OutboxPlan, which picks the deliveries to send
// now: in event order per job and receiver, within each receiver's and the overall concurrency.
// Sans-I/O: the clock and the random source are passed in.
#pragma once

#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace devin_orch::core {

struct DeliveryPolicy {
  Duration initial{1'000};        // ceiling of the first retry's delay
  Duration max{300'000};          // no retry waits longer than this
  Duration max_age{86'400'000};   // past this age (from the event) a delivery is dead-lettered
};

// What follows a failed attempt: another at `retry_at`, or the dead letter.
struct DeliveryRetry {
  bool dead = false;
  TimePoint retry_at{};
};

// After `failures` failed attempts (>= 1) of an event created at `created_at`: the next one
// after a delay uniform in [ceiling / 2, ceiling], ceiling = min(max, initial * 2^(failures-1)),
// so receivers are not hit in lockstep yet a retry never comes at once; never past the
// maximum age, where one last attempt is made; dead once that age has passed.
DeliveryRetry after_failure(const DeliveryPolicy& policy, int failures, TimePoint created_at,
                            TimePoint now, Random& random);

// The deliveries the daemon knows are pending and picks from. A delivery is one event to one
// receiver (`sink`); its `lane` is (sink, order key: the job's key, or the organisation for an
// org event). Only the head of a lane (its lowest event sequence) may be in flight, so a job's
// events reach each receiver in order, and a receiver that fails holds back only its own lanes.
class OutboxPlan {
 public:
  struct Item {
    std::int64_t seq = 0;   // the event's place in the outbox (commit order)
    std::string sink;       // the receiver
    std::string order_key;  // the job's key, or "org:<id>"
    TimePoint due{};        // not before this
    int failures = 0;       // attempts that failed so far
  };

  OutboxPlan(std::size_t max_in_flight_per_sink, std::size_t max_in_flight);

  // Adds a pending delivery; false (and nothing changes) when (seq, sink) is known already.
  bool add(Item item);
  // Heads that are due at `now`, earliest first, within the concurrency limits; they are in
  // flight until delivered(), failed() or dropped().
  std::vector<Item> take_ready(TimePoint now);
  // The receiver took it: the lane's next event becomes its head.
  void delivered(std::int64_t seq, const std::string& sink);
  // It failed and is tried again at `retry_at`; the lane waits for it.
  void failed(std::int64_t seq, const std::string& sink, TimePoint retry_at);
  // Dead-lettered, or no longer pending for another reason: removed, the lane moves on.
  void dropped(std::int64_t seq, const std::string& sink) { delivered(seq, sink); }
  // Forgets every delivery not in flight (they are read from the store again later).
  void forget_waiting();

  // When take_ready may next return something, if anything waits; nullopt when nothing is
  // pending outside flight. A time in the past: now.
  std::optional<TimePoint> next_due() const;
  std::size_t size() const noexcept { return size_; }
  std::size_t in_flight() const noexcept { return in_flight_; }
  std::size_t in_flight(const std::string& sink) const;

 private:
  struct Entry {
    Item item;
    bool in_flight = false;
  };
  using Lane = std::map<std::int64_t, Entry>;                    // by seq
  using LaneKey = std::pair<std::string, std::string>;          // (sink, order key)
  Entry* find(std::int64_t seq, const std::string& sink, LaneKey* key_out);

  std::size_t max_per_sink_;
  std::size_t max_total_;
  std::map<LaneKey, Lane> lanes_;
  std::map<std::pair<std::int64_t, std::string>, std::string> order_key_of_;  // (seq, sink)
  std::map<std::string, std::size_t> sink_in_flight_;
  std::size_t size_ = 0;
  std::size_t in_flight_ = 0;
};

}  // namespace devin_orch::core
