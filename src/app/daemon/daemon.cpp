// The daemon's wiring: maps the pure core's actions (creation machine, rate gate, poll planner)
// onto the store, the API client and Asio timers. All I/O decisions are made in core; the
// daemon*.cpp files only move bytes, timers and rows. This one owns start-up and recovery,
// supervision, shutdown and the rate gate.
#include "devin_orch/app/daemon/daemon.hpp"

#include "daemon_state.hpp"

#include "devin_orch/api/http_client.hpp"
#include "devin_orch/app/jobs/job_loader.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/server/metrics.hpp"
#include "devin_orch/server/status_server.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <random>

namespace devin_orch::app {
namespace detail {

awaitable<void> Wakeup::wait_for(core::Duration timeout) {
  if (pending_) {
    pending_ = false;
    co_return;
  }
  timer_.expires_after(timeout);
  co_await timer_.async_wait(kTuple);
  pending_ = false;
}

void Wakeup::notify() {
  pending_ = true;
  timer_.cancel();
}

Org::Org(std::string id, const Config& config, core::Random& random, net::any_io_executor executor)
    : org_id{std::move(id)},
      gate{core::RateGatePolicy{.requests_per_minute = config.rate.requests_per_minute,
                                .burst = config.rate.burst,
                                .concurrency_hold = config.rate.concurrency_hold},
           core::wall_now()},
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
      poll_wakeup{executor},
      slot_freed{executor} {
  slot_freed.expires_at(net::steady_timer::time_point::max());
}

namespace {

// Renewed every third of the lapse, so two renewals can fail before it lapses; the holder stops
// sending a fifth of the lapse before it could lapse, so what it sent is answered or cut short
// before a successor starts.
core::LeasePolicy lease_policy(const LeaseConfig& lease) {
  return core::LeasePolicy{.ttl = lease.ttl,
                           .renew_every = lease.ttl / 3,
                           .standby_poll = std::min(core::Duration{1'000}, lease.ttl / 5),
                           .retry = std::min(core::Duration{500}, lease.ttl / 10),
                           .guard = lease.ttl / 5};
}

}  // namespace

Daemon::Daemon(net::io_context& io, const Config& config, store::QueueStore& store,
               store::ChangeFeed& changes,
               std::unique_ptr<api::HttpClient> http, const DaemonOptions& options,
               server::MetricsRegistry& metrics)
    : io_{io},
      metrics_{metrics},
      config_{config},
      store_{&store},
      changes_{&changes},
      http_{std::move(http)},
      client_{*http_},
      options_{options},
      notifier_{SystemdNotifier::from_environment()},
      random_{std::random_device{}()},
      dispatch_wakeup_{io.get_executor()},
      drain_timer_{io},
      signals_{io, SIGINT, SIGTERM, SIGHUP},
      creation_policy_{.max_attempts = config.create.max_attempts,
                       .retry = {.initial = config.create.retry_initial,
                                 .max = config.create.retry_max,
                                 .multiplier = 2.0},
                       .settle_delay = config.create.settle_delay},
      intents_{io, [this](std::span<const store::IntentWrite> writes) {
                 return store_->commit_intents(writes, core::wall_now());
               }},
      // While creates queue at the gate, sessions answered within kGatedCreateBatching share
      // a transaction: one per create was the largest share of the daemon's CPU with the
      // budget pacing creates. The flow waits for its commit, so nothing about the job changes
      // meanwhile but the moment it starts being polled.
      sessions_{io,
                [this](std::span<const store::SessionWrite> writes) {
                  auto outcomes = store_->commit_sessions(writes, core::wall_now());
                  if (outcomes || writes.size() == 1) return outcomes;
                  // One failed statement fails the whole transaction: record each on its
                  // own so that one bad write does not strand every session of the batch.
                  std::vector<store::StoreResult<void>> each;
                  for (const auto& write : writes) {
                    auto one = store_->commit_sessions(std::span{&write, 1}, core::wall_now());
                    each.push_back(one ? one->front() : store::StoreResult<void>{one.error()});
                  }
                  return decltype(outcomes){std::move(each)};
                },
                [this] {
                  return creates_queue_at_gate() ? kGatedCreateBatching
                                                 : std::chrono::milliseconds{0};
                }},
      lease_{io, *store_, lease_policy(config.lease),
             QueueLease::Callbacks{
                 .took_over = [this](std::int64_t) { take_over(); },
                 .paused = [this](const std::string&) {},  // lease_ok() holds every request
                 .resumed =
                     [this] {
                       dispatch_wakeup_.notify();
                       for (auto& [id, org] : orgs_) org->poll_wakeup.notify();
                     },
                 .abandoned = [this](const std::string& why) { abandon(why); },
                 .waiting = [this](const core::LeaseHolder& holder) { stand_by(holder); },
             }} {}

void Daemon::start() {
  listen_for_signals();
  notifier_.notify("READY=1\nSTATUS=" + status_line());
  net::co_spawn(io_, heartbeat(), net::detached);
  lease_.start();
}

// This process holds the queue's lease now: re-attach what a previous owner (this process's
// predecessor, or another daemon that died) left in flight, then start dispatching.
void Daemon::take_over() {
  if (stopping_) return;
  if (!recover()) {
    request_stop("cannot read the queue");
    return;
  }
  ready_ = true;
  net::co_spawn(io_, dispatcher(), net::detached);
}

// Another daemon works the queue. A batch run (--until-idle) beside it ends once the queue has
// nothing left in progress: the other daemon did the work.
void Daemon::stand_by(const core::LeaseHolder&) {
  notifier_.notify("STATUS=" + lease_.describe());
  if (!options_.until_idle || stopping_) return;
  const auto counts = store_->count_by_state();
  if (!counts) return;
  std::int64_t in_progress = 0;
  for (const auto state : {core::JobState::queued, core::JobState::creating,
                           core::JobState::running}) {
    if (const auto it = counts->find(state); it != counts->end()) in_progress += it->second;
  }
  if (in_progress == 0) {
    spdlog::info("idle: no job queued or in flight (worked by another daemon)");
    request_stop("idle");
  }
}

// Another process took the queue while this one still had work in memory. Nothing of it can be
// written any more (the store refuses every fenced write), and requests must stop at once: exit,
// and let the supervisor start this process again as a standby.
void Daemon::abandon(const std::string& why) {
  spdlog::critical("giving up the queue: {}; exiting so that nothing more is sent", why);
  exit_code_ = 1;
  stopping_ = true;
  io_.stop();
}

server::Readiness Daemon::readiness() const {
  if (stopping_) return {false, "stopping"};
  if (!lease_ok()) return {false, lease_.describe()};
  if (storage_trouble_) {
    return {false, fmt::format("cannot write to the database for {:.0f} s: {}",
                               std::chrono::duration<double>(SteadyClock::now() -
                                                             storage_trouble_->since)
                                   .count(),
                               storage_trouble_->error.message())};
  }
  if (!ready_) return {false, "recovering the jobs a previous run left in flight"};
  return true;
}

// ---- metrics ----------------------------------------------------------------------------

// Gauges are computed when scraped, from the store and the loop's own state.
void Daemon::refresh_gauges() {
  if (const auto counts = store_->count_by_state(); counts) {
    for (const auto& [state, count] : *counts) {
      metrics_.gauge("devin_orch_jobs", "Jobs by state.",
                     {{"state", std::string{core::to_string(state)}}})
          .set(static_cast<double>(count));
    }
  }
  double oldest_age = 0;
  if (const auto oldest = store_->oldest_queued_at_ms(); oldest && oldest->has_value()) {
    oldest_age = std::max<double>(0, (core::to_epoch_ms(core::wall_now()) - **oldest) / 1000.0);
  }
  metrics_.gauge("devin_orch_oldest_queued_job_age_seconds",
                 "Age of the oldest job still queued (0 when none).")
      .set(oldest_age);
  int paused = 0;
  for (const auto& [id, org] : orgs_) paused += org->paused_reason ? 1 : 0;
  metrics_.gauge("devin_orch_paused_organizations", "Organisations whose dispatch is paused.")
      .set(paused);
  metrics_.gauge("devin_orch_active_sessions", "Sessions being polled.").set(tracked_.size());
  metrics_.gauge("devin_orch_creations_in_flight", "Jobs between intent and session.")
      .set(in_progress_.size());
  metrics_.gauge("devin_orch_requests_in_flight", "API requests awaiting an answer.")
      .set(requests_in_flight());
}

void Daemon::observe_call(std::string_view operation, const core::CallOutcome& outcome,
                          SteadyClock::time_point started) {
  const std::string op{operation};
  spdlog::trace("api {}: {} (HTTP {}, {:.1f} ms){}{}", op, core::to_string(outcome.cls),
                outcome.http_status,
                std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count(),
                outcome.detail.empty() ? "" : ": ", outcome.detail);
  metrics_
      .counter("devin_orch_api_requests_total", "Devin API requests by operation and outcome.",
               {{"operation", op}, {"outcome", std::string{core::to_string(outcome.cls)}}})
      .inc();
  metrics_
      .histogram("devin_orch_api_request_duration_seconds",
                 "Devin API request latency, including connection set-up.",
                 server::default_latency_buckets(), {{"operation", op}})
      .observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
}

void Daemon::count_job_end(core::JobState state) {
  count("devin_orch_jobs_ended_total", "Jobs that reached a terminal state, by state.",
        {{"state", std::string{core::to_string(state)}}});
}

// ---- supervision ------------------------------------------------------------------------

std::string Daemon::status_line() {
  if (lease_.role() == core::LeaseRole::standby) return lease_.describe();
  std::int64_t queued = 0;
  if (const auto counts = store_->count_by_state(); counts) {
    if (const auto it = counts->find(core::JobState::queued); it != counts->end()) {
      queued = it->second;
    }
  }
  std::string paused;
  for (const auto& [id, org] : orgs_) {
    if (org->paused_reason) paused += (paused.empty() ? "" : ",") + id;
  }
  return fmt::format("{} queued, {} creating, {} running{}{}", queued, in_progress_.size(),
                     tracked_.size(), paused.empty() ? "" : "; paused: " + paused,
                     storage_trouble_ ? "; database: " + storage_trouble_->error.message() : "");
}

// WATCHDOG=1 from the event loop itself, so a stuck loop is caught; STATUS= every 5 s.
awaitable<void> Daemon::heartbeat() {
  if (!notifier_.enabled()) co_return;
  const core::Duration status_period = std::chrono::seconds{5};
  const auto period = std::min(notifier_.watchdog_period().value_or(status_period), status_period);
  auto last_status = SteadyClock::now();
  net::steady_timer timer{io_};
  while (!stopping_) {
    if (notifier_.watchdog_period()) notifier_.notify("WATCHDOG=1");
    if (SteadyClock::now() - last_status >= status_period) {
      notifier_.notify("STATUS=" + status_line());
      last_status = SteadyClock::now();
    }
    timer.expires_after(period);
    sleepers_.insert(&timer);
    co_await timer.async_wait(kTuple);
    sleepers_.erase(&timer);
  }
}

// ---- start-up -------------------------------------------------------------------------

bool Daemon::recover() {
  const auto now = core::wall_now();
  sync_pauses();  // before any Org exists, so recovered organisations start paused if they are
  auto creating = store_->in_state(core::JobState::creating);
  auto running = store_->in_state(core::JobState::running);
  if (!creating || !running) {
    spdlog::error("cannot read jobs from the database: {}",
                  (!creating ? creating.error() : running.error()).message());
    exit_code_ = 1;
    return false;
  }
  for (auto& job : *running) {
    if (!job.session_id) {
      spdlog::error("job '{}' is running without a session id; marking it lost",
                    job.definition.key);
      write("job '" + job.definition.key + "' as lost", [this, id = job.id, now] {
        return store_->finish(id, core::JobState::lost, "running without a session id", now);
      });
      continue;
    }
    // Poll soon: the session may have moved on while we were down.
    track_session(org_for(job), job, job.status.value_or(""), job.status_detail, now);
  }
  for (auto& job : *creating) {
    spdlog::info("job '{}' was being created when the daemon stopped; reconciling by tag {}",
                 job.definition.key, job.creation_tag);
    launch_creation(std::move(job), /*resumed=*/true);
  }
  spdlog::info("recovered {} running and {} creating jobs", running->size(), creating->size());
  return true;
}

Org& Daemon::org_named(const std::string& org_id) {
  auto it = orgs_.find(org_id);
  if (it == orgs_.end()) {
    it = orgs_.emplace(org_id, std::make_unique<Org>(org_id, config_, random_,
                                                     io_.get_executor()))
             .first;
    if (const auto pause = pauses_.find(org_id); pause != pauses_.end()) {
      it->second->paused_reason = pause->second;
    }
    net::co_spawn(io_, poller(*it->second), net::detached);
  }
  return *it->second;
}

// ---- shutdown ---------------------------------------------------------------------------

void Daemon::listen_for_signals() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      reload_job_files();
    } else if (stopping_) {
      spdlog::warn("second signal: stopping now; unfinished work resumes at the next start");
      io_.stop();
      return;
    } else {
      request_stop(signal == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    listen_for_signals();
  });
}

void Daemon::reload_job_files() {
  spdlog::info("SIGHUP: reloading job files");
  notifier_.notify("RELOADING=1");
  const auto report = load_job_files_into(*store_, config_.jobs.files, core::wall_now());
  if (report.fatal_errors > 0) {
    spdlog::error("reload: {} job file(s) could not be read; nothing else changed",
                  report.fatal_errors);
  }
  notifier_.notify("READY=1\nSTATUS=" + status_line());
  // Our own commits do not move PRAGMA data_version: ask for a dispatch explicitly.
  dispatch_requested_ = true;
  dispatch_wakeup_.notify();
}

void Daemon::request_stop(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  notifier_.notify("STOPPING=1");
  spdlog::info("stopping ({}): no new work; draining for at most {} ms", why,
               config_.shutdown.drain_timeout.count());
  dispatch_wakeup_.notify();
  sessions_.flush_now();  // not after its linger: a second signal may not leave that long
  for (auto* timer : sleepers_) timer->cancel();
  for (auto& [id, org] : orgs_) {
    org->poll_wakeup.notify();
    org->slot_freed.cancel();
  }
  drain_timer_.expires_after(config_.shutdown.drain_timeout);
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::warn("drain deadline reached with {} creation flow(s) and {} request(s) in "
                 "flight; they resume at the next start",
                 in_progress_.size(), requests_in_flight());
    io_.stop();
  });
  net::co_spawn(io_, drain_watch(), net::detached);
}

// Ends the loop as soon as nothing is in flight any more.
awaitable<void> Daemon::drain_watch() {
  net::steady_timer timer{io_};
  while (!in_progress_.empty() || requests_in_flight() > 0 || batches_in_flight_ > 0) {
    timer.expires_after(std::chrono::milliseconds{10});
    co_await timer.async_wait(kTuple);
  }
  spdlog::info("drained; exiting");
  io_.stop();
}

int Daemon::requests_in_flight() const {
  int total = 0;
  for (const auto& [id, org] : orgs_) total += org->in_flight;
  return total;
}

// Sleeps until `timeout` passes; false when the daemon is stopping (sleeps are cut short).
// `also` is a second registry that can wake this sleep early (e.g. the org's gate sleepers).
awaitable<bool> Daemon::sleep_for(core::Duration timeout, std::set<net::steady_timer*>* also) {
  if (stopping_) co_return false;
  net::steady_timer timer{io_};
  timer.expires_after(timeout);
  sleepers_.insert(&timer);
  if (also != nullptr) also->insert(&timer);
  co_await timer.async_wait(kTuple);
  sleepers_.erase(&timer);
  if (also != nullptr) also->erase(&timer);
  co_return !stopping_;
}

// ---- the rate gate ----------------------------------------------------------------------

// Waits for the org's budget and an in-flight slot, first come first served within a kind.
// False when stopping: no new requests.
awaitable<bool> Daemon::pass_gate(Org& org, core::RequestKind kind) {
  if (stopping_) co_return false;
  auto& queue = kind == core::RequestKind::create ? org.create_queue : org.other_queue;
  if (queue.empty() && org.in_flight < config_.api.max_in_flight && lease_ok() &&
      org.gate.try_acquire(kind, core::wall_now())) {
    ++org.in_flight;
    co_return true;
  }
  const bool create = kind == core::RequestKind::create;
  if (create) ++org.creates_waiting;
  net::steady_timer turn{io_};  // cancelled by the waiter ahead when it leaves the queue
  queue.push_back(&turn);
  bool acquired = false;
  while (!stopping_) {
    if (queue.front() != &turn) {
      turn.expires_at(net::steady_timer::time_point::max());
      sleepers_.insert(&turn);
      co_await turn.async_wait(kTuple);
      sleepers_.erase(&turn);
      continue;
    }
    const auto now = core::wall_now();
    if (!lease_ok()) {
      // The lease cannot be proven (or is gone): nothing may be sent until it is again.
      co_await sleep_for(std::chrono::milliseconds{100});
      continue;
    }
    if (org.in_flight >= config_.api.max_in_flight) {
      co_await org.slot_freed.async_wait(kTuple);
      continue;
    }
    if (org.gate.try_acquire(kind, now)) {
      ++org.in_flight;
      acquired = true;
      break;
    }
    co_await sleep_for(until(org.gate.batch_ready_at(kind, queue.size(), now), now),
                       &org.gate_sleepers);
  }
  queue.erase(std::find(queue.begin(), queue.end(), &turn));
  if (!queue.empty()) queue.front()->cancel();  // the next in line tries at once
  // The poller holds back early polls while creates wait for tokens; tell it when none do.
  if (create && --org.creates_waiting == 0) org.poll_wakeup.notify();
  co_return acquired;
}

void Daemon::release(Org& org, const core::CallOutcome& outcome) {
  --org.in_flight;
  org.slot_freed.cancel();
  org.slot_freed.expires_at(net::steady_timer::time_point::max());
  const auto now = core::wall_now();
  if (outcome.cls == core::CallClass::rate_limited) {
    org.gate.on_rate_limited(now, outcome.retry_after, outcome.concurrency_cap, random_);
    count("devin_orch_rate_limited_total", "429 answers, by kind.",
          {{"kind", outcome.concurrency_cap ? "concurrency_cap" : "rate"}});
    spdlog::warn("org {}: 429 ({}); pausing requests{}", org.org_id, outcome.detail,
                 outcome.retry_after
                     ? fmt::format(" for {} ms", outcome.retry_after->count())
                     : std::string{" with backoff"});
  } else if (outcome.http_status != 0) {
    org.gate.on_success(now);
  }
}

// Pauses are rows in org_pauses, so they survive restarts and an operator lifts them with
// `devin-orch resume`.
void Daemon::pause_org(Org& org, const std::string& reason) {
  if (org.paused_reason) return;
  org.paused_reason = reason;
  save_pause(org);
  spdlog::error("org {}: new sessions paused: {} (lift with `devin-orch resume --org {}`)",
                org.org_id, reason, org.org_id);
}

// A pause the database did not take stays in memory (pause_unsaved) and is saved again on the
// next sync, so the operator can see it and lift it.
void Daemon::save_pause(Org& org) {
  const auto saved = store_->pause_org(org.org_id, *org.paused_reason, "daemon", core::wall_now());
  org.pause_unsaved = !saved;
  if (!saved) {
    store_failed("the pause of org " + org.org_id, saved.error());
  } else {
    store_succeeded();
  }
}

// Mirrors org_pauses into memory: operators pause and resume from another process.
void Daemon::sync_pauses() {
  const auto rows = store_->paused_orgs();
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

void Daemon::commit_updates(std::vector<store::StatusUpdate> updates, TimePoint now) {
  if (updates.empty()) return;
  const std::size_t count = updates.size();
  write(fmt::format("{} status update(s)", count),
        [this, updates = std::move(updates), now]() -> store::StoreResult<void> {
          auto written = store_->record_statuses(updates, now);
          if (!written) return written.error();
          return {};
        });
}

// ---- store writes -----------------------------------------------------------------------

void Daemon::write(std::string what, std::function<store::StoreResult<void>()> attempt) {
  if (pending_writes_.empty()) {
    const auto done = attempt();
    if (done) {
      store_succeeded();
      return;
    }
    store_failed(what, done.error());
    if (!storage_may_recover(done.error())) return;
  }
  pending_writes_.push_back(PendingWrite{std::move(what), std::move(attempt)});
  if (!retrying_writes_) {
    retrying_writes_ = true;
    net::co_spawn(io_, retry_writes(), net::detached);
  }
}

// Retries the waiting writes in order, every half second while their cause lasts. A write whose
// failure cannot pass is dropped (reported); the order of the rest is kept. Stops with the
// daemon: what is still waiting is repaired by the next start (statuses are polled again, jobs
// left creating are looked up).
awaitable<void> Daemon::retry_writes() {
  while (!pending_writes_.empty()) {
    if (!co_await sleep_for(std::chrono::milliseconds{500})) break;
    while (!pending_writes_.empty()) {
      PendingWrite& head = pending_writes_.front();
      const auto done = head.attempt();
      if (!done && storage_may_recover(done.error())) {
        store_failed(head.what, done.error());
        break;
      }
      if (done) {
        store_succeeded();
      } else {
        store_failed(head.what, done.error());
      }
      pending_writes_.pop_front();
    }
  }
  if (!pending_writes_.empty()) {
    spdlog::warn("stopping with {} store write(s) not done; the next start repairs them",
                 pending_writes_.size());
  }
  retrying_writes_ = false;
}

void Daemon::finish_job(const core::JobRecord& job, core::JobState state, std::string reason) {
  write("the end of job '" + job.definition.key + "' (" + std::string{core::to_string(state)} + ")",
        [this, id = job.id, state, reason = std::move(reason), now = core::wall_now()] {
          return store_->finish(id, state, reason, now);
        });
}

void Daemon::store_failed(std::string_view what, const store::Error& failure) {
  const boost::system::error_code& error = failure.code;
  const bool storage = storage_may_recover(error) || error == errc::storage_corrupt;
  const std::string kind = error.category() == orch_category() ? [&] {
    switch (static_cast<errc>(error.value())) {
      case errc::storage_full: return std::string{"disk_full"};
      case errc::storage_io: return std::string{"io_error"};
      case errc::storage_busy: return std::string{"busy"};
      case errc::storage_corrupt: return std::string{"corrupt"};
      case errc::lease_lost: return std::string{"lease_lost"};
      case errc::sync_failed: return std::string{"fsync_failed"};
      case errc::conflict:
      case errc::not_found: return std::string{"refused"};
      default: return std::string{"other"};
    }
  }() : std::string{"other"};
  count("devin_orch_store_errors_total", "Failed database calls of the daemon, by cause.",
        {{"kind", kind}});
  const auto now = SteadyClock::now();
  if (!storage) {
    spdlog::error("cannot record {}: {}{}", what, error.message(),
                  failure.detail.empty() ? "" : " (" + failure.detail + ")");
    return;
  }
  // One line when the trouble starts or changes, then one a minute: a full disk would
  // otherwise log every retry of every write.
  if (!storage_trouble_ || storage_trouble_->error != error) {
    spdlog::error("cannot record {}: {}; retrying until it goes through, and sending no create "
                  "meanwhile", what, error.message());
    storage_trouble_ = StorageTrouble{.error = error, .since = now, .last_logged = now};
  } else if (now - storage_trouble_->last_logged >= std::chrono::minutes{1}) {
    spdlog::error("still cannot write to the database ({}) after {} s; {} write(s) waiting",
                  error.message(),
                  std::chrono::duration_cast<std::chrono::seconds>(now - storage_trouble_->since)
                      .count(),
                  pending_writes_.size());
    storage_trouble_->last_logged = now;
  }
}

void Daemon::store_succeeded() {
  if (!storage_trouble_) return;
  spdlog::info("the database takes writes again after {:.1f} s ({})",
               std::chrono::duration<double>(SteadyClock::now() - storage_trouble_->since).count(),
               storage_trouble_->error.message());
  storage_trouble_.reset();
}

}  // namespace detail

int run_daemon(const Config& config, const std::string& api_key, const DaemonOptions& options) {
  auto store = store::open_store(store_options(config.database));
  if (!store) {
    spdlog::error("cannot open database {}: {}", config.database.path, store.error().message());
    return 1;
  }

  boost::asio::io_context io{1};
  std::string error;
  const DeferredLogWrites log_writes{
      [&io](std::function<void()> write) { boost::asio::post(io, std::move(write)); }};
  auto http = api::HttpClient::create(
      io.get_executor(),
      api::HttpClientOptions{.base_url = config.api.base_url,
                             .bearer_token = api_key,
                             .ca_file = config.api.ca_file,
                             .connect_timeout = config.api.connect_timeout,
                             .request_timeout = config.api.request_timeout,
                             .max_body_bytes = config.api.max_body_bytes,
                             .max_idle_connections =
                                 static_cast<std::size_t>(config.api.max_in_flight)},
      &error);
  if (!http) {
    spdlog::error("api.base_url: {}", error.empty() ? http.error().message() : error);
    return 2;
  }
  server::MetricsRegistry metrics;
  // Constructed before the job files are read: from here a SIGTERM is handled (at the first
  // turn of the loop), however long reading them takes.
  detail::Daemon daemon{io, config, (*store)->queue(), (*store)->changes(), std::move(*http),
                       options, metrics};
  const auto loaded = load_job_files_into(**store, config.jobs.files, core::wall_now());
  if (loaded.fatal_errors > 0) return 2;
  std::unique_ptr<server::StatusServer> status_server;
  if (config.metrics.enabled) {
    auto started = server::StatusServer::start(
        io.get_executor(),
        server::StatusServerOptions{.address = config.metrics.address,
                                    .port = static_cast<std::uint16_t>(config.metrics.port)},
        metrics, [&daemon] { return daemon.readiness(); },
        [&daemon] { daemon.refresh_gauges(); },
        &error);
    if (!started) {
      spdlog::error("metrics listener: {}", error.empty() ? started.error().message() : error);
      return 1;
    }
    status_server = std::move(*started);
    spdlog::info("metrics listening on http://{}:{}/metrics", config.metrics.address,
                 status_server->port());
  }
  daemon.start();
  io.run();
  if (status_server) status_server->stop();
  daemon.release_lease();
  return daemon.exit_code();
}

}  // namespace devin_orch::app
