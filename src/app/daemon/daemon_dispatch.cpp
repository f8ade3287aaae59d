// The daemon's dispatch: reads the queue and starts creation flows within each organisation's
// limits, and ends jobs whose deadline passed or that an operator cancelled.
#include "daemon_state.hpp"

#include "devin_orch/app/daemon/store_watch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace devin_orch::app::detail {

// ---- dispatch ---------------------------------------------------------------------------

// Reads the queue when another process committed (the store watch's notice, confirmed by
// PRAGMA data_version), when a create slot of ours frees, and once a second for what comes
// due by time alone (not_before, deadlines) or was missed (a filesystem without notices).
awaitable<void> Daemon::dispatcher() {
  watch_store();
  bool changed_elsewhere = true;  // start-up: read everything once
  auto last_tick = SteadyClock::now() - std::chrono::hours{1};
  while (!stopping_) {
    const bool tick = SteadyClock::now() - last_tick >= std::chrono::seconds{1};
    // Another process's commit shows in data_version. Looked at when a change notice (or its
    // rechecks) is due, on the tick, and always without a watch; not when the wake-up is only
    // a finished flow of ours.
    const auto recheck = recheck_.next();
    if (!store_watch_ || tick || look_now_ || (recheck && *recheck <= core::wall_now())) {
      if (const auto version = changes_->change_mark();
          version && version.value() != seen_data_version_) {
        seen_data_version_ = version.value();
        changed_elsewhere = true;
      }
      look_now_ = false;
      recheck_.looked(core::wall_now());
    }
    if (tick) {
      last_tick = SteadyClock::now();
      enforce_deadlines();
    }
    // Pauses and cancellations are written by other processes (the CLI), so they can only
    // have changed with data_version; a cancellation we could not finish yet is retried on
    // the tick.
    if (changed_elsewhere) sync_pauses();
    if (changed_elsewhere || (tick && cancellations_pending_)) handle_cancellations();
    const auto refill = refill_at();
    if (changed_elsewhere || tick || (refill && *refill <= SteadyClock::now())) {
      dispatch_requested_ = false;
      last_refill_ = SteadyClock::now();
      dispatch_ready_jobs(/*any_org=*/changed_elsewhere || tick);
    }
    changed_elsewhere = false;
    if (options_.until_idle && idle_or_stuck()) break;
    co_await dispatch_wakeup_.wait_for(until_next_look(last_tick));
  }
  if (store_watch_) {
    changes_->set_write_hooks({});
    store_watch_->stop();
  }
}

void Daemon::watch_store() {
  if (!config_.jobs.queue_watch) return;
  auto watch = StoreWatch::start(io_, config_.database.path, [this] { on_store_notice(); });
  if (!watch) {
    spdlog::warn("cannot watch {} for other processes' commits ({}); checking every {} ms",
                 config_.database.path, watch.error().message(),
                 config_.jobs.queue_check_interval.count());
    return;
  }
  store_watch_ = std::move(*watch);
  changes_->set_write_hooks({
      // Notices still unread before a write of ours are other processes': act on them.
      .before = [this] { if (store_watch_->take_pending()) on_store_notice(); },
      .after = [this] { absorb_own_write(); },
  });
}

void Daemon::on_store_notice() {
  recheck_.on_notice(core::wall_now());
  dispatch_wakeup_.notify();
}

// Our own commits raise notices too, and each notice is worth five looks over 250 ms. They are
// read and dropped right after the write instead. Another process's commit is still caught
// whenever it happened: begun after this, it raises its own notice; still holding the write
// lock, it starts the usual looks; already over, it shows in data_version now.
void Daemon::absorb_own_write() {
  (void)store_watch_->take_pending();
  const auto locked = changes_->commit_in_flight_elsewhere();
  if (!locked || *locked) {
    on_store_notice();
    return;
  }
  const auto version = changes_->change_mark();
  if (!version || *version != seen_data_version_) {
    look_now_ = true;
    dispatch_wakeup_.notify();
  }
}

core::Duration Daemon::until_next_look(SteadyClock::time_point last_tick) const {
  auto wait = config_.jobs.queue_check_interval;
  if (store_watch_) {
    wait = std::chrono::ceil<core::Duration>(last_tick + std::chrono::seconds{1} -
                                             SteadyClock::now());
    if (const auto due = recheck_.next()) wait = std::min(wait, until(*due, core::wall_now()));
  }
  if (const auto refill = refill_at()) {
    wait = std::min(wait, std::chrono::ceil<core::Duration>(*refill - SteadyClock::now()));
  }
  return std::max(wait, core::Duration{0});
}

// Creates already wait at the gate for tokens or slots: a flow started now would queue behind
// them. Any org will do: the dispatcher refills all of them at once.
bool Daemon::creates_queue_at_gate() const {
  for (const auto& [id, org] : orgs_) {
    if (org->creates_waiting >= 2) return true;
  }
  return false;
}

// When to start flows for the create slots that finished flows freed. At once, unless creates
// queue at the gate: then at most every kGatedCreateBatching, so that the intents of the flows
// started together share one fsynced transaction rather than paying for one each. Those jobs
// would have queued behind the waiting creates anyway, and those spend the tokens that accrue
// meanwhile: the pause costs no throughput while the slots hold more creates than a pause's
// worth of tokens.
std::optional<SteadyClock::time_point> Daemon::refill_at() const {
  if (!dispatch_requested_) return std::nullopt;
  if (!creates_queue_at_gate()) return SteadyClock::now();
  return last_refill_ + kGatedCreateBatching;
}

// Queued rows worth reading now: the free create slots of the organisations we know, plus
// (with `any_org`) one org's worth for jobs of organisations not seen yet. Reading (and
// decoding) more after every finished create was a measurable share of the daemon's CPU.
std::size_t Daemon::claim_limit(bool any_org) const {
  const auto per_org = static_cast<std::size_t>(config_.create.max_concurrent_creates);
  std::size_t free = any_org ? per_org : 0;
  for (const auto& [id, org] : orgs_) {
    const int creates = config_.create.max_concurrent_creates - org->creating;
    const int sessions = config_.create.max_active_sessions - org->creating - org->active_sessions;
    free += static_cast<std::size_t>(std::max(0, std::min(creates, sessions)));
  }
  return std::min<std::size_t>(free, 512);
}

// Paused organisations, persisted or only known here, are left out of the claim query.
store::QueueStore::ClaimFilter Daemon::claim_filter() const {
  store::QueueStore::ClaimFilter filter{.default_org = config_.api.org_id};
  for (const auto& [id, reason] : pauses_) {
    if (id != "*") filter.paused_orgs.push_back(id);
  }
  for (const auto& [id, org] : orgs_) {
    if (org->paused_reason && !pauses_.contains(id)) filter.paused_orgs.push_back(id);
  }
  return filter;
}

// `any_org`: also read rows of organisations not seen yet. A freed slot of ours does not
// need that (those rows were read when they appeared, or are read on the next tick).
void Daemon::dispatch_ready_jobs(bool any_org) {
  const auto now = core::wall_now();
  if (global_pause_ || !lease_ok()) return;
  const std::size_t limit = claim_limit(any_org);
  if (limit == 0) return;
  auto jobs = store_->claimable(now, limit, claim_filter());
  if (!jobs) {
    spdlog::error("cannot read queued jobs: {}", jobs.error().message());
    return;
  }
  for (auto& job : *jobs) {
    if (in_progress_.contains(job.id)) continue;
    Org& org = org_for(job);
    if (paused(org)) continue;
    if (job.definition.controls.fan_out_enterprise) {
      in_progress_.insert(job.id);
      net::co_spawn(io_, fan_out(org, std::move(job)), net::detached);
      continue;
    }
    const int busy = org.creating + org.active_sessions;
    if (busy >= config_.create.max_active_sessions ||
        org.creating >= config_.create.max_concurrent_creates) {
      continue;
    }
    launch_creation(std::move(job), /*resumed=*/false);
  }
}

bool Daemon::idle_or_stuck() {
  // Writes still waiting for the database are work too: exiting would leave them to a restart.
  if (!in_progress_.empty() || batches_in_flight_ > 0 || !pending_writes_.empty()) return false;
  for (const auto& [id, org] : orgs_) {
    if (org->planner.size() > 0) return false;
  }
  const auto counts = store_->count_by_state();
  if (!counts) return false;
  const auto count = [&](core::JobState state) {
    const auto it = counts->find(state);
    return it == counts->end() ? std::int64_t{0} : it->second;
  };
  const auto queued = count(core::JobState::queued);
  if (count(core::JobState::creating) + count(core::JobState::running) > 0) return false;
  if (queued == 0) {
    spdlog::info("idle: no job queued or in flight");
    request_stop("idle");
    return true;
  }
  // Queued jobs remain but nothing runs: stuck if a pause is all that keeps ready jobs back
  // (otherwise they wait for a scheduled start, which is not stuck).
  const auto now = core::wall_now();
  const auto filter = claim_filter();
  const auto allowed = store_->claimable(now, 1, filter);
  const auto any = store_->claimable(now, 1);
  const bool ready_jobs_exist = any && !any->empty();
  if (ready_jobs_exist && (global_pause_ || (allowed && allowed->empty()))) {
    std::string paused;
    for (const auto& [org, reason] : pauses_) {
      paused += (paused.empty() ? "" : "; ") + (org == "*" ? std::string{"every organisation"} : org) +
                " (" + reason + ")";
    }
    for (const auto& org : filter.paused_orgs) {
      if (!pauses_.contains(org)) paused += (paused.empty() ? "" : "; ") + org;
    }
    spdlog::error("{} job(s) cannot start: paused: {}", queued, paused);
    exit_code_ = 1;
    request_stop("idle with paused organisations");
    return true;
  }
  return false;
}

// ---- deadlines and cancellations ----------------------------------------------------------

void Daemon::enforce_deadlines() {
  auto due = store_->past_deadline(core::wall_now());
  if (!due) return;
  for (auto& job : *due) {
    end_by_termination(std::move(job), core::JobState::timed_out,
                       "deadline passed: the session was terminated", /*archive=*/false);
  }
}

void Daemon::handle_cancellations() {
  auto requested = store_->cancel_requests();
  if (!requested) return;
  // Some may still be creating, or their DELETE may fail: look again on the next tick.
  cancellations_pending_ = !requested->empty();
  for (auto& job : *requested) {
    const bool archive = job.cancel_requested == 2;
    end_by_termination(std::move(job), core::JobState::cancelled,
                       "cancelled by an operator: the session was terminated", archive);
  }
}

// Ends a job that may have a live session: queued ones at once, running ones after a DELETE
// of the session. A job still being created is left for the next tick (once it runs).
void Daemon::end_by_termination(core::JobRecord job, core::JobState state, std::string reason,
                                bool archive) {
  const auto now = core::wall_now();
  if (job.state == core::JobState::queued && !in_progress_.contains(job.id)) {
    finish_job(job, state,
               state == core::JobState::timed_out ? "deadline passed before the job started"
                                                  : "cancelled by an operator before it started");
    count_job_end(state);
    spdlog::info("job '{}': {} before it started", job.definition.key, core::to_string(state));
    return;
  }
  if (job.state != core::JobState::running || !job.session_id) return;
  if (!terminating_.insert(job.id).second) return;
  net::co_spawn(io_, terminate(org_for(job), std::move(job), state, std::move(reason), archive),
                net::detached);
}

awaitable<void> Daemon::terminate(Org& org, core::JobRecord job, core::JobState state,
                                  std::string reason, bool archive) {
  ++batches_in_flight_;
  const std::string session_id = *job.session_id;
  if (auto gated = co_await gated_call(
          org, core::RequestKind::other, "terminate",
          [&] { return client_.terminate_session(org.org_id, session_id, archive); })) {
    auto& answer = *gated;
    const auto now = core::wall_now();
    if (answer.outcome.ok() || answer.outcome.cls == core::CallClass::not_found) {
      if (answer.value) {
        const std::vector<store::StatusUpdate> update{store::StatusUpdate{
            .job_id = job.id, .session = std::move(*answer.value), .new_state = state,
            .reason = reason}};
        commit_updates(update, now);
      } else {
        finish_job(job, state, reason);
      }
      count_job_end(state);
      spdlog::info("job '{}': {}: session {} terminated", job.definition.key,
                   core::to_string(state), session_id);
      if (tracked_.contains(session_id)) untrack_session(org, session_id);
    } else {
      spdlog::warn("job '{}': terminating session {} failed ({}); will retry", job.definition.key,
                   session_id, answer.outcome.detail);
    }
  }
  terminating_.erase(job.id);
  --batches_in_flight_;
}

}  // namespace devin_orch::app::detail
