// The daemon's polling of live sessions: batches through each organisation's rate gate, each
// job's controls applied to what a poll sees, follow-up messages, and the statuses recorded.
#include "daemon_state.hpp"

#include "devin_orch/core/session_policy.hpp"
#include "devin_orch/core/session_verdict.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace devin_orch::app::detail {

void Daemon::track_session(Org& org, const core::JobRecord& job, const std::string& status,
                           const std::optional<std::string>& detail, TimePoint now,
                           bool poll_soon, std::int64_t server_time) {
  org.sync.saw_server_time(server_time);
  tracked_.insert_or_assign(
      *job.session_id,
      TrackedSession{.job_id = job.id,
                     // A re-attached session keeps its start: durations span restarts.
                     .started_at_ms = job.started_at_ms.value_or(core::to_epoch_ms(now)),
                     .job_key = job.definition.key,
                     .status = status,
                     .status_detail = detail,
                     .policy = core::SessionPolicy{job.definition.controls,
                                                   config_.jobs.complete_on, job.messages_sent,
                                                   job.waiting_since_ms},
                     .sync = org.sync.seen_whole(server_time, now)});
  ++org.active_sessions;
  org.planner.track(*job.session_id, now,
                    poll_soon ? std::optional<TimePoint>{now} : std::nullopt);
  org.poll_wakeup.notify();
}

void Daemon::untrack_session(Org& org, const std::string& session_id) {
  tracked_.erase(session_id);
  org.planner.untrack(session_id);
  --org.active_sessions;
  if (org.gate.creates_held(core::wall_now())) {
    // A slot may be free again: held creates retry now rather than at the hold's end.
    org.gate.release_hold();
    for (auto* timer : org.gate_sleepers) timer->cancel();
  }
  dispatch_requested_ = true;
  dispatch_wakeup_.notify();
}

awaitable<void> Daemon::poller(Org& org) {
  while (!stopping_) {
    const auto now = core::wall_now();
    const auto next = org.planner.next_due();
    if (!next) {
      co_await org.poll_wakeup.wait_for(std::chrono::hours{1});
      continue;
    }
    if (*next > now) {
      co_await org.poll_wakeup.wait_for(until(*next, now));
      continue;
    }
    // Creates waiting for tokens go first: every token a poll takes delays every queued job.
    // A poll waits until its oldest session is late by poll.max_delay (the most a session's
    // cadence ever asks it to wait), gathering more due sessions into one request meanwhile.
    // Not while creates are held by the concurrency cap: only polls can see a session end.
    // Creates waiting for an in-flight slot count too: a poll would need a slot as well.
    if (const auto late = *next + config_.poll.max_delay;
        org.creates_waiting > 0 && !org.gate.creates_held(now) && late > now) {
      co_await org.poll_wakeup.wait_for(until(late, now));
      continue;
    }
    // With the budget short, take due sessions only once a request could go: everything
    // that came due meanwhile joins the same batch instead of queueing as small batches.
    if (const auto ready = org.gate.ready_at(core::RequestKind::other, now); ready > now) {
      co_await org.poll_wakeup.wait_for(until(ready, now));
      continue;
    }
    auto due = org.planner.take_due(now);
    if (!due.empty()) net::co_spawn(io_, poll_batch(org, std::move(due)), net::detached);
  }
}

core::Duration Daemon::poll_retry_delay(Org& org) {
  return std::max(config_.poll.initial_delay / 2,
                  core::full_jitter_delay(creation_policy_.retry, org.poll_failures, random_));
}

namespace {

bool status_changed(const TrackedSession& tracked, const api::Session& session) {
  return tracked.status != session.status || tracked.status_detail != session.status_detail;
}

}  // namespace

// With updated_after, only what changed is sent and parsed: at a steady cadence most sessions
// are unchanged at most polls. A batch asks that way only if every session in it may be left
// out (see SessionPolicy::quiet_if_unchanged and IncrementalPoll::updated_after).
std::optional<std::int64_t> Daemon::batch_updated_after(Org& org,
                                                        const std::vector<std::string>& ids,
                                                        TimePoint now) const {
  if (!org.sync.enabled()) return std::nullopt;
  std::vector<core::SyncMark> marks;
  marks.reserve(ids.size());
  for (const auto& id : ids) {
    const auto it = tracked_.find(id);
    if (it == tracked_.end()) continue;  // ended while waiting at the gate
    if (!it->second.policy.quiet_if_unchanged()) return std::nullopt;
    marks.push_back(it->second.sync);
  }
  return org.sync.updated_after(marks, now);
}

awaitable<void> Daemon::poll_batch(Org& org, std::vector<std::string> ids) {
  ++batches_in_flight_;
  // Decided once the gate opens, not before: the wait there can be long.
  bool full = true;
  std::int64_t known_at_send = 0;
  auto gated = co_await gated_call(org, core::RequestKind::other, "poll_batch", [&] {
    const auto updated_after = batch_updated_after(org, ids, core::wall_now());
    full = !updated_after;
    // The server's clock had reached this when it answered (see IncrementalPoll::polled).
    known_at_send = org.sync.server_time();
    return client_.list_sessions(org.org_id,
                                 api::ListSessionsQuery{.session_ids = ids,
                                                        .updated_after = updated_after,
                                                        .first = static_cast<int>(ids.size())});
  });
  if (!gated) {
    --batches_in_flight_;
    co_return;
  }
  auto& answer = *gated;
  const auto now = core::wall_now();
  if (!answer.outcome.ok()) {
    ++org.poll_failures;
    spdlog::warn("org {}: status poll of {} session(s) failed ({}): {}", org.org_id,
                 ids.size(), core::to_string(answer.outcome.cls), answer.outcome.detail);
    if (answer.outcome.cls == core::CallClass::unauthorized) {
      pause_org(org, "API key rejected (401): " + answer.outcome.detail);
    }
    if (!full && answer.outcome.cls == core::CallClass::rejected && org.sync.turn_off()) {
      spdlog::warn("org {}: the API rejected updated_after with session_ids; every status poll "
                   "asks for all its sessions from now on",
                   org.org_id);
    }
    const auto delay = poll_retry_delay(org);
    for (const auto& id : ids) {
      if (tracked_.contains(id)) org.planner.retry_later(id, delay, now);
    }
    org.poll_wakeup.notify();
    --batches_in_flight_;
    co_return;
  }
  org.poll_failures = 0;
  count("devin_orch_status_polls_total",
        "Status polls of session batches: full, or incremental (only sessions updated since).",
        {{"kind", full ? "full" : "incremental"}});
  auto proven_until = known_at_send;
  for (const auto& session : answer.value->items) {
    proven_until = std::max(proven_until, session.updated_at);
  }
  org.sync.saw_server_time(proven_until);
  // The batch's ids sorted, each answered at most once: a set of copies cost an allocation
  // per id per poll.
  std::ranges::sort(ids);
  std::vector<bool> answered(ids.size(), false);
  std::vector<store::StatusUpdate> updates;
  for (auto& session : answer.value->items) {
    const auto it = std::ranges::lower_bound(ids, session.session_id);
    if (it == ids.end() || *it != session.session_id) continue;
    const auto slot = static_cast<std::size_t>(it - ids.begin());
    if (answered[slot]) continue;
    answered[slot] = true;
    if (const auto tracked = tracked_.find(session.session_id); tracked != tracked_.end()) {
      auto& mark = tracked->second.sync;
      if (status_changed(tracked->second, session) &&
          !core::IncrementalPoll::change_is_dated(mark, session.updated_at) &&
          org.sync.turn_off()) {
        spdlog::warn("org {}: session {} changed status but its updated_at ({}) predates what "
                     "was known of it ({}); the API's updated_at cannot be trusted for "
                     "incremental polls, so every status poll asks for all its sessions from "
                     "now on",
                     org.org_id, session.session_id, session.updated_at, mark.known_until);
      }
      mark = org.sync.polled(mark, proven_until, full, now);
    }
    apply_status(org, std::move(session), now, updates);
  }
  commit_updates(updates, now);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (answered[i]) continue;
    const auto it = tracked_.find(ids[i]);
    if (it == tracked_.end()) continue;
    if (full) {
      // Left out of a full answer: ask for it directly (404 there means lost).
      net::co_spawn(io_, poll_single(org, ids[i]), net::detached);
    } else {
      // Left out of an incremental answer: unchanged, and its policy has nothing to decide.
      it->second.sync = org.sync.polled(it->second.sync, proven_until, false, now);
      org.planner.observed(ids[i], /*changed=*/false, now);
    }
  }
  org.poll_wakeup.notify();
  --batches_in_flight_;
}

awaitable<void> Daemon::poll_single(Org& org, std::string session_id) {
  ++batches_in_flight_;
  auto gated = co_await gated_call(org, core::RequestKind::other, "poll_single",
                                   [&] { return client_.get_session(org.org_id, session_id); });
  if (!gated) {
    --batches_in_flight_;
    co_return;
  }
  auto& answer = *gated;
  const auto now = core::wall_now();
  const auto it = tracked_.find(session_id);
  if (it != tracked_.end()) {
    if (answer.value) {
      org.sync.saw_server_time(answer.value->updated_at);
      it->second.sync = org.sync.seen_whole(answer.value->updated_at, now);
      std::vector<store::StatusUpdate> updates;
      apply_status(org, std::move(*answer.value), now, updates);
      commit_updates(updates, now);
    } else if (answer.outcome.cls == core::CallClass::not_found) {
      const auto reason = "session " + session_id + " not found (404): " + answer.outcome.detail;
      spdlog::error("job '{}': lost: {}", it->second.job_key, reason);
      write("job '" + it->second.job_key + "' as lost",
            [this, id = it->second.job_id, reason, now] {
              return store_->finish(id, core::JobState::lost, reason, now);
            });
      count_job_end(core::JobState::lost);
      untrack_session(org, session_id);
    } else {
      org.planner.retry_later(session_id, poll_retry_delay(org), now);
    }
    org.poll_wakeup.notify();
  }
  --batches_in_flight_;
}

void Daemon::apply_status(Org& org, api::Session session, TimePoint now,
                          std::vector<store::StatusUpdate>& updates) {
  const auto it = tracked_.find(session.session_id);
  if (it == tracked_.end()) return;
  TrackedSession& tracked = it->second;
  const bool changed = status_changed(tracked, session);
  auto decision = tracked.policy.observe({.status = session.status,
                                          .status_detail = session.status_detail,
                                          .updated_at = session.updated_at,
                                          .now = now});
  if (decision.waiting_since_changed) {
    write("when job '" + tracked.job_key + "' began waiting",
          [this, id = tracked.job_id, since = tracked.policy.waiting_since_ms(), now] {
            return store_->set_waiting_since(id, since, now);
          });
  }
  if (decision.message) {
    net::co_spawn(io_,
                  send_message(org, session.session_id, std::move(*decision.message),
                               tracked.policy.messages_sent()),
                  net::detached);
  }
  const core::SessionVerdict& verdict = decision.verdict;
  if (changed) {
    // Debug: each job gets one info line when its session is created and one when it ends;
    // the changes in between are in its history (devin-orch show KEY) without flooding the
    // journal at thousands of sessions.
    spdlog::debug("job '{}': session {} is {}{}", tracked.job_key, session.session_id,
                 session.status,
                 session.status_detail ? " (" + *session.status_detail + ")" : std::string{});
  }
  tracked.status = session.status;
  tracked.status_detail = session.status_detail;
  if (verdict.terminal) {
    spdlog::info("job '{}': {} ({})", tracked.job_key, core::to_string(verdict.state),
                 verdict.reason.empty() ? session.status : verdict.reason);
    if (verdict.billing) pause_org(org, "billing: " + verdict.reason);
    count_job_end(verdict.state);
    metrics_
        .histogram("devin_orch_session_duration_seconds",
                   "From a session being recorded to its job ending.",
                   server::default_duration_buckets())
        .observe(std::max<double>(0, (core::to_epoch_ms(now) - tracked.started_at_ms) / 1000.0));
    // A normal finish is not an error; any other ending records why.
    std::optional<std::string> reason;
    if (verdict.state != core::JobState::finished) reason = verdict.reason;
    updates.push_back(store::StatusUpdate{.job_id = tracked.job_id,
                                          .session = std::move(session),
                                          .new_state = verdict.state,
                                          .reason = std::move(reason)});
    untrack_session(org, updates.back().session.session_id);
    return;
  }
  org.planner.observed(session.session_id, changed, now);
  if (changed) {
    updates.push_back(store::StatusUpdate{.job_id = tracked.job_id, .session = std::move(session)});
  }
}

// Follow-ups are recorded before they are sent: at most once, even across a crash.
awaitable<void> Daemon::send_message(Org& org, std::string session_id, std::string text,
                                     std::int64_t count) {
  ++batches_in_flight_;
  const auto it = tracked_.find(session_id);
  if (it != tracked_.end()) {
    const auto job_id = it->second.job_id;
    const auto key = it->second.job_key;
    // Not through write(): a message that is not on record must not be sent at all.
    const auto recorded = store_->record_message(job_id, count, text, core::wall_now());
    if (!recorded) {
      store_failed("message " + std::to_string(count) + " to session " + session_id +
                       " (not sent)",
                   recorded.error());
    } else {
      store_succeeded();
    }
    std::optional<api::ApiResult<api::Session>> sent;
    if (recorded) {
      sent = co_await gated_call(org, core::RequestKind::other, "message", [&] {
        return client_.send_message(org.org_id, session_id, text);
      });
    }
    if (sent) {
      const auto& answer = *sent;
      if (answer.outcome.ok()) {
        spdlog::info("job '{}': sent message {} to session {}", key, count, session_id);
      } else {
        spdlog::warn("job '{}': message {} to session {} failed ({}); not resent",
                     key, count, session_id, answer.outcome.detail);
      }
    }
    if (const auto again = tracked_.find(session_id); again != tracked_.end()) {
      again->second.policy.message_done();
      org.planner.observed(session_id, /*changed=*/true, core::wall_now());
      org.poll_wakeup.notify();
    }
  }
  --batches_in_flight_;
}

}  // namespace devin_orch::app::detail
