// Poll scheduling for many sessions: a due-time heap plus per-session state, so taking a batch
// costs O(batch log n) however many sessions are tracked, and steady-state polling allocates
// nothing but the returned ids.
#include "devin_orch/core/poll_planner.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace devin_orch::core {
namespace {

// 1.5^64 is far beyond any sane cadence cap; the limit only keeps the step counter bounded.
constexpr int kMaxStep = 64;

}  // namespace

PollPlanner::PollPlanner(PollPlannerPolicy policy, Random& random)
    : policy_{policy}, random_{random} {
  if (policy_.max_batch == 0) throw std::invalid_argument("poll planner: max_batch must be > 0");
}

namespace {

bool earlier(TimePoint a_at, std::uint64_t a_seq, TimePoint b_at, std::uint64_t b_seq) {
  return a_at < b_at || (a_at == b_at && a_seq < b_seq);
}

}  // namespace

void PollPlanner::place(std::size_t slot, Due due) {
  due.node->second.slot = slot;
  due_[slot] = due;
}

void PollPlanner::sift_up(std::size_t slot) {
  const Due moving = due_[slot];
  while (slot > 0) {
    const std::size_t parent = (slot - 1) / 2;
    if (!earlier(moving.at, moving.seq, due_[parent].at, due_[parent].seq)) break;
    place(slot, due_[parent]);
    slot = parent;
  }
  place(slot, moving);
}

void PollPlanner::sift_down(std::size_t slot) {
  const Due moving = due_[slot];
  const std::size_t size = due_.size();
  while (true) {
    std::size_t child = 2 * slot + 1;
    if (child >= size) break;
    if (child + 1 < size &&
        earlier(due_[child + 1].at, due_[child + 1].seq, due_[child].at, due_[child].seq)) {
      ++child;
    }
    if (!earlier(due_[child].at, due_[child].seq, moving.at, moving.seq)) break;
    place(slot, due_[child]);
    slot = child;
  }
  place(slot, moving);
}

void PollPlanner::unschedule(Entry& entry) {
  const std::size_t slot = entry.slot;
  if (slot == kTaken) return;
  entry.slot = kTaken;
  const Due last = due_.back();
  due_.pop_back();
  if (slot == due_.size()) return;  // it was the last one
  place(slot, last);
  // The element moved into the hole may belong above or below it.
  sift_up(slot);
  sift_down(last.node->second.slot);
}

void PollPlanner::schedule(Node& node, TimePoint due) {
  Entry& entry = node.second;
  // A fresh sequence number on every (re)schedule: among equal due times the one scheduled
  // first is taken first, as with the multimap this heap replaced.
  const Due item{.at = due, .seq = next_seq_++, .node = &node};
  if (entry.slot == kTaken) {
    due_.push_back(item);
    entry.slot = due_.size() - 1;
    sift_up(entry.slot);
    return;
  }
  const std::size_t slot = entry.slot;
  const bool sooner = earlier(item.at, item.seq, due_[slot].at, due_[slot].seq);
  due_[slot] = item;
  if (sooner) {
    sift_up(slot);
  } else {
    sift_down(slot);
  }
}

void PollPlanner::track(const std::string& session_id, TimePoint now,
                        std::optional<TimePoint> first_due) {
  Node& node = *entries_.try_emplace(session_id).first;
  node.second.step = 0;
  schedule(node, first_due.value_or(now + delay(0)));
}

Duration PollPlanner::delay(int step) {
  if (!incremental_ || policy_.incremental_max.count() <= 0) {
    return cadence_delay(policy_.cadence, step, random_);
  }
  CadencePolicy capped = policy_.cadence;
  capped.max = std::min(capped.max, policy_.incremental_max);
  return cadence_delay(capped, step, random_);
}

void PollPlanner::untrack(const std::string& session_id) {
  const auto it = entries_.find(session_id);
  if (it == entries_.end()) return;
  unschedule(it->second);
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
  schedule(*it, now + delay(entry.step));
}

void PollPlanner::retry_later(const std::string& session_id, Duration delay, TimePoint now) {
  const auto it = entries_.find(session_id);
  if (it == entries_.end()) return;
  schedule(*it, now + std::max(delay, Duration{0}));
}

std::optional<TimePoint> PollPlanner::next_due() const {
  if (due_.empty()) return std::nullopt;
  return due_.front().at;
}

std::vector<std::string> PollPlanner::take_due(TimePoint now) {
  std::vector<std::string> batch;
  const TimePoint horizon = now + policy_.batch_window;
  if (due_.empty() || due_.front().at > horizon) return batch;
  // One allocation for the batch instead of log2(max_batch) regrowths, each moving every id.
  batch.reserve(std::min(policy_.max_batch, due_.size()));
  while (!due_.empty() && batch.size() < policy_.max_batch && due_.front().at <= horizon) {
    Node& node = *due_.front().node;
    batch.push_back(node.first);
    unschedule(node.second);
  }
  return batch;
}

}  // namespace devin_orch::core
