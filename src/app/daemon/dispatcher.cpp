// The daemon's dispatch: the queue read when it changed, creation flows started within limits,
// deadlines and cancellations carried out.
#include "dispatcher.hpp"

#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/app/spending.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace devin_orch::app::detail {

Dispatcher::Dispatcher(Services& services, Parts parts, bool until_idle,
                       core::Duration progress_every,
                       std::function<void(const std::string&, int)> stop)
    : services_{services},
      parts_{parts},
      until_idle_{until_idle},
      stop_{std::move(stop)},
      wakeup_{services.runtime},
      spending_{spending_budgets(services.config.spending)},
      concurrency_{services.config.concurrency} {
  if (until_idle) reporter_.emplace(services, parts.gates, parts.notifier, progress_every);
}

void Dispatcher::slot_freed() {
  dispatch_requested_ = true;
  wakeup_.notify();
}

void Dispatcher::look_again() {
  // Our own commits do not move the change mark: ask for a dispatch explicitly.
  dispatch_requested_ = true;
  wakeup_.notify();
}

// Reads the queue when another process committed (the store watch's notice, confirmed by the
// store's change mark), when a create slot of ours frees, and once a second for what comes
// due by time alone (not_before, deadlines) or was missed (a filesystem without notices).
awaitable<void> Dispatcher::run() {
  watch_store();
  bool changed_elsewhere = true;  // start-up: read everything once
  auto last_tick = SteadyClock::now() - std::chrono::hours{1};
  for (;;) {
    const bool tick = SteadyClock::now() - last_tick >= std::chrono::seconds{1};
    // Another process's commit shows in the change mark. Looked at when a change notice (or
    // its rechecks) is due, on the tick, and always without a watch; not when the wake-up is
    // only a finished flow of ours.
    const auto recheck = recheck_.next();
    const bool watched = store_watch_ || notifications_;
    if (!watched || tick || look_now_ || (recheck && *recheck <= core::wall_now())) {
      if (const auto version = parts_.changes.change_mark();
          version && version.value() != seen_data_version_) {
        seen_data_version_ = version.value();
        changed_elsewhere = true;
      }
      look_now_ = false;
      recheck_.looked(core::wall_now());
      // What woke the watch has been read: wait for the next notification.
      if (notifications_) notifications_->arm();
    }
    if (tick) {
      last_tick = SteadyClock::now();
      enforce_deadlines();
    }
    // Pauses and cancellations are written by other processes (the CLI), so they can only
    // have changed with the change mark; a cancellation we could not finish yet is retried on
    // the tick.
    if (changed_elsewhere) parts_.gates.sync_pauses();
    if (changed_elsewhere || (tick && cancellations_pending_)) handle_cancellations();
    const auto refill = refill_at();
    if (changed_elsewhere || tick || (refill && *refill <= SteadyClock::now())) {
      dispatch_requested_ = false;
      last_refill_ = SteadyClock::now();
      if (tick && spending_.active()) {
        const auto now = core::wall_now();
        if (reload_spending(now)) terminate_over_budget(now);
      }
      dispatch_ready_jobs(/*any_org=*/changed_elsewhere || tick, /*recheck_held=*/tick);
    }
    changed_elsewhere = false;
    if (until_idle_ && idle_or_stuck()) break;
    if (tick && reporter_) reporter_->look();
    if (!co_await wakeup_.wait_for(until_next_look(last_tick))) break;
  }
  if (store_watch_) {
    parts_.changes.set_write_hooks({});
    store_watch_->stop();
  }
  if (notifications_) notifications_->stop();
}

void Dispatcher::watch_store() {
  const auto& config = services_.config;
  if (!config.jobs.queue_watch) return;
  if (!config.database.url.empty()) {
    // PostgreSQL: producers' commits are announced on the LISTEN socket. Our own commits are
    // told apart by change_mark() itself, so no write hooks.
    notifications_ = std::make_unique<NotificationWatch>(services_.runtime.io(), parts_.changes,
                                                         [this] {
                                                           look_now_ = true;
                                                           wakeup_.notify();
                                                         });
    return;
  }
  auto watch = StoreWatch::start(services_.runtime.io(), config.database.path,
                                 [this] { on_store_notice(); });
  if (!watch) {
    spdlog::warn("cannot watch {} for other processes' commits ({}); checking every {} ms",
                 config.database.path, watch.error().message(),
                 config.jobs.queue_check_interval.count());
    return;
  }
  store_watch_ = std::move(*watch);
  parts_.changes.set_write_hooks({
      // Notices still unread before a write of ours are other processes': act on them.
      .before = [this] { if (store_watch_->take_pending()) on_store_notice(); },
      .after = [this] { absorb_own_write(); },
  });
}

void Dispatcher::on_store_notice() {
  recheck_.on_notice(core::wall_now());
  wakeup_.notify();
}

// Our own commits raise notices too, and each notice is worth five looks over 250 ms. They are
// read and dropped right after the write instead. Another process's commit is still caught
// whenever it happened: begun after this, it raises its own notice; still holding the write
// lock, it starts the usual looks; already over, it shows in the change mark now.
void Dispatcher::absorb_own_write() {
  (void)store_watch_->take_pending();
  const auto locked = parts_.changes.commit_in_flight_elsewhere();
  if (!locked || *locked) {
    on_store_notice();
    return;
  }
  const auto version = parts_.changes.change_mark();
  if (!version || *version != seen_data_version_) {
    look_now_ = true;
    wakeup_.notify();
  }
}

core::Duration Dispatcher::until_next_look(SteadyClock::time_point last_tick) const {
  auto wait = services_.config.jobs.queue_check_interval;
  if (notifications_) {
    wait = std::chrono::ceil<core::Duration>(last_tick + std::chrono::seconds{1} -
                                             SteadyClock::now());
  } else if (store_watch_) {
    wait = std::chrono::ceil<core::Duration>(last_tick + std::chrono::seconds{1} -
                                             SteadyClock::now());
    if (const auto due = recheck_.next()) wait = std::min(wait, until(*due, core::wall_now()));
  }
  if (const auto refill = refill_at()) {
    wait = std::min(wait, std::chrono::ceil<core::Duration>(*refill - SteadyClock::now()));
  }
  return std::max(wait, core::Duration{0});
}

// When to start flows for the create slots that finished flows freed. At once, unless creates
// queue at the gate: then at most every kGatedCreateBatching, so that the intents of the flows
// started together share one fsynced transaction rather than paying for one each. Those jobs
// would have queued behind the waiting creates anyway, and those spend the tokens that accrue
// meanwhile: the pause costs no throughput while the slots hold more creates than a pause's
// worth of tokens.
std::optional<SteadyClock::time_point> Dispatcher::refill_at() const {
  if (!dispatch_requested_) return std::nullopt;
  if (!parts_.gates.creates_queue_at_gate()) return SteadyClock::now();
  return last_refill_ + kGatedCreateBatching;
}

// Queued rows worth reading now: the free create slots of the organisations we know, plus
// (with `any_org`) one org's worth for jobs of organisations not seen yet. Reading (and
// decoding) more after every finished create was a measurable share of the daemon's CPU.
std::size_t Dispatcher::claim_limit(bool any_org) const {
  const auto& create = services_.config.create;
  const auto per_org = static_cast<std::size_t>(create.max_concurrent_creates);
  std::size_t free = any_org ? per_org : 0;
  for (const auto& [id, org] : parts_.gates.all()) {
    const int creates = create.max_concurrent_creates - org->creating;
    const int sessions = create.max_active_sessions - org->creating - org->active_sessions;
    free += static_cast<std::size_t>(std::max(0, std::min(creates, sessions)));
  }
  return std::min<std::size_t>(free, 512);
}

// `any_org`: also read rows of organisations not seen yet. A freed slot of ours does not
// need that (those rows were read when they appeared, or are read on the next tick).
void Dispatcher::dispatch_ready_jobs(bool any_org, bool recheck_held) {
  const auto now = core::wall_now();
  if (parts_.gates.global_pause() || !parts_.lease.may_act_any()) return;
  const std::size_t free = claim_limit(any_org);
  if (free == 0) return;
  const std::size_t limit =
      std::min<std::size_t>(free + held_by_groups_ + held_by_key_budgets_, 512);
  auto filter = parts_.gates.claim_filter();
  if (!recheck_held) {
    for (const auto& [org_id, verdict] : spending_held_) filter.paused_orgs.push_back(org_id);
  }
  auto jobs = services_.store.claimable(now, limit, filter);
  if (!jobs) {
    log_event(spdlog::level::err, {.event = "store_error"}, "cannot read queued jobs: {}",
              jobs.error().message());
    return;
  }
  const auto& create = services_.config.create;
  std::map<std::string, core::SpendingVerdict, std::less<>> held;
  std::map<std::string, core::SpendingVerdict, std::less<>> key_held;  // by concurrency key
  std::size_t held_by_key_budgets = 0;
  std::map<std::string, core::GroupVerdict, std::less<>> group_held;
  std::size_t held_by_groups = 0;
  bool groups_read = false;
  bool groups_known = false;
  for (auto& job : *jobs) {
    if (parts_.creator.in_flight(job.id)) continue;
    Org& org = parts_.gates.for_job(job);
    if (parts_.gates.paused(org)) continue;
    if (job.definition.controls.fan_out_enterprise) {
      parts_.creator.launch_fan_out(std::move(job));
      continue;
    }
    // The budget before the slots: a job it holds waits for a new window or a raised budget,
    // which no free slot changes.
    std::optional<double> acu_limit;
    if (job.definition.spec.max_acu_limit) {
      acu_limit = static_cast<double>(*job.definition.spec.max_acu_limit);
    }
    if (spending_.active()) {
      const auto verdict =
          spending_.admit(org.org_id, job.definition.spec.concurrency_key, acu_limit, now);
      if (!verdict.allowed && verdict.scope == core::SpendingScope::concurrency_key) {
        // Only this key's jobs wait: the organisation's others go on.
        ++held_by_key_budgets;
        key_held.try_emplace(verdict.key, verdict);
        continue;
      }
      if (!verdict.allowed) {
        held.try_emplace(org.org_id, verdict);
        continue;
      }
    }
    // A full concurrency group holds its jobs whatever the slots; the store's count is read
    // once per dispatch, when the first job with a limited key comes up.
    const auto& key = job.definition.spec.concurrency_key;
    const bool limited = key && concurrency_.limit_for(*key) != nullptr;
    if (limited) {
      if (!groups_read) {
        groups_read = true;
        groups_known = reload_concurrency();
      }
      if (!groups_known) continue;
      const auto verdict = concurrency_.admit(key);
      if (!verdict.allowed) {
        ++held_by_groups;
        group_held.try_emplace(*key, verdict);
        continue;
      }
    }
    const int busy = org.creating + org.active_sessions;
    if (busy >= create.max_active_sessions || org.creating >= create.max_concurrent_creates) {
      continue;
    }
    if (spending_.active()) {
      spending_.charge(org.org_id, job.definition.spec.concurrency_key, job.id, acu_limit, now);
    }
    if (limited) {
      concurrency_.started(key);
      launched_keys_.insert_or_assign(job.id, *key);
    }
    parts_.creator.launch(std::move(job), /*resumed=*/false);
  }
  // Only a look at every organisation's jobs knows which are held no longer.
  note_spending_holds(std::move(held), std::move(key_held), /*complete=*/recheck_held);
  if (spending_.active()) {
    // As for concurrency groups: held jobs beyond the window would hide the jobs behind them.
    if (held_by_key_budgets > held_by_key_budgets_ && jobs->size() >= limit && limit < 512) {
      dispatch_requested_ = true;
      wakeup_.notify();
    }
    held_by_key_budgets_ = held_by_key_budgets;
  }
  if (concurrency_.any()) {
    // More held than the window had room for: read again with a wider window, so that jobs of
    // other keys behind them are reached.
    if (held_by_groups > held_by_groups_ && jobs->size() >= limit && limit < 512) {
      dispatch_requested_ = true;
      wakeup_.notify();
    }
    held_by_groups_ = held_by_groups;
    if (groups_read) note_concurrency_holds(std::move(group_held));
  }
}

// ---- concurrency groups -------------------------------------------------------------------

bool Dispatcher::reload_concurrency() {
  std::map<std::string, int, std::less<>> active;
  std::unordered_set<std::int64_t> counted;
  for (const auto state : {core::JobState::creating, core::JobState::running}) {
    auto rows = services_.store.in_state(state);
    if (!rows) {
      log_event(spdlog::level::err, {.event = "store_error"},
                "cannot count the jobs of the concurrency groups: {}", rows.error().message());
      return false;
    }
    for (const auto& job : *rows) {
      const auto& key = job.definition.spec.concurrency_key;
      if (!key || concurrency_.limit_for(*key) == nullptr) continue;
      ++active[*key];
      counted.insert(job.id);
    }
  }
  // Our creates whose intent the store does not show yet count too; the others are the
  // store's to count from now on.
  for (auto it = launched_keys_.begin(); it != launched_keys_.end();) {
    if (counted.contains(it->first) || !parts_.creator.in_flight(it->first)) {
      it = launched_keys_.erase(it);
      continue;
    }
    ++active[it->second];
    ++it;
  }
  concurrency_.reload(std::move(active));
  return true;
}

void Dispatcher::note_concurrency_holds(
    std::map<std::string, core::GroupVerdict, std::less<>> held) {
  for (const auto& [key, verdict] : held) {
    if (concurrency_held_.contains(key)) continue;
    log_event(spdlog::level::info, {.event = "concurrency_held"},
              "concurrency group {} is full ({}): its queued jobs wait (concurrency pattern '{}')",
              key, core::describe(verdict), verdict.pattern);
  }
  for (const auto& [key, verdict] : concurrency_held_) {
    if (held.contains(key)) continue;
    log_event(spdlog::level::info, {.event = "concurrency_resumed"},
              "concurrency group {} has room again", key);
  }
  concurrency_held_ = std::move(held);
}

// ---- the spending guard ------------------------------------------------------------------

bool Dispatcher::set_spending_budgets(core::SpendingBudgets budgets) {
  core::SpendingLedger previous = std::move(spending_);
  spending_ = core::SpendingLedger{std::move(budgets)};
  // An empty ledger would let every job go: the old budgets stay until the figures are read.
  if (spending_.active() && !reload_spending(core::wall_now())) {
    spending_ = std::move(previous);
    return false;
  }
  look_again();
  return true;
}

bool Dispatcher::reload_spending(TimePoint now) {
  const auto& budgets = spending_.budgets();
  const auto since = core::ledger_since(budgets, now);
  if (!since) return false;
  auto rows = services_.store.spending_since(*since);
  if (!rows) {
    log_event(spdlog::level::err, {.event = "store_error"},
              "cannot read the jobs charged to the ACU budgets: {}", rows.error().message());
    return false;
  }
  const auto rule = services_.config.jobs.parent_acus_include_children
                        ? core::ParentAcus::include_children
                        : core::ParentAcus::separate;
  // A create this daemon started whose intent is not stored yet keeps its reservation.
  spending_.reload(spending_charges(*rows, services_.config.api.org_id, rule),
                   [this](std::int64_t job_id) { return parts_.creator.in_flight(job_id); });
  for (const auto& [id, org] : parts_.gates.all()) {
    const auto& budget = budgets.for_org(id);
    if (budget.per_day) {
      services_.metrics.spending_committed(id, core::SpendingWindow::day,
                                           spending_.committed(id, core::SpendingWindow::day, now));
    }
    if (budget.per_month) {
      services_.metrics.spending_committed(
          id, core::SpendingWindow::month, spending_.committed(id, core::SpendingWindow::month, now));
    }
  }
  return true;
}

namespace {

// "12 of 10 ACUs committed today, the next job reserves 3 (spending.acus_per_day); until ...".
std::string held_figures(const core::SpendingVerdict& verdict, std::string_view setting) {
  const bool day = verdict.window == core::SpendingWindow::day;
  return fmt::format("{} of {} ACUs committed {}, the next job reserves {} ({}); until {} or a "
                     "raised budget",
                     verdict.committed, verdict.budget, day ? "today" : "this month",
                     verdict.reservation, setting,
                     format_timestamp_ms(core::to_epoch_ms(verdict.resumes_at)));
}

}  // namespace

void Dispatcher::note_spending_holds(
    std::map<std::string, core::SpendingVerdict, std::less<>> held,
    std::map<std::string, core::SpendingVerdict, std::less<>> key_held, bool complete) {
  const auto& budgets = spending_.budgets();
  for (const auto& [org_id, verdict] : held) {
    if (spending_held_.contains(org_id)) continue;
    log_event(spdlog::level::warn, {.event = "spending_held", .org_id = org_id},
              "organisation {}: creates wait for the ACU budget: {}", org_id,
              held_figures(verdict, spending_setting(verdict, budgets, org_id)));
    services_.metrics.spending_held(org_id, verdict.window);
  }
  for (const auto& [key, verdict] : key_held) {
    if (spending_keys_held_.contains(key)) continue;
    log_event(spdlog::level::warn, {.event = "spending_held"},
              "concurrency key {}: creates wait for the key's ACU budget: {}", key,
              held_figures(verdict, spending_setting(verdict, budgets, {})));
    services_.metrics.spending_key_held(verdict.window);
  }
  if (!complete) {
    for (auto& [org_id, verdict] : held) spending_held_.insert_or_assign(org_id, verdict);
    for (auto& [key, verdict] : key_held) spending_keys_held_.insert_or_assign(key, verdict);
  } else {
    for (const auto& [org_id, verdict] : spending_held_) {
      if (held.contains(org_id)) continue;
      log_event(spdlog::level::info, {.event = "spending_resumed", .org_id = org_id},
                "organisation {}: creates go on within the ACU budget", org_id);
    }
    for (const auto& [key, verdict] : spending_keys_held_) {
      if (key_held.contains(key)) continue;
      log_event(spdlog::level::info, {.event = "spending_resumed"},
                "concurrency key {}: creates go on within the key's ACU budget", key);
    }
    spending_held_ = std::move(held);
    spending_keys_held_ = std::move(key_held);
  }
  services_.metrics.spending_held_organizations(static_cast<double>(spending_held_.size()));
  services_.metrics.spending_held_keys(static_cast<double>(spending_keys_held_.size()));
}

// spending.terminate_over_budget: the live sessions of a window whose consumption passed its
// budget (their organisation's or their concurrency key's) end `suspended`, as a session the
// API suspends for billing does.
void Dispatcher::terminate_over_budget(TimePoint now) {
  if (!spending_.budgets().defaults.terminate_over_budget) return;
  std::map<std::int64_t, core::SpendingOverrun> over;
  for (auto& overrun : spending_.over_budget(now)) over.emplace(overrun.job_id, std::move(overrun));
  if (over.empty()) return;
  auto running = services_.store.in_state(core::JobState::running);
  if (!running) return;
  for (auto& job : *running) {
    const auto found = over.find(job.id);
    if (found == over.end() || terminating_.contains(job.id)) continue;
    const auto org_id = job.definition.org_id.value_or(services_.config.api.org_id);
    if (!parts_.lease.may_act(org_id)) continue;  // its org's holder terminates it
    const bool by_key = found->second.scope == core::SpendingScope::concurrency_key;
    const std::string whose = by_key ? "its concurrency key " + found->second.key + "'s"
                                     : std::string{"its organisation's"};
    log_event(spdlog::level::warn,
              {.event = "spending_terminated", .key = job.definition.key, .org_id = org_id},
              "job '{}': {} ACU budget is spent: terminating its session", job.definition.key,
              whose);
    services_.metrics.spending_termination();
    end_by_termination(std::move(job), core::JobState::suspended,
                       by_key ? "ACU budget of concurrency key " + found->second.key +
                                    " spent (spending.terminate_over_budget): the session was "
                                    "terminated"
                              : std::string{"ACU budget spent (spending.terminate_over_budget): "
                                            "the session was terminated"},
                       /*archive=*/false);
  }
}

bool Dispatcher::idle_or_stuck() {
  // Writes still waiting for the database are work too: exiting would leave them to a restart.
  if (parts_.creator.size() > 0 || !terminating_.empty() || parts_.poller.children_pending() > 0 ||
      parts_.gates.requests_in_flight() > 0 || parts_.writer.waiting() > 0) {
    return false;
  }
  // Notifications too: every event delivered or dead-lettered.
  if (!parts_.notifier.settled()) return false;
  for (const auto& [id, org] : parts_.gates.all()) {
    if (org->planner.size() > 0) return false;
  }
  const auto counts = services_.store.count_by_state();
  if (!counts) return false;
  const auto count = [&](core::JobState state) {
    const auto it = counts->find(state);
    return it == counts->end() ? std::int64_t{0} : it->second;
  };
  const auto queued = count(core::JobState::queued);
  if (count(core::JobState::creating) + count(core::JobState::running) > 0) return false;
  if (queued == 0) {
    log_event(spdlog::level::info, {.event = "idle"}, "idle: no job queued or in flight");
    stop_("idle", 0);
    return true;
  }
  // Queued jobs remain but nothing runs: stuck if a pause is all that keeps ready jobs back
  // (otherwise they wait for a scheduled start, which is not stuck).
  const auto now = core::wall_now();
  auto filter = parts_.gates.claim_filter();
  filter.only_orgs.reset();  // another daemon's orgs are not stuck
  const auto allowed = services_.store.claimable(now, 1, filter);
  const auto any = services_.store.claimable(now, 1);
  const bool ready_jobs_exist = any && !any->empty();
  if (ready_jobs_exist && (parts_.gates.global_pause() || (allowed && allowed->empty()))) {
    std::string paused;
    for (const auto& pause : describe_pauses(parts_.gates)) {
      paused += (paused.empty() ? "" : "; ") + pause;
    }
    log_event(spdlog::level::err, {.event = "until_idle_stuck"},
              "{} job(s) cannot start: paused: {}", queued, paused);
    stop_("idle with paused organisations", 1);
    return true;
  }
  return false;
}

// ---- deadlines and cancellations ----------------------------------------------------------

void Dispatcher::enforce_deadlines() {
  auto due = services_.store.past_deadline(core::wall_now());
  if (!due) return;
  for (auto& job : *due) {
    end_by_termination(std::move(job), core::JobState::timed_out,
                       "deadline passed: the session was terminated", /*archive=*/false);
  }
}

void Dispatcher::end_stalled(const std::string& key, std::string reason) {
  auto found = services_.store.find(key);
  if (!found || !*found) return;  // looked for again at the next poll that finds it stalled
  core::JobRecord& job = **found;
  if (job.state != core::JobState::running || terminating_.contains(job.id)) return;
  end_by_termination(std::move(job), core::JobState::stalled, std::move(reason),
                     /*archive=*/false);
}

void Dispatcher::handle_cancellations() {
  auto requested = services_.store.cancel_requests();
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
void Dispatcher::end_by_termination(core::JobRecord job, core::JobState state, std::string reason,
                                    bool archive) {
  // Another daemon holds the job's organisation: it ends the job.
  if (!parts_.lease.may_act(job.definition.org_id.value_or(services_.config.api.org_id))) return;
  if (job.state == core::JobState::queued && !parts_.creator.in_flight(job.id)) {
    parts_.writer.finish_job(job, state,
                             state == core::JobState::timed_out
                                 ? "deadline passed before the job started"
                                 : "cancelled by an operator before it started");
    services_.metrics.job_ended(state);
    log_event(spdlog::level::info,
              {.event = "job_ended", .key = job.definition.key,
               .org_id = job.definition.org_id.value_or(services_.config.api.org_id),
               .state = core::to_string(state)},
              "job '{}': {} before it started", job.definition.key, core::to_string(state));
    return;
  }
  if (job.state != core::JobState::running || !job.session_id) return;
  if (!terminating_.insert(job.id).second) return;
  Org& org = parts_.gates.for_job(job);
  services_.runtime.spawn(terminate(org, std::move(job), state, std::move(reason), archive));
}

// The children first (reference §12: terminating a parent is not documented to end them), the
// parent once every child is ended: a child whose DELETE may pass on a retry (no answer, 5xx,
// 429) keeps the job live, so the next tick tries the whole family again. A child that ended
// already (404) is fine; one the API refuses to end (401, 403, other 4xx) would refuse again,
// so it is reported and the job still ends rather than never.
awaitable<void> Dispatcher::terminate(Org& org, core::JobRecord job, core::JobState state,
                                      std::string reason, bool archive) {
  const std::string session_id = *job.session_id;
  // Known from the polls, or from the record when none has answered since a restart.
  auto children = parts_.poller.children_of(session_id);
  if (children.empty()) children = job.child_session_ids;
  for (const auto& child : children) {
    auto gated = co_await parts_.gates.call(
        org, core::RequestKind::other, ApiOperation::terminate_child,
        [&] {
          return services_.client_for(org.org_id).terminate_session(org.org_id, child, archive);
        });
    if (!gated) {  // shutting down
      terminating_.erase(job.id);
      co_return;
    }
    const auto cls = gated->outcome.cls;
    if (cls == core::CallClass::not_sent || cls == core::CallClass::ambiguous ||
        cls == core::CallClass::rate_limited) {
      spdlog::warn("job '{}': terminating child session {} failed ({}); will retry",
                   job.definition.key, child, gated->outcome.detail);
      terminating_.erase(job.id);
      co_return;
    }
    if (cls != core::CallClass::ok && cls != core::CallClass::not_found) {
      spdlog::error("job '{}': the API refused to terminate child session {} ({}); it may "
                    "still be running",
                    job.definition.key, child, gated->outcome.detail);
      continue;
    }
    spdlog::debug("job '{}': child session {} terminated", job.definition.key, child);
  }
  if (auto gated = co_await parts_.gates.call(
          org, core::RequestKind::other, ApiOperation::terminate,
          [&] {
            return services_.client_for(org.org_id).terminate_session(org.org_id, session_id,
                                                                      archive);
          })) {
    auto& answer = *gated;
    const auto now = core::wall_now();
    if (answer.outcome.ok() || answer.outcome.cls == core::CallClass::not_found) {
      if (answer.value) {
        // The store takes a status only for the session the job runs on.
        if (answer.value->session_id.empty()) answer.value->session_id = session_id;
        parts_.poller.commit_updates({store::StatusUpdate{.job_id = job.id,
                                                          .session = std::move(*answer.value),
                                                          .new_state = state,
                                                          .reason = reason}},
                                     now);
      } else {
        parts_.writer.finish_job(job, state, reason);
      }
      services_.metrics.job_ended(state);
      log_event(spdlog::level::info,
                {.event = "job_ended", .key = job.definition.key, .session_id = session_id,
                 .org_id = org.org_id, .state = core::to_string(state)},
                "job '{}': {}: session {} terminated", job.definition.key,
                core::to_string(state), session_id);
      parts_.poller.untrack(org, session_id);
    } else {
      spdlog::warn("job '{}': terminating session {} failed ({}); will retry", job.definition.key,
                   session_id, answer.outcome.detail);
    }
  }
  terminating_.erase(job.id);
}

}  // namespace devin_orch::app::detail
