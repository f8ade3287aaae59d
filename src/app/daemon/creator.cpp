// The daemon's creation flows: each job's creation machine driven against the store and the
// API, and the fan-out of enterprise jobs.
#include "creator.hpp"

#include "tag_lookup.hpp"

#include "devin_orch/app/config/job_api.hpp"
#include "devin_orch/app/daemon/session_secrets.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/core/session_family.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace devin_orch::app::detail {

Creator::Creator(Services& services, StoreWriter& writer, OrgGates& gates, Callbacks callbacks)
    : services_{services},
      writer_{writer},
      gates_{gates},
      callbacks_{std::move(callbacks)},
      policy_{.max_attempts = services.config.create.max_attempts,
              .retry = {.initial = services.config.create.retry_initial,
                        .max = services.config.create.retry_max,
                        .multiplier = 2.0},
              .settle_delay = services.config.create.settle_delay,
              .settle_window = services.config.create.settle_window,
              // As long as a re-created job is watched for a late-listed first session.
              .last_watch = services.config.create.duplicate_watch,
              .max_cut_short = services.config.create.max_cut_short},
      groups_{services.config.concurrency},
      intents_{services.runtime.io(),
               [this](std::span<const store::IntentWrite> writes) {
                 return services_.store.commit_intents(writes, core::wall_now());
               }},
      // While creates queue at the gate, sessions answered within kGatedCreateBatching share
      // a transaction: one per create was the largest share of the daemon's CPU with the
      // budget pacing creates. The flow waits for its commit, so nothing about the job changes
      // meanwhile but the moment it starts being polled.
      sessions_{services.runtime.io(),
                [this](std::span<const store::SessionWrite> writes) {
                  auto outcomes = services_.store.commit_sessions(writes, core::wall_now());
                  if (outcomes || writes.size() == 1) return outcomes;
                  // One failed statement fails the whole transaction: record each on its
                  // own so that one bad write does not strand every session of the batch.
                  std::vector<store::StoreResult<void>> each;
                  for (const auto& write : writes) {
                    auto one = services_.store.commit_sessions(std::span{&write, 1},
                                                               core::wall_now());
                    each.push_back(one ? one->front() : store::StoreResult<void>{one.error()});
                  }
                  return decltype(outcomes){std::move(each)};
                },
                [this] {
                  return gates_.creates_queue_at_gate() ? kGatedCreateBatching
                                                        : std::chrono::milliseconds{0};
                }} {}

void Creator::launch(core::JobRecord job, bool resumed) {
  Org& org = gates_.for_job(job);
  ++org.creating;
  in_progress_.insert(job.id);
  services_.runtime.spawn(run(org, std::move(job), resumed));
}

void Creator::launch_fan_out(core::JobRecord job) {
  Org& org = gates_.for_job(job);
  in_progress_.insert(job.id);
  services_.runtime.spawn(fan_out(org, std::move(job)));
}

void Creator::ended(std::int64_t job_id) {
  in_progress_.erase(job_id);
  callbacks_.flow_ended();
}

awaitable<void> Creator::run(Org& org, core::JobRecord job, bool resumed) {
  auto policy = policy_;
  if (job.definition.controls.max_attempts) {
    policy.max_attempts = *job.definition.controls.max_attempts;
  }
  const core::CreationSnapshot snapshot{.attempts = job.attempts,
                                        .cut_short = job.cut_short,
                                        .intent_at_ms = job.intent_at_ms};
  std::string tag = job.creation_tag.empty()
                        ? core::creation_tag(job.definition.key, job.generation)
                        : job.creation_tag;
  Flow flow{.job = std::move(job),
            .tag = std::move(tag),
            .machine = core::CreationMachine{policy, snapshot, services_.random},
            .claim = !resumed};
  const std::string& key = flow.job.definition.key;
  flow.action = resumed ? flow.machine.resume(core::ResumeAfterRestart{core::wall_now()})
                        : flow.machine.resume(core::StartFresh{core::wall_now()});
  // Strictly before any intent of this flow, so the exactly-once path (intent, create, record)
  // is the same with attachments as without; a resumed flow finds every URL stored.
  bool running = co_await attachments_step(org, flow);
  while (running) {
    const core::CreationAction& action = flow.action;
    using Kind = core::CreationActionKind;
    switch (action.kind) {
      case Kind::commit_intent: running = co_await commit_intent_step(flow); break;
      case Kind::send_create: running = co_await send_create_step(org, flow); break;
      case Kind::lookup: running = co_await lookup_step(org, flow); break;
      case Kind::wait: {
        if (action.pause_org) gates_.pause(org, action.reason);
        if (!co_await services_.runtime.sleep_for(action.delay)) {
          running = false;
          break;
        }
        flow.action = flow.machine.resume(core::WaitElapsed{core::wall_now()});
        break;
      }
      case Kind::commit_session: running = co_await commit_session_step(org, flow); break;
      case Kind::requeue: {
        writer_.write("job '" + key + "' back to queued",
                      [this, id = flow.job.id, attempt = action.attempt, reason = action.reason,
                       now = core::wall_now()] {
                        return services_.store.requeue(id, attempt, reason, now);
                      });
        if (action.pause_org) gates_.pause(org, action.reason);
        log_event(spdlog::level::warn,
                  {.event = "job_requeued", .key = key, .org_id = org.org_id, .state = "queued"},
                  "job '{}': back to queued: {}", key, action.reason);
        running = false;
        break;
      }
      case Kind::give_up: {
        writer_.finish_job(flow.job, core::JobState::dead, action.reason);
        services_.metrics.job_ended(core::JobState::dead);
        if (action.pause_org) gates_.pause(org, action.reason);
        log_event(spdlog::level::err,
                  {.event = "job_ended", .key = key, .org_id = org.org_id, .state = "dead"},
                  "job '{}': dead: {}", key, action.reason);
        running = false;
        break;
      }
      case Kind::done:
        running = false;
        break;
    }
  }
  --org.creating;
  ended(flow.job.id);
}

awaitable<bool> Creator::commit_intent_step(Flow& flow) {
  const std::string& key = flow.job.definition.key;
  const std::int64_t attempt = flow.action.attempt;
  // Shared with the intents of jobs dispatched in the same turn: one fsync for a burst.
  store::IntentWrite intent{.job_id = flow.job.id,
                            .attempt = attempt,
                            .claim = flow.claim,
                            .tag = flow.tag,
                            .intent_at_ms = flow.action.intent_at_ms.value_or(0),
                            .cut_short = flow.action.cut_short};
  if (const auto& group = flow.job.definition.spec.concurrency_key; flow.claim && group) {
    if (const core::ConcurrencyLimit* limit = groups_.limit_for(*group)) {
      intent.group = store::GroupLimit{.key = *group, .max_active = limit->max_active};
    }
  }
  auto committed = co_await intents_.commit(intent);
  // A full disk or a lock held elsewhere passes: keep the flow (and the job's place) and try
  // again, sending nothing meanwhile. A job already in creating would otherwise be left there,
  // neither dispatched nor looked up, until the next start.
  while (!committed && storage_may_recover(committed.error())) {
    writer_.failed("the create intent of job '" + key + "'", committed.error());
    if (!co_await services_.runtime.sleep_for(std::chrono::seconds{1})) co_return false;
    auto again = intent;
    committed = co_await intents_.commit(std::move(again));
  }
  if (!committed && committed.error() == errc::sync_failed) {
    // The intent may be committed yet never reach the disk, and no later fsync can be
    // trusted: send nothing more. The restart reconciles by tag before any create.
    log_event(spdlog::level::critical, {.event = "fsync_failed", .key = key},
              "job '{}': {}; stopping", key, committed.error().detail);
    callbacks_.fatal("an fsync of the database failed");
    co_return false;
  }
  if (!committed && committed.error() == errc::group_full) {
    // Another daemon's job took the group's last place since our dispatcher counted: the claim
    // did not happen, so the job is still queued and nothing was sent. The next dispatch counts
    // again and holds it (concurrency_held) until the group has room. Not a store failure.
    log_event(spdlog::level::info,
              {.event = "concurrency_refused", .key = key, .state = "queued"},
              "job '{}': concurrency group {} is full; the job waits in the queue", key,
              intent.group ? intent.group->key : std::string{});
    co_return false;
  }
  if (!committed) {
    writer_.failed("the create intent of job '" + key + "'", committed.error());
    co_return false;
  }
  writer_.succeeded();
  flow.claim = false;
  log_event(spdlog::level::debug, {.event = "intent_committed", .key = key, .state = "creating"},
            "job '{}': intent committed (attempt {})", key, attempt);
  flow.action = flow.machine.resume(core::IntentCommitted{core::wall_now()});
  co_return true;
}

awaitable<bool> Creator::send_create_step(Org& org, Flow& flow) {
  const std::string& key = flow.job.definition.key;
  if (!co_await gates_.pass_gate(org, core::RequestKind::create)) {
    co_return false;  // stopping; the job stays `creating` and is reconciled later
  }
  // Jobs from the queue or an older run were validated for the API of their day: one using a
  // field this API lacks ends here, before anything is sent (the one rule, core::validate).
  if (const auto problem = validate_for_api(services_.config.api, flow.job.definition)) {
    gates_.release(org, core::CallOutcome{.cls = core::CallClass::not_sent});
    const std::string reason = problem->text();
    writer_.finish_job(flow.job, core::JobState::invalid, reason);
    services_.metrics.job_ended(core::JobState::invalid);
    log_event(spdlog::level::err,
              {.event = "job_ended", .key = key, .org_id = org.org_id, .state = "invalid"},
              "job '{}': invalid: {}", key, reason);
    co_return false;
  }
  std::string secret_error;
  auto secrets = resolve_session_secrets(flow.job.definition.spec.session_secrets, &secret_error);
  if (!secrets) {
    // Nothing was sent for this attempt, so no session can exist: safe to end here.
    gates_.release(org, core::CallOutcome{.cls = core::CallClass::not_sent});
    writer_.finish_job(flow.job, core::JobState::dead, secret_error);
    services_.metrics.job_ended(core::JobState::dead);
    log_event(spdlog::level::err,
              {.event = "job_ended", .key = key, .org_id = org.org_id, .state = "dead"},
              "job '{}': dead: {}", key, secret_error);
    co_return false;
  }
  const auto started = SteadyClock::now();
  auto answer = co_await services_.client_for(org.org_id).create_session(
      org.org_id, flow.job.definition.spec, flow.tag, services_.config.api.create_timeout,
      std::move(*secrets), flow.attachment_urls);
  gates_.release(org, answer.outcome);
  gates_.observe_call(ApiOperation::create, answer.outcome, started);
  std::optional<std::string> session_id;
  if (answer.value) {
    session_id = answer.value->session_id;
    flow.session = std::move(answer.value);
    flow.adopted = false;
    log_event(spdlog::level::info,
              {.event = "session_created", .key = key, .session_id = *session_id,
               .org_id = org.org_id, .status = flow.session->status},
              "job '{}': created session {}", key, *session_id);
  } else {
    log_event(spdlog::level::warn, {.event = "create_failed", .key = key, .org_id = org.org_id},
              "job '{}': create attempt {} failed ({}): {}", key, flow.action.attempt,
              core::to_string(answer.outcome.cls), answer.outcome.detail);
    if (!answer.outcome.ok()) {
      writer_.write("the last error of job '" + key + "'",
                    [this, id = flow.job.id, detail = answer.outcome.detail,
                     now = core::wall_now()] { return services_.store.note_error(id, detail, now); });
    }
  }
  flow.action = flow.machine.resume(
      core::CreateAnswered{answer.outcome, std::move(session_id), core::wall_now()});
  co_return true;
}

awaitable<bool> Creator::lookup_step(Org& org, Flow& flow) {
  const std::string& key = flow.job.definition.key;
  auto found = co_await lookup_by_tag(services_, gates_, org, flow.tag,
                                      flow.action.created_after.value_or(0));
  if (!found) co_return false;
  // Children of a session carry its tags; they are not the job's own sessions.
  std::erase_if(found->matches, [](const api::Session& s) { return core::is_child_of_another(s); });
  std::vector<std::string> ids;
  for (const auto& match : found->matches) ids.push_back(match.session_id);
  if (found->matches.size() > 1) {
    log_event(spdlog::level::err,
              {.event = "duplicate_sessions", .key = key, .session_id = ids.front(),
               .org_id = org.org_id},
              "job '{}': {} sessions carry tag {}; adopting the oldest ({})", key, ids.size(),
              flow.tag, ids.front());
  }
  services_.metrics.create_lookup(!found->matches.empty() ? LookupResult::found
                                  : found->outcome.ok()   ? LookupResult::absent
                                                          : LookupResult::failed);
  if (!found->matches.empty()) {
    flow.session = found->matches.front();
    flow.adopted = true;
    log_event(spdlog::level::info,
              {.event = "session_adopted", .key = key, .session_id = ids.front(),
               .org_id = org.org_id, .status = flow.session->status},
              "job '{}': lookup found session {}; adopting it", key, ids.front());
  }
  const bool absent = found->matches.empty() && found->outcome.ok();
  flow.action =
      flow.machine.resume(core::LookupAnswered{found->outcome, std::move(ids), core::wall_now()});
  if (absent && flow.action.kind == core::CreationActionKind::wait &&
      flow.action.reason.find("looking again") != std::string::npos) {
    spdlog::info("job '{}': no session carries tag {} yet; the list may show one late, so the "
                 "lookup goes on", key, flow.tag);
  } else if (absent) {
    spdlog::info("job '{}': lookup proved no session exists for tag {}", key, flow.tag);
  }
  co_return true;
}

awaitable<bool> Creator::commit_session_step(Org& org, Flow& flow) {
  const std::string& key = flow.job.definition.key;
  const std::optional<api::Session>& session = flow.session;
  if (!session || session->session_id != flow.action.session_id) {
    throw std::logic_error("commit_session without the matching session");
  }
  // Created again after a create that may have landed: the list may show that one late, so the
  // job's tag is checked for a second session for a while (see the poller).
  std::optional<std::int64_t> watch_until;
  if (flow.action.watch_duplicates) {
    watch_until = core::to_epoch_ms(core::wall_now() + services_.config.create.duplicate_watch);
  }
  const store::SessionWrite write{.job_id = flow.job.id,
                                  .session = *session,
                                  .adopted = flow.adopted,
                                  .duplicate_watch_until_ms = watch_until};
  auto first_try = write;
  auto committed = co_await sessions_.commit(std::move(first_try));
  // A session that exists but is not on record is neither polled nor ended by a deadline
  // until the next start: retried for as long as the cause may pass (a full disk, a CLI
  // holding the write lock past busy_timeout). Not when the job moved on (conflict, not found).
  for (int retry = 1; !committed && storage_may_recover(committed.error()); ++retry) {
    writer_.failed("session " + session->session_id + " of job '" + key + "'",
                   committed.error());
    if (!co_await services_.runtime.sleep_for(std::chrono::seconds{std::min(retry, 5)})) break;
    auto again = write;
    committed = co_await sessions_.commit(std::move(again));
  }
  const auto now = core::wall_now();
  if (!committed) {
    // The session exists but is not recorded: leave the job `creating`; the lookup at the
    // next start adopts it.
    writer_.failed("session " + session->session_id + " of job '" + key + "'",
                   committed.error());
    co_return false;
  }
  writer_.succeeded();
  flow.job.session_id = session->session_id;
  flow.job.creation_tag = flow.tag;
  flow.job.duplicate_watch_until_ms = watch_until;
  services_.metrics.session_tracked(flow.adopted);
  services_.metrics.queue_wait(
      std::max<double>(0, (core::to_epoch_ms(now) - flow.job.created_at_ms) / 1000.0));
  callbacks_.recorded(org, flow.job, *session, now);
  flow.action = flow.machine.resume(core::SessionCommitted{now});
  co_return true;
}

// One child job per organisation of the enterprise, keyed `<key>@<org_id>`; idempotent (the
// children's keys make a repeat after a crash add nothing).
awaitable<void> Creator::fan_out(Org& org, core::JobRecord job) {
  std::vector<std::string> org_ids;
  std::optional<std::string> after;
  int failures = 0;
  bool complete = false;
  while (!complete && !services_.runtime.stopping()) {
    auto gated = co_await gates_.call(
        org, core::RequestKind::other, ApiOperation::list_organizations,
        [&] { return services_.client_for(org.org_id).list_organizations(200, after); });
    if (!gated) break;
    auto& answer = *gated;
    if (!answer.value) {
      spdlog::warn("job '{}': listing the enterprise's organisations failed ({})",
                   job.definition.key, answer.outcome.detail);
      if (answer.outcome.cls == core::CallClass::forbidden ||
          answer.outcome.cls == core::CallClass::rejected) {
        writer_.finish_job(job, core::JobState::dead,
                           "fan-out: cannot list organisations: " + answer.outcome.detail);
        services_.metrics.job_ended(core::JobState::dead);
        break;
      }
      co_await services_.runtime.sleep_for(
          core::full_jitter_delay(policy_.retry, failures++, services_.random));
      continue;
    }
    for (const auto& organization : answer.value->items) org_ids.push_back(organization.org_id);
    complete = !answer.value->has_next_page || !answer.value->end_cursor;
    after = answer.value->end_cursor;
  }
  if (complete) {
    const auto now = core::wall_now();
    int added = 0;
    for (const auto& org_id : org_ids) {
      core::JobDefinition child = job.definition;
      child.key = job.definition.key + "@" + org_id;
      child.org_id = org_id;
      child.controls.fan_out_enterprise = false;
      const auto result = services_.store.add_job(child, "fan-out:" + job.definition.key, now,
                                                  job.definition.key);
      if (!result) {
        // The parent stays in flight: a later run fans out again (the children's keys make
        // that idempotent).
        writer_.failed("the child job '" + child.key + "'", result.error());
        ended(job.id);
        co_return;
      }
      added += *result == store::AddResult::inserted ? 1 : 0;
    }
    writer_.finish_job(job, core::JobState::finished, "");
    services_.metrics.job_ended(core::JobState::finished);
    spdlog::info("job '{}': fanned out to {} organisation(s) ({} new child jobs)",
                 job.definition.key, org_ids.size(), added);
  }
  ended(job.id);
}

}  // namespace devin_orch::app::detail
