// The bookkeeping of one status poll's answer, sans I/O: which of the batch's sessions it
// answered, which must be asked for singly, which it proves unchanged, and what a failed poll
// means for the organisation.
#pragma once

#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/session.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace devin_orch::core {

struct PollAnswerPlan {
  // Indexes into the answer's items to apply, in answer order: each session of the batch at
  // most once; sessions the batch did not ask for are ignored.
  std::vector<std::size_t> apply;
  // Left out of a full answer: asked for by id (a 404 there, not the list, means lost; a list
  // that lags behind creates never makes a session lost).
  std::vector<std::string> ask_singly;
  // Left out of an incremental answer: unchanged since the batch's updated_after.
  std::vector<std::string> unchanged;
  // The server had seen every change of the batch's sessions up to this time: the newest
  // server time known when the request left, or a newer updated_at in the answer.
  std::int64_t proven_until = -1;
};

// `full`: the poll asked without updated_after. `known_at_send`: the newest server time known
// when the request left.
PollAnswerPlan sort_poll_answer(std::vector<std::string> batch, std::span<const Session> items,
                                bool full, std::int64_t known_at_send);

// What a failed status poll means.
struct PollFailurePlan {
  Duration retry_in{};           // when the batch's sessions are due again
  bool pause_org = false;        // the key was refused (401): no new sessions for the org
  bool stop_incremental = false; // the API refused updated_after with session_ids
};

// Consecutive failed polls of one organisation, and the backoff they earn.
class PollFailures {
 public:
  PollFailures(BackoffPolicy backoff, Duration floor) noexcept : backoff_{backoff}, floor_{floor} {}

  PollFailurePlan failed(const CallOutcome& outcome, bool full, Random& random);
  void succeeded() noexcept { consecutive_ = 0; }
  // The delay before a session whose single poll failed is asked for again.
  Duration retry_delay(Random& random) const;
  int consecutive() const noexcept { return consecutive_; }

 private:
  BackoffPolicy backoff_;
  Duration floor_;
  int consecutive_ = 0;
};

}  // namespace devin_orch::core
