// The delivery retry schedule and the outbox's choice of what to send next.
#include "devin_orch/core/outbox_delivery.hpp"

#include <algorithm>
#include <cmath>

namespace devin_orch::core {

DeliveryRetry after_failure(const DeliveryPolicy& policy, int failures, TimePoint created_at,
                            TimePoint now, Random& random) {
  const TimePoint last_chance = created_at + policy.max_age;
  if (now >= last_chance) return DeliveryRetry{.dead = true};
  const int doublings = std::clamp(failures - 1, 0, 40);
  const double ceiling = std::min(static_cast<double>(policy.max.count()),
                                  static_cast<double>(policy.initial.count()) *
                                      std::ldexp(1.0, doublings));
  const double delay = ceiling / 2.0 + random.uniform() * ceiling / 2.0;
  const TimePoint at = now + Duration{static_cast<Duration::rep>(std::llround(delay))};
  return DeliveryRetry{.dead = false, .retry_at = std::min(at, last_chance)};
}

OutboxPlan::OutboxPlan(std::size_t max_in_flight_per_sink, std::size_t max_in_flight)
    : max_per_sink_{std::max<std::size_t>(1, max_in_flight_per_sink)},
      max_total_{std::max<std::size_t>(1, max_in_flight)} {}

bool OutboxPlan::add(Item item) {
  const auto id = std::make_pair(item.seq, item.sink);
  if (order_key_of_.contains(id)) return false;
  order_key_of_.emplace(id, item.order_key);
  LaneKey key{item.sink, item.order_key};
  const std::int64_t seq = item.seq;
  lanes_[key].emplace(seq, Entry{.item = std::move(item)});
  ++size_;
  return true;
}

std::size_t OutboxPlan::in_flight(const std::string& sink) const {
  const auto found = sink_in_flight_.find(sink);
  return found == sink_in_flight_.end() ? 0 : found->second;
}

std::vector<OutboxPlan::Item> OutboxPlan::take_ready(TimePoint now) {
  // Due heads of lanes whose head is not in flight, earliest due first (then commit order).
  std::vector<Entry*> due;
  for (auto& [key, lane] : lanes_) {
    if (lane.empty()) continue;
    Entry& head = lane.begin()->second;
    if (head.in_flight || head.item.due > now) continue;
    due.push_back(&head);
  }
  std::sort(due.begin(), due.end(), [](const Entry* a, const Entry* b) {
    return a->item.due != b->item.due ? a->item.due < b->item.due : a->item.seq < b->item.seq;
  });
  std::vector<Item> taken;
  for (Entry* entry : due) {
    if (in_flight_ >= max_total_) break;
    std::size_t& sink_count = sink_in_flight_[entry->item.sink];
    if (sink_count >= max_per_sink_) continue;
    entry->in_flight = true;
    ++sink_count;
    ++in_flight_;
    taken.push_back(entry->item);
  }
  return taken;
}

OutboxPlan::Entry* OutboxPlan::find(std::int64_t seq, const std::string& sink, LaneKey* key_out) {
  const auto found = order_key_of_.find(std::make_pair(seq, sink));
  if (found == order_key_of_.end()) return nullptr;
  LaneKey key{sink, found->second};
  auto lane = lanes_.find(key);
  if (lane == lanes_.end()) return nullptr;
  auto entry = lane->second.find(seq);
  if (entry == lane->second.end()) return nullptr;
  if (key_out != nullptr) *key_out = std::move(key);
  return &entry->second;
}

void OutboxPlan::delivered(std::int64_t seq, const std::string& sink) {
  LaneKey key;
  Entry* entry = find(seq, sink, &key);
  if (entry == nullptr) return;
  if (entry->in_flight) {
    --sink_in_flight_[sink];
    --in_flight_;
  }
  auto lane = lanes_.find(key);
  lane->second.erase(seq);
  if (lane->second.empty()) lanes_.erase(lane);
  order_key_of_.erase(std::make_pair(seq, sink));
  --size_;
}

void OutboxPlan::failed(std::int64_t seq, const std::string& sink, TimePoint retry_at) {
  Entry* entry = find(seq, sink, nullptr);
  if (entry == nullptr) return;
  if (entry->in_flight) {
    entry->in_flight = false;
    --sink_in_flight_[sink];
    --in_flight_;
  }
  entry->item.due = retry_at;
  ++entry->item.failures;
}

void OutboxPlan::forget_waiting() {
  for (auto lane = lanes_.begin(); lane != lanes_.end();) {
    for (auto entry = lane->second.begin(); entry != lane->second.end();) {
      if (entry->second.in_flight) {
        ++entry;
        continue;
      }
      order_key_of_.erase(std::make_pair(entry->first, entry->second.item.sink));
      entry = lane->second.erase(entry);
      --size_;
    }
    lane = lane->second.empty() ? lanes_.erase(lane) : std::next(lane);
  }
}

std::optional<TimePoint> OutboxPlan::next_due() const {
  std::optional<TimePoint> earliest;
  for (const auto& [key, lane] : lanes_) {
    if (lane.empty()) continue;
    const Entry& head = lane.begin()->second;
    if (head.in_flight) continue;
    if (!earliest || head.item.due < *earliest) earliest = head.item.due;
  }
  return earliest;
}

}  // namespace devin_orch::core
