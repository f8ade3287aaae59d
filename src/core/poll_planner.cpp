// Poll scheduling for many sessions: a due-time index (multimap) plus per-session state, so
// taking a batch costs O(batch log n) however many sessions are tracked.
#include "devin_orch/core/poll_planner.hpp"

#include <algorithm>
#include <stdexcept>

namespace devin_orch::core {
namespace {

// 1.5^64 is far beyond any sane cadence cap; the limit only keeps the step counter bounded.
constexpr int kMaxStep = 64;

}  // namespace

PollPlanner::PollPlanner(PollPlannerPolicy policy, Random& random)
    : policy_{policy}, random_{random} {
  if (policy_.max_batch == 0) throw std::invalid_argument("poll planner: max_batch must be > 0");
}

void PollPlanner::schedule(const std::string& session_id, Entry& entry, TimePoint due) {
  if (entry.slot) due_.erase(*entry.slot);
  // Equal due times keep insertion order (multimap inserts at the upper bound): FIFO fairness.
  entry.slot = due_.emplace(due, session_id);
}

void PollPlanner::track(const std::string& session_id, TimePoint now,
                        std::optional<TimePoint> first_due) {
  Entry& entry = entries_[session_id];
  entry.step = 0;
  schedule(session_id, entry, first_due.value_or(now + cadence_delay(policy_.cadence, 0, random_)));
}

void PollPlanner::untrack(const std::string& session_id) {
  const auto it = entries_.find(session_id);
  if (it == entries_.end()) return;
  if (it->second.slot) due_.erase(*it->second.slot);
  entries_.erase(it);
}

bool PollPlanner::tracking(const std::string& session_id) const {
  return entries_.contains(session_id);
}

void PollPlanner::observed(const std::string& session_id, bool changed, TimePoint now) {
  // A session untracked while its poll was in flight (it ended, or was cancelled) stays gone.
  const auto it = entries_.find(session_id);
  if (it == entries_.end()) return;
  Entry& entry = it->second;
  entry.step = changed ? 0 : std::min(entry.step + 1, kMaxStep);
  schedule(session_id, entry, now + cadence_delay(policy_.cadence, entry.step, random_));
}

void PollPlanner::retry_later(const std::string& session_id, Duration delay, TimePoint now) {
  const auto it = entries_.find(session_id);
  if (it == entries_.end()) return;
  schedule(session_id, it->second, now + std::max(delay, Duration{0}));
}

std::optional<TimePoint> PollPlanner::next_due() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

std::vector<std::string> PollPlanner::take_due(TimePoint now) {
  std::vector<std::string> batch;
  const TimePoint horizon = now + policy_.batch_window;
  while (!due_.empty() && batch.size() < policy_.max_batch && due_.begin()->first <= horizon) {
    auto first = due_.begin();
    entries_.find(first->second)->second.slot.reset();
    batch.push_back(std::move(first->second));
    due_.erase(first);
  }
  return batch;
}

}  // namespace devin_orch::core
