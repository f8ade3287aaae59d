// The organisations' gates and pauses: parks and wakes requests as core::GateAdmission decides,
// records each call's metrics, and keeps pauses in step with org_pauses.
#include "org_gates.hpp"

#include "devin_orch/app/logging.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace devin_orch::app::detail {

Org::Org(std::string id, const Config& config, core::Random& random, Runtime& runtime)
    : org_id{std::move(id)},
      admission{core::RateGatePolicy{.requests_per_minute = config.rate.requests_per_minute,
                                     .burst = config.rate.burst,
                                     .concurrency_hold = config.rate.concurrency_hold},
                config.api.max_in_flight, core::wall_now()},
      planner{core::PollPlannerPolicy{
                  .cadence = {.initial = config.poll.initial_delay,
                              .max = config.poll.max_delay,
                              .multiplier = config.poll.multiplier,
                              .jitter = config.poll.jitter},
                  .incremental_max = config.poll.incremental_max_delay,
                  .max_batch = static_cast<std::size_t>(config.poll.batch_size),
                  // Wide enough to gather sessions the jitter spread apart (polling one a
                  // little early costs nothing), capped so none is polled much too early.
                  .batch_window = std::min(
                      core::Duration{5'000},
                      std::max(config.poll.initial_delay / 4,
                               core::Duration{static_cast<core::Duration::rep>(
                                   static_cast<double>(config.poll.initial_delay.count()) *
                                   config.poll.jitter)}))},
              random},
      // v1 has no updated_after (nor any list by ids): every poll there reads a whole session.
      sync{core::IncrementalPollPolicy{
          .full_every = api_version_for(config.api, org_id) == core::ApiVersion::v1
                            ? core::Duration{0}
                            : config.poll.full_every}},
      poll_failures{core::BackoffPolicy{.initial = config.create.retry_initial,
                                        .max = config.create.retry_max,
                                        .multiplier = 2.0},
                    config.poll.initial_delay / 2},
      poll_wakeup{runtime} {
  planner.set_incremental(sync.enabled());
}

OrgGates::OrgGates(Services& services, StoreWriter& writer, const OrgLeases& lease)
    : services_{services}, writer_{writer}, lease_{lease} {}

Org& OrgGates::named(const std::string& org_id) {
  auto it = orgs_.find(org_id);
  if (it == orgs_.end()) {
    it = orgs_.emplace(org_id, std::make_unique<Org>(org_id, services_.config, services_.random,
                                                     services_.runtime))
             .first;
    services_.metrics.add_organization(org_id);
    if (const auto pause = pauses_.find(org_id); pause != pauses_.end()) {
      it->second->paused_reason = pause->second;
    }
    apply_hold(*it->second);
    if (on_new_org_) on_new_org_(*it->second);
  }
  return *it->second;
}

void OrgGates::apply_hold(Org& org) {
  const auto hold = holds_.find(org.org_id);
  if (hold == holds_.end()) return;
  const auto now = core::wall_now();
  if (hold->second <= now || hold->second <= org.hold_saved_until) return;
  spdlog::info("org {}: honouring the wait the server announced before this daemon took it: no "
               "request for {} ms",
               org.org_id, (hold->second - now).count());
  org.admission.hold(now, hold->second);
  org.hold_saved_until = hold->second;
}

bool OrgGates::taking_over(const std::string& org_id) {
  if (!sync_pauses() || !load_holds()) return false;  // pauses: of orgs known already too
  // An org known already (worked here before another daemon held it) takes the stored wait as
  // a new one does in named(): its gate was made before that wait was announced.
  if (const auto it = orgs_.find(org_id); it != orgs_.end()) apply_hold(*it->second);
  return true;
}

awaitable<bool> OrgGates::pass_gate(Org& org, core::RequestKind kind) {
  if (services_.runtime.stopping()) co_return false;
  const auto arrival = org.admission.arrive(kind, core::wall_now(), lease_.may_act(org.org_id));
  wake_parked(org);
  if (arrival.admission.step == core::AdmissionStep::go) co_return true;
  core::Admission admission = arrival.admission;
  net::steady_timer parked{services_.runtime.io()};
  org.parked.emplace(arrival.ticket, &parked);
  bool admitted = false;
  for (;;) {
    if (admission.step == core::AdmissionStep::wait_until) {
      parked.expires_after(until(admission.until, core::wall_now()));
    } else {
      parked.expires_at(net::steady_timer::time_point::max());  // until woken
    }
    if (!co_await services_.runtime.wait(parked)) break;
    admission = org.admission.next(arrival.ticket, core::wall_now(), lease_.may_act(org.org_id));
    if (admission.step == core::AdmissionStep::go) {
      admitted = true;
      break;
    }
    wake_parked(org);
  }
  org.parked.erase(arrival.ticket);
  if (!admitted) org.admission.leave(arrival.ticket);
  wake_parked(org);
  // The poller holds back early polls while creates wait for tokens; tell it when none do.
  if (kind == core::RequestKind::create && org.admission.waiting(kind) == 0) {
    org.poll_wakeup.notify();
  }
  co_return admitted;
}

void OrgGates::wake_parked(Org& org) {
  for (const auto ticket : org.admission.take_wakeups()) {
    if (const auto it = org.parked.find(ticket); it != org.parked.end()) it->second->cancel();
  }
}

void OrgGates::release(Org& org, const core::CallOutcome& outcome) {
  const auto now = core::wall_now();
  org.admission.finished(outcome, now, services_.random);
  wake_parked(org);
  save_hold(org, outcome, now);
  if (outcome.cls != core::CallClass::rate_limited) {
    if (const auto wait = outcome.requested_wait()) {
      services_.metrics.server_wait(outcome.http_status);
      log_event(spdlog::level::warn, {.event = "server_wait", .org_id = org.org_id},
                "org {}: HTTP {} asks to wait {} ms ({}); holding requests", org.org_id,
                outcome.http_status, wait->count(), outcome.detail);
    }
    return;
  }
  services_.metrics.rate_limited(outcome.concurrency_cap);
  log_event(spdlog::level::warn, {.event = "rate_limited", .org_id = org.org_id},
            "org {}: 429 ({}); pausing requests{}", org.org_id, outcome.detail,
            outcome.retry_after ? fmt::format(" for {} ms", outcome.retry_after->count())
                                : std::string{" with backoff"});
}

// A pause of every request that the server asked for (a Retry-After on any answer, or a 429's
// backoff) is saved when it is a second or more, so that a restart honours it: a daemon
// restarted inside a 30 s Retry-After would otherwise send at once. Shorter ones are not worth
// a write each; a concurrency-cap hold is not saved either (a session ending lifts it, and
// the cap answers again if it still holds).
void OrgGates::save_hold(Org& org, const core::CallOutcome& outcome, TimePoint now) {
  if (outcome.http_status == 0 || outcome.concurrency_cap) return;
  // `now` is the gate's own: read again, a millisecond gone by would leave an announced 1 s
  // wait just under the threshold, unsaved.
  const TimePoint until = org.admission.gate().paused_until();
  if (until - now < core::Duration{1'000} || until <= org.hold_saved_until) return;
  org.hold_saved_until = until;
  auto reason = fmt::format("HTTP {}{}", outcome.http_status,
                            outcome.retry_after
                                ? fmt::format(": Retry-After {} ms", outcome.retry_after->count())
                                : std::string{": backoff"});
  writer_.write("the wait the server asked of org " + org.org_id,
                [this, id = org.org_id, until, reason = std::move(reason), now] {
                  return services_.store.hold_org(id, until, reason, now);
                });
}

void OrgGates::observe_call(ApiOperation operation, const core::CallOutcome& outcome,
                            SteadyClock::time_point started) {
  const std::chrono::duration<double> took = SteadyClock::now() - started;
  spdlog::trace("api {}: {} (HTTP {}, {:.1f} ms){}{}", to_string(operation),
                core::to_string(outcome.cls), outcome.http_status, took.count() * 1000.0,
                outcome.detail.empty() ? "" : ": ", outcome.detail);
  services_.metrics.api_call(operation, outcome.cls, took.count());
}

void OrgGates::session_ended(Org& org) {
  org.admission.session_ended(core::wall_now());
  wake_parked(org);
}

void OrgGates::lease_resumed() {
  for (auto& [id, org] : orgs_) {
    org->admission.lease_resumed();
    wake_parked(*org);
  }
}

bool OrgGates::creates_queue_at_gate() const {
  for (const auto& [id, org] : orgs_) {
    if (org->admission.waiting(core::RequestKind::create) >= 2) return true;
  }
  return false;
}

int OrgGates::requests_in_flight() const {
  int total = 0;
  for (const auto& [id, org] : orgs_) total += org->admission.in_flight();
  return total;
}

void OrgGates::pause(Org& org, const std::string& reason) {
  if (org.paused_reason) return;
  org.paused_reason = reason;
  save_pause(org);
  log_event(spdlog::level::err, {.event = "org_paused", .org_id = org.org_id},
            "org {}: new sessions paused: {} (lift with `devin-orch resume --org {}`)",
            org.org_id, reason, org.org_id);
}

// A pause the database did not take stays in memory (pause_unsaved) and is saved again on the
// next sync, so the operator can see it and lift it.
void OrgGates::save_pause(Org& org) {
  const auto saved =
      services_.store.pause_org(org.org_id, *org.paused_reason, "daemon", core::wall_now());
  org.pause_unsaved = !saved;
  if (!saved) {
    writer_.failed("the pause of org " + org.org_id, saved.error());
  } else {
    writer_.succeeded();
  }
}

bool OrgGates::load_holds() {
  const auto rows = services_.store.org_holds(core::wall_now());
  if (!rows) {
    writer_.failed("the waits the server announced (org_holds)", rows.error());
    return false;
  }
  holds_.clear();
  for (const auto& hold : *rows) holds_[hold.org_id] = core::from_epoch_ms(hold.until_ms);
  return true;
}

void OrgGates::pause_user(Org& org, const std::string& user_id, const std::string& reason) {
  const auto same = [&](const store::UserPause& p) {
    return p.org_id == org.org_id && p.user_id == user_id;
  };
  if (std::ranges::any_of(user_pauses_, same) ||
      std::ranges::any_of(unsaved_user_pauses_, same)) {
    return;
  }
  const auto now = core::wall_now();
  store::UserPause pause{.org_id = org.org_id, .user_id = user_id, .reason = reason,
                         .paused_at_ms = core::to_epoch_ms(now)};
  log_event(spdlog::level::err,
            {.event = "user_paused", .org_id = org.org_id, .user_id = user_id},
            "org {}: new sessions created as user {} paused: {} (lift with `devin-orch resume "
            "--org {} --user {}`)",
            org.org_id, user_id, reason, org.org_id, user_id);
  const auto saved = services_.store.pause_user(org.org_id, user_id, reason, now);
  if (!saved) {
    writer_.failed("the pause of user " + user_id + " in org " + org.org_id, saved.error());
    unsaved_user_pauses_.push_back(std::move(pause));
  } else {
    writer_.succeeded();
    user_pauses_.push_back(std::move(pause));
  }
}

void OrgGates::lift_pause(Org& org, const std::string& reason) {
  const auto lifted = services_.store.lift_daemon_pause(org.org_id, reason);
  if (!lifted) {
    writer_.failed("lifting the pause of org " + org.org_id, lifted.error());
    return;
  }
  writer_.succeeded();
  if (org.paused_reason == reason) org.paused_reason.reset();
  org.pause_unsaved = false;
  pauses_.erase(org.org_id);
}

bool OrgGates::sync_pauses() {
  std::erase_if(unsaved_user_pauses_, [this](const store::UserPause& p) {
    return services_.store.pause_user(p.org_id, p.user_id, p.reason,
                                      core::from_epoch_ms(p.paused_at_ms))
        .has_value();
  });
  if (auto users = services_.store.paused_users(); users) user_pauses_ = std::move(*users);
  const auto rows = services_.store.paused_orgs();
  if (!rows) return false;
  pauses_ = *rows;
  const auto global = rows->find("*");
  global_pause_ = global == rows->end() ? std::nullopt : std::optional{global->second};
  for (const auto& [id, org] : orgs_) {
    const auto row = rows->find(id);
    if (row == rows->end() && org->pause_unsaved) {
      save_pause(*org);
    } else if (row == rows->end() && org->paused_reason) {
      log_event(spdlog::level::info, {.event = "org_resumed", .org_id = id}, "org {}: resumed",
                id);
      org->paused_reason.reset();
    } else if (row != rows->end()) {
      org->paused_reason = row->second;
    }
  }
  return true;
}

store::QueueStore::ClaimFilter OrgGates::claim_filter() const {
  store::QueueStore::ClaimFilter filter{.default_org = services_.config.api.org_id};
  for (const auto& [id, reason] : pauses_) {
    if (id != "*") filter.paused_orgs.push_back(id);
  }
  for (const auto& [id, org] : orgs_) {
    if (org->paused_reason && !pauses_.contains(id)) filter.paused_orgs.push_back(id);
  }
  for (const auto* pauses : {&user_pauses_, &unsaved_user_pauses_}) {
    for (const auto& pause : *pauses) filter.paused_users.emplace_back(pause.org_id, pause.user_id);
  }
  filter.only_orgs = lease_.claimable();  // another daemon works the others
  return filter;
}

}  // namespace devin_orch::app::detail
