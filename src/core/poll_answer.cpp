// Sorting a status poll's answer against its batch, and what a failed poll means.
#include "devin_orch/core/poll_answer.hpp"

#include <algorithm>

namespace devin_orch::core {

PollAnswerPlan sort_poll_answer(std::vector<std::string> batch, std::span<const Session> items,
                                bool full, std::int64_t known_at_send) {
  PollAnswerPlan plan;
  plan.proven_until = known_at_send;
  for (const auto& session : items) plan.proven_until = std::max(plan.proven_until, session.updated_at);
  // The batch's ids sorted, each answered at most once: a set of copies cost an allocation
  // per id per poll.
  std::ranges::sort(batch);
  std::vector<bool> answered(batch.size(), false);
  for (std::size_t item = 0; item < items.size(); ++item) {
    const auto it = std::ranges::lower_bound(batch, items[item].session_id);
    if (it == batch.end() || *it != items[item].session_id) continue;
    const auto slot = static_cast<std::size_t>(it - batch.begin());
    if (answered[slot]) continue;
    answered[slot] = true;
    plan.apply.push_back(item);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (answered[i]) continue;
    (full ? plan.ask_singly : plan.unchanged).push_back(std::move(batch[i]));
  }
  return plan;
}

PollFailurePlan PollFailures::failed(const CallOutcome& outcome, bool full, Random& random) {
  ++consecutive_;
  return PollFailurePlan{
      .retry_in = retry_delay(random),
      .pause_org = outcome.cls == CallClass::unauthorized,
      .stop_incremental = !full && outcome.cls == CallClass::rejected,
  };
}

Duration PollFailures::retry_delay(Random& random) const {
  return std::max(floor_, full_jitter_delay(backoff_, consecutive_, random));
}

}  // namespace devin_orch::core
