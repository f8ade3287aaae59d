// The organisations' gates and pauses: parks and wakes requests as core::GateAdmission decides,
// records each call's metrics, and keeps pauses in step with org_pauses.
#include "org_gates.hpp"

#include <spdlog/spdlog.h>

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
      sync{core::IncrementalPollPolicy{.full_every = config.poll.full_every}},
      poll_failures{core::BackoffPolicy{.initial = config.create.retry_initial,
                                        .max = config.create.retry_max,
                                        .multiplier = 2.0},
                    config.poll.initial_delay / 2},
      poll_wakeup{runtime} {}

OrgGates::OrgGates(Services& services, StoreWriter& writer, const QueueLease& lease)
    : services_{services}, writer_{writer}, lease_{lease} {}

Org& OrgGates::named(const std::string& org_id) {
  auto it = orgs_.find(org_id);
  if (it == orgs_.end()) {
    it = orgs_.emplace(org_id, std::make_unique<Org>(org_id, services_.config, services_.random,
                                                     services_.runtime))
             .first;
    if (const auto pause = pauses_.find(org_id); pause != pauses_.end()) {
      it->second->paused_reason = pause->second;
    }
    if (on_new_org_) on_new_org_(*it->second);
  }
  return *it->second;
}

awaitable<bool> OrgGates::pass_gate(Org& org, core::RequestKind kind) {
  if (services_.runtime.stopping()) co_return false;
  const auto arrival = org.admission.arrive(kind, core::wall_now(), lease_.may_act());
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
    admission = org.admission.next(arrival.ticket, core::wall_now(), lease_.may_act());
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
  org.admission.finished(outcome, core::wall_now(), services_.random);
  wake_parked(org);
  if (outcome.cls != core::CallClass::rate_limited) return;
  services_.count("devin_orch_rate_limited_total", "429 answers, by kind.",
                  {{"kind", outcome.concurrency_cap ? "concurrency_cap" : "rate"}});
  spdlog::warn("org {}: 429 ({}); pausing requests{}", org.org_id, outcome.detail,
               outcome.retry_after ? fmt::format(" for {} ms", outcome.retry_after->count())
                                   : std::string{" with backoff"});
}

void OrgGates::observe_call(std::string_view operation, const core::CallOutcome& outcome,
                            SteadyClock::time_point started) {
  const std::string op{operation};
  spdlog::trace("api {}: {} (HTTP {}, {:.1f} ms){}{}", op, core::to_string(outcome.cls),
                outcome.http_status,
                std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count(),
                outcome.detail.empty() ? "" : ": ", outcome.detail);
  services_.metrics
      .counter("devin_orch_api_requests_total", "Devin API requests by operation and outcome.",
               {{"operation", op}, {"outcome", std::string{core::to_string(outcome.cls)}}})
      .inc();
  services_.metrics
      .histogram("devin_orch_api_request_duration_seconds",
                 "Devin API request latency, including connection set-up.",
                 server::default_latency_buckets(), {{"operation", op}})
      .observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
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
  spdlog::error("org {}: new sessions paused: {} (lift with `devin-orch resume --org {}`)",
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

void OrgGates::sync_pauses() {
  const auto rows = services_.store.paused_orgs();
  if (!rows) return;
  pauses_ = *rows;
  const auto global = rows->find("*");
  global_pause_ = global == rows->end() ? std::nullopt : std::optional{global->second};
  for (const auto& [id, org] : orgs_) {
    const auto row = rows->find(id);
    if (row == rows->end() && org->pause_unsaved) {
      save_pause(*org);
    } else if (row == rows->end() && org->paused_reason) {
      spdlog::info("org {}: resumed", id);
      org->paused_reason.reset();
    } else if (row != rows->end()) {
      org->paused_reason = row->second;
    }
  }
}

store::QueueStore::ClaimFilter OrgGates::claim_filter() const {
  store::QueueStore::ClaimFilter filter{.default_org = services_.config.api.org_id};
  for (const auto& [id, reason] : pauses_) {
    if (id != "*") filter.paused_orgs.push_back(id);
  }
  for (const auto& [id, org] : orgs_) {
    if (org->paused_reason && !pauses_.contains(id)) filter.paused_orgs.push_back(id);
  }
  return filter;
}

}  // namespace devin_orch::app::detail
