// The daemon's polling of live sessions: batches through each organisation's gate, when
// core::next_poll says; answers sorted by core::sort_poll_answer; statuses judged by each job's
// policy and recorded.
#include "poller.hpp"

#include "tag_lookup.hpp"

#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/api_version.hpp"
#include "devin_orch/core/duplicates.hpp"
#include "devin_orch/core/poll_answer.hpp"
#include "devin_orch/core/poll_timing.hpp"
#include "devin_orch/core/session_family.hpp"
#include "devin_orch/core/session_verdict.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace devin_orch::app::detail {

Poller::Poller(Services& services, StoreWriter& writer, OrgGates& gates,
               std::function<void()> session_ended,
               std::function<void(const std::string&, std::string)> end_stalled)
    : services_{services},
      writer_{writer},
      gates_{gates},
      session_ended_{std::move(session_ended)},
      end_stalled_{std::move(end_stalled)} {}

std::size_t Poller::stalled() const noexcept {
  return static_cast<std::size_t>(std::count_if(
      tracked_.begin(), tracked_.end(), [](const auto& entry) { return entry.second.stalled; }));
}

void Poller::start(Org& org) { services_.runtime.spawn(poll_loop(org)); }

core::ParentAcus Poller::acu_reporting() const {
  return services_.config.jobs.parent_acus_include_children ? core::ParentAcus::include_children
                                                            : core::ParentAcus::separate;
}

void Poller::track(Org& org, const core::JobRecord& job, const std::string& status,
                   const std::optional<std::string>& detail, TimePoint now, bool reattached,
                   std::int64_t server_time) {
  org.sync.saw_server_time(server_time);
  const auto [it, inserted] = tracked_.insert_or_assign(
      *job.session_id,
      TrackedSession{.job_id = job.id,
                     .org_id = org.org_id,
                     // A re-attached session keeps its start: durations span restarts.
                     .started_at_ms = job.started_at_ms.value_or(core::to_epoch_ms(now)),
                     .job_key = job.definition.key,
                     .create_as_user_id = job.definition.spec.create_as_user_id,
                     .status = status,
                     .status_detail = detail,
                     .policy = core::SessionPolicy{job.definition.controls,
                                                   services_.config.jobs.complete_on,
                                                   job.messages_sent, job.waiting_since_ms},
                     .sync = org.sync.seen_whole(server_time, now),
                     .watch_until_ms = job.duplicate_watch_until_ms,
                     .tag = job.creation_tag,
                     // As the creation lookup: the generation's first intent, less ten minutes
                     // of clock skew; every session of the job was created after it.
                     .lookup_from = job.intent_at_ms ? *job.intent_at_ms / 1000 - 600 : 0,
                     .stall = core::StallWatch{core::stall_policy_for(
                         services_.config.stall, job.definition.controls.stall)},
                     // A new session's, from its create; a re-attached one's comes with its
                     // first poll (unknown until then: not judged).
                     .updated_at = server_time});
  // A stall an earlier process reported is not reported (nor messaged) again while it lasts,
  // and its record is cleared when the session moves again.
  if (job.stalled_since_ms) {
    it->second.stall.already_reported(core::from_epoch_ms(*job.stalled_since_ms));
    it->second.stalled = true;
  }
  if (inserted) {
    ++org.active_sessions;
    acus_.insert_or_assign(job.id, core::AcuTally{acu_reporting(), reattached});
  }
  org.planner.track(*job.session_id, now,
                    reattached ? std::optional<TimePoint>{now} : std::nullopt);
  org.poll_wakeup.notify();
}

void Poller::untrack(Org& org, const std::string& session_id) {
  const auto it = tracked_.find(session_id);
  if (it == tracked_.end()) return;
  const std::int64_t job_id = it->second.job_id;
  tracked_.erase(it);
  // Ended, lost or terminated: its children may still be running; their figures once more.
  if (const auto family = families_.find(session_id); family != families_.end()) {
    family->second.parent_ended = true;
    services_.runtime.spawn(poll_children(org, {session_id}));
  } else {
    acus_.erase(job_id);
  }
  org.planner.untrack(session_id);
  --org.active_sessions;
  gates_.session_ended(org);
  session_ended_();
}

void Poller::drop_org(Org& org) {
  std::size_t dropped = 0;
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (it->second.org_id != org.org_id) {
      ++it;
      continue;
    }
    org.planner.untrack(it->first);
    --org.active_sessions;
    acus_.erase(it->second.job_id);
    families_.erase(it->first);
    it = tracked_.erase(it);
    ++dropped;
  }
  if (dropped > 0) session_ended_();
}

awaitable<void> Poller::poll_loop(Org& org) {
  for (;;) {
    const auto now = core::wall_now();
    const auto timing = core::next_poll(core::PollTimingInput{
        .next_due = org.planner.next_due(),
        .now = now,
        .creates_waiting = org.admission.waiting(core::RequestKind::create),
        .creates_held = org.admission.gate().creates_held(now),
        .others_ready_at = org.admission.gate().ready_at(core::RequestKind::other, now),
        .max_delay = services_.config.poll.max_delay});
    if (timing.step == core::PollTimingStep::poll_now) {
      auto due = org.planner.take_due(now);
      if (services_.client_for(org.org_id).version() == core::ApiVersion::v1) {
        // v1 has no list by session ids: one GET /v1/session/{id} each, each through the gate.
        for (auto& id : due) services_.runtime.spawn(poll_single(org, std::move(id)));
      } else if (!due.empty()) {
        services_.runtime.spawn(poll_batch(org, std::move(due)));
      }
      continue;
    }
    const auto wait = timing.step == core::PollTimingStep::idle ? core::Duration{std::chrono::hours{1}}
                                                                : until(timing.until, now);
    if (!co_await org.poll_wakeup.wait_for(wait)) co_return;
  }
}

namespace {

// How far a live session's ACUs must rise before the store hears of it between status changes:
// the spending guard's figures stay within this of the API's, at a write per poll at most.
constexpr double kAcusWorthRecording = 1.0;

bool status_changed(const std::string& status, const std::optional<std::string>& detail,
                    const api::Session& session) {
  return status != session.status || detail != session.status_detail;
}

}  // namespace

// With updated_after, only what changed is sent and parsed: at a steady cadence most sessions
// are unchanged at most polls. A batch asks that way only if every session in it may be left
// out (see SessionPolicy::quiet_if_unchanged and IncrementalPoll::updated_after).
std::optional<std::int64_t> Poller::batch_updated_after(Org& org,
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

awaitable<void> Poller::poll_batch(Org& org, std::vector<std::string> ids) {
  // Decided once the gate opens, not before: the wait there can be long.
  bool full = true;
  std::int64_t known_at_send = 0;
  auto gated = co_await gates_.call(org, core::RequestKind::other, ApiOperation::poll_batch, [&] {
    const auto updated_after = batch_updated_after(org, ids, core::wall_now());
    full = !updated_after;
    // The server's clock had reached this when it answered (see IncrementalPoll::polled).
    known_at_send = org.sync.server_time();
    return services_.client_for(org.org_id).list_sessions(
        org.org_id, api::ListSessionsQuery{.session_ids = ids,
                                           .updated_after = updated_after,
                                           .first = static_cast<int>(ids.size())});
  });
  if (!gated) co_return;
  auto& answer = *gated;
  const auto now = core::wall_now();
  if (!answer.outcome.ok()) {
    const auto plan = org.poll_failures.failed(answer.outcome, full, services_.random);
    log_event(spdlog::level::warn, {.event = "poll_failed", .org_id = org.org_id},
              "org {}: status poll of {} session(s) failed ({}): {}", org.org_id, ids.size(),
              core::to_string(answer.outcome.cls), answer.outcome.detail);
    if (plan.pause_org) gates_.pause(org, "API key rejected (401): " + answer.outcome.detail);
    if (plan.stop_incremental && org.sync.turn_off()) {
      org.planner.set_incremental(false);
      spdlog::warn("org {}: the API rejected updated_after with session_ids; every status poll "
                   "asks for all its sessions from now on",
                   org.org_id);
    }
    for (const auto& id : ids) {
      if (tracked_.contains(id)) org.planner.retry_later(id, plan.retry_in, now);
    }
    org.poll_wakeup.notify();
    co_return;
  }
  org.poll_failures.succeeded();
  services_.metrics.status_poll(full);
  auto& items = answer.value->items;
  // Whose children to poll after this answer: every parent asked about, whether or not an
  // incremental answer left it out (a child's ACUs change without its parent changing).
  std::vector<std::string> parents;
  for (const auto& id : ids) {
    if (families_.contains(id)) parents.push_back(id);
  }
  auto plan = core::sort_poll_answer(std::move(ids), items, full, known_at_send);
  org.sync.saw_server_time(plan.proven_until);
  std::vector<store::StatusUpdate> updates;
  for (const auto index : plan.apply) {
    auto& session = items[index];
    if (const auto tracked = tracked_.find(session.session_id); tracked != tracked_.end()) {
      note_dating(org, tracked->second, session);
      tracked->second.sync = org.sync.polled(tracked->second.sync, plan.proven_until, full, now);
    }
    apply_status(org, std::move(session), now, updates);
  }
  commit_updates(std::move(updates), now);
  // Parents that ended in this answer had their last children poll started by untrack().
  std::erase_if(parents, [&](const std::string& id) {
    const auto family = families_.find(id);
    return family == families_.end() || family->second.parent_ended;
  });
  if (!parents.empty()) services_.runtime.spawn(poll_children(org, std::move(parents)));
  // Left out of a full answer: asked for by id (404 there means lost).
  for (auto& id : plan.ask_singly) {
    if (tracked_.contains(id)) services_.runtime.spawn(poll_single(org, std::move(id)));
  }
  // Left out of an incremental answer: unchanged, and its policy has nothing to decide.
  for (const auto& id : plan.unchanged) {
    const auto it = tracked_.find(id);
    if (it == tracked_.end()) continue;
    it->second.sync = org.sync.polled(it->second.sync, plan.proven_until, false, now);
    observe_stall(org, it->second, id, now);
    org.planner.observed(id, /*changed=*/false, now);
  }
  org.poll_wakeup.notify();
}

// A status change whose updated_at predates what was known means the server's updated_at does
// not follow status changes: incremental polls cannot be trusted there.
void Poller::note_dating(Org& org, TrackedSession& tracked, const api::Session& session) {
  if (status_changed(tracked.status, tracked.status_detail, session) &&
      !core::IncrementalPoll::change_is_dated(tracked.sync, session.updated_at) &&
      org.sync.turn_off()) {
    org.planner.set_incremental(false);
    spdlog::warn("org {}: session {} changed status but its updated_at ({}) predates what "
                 "was known of it ({}); the API's updated_at cannot be trusted for "
                 "incremental polls, so every status poll asks for all its sessions from "
                 "now on",
                 org.org_id, session.session_id, session.updated_at, tracked.sync.known_until);
  }
}

awaitable<void> Poller::poll_single(Org& org, std::string session_id) {
  auto gated = co_await gates_.call(org, core::RequestKind::other, ApiOperation::poll_single, [&] {
    return services_.client_for(org.org_id).get_session(org.org_id, session_id);
  });
  if (!gated) co_return;
  auto& answer = *gated;
  const auto now = core::wall_now();
  const auto it = tracked_.find(session_id);
  if (it == tracked_.end()) co_return;
  if (answer.value) {
    org.sync.saw_server_time(answer.value->updated_at);
    it->second.sync = org.sync.seen_whole(answer.value->updated_at, now);
    std::vector<store::StatusUpdate> updates;
    apply_status(org, std::move(*answer.value), now, updates);
    commit_updates(std::move(updates), now);
    if (const auto family = families_.find(session_id);
        family != families_.end() && !family->second.parent_ended) {
      services_.runtime.spawn(poll_children(org, {session_id}));
    }
  } else if (answer.outcome.cls == core::CallClass::not_found) {
    const auto reason = "session " + session_id + " not found (404): " + answer.outcome.detail;
    log_event(spdlog::level::err,
              {.event = "job_ended", .key = it->second.job_key, .session_id = session_id,
               .org_id = org.org_id, .state = "lost"},
              "job '{}': lost: {}", it->second.job_key, reason);
    writer_.write("job '" + it->second.job_key + "' as lost",
                  [this, id = it->second.job_id, reason, now] {
                    return services_.store.finish(id, core::JobState::lost, reason, now);
                  });
    services_.metrics.job_ended(core::JobState::lost);
    untrack(org, session_id);
  } else {
    org.planner.retry_later(session_id, org.poll_failures.retry_delay(services_.random), now);
  }
  org.poll_wakeup.notify();
}

void Poller::apply_status(Org& org, api::Session session, TimePoint now,
                          std::vector<store::StatusUpdate>& updates) {
  const auto it = tracked_.find(session.session_id);
  if (it == tracked_.end()) return;
  TrackedSession& tracked = it->second;
  if (!session.child_session_ids.empty()) note_children(tracked, session);
  if (const auto tally = acus_.find(tracked.job_id); tally != acus_.end()) {
    services_.metrics.acus_consumed(org.org_id, tally->second.own(session.acus_consumed));
  }
  const bool changed = status_changed(tracked.status, tracked.status_detail, session);
  auto decision = tracked.policy.observe({.status = session.status,
                                          .status_detail = session.status_detail,
                                          .updated_at = session.updated_at,
                                          .now = now});
  if (decision.waiting_since_changed) {
    writer_.write("when job '" + tracked.job_key + "' began waiting",
                  [this, id = tracked.job_id, since = tracked.policy.waiting_since_ms(), now] {
                    return services_.store.set_waiting_since(id, since, now);
                  });
  }
  if (decision.message) {
    services_.runtime.spawn(send_message(org, session.session_id, std::move(*decision.message),
                                         tracked.policy.messages_sent()));
  }
  const core::SessionVerdict& verdict = decision.verdict;
  if (changed) {
    // Debug: each job gets one info line when its session is created and one when it ends;
    // the changes in between are in its history (devin-orch show KEY) without flooding the
    // journal at thousands of sessions.
    log_event(spdlog::level::debug,
              {.event = "session_status", .key = tracked.job_key,
               .session_id = session.session_id, .org_id = org.org_id,
               .status = session.status},
              "job '{}': session {} is {}{}", tracked.job_key, session.session_id,
              session.status,
              session.status_detail ? " (" + *session.status_detail + ")" : std::string{});
  }
  tracked.status = session.status;
  tracked.status_detail = session.status_detail;
  if (verdict.terminal) {
    log_event(spdlog::level::info,
              {.event = "job_ended", .key = tracked.job_key, .session_id = session.session_id,
               .org_id = org.org_id, .state = core::to_string(verdict.state),
               .status = session.status},
              "job '{}': {} ({})", tracked.job_key, core::to_string(verdict.state),
              verdict.reason.empty() ? session.status : verdict.reason);
    if (verdict.billing) gates_.pause(org, "billing: " + verdict.reason);
    if (verdict.pause == core::PauseScope::user) {
      // The user the session ran as is out of quota, not the org: only that user's jobs wait.
      if (tracked.create_as_user_id) {
        gates_.pause_user(org, *tracked.create_as_user_id, verdict.reason);
      } else {
        spdlog::warn("job '{}': {}, but the job names no create_as_user_id; nothing paused",
                     tracked.job_key, verdict.reason);
      }
    }
    if (verdict.unknown_detail) {
      spdlog::warn("job '{}': session {} suspended with a status_detail the daemon does not "
                   "know ({}); the job ends suspended, nothing is paused",
                   tracked.job_key, session.session_id, session.status_detail.value_or(""));
      services_.metrics.unknown_suspension();
    }
    services_.metrics.job_ended(verdict.state);
    services_.metrics.session_duration(
        std::max<double>(0, (core::to_epoch_ms(now) - tracked.started_at_ms) / 1000.0));
    // A normal finish is not an error; any other ending records why.
    std::optional<std::string> reason;
    if (verdict.state != core::JobState::finished) reason = verdict.reason;
    updates.push_back(store::StatusUpdate{.job_id = tracked.job_id,
                                          .session = std::move(session),
                                          .new_state = verdict.state,
                                          .reason = std::move(reason)});
    // A duplicate may outlive the job's own session: one last look, keeping the outcome.
    maybe_check_duplicates(org, tracked, updates.back().session.session_id, /*ended=*/true, now);
    untrack(org, updates.back().session.session_id);
    return;
  }
  tracked.updated_at = session.updated_at;
  observe_stall(org, tracked, session.session_id, now);
  maybe_check_duplicates(org, tracked, session.session_id, /*ended=*/false, now);
  org.planner.observed(session.session_id, changed, now);
  // ACUs move without a status change (and without updated_at: full polls bring them). The
  // spending guard reads them from the store, so a rise worth noting is written too, at most
  // once per poll that shows it.
  const double acus = session.acus_consumed;
  const bool acus_rose = acus >= tracked.recorded_acus + kAcusWorthRecording;
  if (changed || acus_rose) {
    tracked.recorded_acus = acus;
    updates.push_back(store::StatusUpdate{.job_id = tracked.job_id, .session = std::move(session)});
  }
}

void Poller::maybe_check_duplicates(Org& org, TrackedSession& tracked,
                                    const std::string& session_id, bool ended, TimePoint now) {
  if (!tracked.watch_until_ms || tracked.checking || tracked.tag.empty()) return;
  if (core::to_epoch_ms(now) >= *tracked.watch_until_ms) {
    tracked.watch_until_ms.reset();
    writer_.write("the end of job '" + tracked.job_key + "''s duplicate watch",
                  [this, id = tracked.job_id, now] {
                    return services_.store.end_duplicate_watch(id, now);
                  });
    return;
  }
  tracked.checking = !ended;
  services_.runtime.spawn(check_duplicates(org, DuplicateCheck{.job_id = tracked.job_id,
                                                               .job_key = tracked.job_key,
                                                               .session_id = session_id,
                                                               .tag = tracked.tag,
                                                               .lookup_from = tracked.lookup_from,
                                                               .job_ended = ended}));
}

// Lists the job's tag; if another session of the job's own carries it, the older is kept and
// the others are terminated and archived (see core::judge_duplicates). A session this daemon
// terminates is switched away from first, so its end is not taken for the job's.
awaitable<void> Poller::check_duplicates(Org& org, DuplicateCheck check) {
  auto found = co_await lookup_by_tag(services_, gates_, org, check.tag, check.lookup_from);
  if (const auto it = tracked_.find(check.session_id); it != tracked_.end()) {
    it->second.checking = false;
  }
  if (!found || !found->outcome.ok()) co_return;  // looked at again after the next poll
  const auto verdict = core::judge_duplicates(check.session_id, found->matches, check.job_ended);
  if (!verdict) co_return;
  const auto kept = std::ranges::find(found->matches, verdict->keep, &api::Session::session_id);
  std::string others;
  for (const auto& id : verdict->terminate) others += (others.empty() ? "" : ", ") + id;
  log_event(spdlog::level::warn,
            {.event = "duplicate_sessions", .key = check.job_key, .session_id = verdict->keep,
             .org_id = org.org_id},
            "job '{}': {} sessions carry its tag {}; keeping {} and terminating {}",
            check.job_key, verdict->terminate.size() + 1, check.tag, verdict->keep, others);
  const auto now = core::wall_now();
  if (verdict->keep != check.session_id && !check.job_ended && tracked_.contains(check.session_id)) {
    switch_session(org, check.session_id, *kept, now);
  }
  writer_.write("the duplicates of job '" + check.job_key + "'",
                [this, check, kept_session = *kept, terminated = verdict->terminate, now] {
                  return services_.store.record_duplicates(check.job_id, check.session_id,
                                                          kept_session, terminated, now);
                });
  for (const auto& duplicate : verdict->terminate) {
    auto gated = co_await gates_.call(org, core::RequestKind::other, ApiOperation::terminate, [&] {
      return services_.client_for(org.org_id).terminate_session(org.org_id, duplicate,
                                                                /*archive=*/true);
    });
    if (!gated) co_return;
    const bool ended = gated->outcome.ok() || gated->outcome.cls == core::CallClass::not_found;
    services_.metrics.duplicate_session(ended);
    if (!ended) {
      spdlog::warn("job '{}': terminating duplicate session {} failed ({}); tried again after "
                   "the next poll", check.job_key, duplicate, gated->outcome.detail);
    }
  }
}

// The job follows another session from now on: its tracking moves to that session.
void Poller::switch_session(Org& org, const std::string& from, const api::Session& to,
                            TimePoint now) {
  auto node = tracked_.extract(from);
  if (node.empty()) return;
  node.key() = to.session_id;
  node.mapped().status = to.status;
  node.mapped().status_detail = to.status_detail;
  node.mapped().sync = org.sync.seen_whole(-1, now);
  node.mapped().updated_at = to.updated_at;  // another session: its own progress from now on
  node.mapped().stall = core::StallWatch{core::StallPolicy{node.mapped().stall.policy()}};
  node.mapped().stalled = false;
  org.planner.untrack(from);
  org.planner.track(to.session_id, now, now);
  tracked_.insert(std::move(node));
  org.poll_wakeup.notify();
}

void Poller::commit_updates(std::vector<store::StatusUpdate> updates, TimePoint now) {
  if (updates.empty()) return;
  const std::size_t count = updates.size();
  writer_.write(fmt::format("{} status update(s)", count),
                [this, updates = std::move(updates), now]() -> store::StoreResult<void> {
                  auto written = services_.store.record_statuses(updates, now);
                  if (!written) return written.error();
                  return {};
                });
}

std::vector<std::string> Poller::children_of(const std::string& session_id) const {
  const auto family = families_.find(session_id);
  return family == families_.end() ? std::vector<std::string>{} : family->second.child_ids;
}

// Children only ever join a family: an answer that lists fewer keeps the ones already known.
void Poller::note_children(const TrackedSession& tracked, const api::Session& session) {
  Family& family = families_[session.session_id];
  family.job_id = tracked.job_id;
  for (const auto& child : session.child_session_ids) {
    if (std::find(family.child_ids.begin(), family.child_ids.end(), child) ==
        family.child_ids.end()) {
      family.child_ids.push_back(child);
      family.ids_recorded = false;
    }
  }
}

// One list request (per 100 children) for the children of `parents`; their ACUs summed by
// core::children_acus and written when the sum or the ids changed. A failed poll is tried again
// at the parent's next poll; after a parent's end there is no next one, and the figures then on
// record stay (a warning says so).
awaitable<void> Poller::poll_children(Org& org, std::vector<std::string> parents) {
  constexpr std::size_t kPerRequest = 100;  // the API's page holds up to 200
  std::vector<std::string> ids;
  // By our own record, not the answer's parent_session_id: a tolerant reader may lack it.
  std::unordered_map<std::string, std::string> parent_of;
  for (const auto& parent : parents) {
    if (const auto family = families_.find(parent); family != families_.end()) {
      for (const auto& child : family->second.child_ids) {
        if (parent_of.emplace(child, parent).second) ids.push_back(child);
      }
    }
  }
  bool complete = true;
  for (std::size_t start = 0; start < ids.size(); start += kPerRequest) {
    std::vector<std::string> chunk(ids.begin() + static_cast<std::ptrdiff_t>(start),
                                   ids.begin() + static_cast<std::ptrdiff_t>(
                                                     std::min(ids.size(), start + kPerRequest)));
    auto gated = co_await gates_.call(org, core::RequestKind::other,
                                      ApiOperation::poll_children, [&] {
      return services_.client_for(org.org_id).list_sessions(
          org.org_id, api::ListSessionsQuery{.session_ids = chunk,
                                             .first = static_cast<int>(chunk.size())});
    });
    if (!gated) co_return;  // shutting down
    if (!gated->outcome.ok()) {
      complete = false;
      spdlog::debug("org {}: poll of {} child session(s) failed ({}): {}", org.org_id,
                    chunk.size(), core::to_string(gated->outcome.cls), gated->outcome.detail);
      continue;
    }
    for (const auto& child : gated->value->items) {
      const auto parent = parent_of.find(child.session_id);
      if (parent == parent_of.end()) continue;  // not asked for
      const auto family = families_.find(parent->second);
      if (family == families_.end()) continue;  // its last poll ended it meanwhile
      family->second.acus[child.session_id] = child.acus_consumed;
    }
  }
  std::vector<store::ChildrenUpdate> updates;
  for (const auto& parent : parents) {
    const auto found = families_.find(parent);
    if (found == families_.end()) continue;
    Family& family = found->second;
    std::vector<double> figures;
    figures.reserve(family.acus.size());
    for (const auto& [child, acus] : family.acus) figures.push_back(acus);
    const double sum = core::children_acus(figures);
    if (const auto tally = acus_.find(family.job_id); tally != acus_.end()) {
      services_.metrics.acus_consumed(org.org_id, tally->second.children(sum));
    }
    if (family.recorded != sum || !family.ids_recorded) {
      updates.push_back(store::ChildrenUpdate{
          .job_id = family.job_id, .child_session_ids = family.child_ids, .children_acus = sum});
      family.recorded = sum;
      family.ids_recorded = true;
    }
    if (family.parent_ended) {
      if (!complete) {
        spdlog::warn("session {}: the last poll of its children failed; the job keeps the "
                     "children's ACUs last seen ({})",
                     parent, sum);
      }
      acus_.erase(family.job_id);  // the job's last figures are in
      families_.erase(found);
    }
  }
  if (updates.empty()) co_return;
  const auto now = core::wall_now();
  writer_.write(fmt::format("children of {} job(s)", updates.size()),
                [this, updates = std::move(updates), now]() -> store::StoreResult<void> {
                  return services_.store.record_children(updates, now);
                });
}

void Poller::observe_stall(Org& org, TrackedSession& tracked, const std::string& session_id,
                           TimePoint now) {
  const core::StallPolicy& policy = tracked.stall.policy();
  if (!policy.stall_after || tracked.updated_at <= 0 || tracked.counting_messages) return;
  const bool was_stalled = tracked.stalled;
  auto step = core::StallWatch::Step::progressing;
  if (core::stall_applies(tracked.status, tracked.status_detail)) {
    const TimePoint updated_at = core::from_epoch_ms(tracked.updated_at * 1000);
    // Around a quiet spell, Devin's messages are counted too (v3 lists them): the session is
    // judged when the count is in.
    if (services_.client_for(org.org_id).version() == core::ApiVersion::v3 &&
        tracked.stall.wants_message_count(updated_at, now)) {
      tracked.counting_messages = true;
      services_.runtime.spawn(count_messages_then_observe(org, session_id));
      return;
    }
    step = tracked.stall.observe({.updated_at = updated_at}, now);
  } else {
    // Waiting for its user, done, or not running: idle by design, and a new start when it
    // works again.
    tracked.stall = core::StallWatch{policy};
  }
  act_on_stall(org, tracked, session_id, step, was_stalled, now);
}

// Devin's messages over every page (a bounded number: a count that does not fit is left out and
// the session is judged by updated_at alone), through the organisation's gate.
awaitable<void> Poller::count_messages_then_observe(Org& org, std::string session_id) {
  constexpr int kPageSize = 200;
  constexpr int kMaxPages = 20;
  std::optional<std::int64_t> count = 0;
  std::optional<std::string> after;
  for (int page = 0; count; ++page) {
    if (page == kMaxPages) {
      count.reset();
      break;
    }
    auto listed = co_await gates_.call(org, core::RequestKind::other, ApiOperation::list_messages,
                                       [&] {
                                         return services_.client_for(org.org_id).list_messages(
                                             org.org_id, session_id, kPageSize, after);
                                       });
    if (!listed) co_return;  // shutting down
    if (!listed->outcome.ok() || !listed->value) {
      spdlog::debug("session {}: its messages could not be counted ({}); judged by updated_at",
                    session_id, listed->outcome.detail);
      count.reset();
      break;
    }
    *count += listed->value->from_devin;
    if (!listed->value->has_next_page || !listed->value->end_cursor) break;
    after = listed->value->end_cursor;
  }
  const auto it = tracked_.find(session_id);
  if (it == tracked_.end()) co_return;  // ended or switched meanwhile
  TrackedSession& tracked = it->second;
  tracked.counting_messages = false;
  const auto now = core::wall_now();
  if (!count) tracked.stall.message_count_unavailable(now);
  if (!core::stall_applies(tracked.status, tracked.status_detail) || tracked.updated_at <= 0) {
    co_return;  // the next poll judges what changed meanwhile
  }
  const bool was_stalled = tracked.stalled;
  const auto step = tracked.stall.observe(
      {.updated_at = core::from_epoch_ms(tracked.updated_at * 1000), .message_count = count}, now);
  act_on_stall(org, tracked, session_id, step, was_stalled, now);
}

void Poller::act_on_stall(Org& org, TrackedSession& tracked, const std::string& session_id,
                          core::StallWatch::Step step, bool was_stalled, TimePoint now) {
  const core::StallPolicy& policy = tracked.stall.policy();
  tracked.stalled = step != core::StallWatch::Step::progressing;
  switch (step) {
    case core::StallWatch::Step::progressing:
      if (was_stalled) {
        log_event(spdlog::level::info,
                  {.event = "session_progressing", .key = tracked.job_key,
                   .session_id = session_id, .org_id = org.org_id},
                  "job '{}': session {} moves again", tracked.job_key, session_id);
        writer_.write("the end of job '" + tracked.job_key + "''s stall",
                      [this, id = tracked.job_id, now] {
                        return services_.store.record_stall(id, std::nullopt, "", now);
                      });
      }
      return;
    case core::StallWatch::Step::stalled: {
      const std::int64_t since_ms = core::to_epoch_ms(*tracked.stall.still_since());
      std::string note = "stalled: no progress since " + format_timestamp_ms(since_ms) +
                         " (stall_after " + format_duration(*policy.stall_after) + ")";
      log_event(spdlog::level::warn,
                {.event = "session_stalled", .key = tracked.job_key, .session_id = session_id,
                 .org_id = org.org_id, .status = tracked.status},
                "job '{}': session {} {}; action: {}", tracked.job_key, session_id, note,
                core::to_string(policy.action));
      services_.metrics.stall(policy.action);
      services_.runtime.spawn(report_stall(org, session_id, tracked.job_id, tracked.job_key,
                                           since_ms, std::move(note), policy));
      return;
    }
    case core::StallWatch::Step::still_stalled:
      // Reported already (maybe by an earlier process); a termination not yet done is asked
      // for again (the dispatcher ignores a second ask while one is under way).
      if (policy.action == core::StallAction::terminate) {
        end_stalled_(tracked.job_key, "stalled: no progress for " +
                                          format_duration(*policy.stall_after) +
                                          ": the session was terminated");
      }
      return;
  }
}

awaitable<void> Poller::report_stall(Org& org, std::string session_id, std::int64_t job_id,
                                     std::string job_key, std::int64_t since_ms, std::string note,
                                     core::StallPolicy policy) {
  // Not through the writer's queue: a message whose stall is not on record must not be sent.
  const auto recorded = services_.store.record_stall(job_id, since_ms, note, core::wall_now());
  if (!recorded) {
    writer_.failed("the stall of job '" + job_key + "'", recorded.error());
  } else {
    writer_.succeeded();
  }
  switch (policy.action) {
    case core::StallAction::report: co_return;
    case core::StallAction::terminate:
      end_stalled_(job_key, "stalled: no progress for " + format_duration(*policy.stall_after) +
                                ": the session was terminated");
      co_return;
    case core::StallAction::message: break;
  }
  if (!recorded || !tracked_.contains(session_id)) co_return;
  auto sent = co_await gates_.call(org, core::RequestKind::other, ApiOperation::message, [&] {
    return services_.client_for(org.org_id).send_message(org.org_id, session_id, policy.message);
  });
  if (!sent) co_return;  // shutting down
  if (sent->outcome.ok()) {
    log_event(spdlog::level::info,
              {.event = "message_sent", .key = job_key, .session_id = session_id,
               .org_id = org.org_id},
              "job '{}': sent the stall message to session {}", job_key, session_id);
  } else {
    log_event(spdlog::level::warn,
              {.event = "message_failed", .key = job_key, .session_id = session_id,
               .org_id = org.org_id},
              "job '{}': the stall message to session {} failed ({}); not resent", job_key,
              session_id, sent->outcome.detail);
  }
}

// Follow-ups are recorded before they are sent: at most once, even across a crash.
awaitable<void> Poller::send_message(Org& org, std::string session_id, std::string text,
                                     std::int64_t count) {
  const auto it = tracked_.find(session_id);
  if (it == tracked_.end()) co_return;
  const auto job_id = it->second.job_id;
  const auto key = it->second.job_key;
  // Not through the writer's queue: a message that is not on record must not be sent at all.
  const auto recorded = services_.store.record_message(job_id, count, text, core::wall_now());
  if (!recorded) {
    writer_.failed("message " + std::to_string(count) + " to session " + session_id +
                       " (not sent)",
                   recorded.error());
  } else {
    writer_.succeeded();
  }
  std::optional<api::ApiResult<api::Session>> sent;
  if (recorded) {
    sent = co_await gates_.call(org, core::RequestKind::other, ApiOperation::message, [&] {
      return services_.client_for(org.org_id).send_message(org.org_id, session_id, text);
    });
  }
  if (sent) {
    if (sent->outcome.ok()) {
      log_event(spdlog::level::info,
                {.event = "message_sent", .key = key, .session_id = session_id,
                 .org_id = org.org_id},
                "job '{}': sent message {} to session {}", key, count, session_id);
    } else {
      log_event(spdlog::level::warn,
                {.event = "message_failed", .key = key, .session_id = session_id,
                 .org_id = org.org_id},
                "job '{}': message {} to session {} failed ({}); not resent", key, count,
                session_id, sent->outcome.detail);
    }
  }
  if (const auto again = tracked_.find(session_id); again != tracked_.end()) {
    again->second.policy.message_done();
    org.planner.observed(session_id, /*changed=*/true, core::wall_now());
    org.poll_wakeup.notify();
  }
}

}  // namespace devin_orch::app::detail
