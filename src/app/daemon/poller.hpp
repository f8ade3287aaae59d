// The daemon's polling of live sessions: one poller per organisation that sends due sessions in
// batches through its gate, each job's controls applied to what a poll sees, follow-up
// messages, and the statuses recorded. Owns the tracked sessions. Private to the app module.
#pragma once

#include "org_gates.hpp"
#include "parts.hpp"
#include "store_writer.hpp"

#include "devin_orch/core/incremental_poll.hpp"
#include "devin_orch/core/session_policy.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace devin_orch::app::detail {

class Poller {
 public:
  // `session_ended`: a tracked session left (ended, lost, terminated): its slot is free.
  Poller(Services& services, StoreWriter& writer, OrgGates& gates,
         std::function<void()> session_ended);

  // Starts the org's poll loop (once, when the org is first seen).
  void start(Org& org);

  // Polls the job's session from now on. `poll_soon`: first poll at once (a re-attached session
  // may have moved on while the daemon was down); `server_time`: the newest server timestamp of
  // the answer the session came in (see IncrementalPoll).
  void track(Org& org, const core::JobRecord& job, const std::string& status,
             const std::optional<std::string>& detail, TimePoint now, bool poll_soon = true,
             std::int64_t server_time = -1);
  void untrack(Org& org, const std::string& session_id);
  bool tracking(const std::string& session_id) const { return tracked_.contains(session_id); }
  std::size_t size() const noexcept { return tracked_.size(); }

  // Records statuses (and ends) through the writer.
  void commit_updates(std::vector<store::StatusUpdate> updates, TimePoint now);

 private:
  struct TrackedSession {
    std::int64_t job_id = 0;
    std::int64_t started_at_ms = 0;  // session committed; for the session-duration histogram
    std::string job_key;
    std::optional<std::string> create_as_user_id;  // whose quota a user-level suspension names
    std::string status;
    std::optional<std::string> status_detail;
    core::SessionPolicy policy;  // the job's controls applied to each observation
    core::SyncMark sync;         // how far its changes are known (incremental polls)
  };

  awaitable<void> poll_loop(Org& org);
  std::optional<std::int64_t> batch_updated_after(Org& org, const std::vector<std::string>& ids,
                                                  TimePoint now) const;
  awaitable<void> poll_batch(Org& org, std::vector<std::string> ids);
  void note_dating(Org& org, TrackedSession& tracked, const api::Session& session);
  awaitable<void> poll_single(Org& org, std::string session_id);
  void apply_status(Org& org, api::Session session, TimePoint now,
                    std::vector<store::StatusUpdate>& updates);
  awaitable<void> send_message(Org& org, std::string session_id, std::string text,
                               std::int64_t count);

  Services& services_;
  StoreWriter& writer_;
  OrgGates& gates_;
  std::function<void()> session_ended_;
  std::unordered_map<std::string, TrackedSession> tracked_;
};

}  // namespace devin_orch::app::detail
