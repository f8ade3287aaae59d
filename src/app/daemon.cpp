// The daemon's wiring: maps the pure core's actions (creation machine, rate gate, poll planner)
// onto the store, the API client and Asio timers. All I/O decisions are made in core; this
// file only moves bytes, timers and rows.
#include "devin_orch/app/daemon.hpp"

#include "devin_orch/api/devin_client.hpp"
#include "devin_orch/api/http_client.hpp"
#include "devin_orch/app/job_loader.hpp"
#include "devin_orch/app/session_secrets.hpp"
#include "devin_orch/app/store_watch.hpp"
#include "devin_orch/app/systemd_notify.hpp"
#include "devin_orch/core/creation_machine.hpp"
#include "devin_orch/core/poll_planner.hpp"
#include "devin_orch/core/rate_gate.hpp"
#include "devin_orch/core/recheck_schedule.hpp"
#include "devin_orch/core/session_policy.hpp"
#include "devin_orch/core/session_verdict.hpp"
#include "devin_orch/server/metrics.hpp"
#include "devin_orch/server/status_server.hpp"
#include "devin_orch/store/job_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace devin_orch::app {
namespace {

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using core::TimePoint;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kTuple = net::as_tuple(use_awaitable);
constexpr std::size_t kMaxLookupPages = 1000;

// A one-shot wake-up for a single waiter that never loses a notify sent before the wait.
class Wakeup {
 public:
  explicit Wakeup(net::any_io_executor executor) : timer_{std::move(executor)} {}

  awaitable<void> wait_for(core::Duration timeout) {
    if (pending_) {
      pending_ = false;
      co_return;
    }
    timer_.expires_after(timeout);
    co_await timer_.async_wait(kTuple);
    pending_ = false;
  }

  void notify() {
    pending_ = true;
    timer_.cancel();
  }

 private:
  net::steady_timer timer_;
  bool pending_ = false;
};

core::Duration until(TimePoint deadline, TimePoint now) {
  return std::max(core::Duration{0}, deadline - now);
}

struct TrackedSession {
  std::int64_t job_id = 0;
  std::int64_t started_at_ms = 0;  // session committed; for the session-duration histogram
  std::string job_key;
  std::string status;
  std::optional<std::string> status_detail;
  core::SessionPolicy policy;  // the job's controls applied to each observation
};

struct Org {
  Org(std::string id, const Config& config, core::Random& random, net::any_io_executor executor)
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
        poll_wakeup{executor},
        slot_freed{executor} {
    slot_freed.expires_at(net::steady_timer::time_point::max());
  }

  std::string org_id;
  core::RateGate gate;
  core::PollPlanner planner;
  Wakeup poll_wakeup;
  net::steady_timer slot_freed;  // cancelled whenever an in-flight slot frees; many waiters
  std::set<net::steady_timer*> gate_sleepers;  // woken when the gate opens early (hold released)
  int in_flight = 0;
  int creating = 0;               // creation flows running
  int creates_waiting = 0;        // creation flows waiting at the gate for a token
  int active_sessions = 0;        // sessions being polled
  int poll_failures = 0;          // consecutive failed poll requests
  std::optional<std::string> paused_reason;
};

class Daemon {
 public:
  Daemon(net::io_context& io, const Config& config, std::unique_ptr<store::JobStore> store,
         std::unique_ptr<api::HttpClient> http, const DaemonOptions& options,
         server::MetricsRegistry& metrics)
      : io_{io},
        metrics_{metrics},
        config_{config},
        store_{std::move(store)},
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
                         .settle_delay = config.create.settle_delay} {}

  // Re-attaches what a previous run left in flight, then starts the loops.
  bool start() {
    if (!recover()) return false;
    ready_ = true;
    net::co_spawn(io_, dispatcher(), net::detached);
    listen_for_signals();
    notifier_.notify("READY=1\nSTATUS=" + status_line());
    net::co_spawn(io_, heartbeat(), net::detached);
    return true;
  }

  int exit_code() const noexcept { return exit_code_; }

  // /readyz: the database is open and restart recovery is done.
  bool ready() const noexcept { return ready_ && !stopping_; }

  // Gauges are computed when scraped, from the store and the loop's own state.
  void refresh_gauges() {
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

 private:
  // ---- metrics ----------------------------------------------------------------------------

  void observe_call(std::string_view operation, const core::CallOutcome& outcome,
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

  void count(std::string_view name, std::string_view help, server::Labels labels = {}) {
    metrics_.counter(name, help, std::move(labels)).inc();
  }

  // ---- supervision ------------------------------------------------------------------------

  std::string status_line() {
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
    return fmt::format("{} queued, {} creating, {} running{}", queued, in_progress_.size(),
                       tracked_.size(), paused.empty() ? "" : "; paused: " + paused);
  }

  // WATCHDOG=1 from the event loop itself, so a stuck loop is caught; STATUS= every 5 s.
  awaitable<void> heartbeat() {
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

  bool recover() {
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
        (void)store_->finish(job.id, core::JobState::lost, "running without a session id", now);
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

  Org& org_for(const core::JobRecord& job) {
    return org_named(job.definition.org_id.value_or(config_.api.org_id));
  }

  Org& org_named(const std::string& org_id) {
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

  void listen_for_signals() {
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

  void reload_job_files() {
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

  void request_stop(const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    notifier_.notify("STOPPING=1");
    spdlog::info("stopping ({}): no new work; draining for at most {} ms", why,
                 config_.shutdown.drain_timeout.count());
    dispatch_wakeup_.notify();
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
  awaitable<void> drain_watch() {
    net::steady_timer timer{io_};
    while (!in_progress_.empty() || requests_in_flight() > 0 || batches_in_flight_ > 0) {
      timer.expires_after(std::chrono::milliseconds{10});
      co_await timer.async_wait(kTuple);
    }
    spdlog::info("drained; exiting");
    io_.stop();
  }

  int requests_in_flight() const {
    int total = 0;
    for (const auto& [id, org] : orgs_) total += org->in_flight;
    return total;
  }

  // Sleeps until `timeout` passes; false when the daemon is stopping (sleeps are cut short).
  // `also` is a second registry that can wake this sleep early (e.g. the org's gate sleepers).
  awaitable<bool> sleep_for(core::Duration timeout, std::set<net::steady_timer*>* also = nullptr) {
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

  // Waits for the org's budget and an in-flight slot. False when stopping: no new requests.
  awaitable<bool> pass_gate(Org& org, core::RequestKind kind) {
    while (!stopping_) {
      const auto now = core::wall_now();
      if (org.in_flight >= config_.api.max_in_flight) {
        co_await org.slot_freed.async_wait(kTuple);
        continue;
      }
      if (org.gate.try_acquire(kind, now)) {
        ++org.in_flight;
        co_return true;
      }
      const bool create = kind == core::RequestKind::create;
      if (create) ++org.creates_waiting;
      co_await sleep_for(until(org.gate.ready_at(kind, now), now), &org.gate_sleepers);
      // The poller holds back early polls while creates wait for tokens; tell it when none do.
      if (create && --org.creates_waiting == 0) org.poll_wakeup.notify();
    }
    co_return false;
  }

  void release(Org& org, const core::CallOutcome& outcome) {
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

  void count_job_end(core::JobState state) {
    count("devin_orch_jobs_ended_total", "Jobs that reached a terminal state, by state.",
          {{"state", std::string{core::to_string(state)}}});
  }

  // Pauses are rows in org_pauses, so they survive restarts and an operator lifts them with
  // `devin-orch resume`.
  void pause_org(Org& org, const std::string& reason) {
    if (org.paused_reason) return;
    org.paused_reason = reason;
    if (const auto saved = store_->pause_org(org.org_id, reason, "daemon", core::wall_now());
        !saved) {
      spdlog::error("cannot record the pause of org {}: {}", org.org_id, saved.error().message());
    }
    spdlog::error("org {}: new sessions paused: {} (lift with `devin-orch resume --org {}`)",
                  org.org_id, reason, org.org_id);
  }

  bool paused(const Org& org) const { return org.paused_reason.has_value() || global_pause_; }

  // Mirrors org_pauses into memory: operators pause and resume from another process.
  void sync_pauses() {
    const auto rows = store_->paused_orgs();
    if (!rows) return;
    pauses_ = *rows;
    const auto global = rows->find("*");
    global_pause_ = global == rows->end() ? std::nullopt : std::optional{global->second};
    for (const auto& [id, org] : orgs_) {
      const auto row = rows->find(id);
      if (row == rows->end() && org->paused_reason) {
        spdlog::info("org {}: resumed", id);
        org->paused_reason.reset();
      } else if (row != rows->end()) {
        org->paused_reason = row->second;
      }
    }
  }

  // ---- dispatch ---------------------------------------------------------------------------

  // Reads the queue when another process committed (the store watch's notice, confirmed by
  // PRAGMA data_version), when a create slot of ours frees, and once a second for what comes
  // due by time alone (not_before, deadlines) or was missed (a filesystem without notices).
  awaitable<void> dispatcher() {
    watch_store();
    std::optional<std::int64_t> seen_version;
    bool changed_elsewhere = true;  // start-up: read everything once
    auto last_tick = SteadyClock::now() - std::chrono::hours{1};
    while (!stopping_) {
      if (const auto version = store_->data_version(); version && version.value() != seen_version) {
        seen_version = version.value();
        changed_elsewhere = true;
      }
      recheck_.looked(core::wall_now());
      const bool tick = SteadyClock::now() - last_tick >= std::chrono::seconds{1};
      if (tick) {
        last_tick = SteadyClock::now();
        enforce_deadlines();
      }
      // Pauses and cancellations are written by other processes (the CLI), so they can only
      // have changed with data_version; a cancellation we could not finish yet is retried on
      // the tick.
      if (changed_elsewhere) sync_pauses();
      if (changed_elsewhere || (tick && cancellations_pending_)) handle_cancellations();
      if (changed_elsewhere || tick || dispatch_requested_) {
        dispatch_requested_ = false;
        dispatch_ready_jobs(/*any_org=*/changed_elsewhere || tick);
      }
      changed_elsewhere = false;
      if (options_.until_idle && idle_or_stuck()) break;
      co_await dispatch_wakeup_.wait_for(until_next_look(last_tick));
    }
    if (store_watch_) store_watch_->stop();
  }

  void watch_store() {
    if (!config_.jobs.queue_watch) return;
    auto watch = StoreWatch::start(io_, config_.database.path, [this] {
      recheck_.on_notice(core::wall_now());
      dispatch_wakeup_.notify();
    });
    if (!watch) {
      spdlog::warn("cannot watch {} for other processes' commits ({}); checking every {} ms",
                   config_.database.path, watch.error().message(),
                   config_.jobs.queue_check_interval.count());
      return;
    }
    store_watch_ = std::move(*watch);
  }

  core::Duration until_next_look(SteadyClock::time_point last_tick) const {
    if (!store_watch_) return config_.jobs.queue_check_interval;
    auto wait = std::chrono::ceil<core::Duration>(last_tick + std::chrono::seconds{1} -
                                                  SteadyClock::now());
    if (const auto due = recheck_.next()) wait = std::min(wait, until(*due, core::wall_now()));
    return std::max(wait, core::Duration{0});
  }

  // Queued rows worth reading now: the free create slots of the organisations we know, plus
  // (with `any_org`) one org's worth for jobs of organisations not seen yet. Reading (and
  // decoding) more after every finished create was a measurable share of the daemon's CPU.
  std::size_t claim_limit(bool any_org) const {
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
  store::JobStore::ClaimFilter claim_filter() const {
    store::JobStore::ClaimFilter filter{.default_org = config_.api.org_id};
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
  void dispatch_ready_jobs(bool any_org) {
    const auto now = core::wall_now();
    if (global_pause_) return;
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

  bool idle_or_stuck() {
    if (!in_progress_.empty() || batches_in_flight_ > 0) return false;
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

  // ---- creation ---------------------------------------------------------------------------

  void launch_creation(core::JobRecord job, bool resumed) {
    Org& org = org_for(job);
    ++org.creating;
    in_progress_.insert(job.id);
    net::co_spawn(io_, creation_flow(org, std::move(job), resumed), net::detached);
  }

  struct LookupResult {
    core::CallOutcome outcome;
    std::vector<api::Session> matches;  // oldest first
  };

  // Lists every page of the org's sessions carrying `tag`. Only a complete walk proves absence.
  awaitable<std::optional<LookupResult>> lookup_by_tag(Org& org, const std::string& tag,
                                                       std::int64_t created_after) {
    LookupResult result;
    api::ListSessionsQuery query{.tags = {tag}, .created_after = created_after, .first = 200};
    for (std::size_t page = 0; page < kMaxLookupPages; ++page) {
      if (!co_await pass_gate(org, core::RequestKind::other)) co_return std::nullopt;
      const auto started = SteadyClock::now();
      auto answer = co_await client_.list_sessions(org.org_id, query);
      release(org, answer.outcome);
      observe_call("lookup", answer.outcome, started);
      if (!answer.outcome.ok()) {
        result.outcome = answer.outcome;
        result.matches.clear();
        co_return result;
      }
      for (auto& session : answer.value->items) {
        // Never trust the filter alone: a server that ignored it must not make us adopt.
        if (std::find(session.tags.begin(), session.tags.end(), tag) != session.tags.end()) {
          result.matches.push_back(std::move(session));
        }
      }
      if (!answer.value->has_next_page || !answer.value->end_cursor) {
        std::sort(result.matches.begin(), result.matches.end(),
                  [](const api::Session& a, const api::Session& b) {
                    return std::tie(a.created_at, a.session_id) <
                           std::tie(b.created_at, b.session_id);
                  });
        result.outcome = answer.outcome;
        co_return result;
      }
      query.after = answer.value->end_cursor;
    }
    result.outcome = core::CallOutcome{.cls = core::CallClass::ambiguous,
                                       .detail = "lookup exceeded the page limit"};
    co_return result;
  }

  awaitable<void> creation_flow(Org& org, core::JobRecord job, bool resumed) {
    const auto& key = job.definition.key;
    const std::string tag =
        job.creation_tag.empty() ? core::creation_tag(key, job.generation) : job.creation_tag;
    auto policy = creation_policy_;
    if (job.definition.controls.max_attempts) {
      policy.max_attempts = *job.definition.controls.max_attempts;
    }
    core::CreationMachine machine{policy,
                                  {.attempts = job.attempts, .intent_at_ms = job.intent_at_ms},
                                  random_};
    std::optional<api::Session> session;  // from the create answer or the lookup
    bool adopted = false;
    auto action = resumed ? machine.resume(core::ResumeAfterRestart{core::wall_now()})
                          : machine.resume(core::StartFresh{core::wall_now()});
    bool running = true;
    while (running) {
      using Kind = core::CreationActionKind;
      switch (action.kind) {
        case Kind::commit_intent: {
          const auto committed = store_->commit_intent(job.id, action.attempt, tag,
                                                       action.intent_at_ms.value_or(0),
                                                       core::wall_now());
          if (!committed) {
            spdlog::error("job '{}': cannot record create intent: {}; will retry", key,
                          committed.error().message());
            co_await sleep_for(std::chrono::seconds{1});
            running = false;
            break;
          }
          spdlog::debug("job '{}': intent committed (attempt {})", key, action.attempt);
          action = machine.resume(core::IntentCommitted{core::wall_now()});
          break;
        }
        case Kind::send_create: {
          if (!co_await pass_gate(org, core::RequestKind::create)) {
            running = false;  // stopping; the job stays `creating` and is reconciled later
            break;
          }
          std::string secret_error;
          auto secrets = resolve_session_secrets(job.definition.spec.session_secrets,
                                                 &secret_error);
          if (!secrets) {
            // Nothing was sent for this attempt, so no session can exist: safe to end here.
            release(org, core::CallOutcome{.cls = core::CallClass::not_sent});
            (void)store_->finish(job.id, core::JobState::dead, secret_error, core::wall_now());
            count_job_end(core::JobState::dead);
            spdlog::error("job '{}': dead: {}", key, secret_error);
            running = false;
            break;
          }
          const auto started = SteadyClock::now();
          auto answer = co_await client_.create_session(org.org_id, job.definition.spec, tag,
                                                        config_.api.create_timeout,
                                                        std::move(*secrets));
          release(org, answer.outcome);
          observe_call("create", answer.outcome, started);
          std::optional<std::string> session_id;
          if (answer.value) {
            session_id = answer.value->session_id;
            session = std::move(answer.value);
            adopted = false;
            spdlog::info("job '{}': created session {}", key, *session_id);
          } else {
            spdlog::warn("job '{}': create attempt {} failed ({}): {}", key, action.attempt,
                         core::to_string(answer.outcome.cls), answer.outcome.detail);
            if (!answer.outcome.ok()) (void)store_->note_error(job.id, answer.outcome.detail,
                                                              core::wall_now());
          }
          action = machine.resume(
              core::CreateAnswered{answer.outcome, std::move(session_id), core::wall_now()});
          break;
        }
        case Kind::lookup: {
          auto found = co_await lookup_by_tag(org, tag, action.created_after.value_or(0));
          if (!found) {
            running = false;
            break;
          }
          std::vector<std::string> ids;
          for (const auto& match : found->matches) ids.push_back(match.session_id);
          if (found->matches.size() > 1) {
            spdlog::error("job '{}': {} sessions carry tag {}; adopting the oldest ({})", key,
                          ids.size(), tag, ids.front());
          }
          count("devin_orch_create_lookups_total",
                "Lookups by creation tag after an ambiguous failure or a restart, by result.",
                {{"result", !found->matches.empty() ? "found"
                            : found->outcome.ok()   ? "absent"
                                                    : "failed"}});
          if (!found->matches.empty()) {
            session = found->matches.front();
            adopted = true;
            spdlog::info("job '{}': lookup found session {}; adopting it", key, ids.front());
          } else if (found->outcome.ok()) {
            spdlog::info("job '{}': lookup proved no session exists for tag {}", key, tag);
          }
          action = machine.resume(
              core::LookupAnswered{found->outcome, std::move(ids), core::wall_now()});
          break;
        }
        case Kind::wait: {
          if (action.pause_org) pause_org(org, action.reason);
          if (!co_await sleep_for(action.delay)) {
            running = false;
            break;
          }
          action = machine.resume(core::WaitElapsed{core::wall_now()});
          break;
        }
        case Kind::commit_session: {
          if (!session || session->session_id != action.session_id) {
            throw std::logic_error("commit_session without the matching session");
          }
          const auto now = core::wall_now();
          const auto committed = store_->commit_session(job.id, *session, adopted, now);
          if (!committed) {
            // The session exists but is not recorded: leave the job `creating`; the lookup at
            // the next start adopts it.
            spdlog::error("job '{}': cannot record session {}: {}", key, session->session_id,
                          committed.error().message());
            running = false;
            break;
          }
          job.session_id = session->session_id;
          count("devin_orch_sessions_total", "Sessions the daemon started tracking, by origin.",
                {{"origin", adopted ? "adopted" : "created"}});
          metrics_
              .histogram("devin_orch_queue_wait_seconds",
                         "From a job's submission to its session being recorded.",
                         server::default_duration_buckets())
              .observe(std::max<double>(
                  0, (core::to_epoch_ms(now) - job.created_at_ms) / 1000.0));
          track_session(org, job, session->status, session->status_detail, now,
                        /*poll_soon=*/false);
          action = machine.resume(core::SessionCommitted{now});
          break;
        }
        case Kind::requeue: {
          (void)store_->requeue(job.id, action.attempt, action.reason, core::wall_now());
          if (action.pause_org) pause_org(org, action.reason);
          spdlog::warn("job '{}': back to queued: {}", key, action.reason);
          running = false;
          break;
        }
        case Kind::give_up: {
          (void)store_->finish(job.id, core::JobState::dead, action.reason, core::wall_now());
          count_job_end(core::JobState::dead);
          if (action.pause_org) pause_org(org, action.reason);
          spdlog::error("job '{}': dead: {}", key, action.reason);
          running = false;
          break;
        }
        case Kind::done:
          running = false;
          break;
      }
    }
    --org.creating;
    in_progress_.erase(job.id);
    dispatch_requested_ = true;
    dispatch_wakeup_.notify();
  }

  // ---- polling ----------------------------------------------------------------------------

  void track_session(Org& org, const core::JobRecord& job, const std::string& status,
                     const std::optional<std::string>& detail, TimePoint now,
                     bool poll_soon = true) {
    tracked_.insert_or_assign(
        *job.session_id,
        TrackedSession{.job_id = job.id,
                       .started_at_ms = core::to_epoch_ms(now),
                       .job_key = job.definition.key,
                       .status = status,
                       .status_detail = detail,
                       .policy = core::SessionPolicy{job.definition.controls,
                                                     config_.jobs.complete_on, job.messages_sent,
                                                     job.waiting_since_ms}});
    ++org.active_sessions;
    org.planner.track(*job.session_id, now,
                      poll_soon ? std::optional<TimePoint>{now} : std::nullopt);
    org.poll_wakeup.notify();
  }

  void untrack_session(Org& org, const std::string& session_id) {
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

  awaitable<void> poller(Org& org) {
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

  core::Duration poll_retry_delay(Org& org) {
    return std::max(config_.poll.initial_delay / 2,
                    core::full_jitter_delay(creation_policy_.retry, org.poll_failures, random_));
  }

  awaitable<void> poll_batch(Org& org, std::vector<std::string> ids) {
    ++batches_in_flight_;
    if (!co_await pass_gate(org, core::RequestKind::other)) {
      --batches_in_flight_;
      co_return;
    }
    api::ListSessionsQuery query{.session_ids = ids, .first = static_cast<int>(ids.size())};
    const auto started = SteadyClock::now();
    auto answer = co_await client_.list_sessions(org.org_id, query);
    release(org, answer.outcome);
    observe_call("poll_batch", answer.outcome, started);
    const auto now = core::wall_now();
    if (!answer.outcome.ok()) {
      ++org.poll_failures;
      spdlog::warn("org {}: status poll of {} session(s) failed ({}): {}", org.org_id,
                   ids.size(), core::to_string(answer.outcome.cls), answer.outcome.detail);
      if (answer.outcome.cls == core::CallClass::unauthorized) {
        pause_org(org, "API key rejected (401): " + answer.outcome.detail);
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
    std::unordered_set<std::string> wanted{ids.begin(), ids.end()};
    std::vector<store::StatusUpdate> updates;
    for (auto& session : answer.value->items) {
      if (!wanted.erase(session.session_id)) continue;
      apply_status(org, std::move(session), now, updates);
    }
    commit_updates(updates, now);
    // Sessions the list did not return: ask for each one directly (404 there means lost).
    for (const auto& id : wanted) {
      if (tracked_.contains(id)) net::co_spawn(io_, poll_single(org, id), net::detached);
    }
    org.poll_wakeup.notify();
    --batches_in_flight_;
  }

  awaitable<void> poll_single(Org& org, std::string session_id) {
    ++batches_in_flight_;
    if (!co_await pass_gate(org, core::RequestKind::other)) {
      --batches_in_flight_;
      co_return;
    }
    const auto started = SteadyClock::now();
    auto answer = co_await client_.get_session(org.org_id, session_id);
    release(org, answer.outcome);
    observe_call("poll_single", answer.outcome, started);
    const auto now = core::wall_now();
    const auto it = tracked_.find(session_id);
    if (it != tracked_.end()) {
      if (answer.value) {
        std::vector<store::StatusUpdate> updates;
        apply_status(org, std::move(*answer.value), now, updates);
        commit_updates(updates, now);
      } else if (answer.outcome.cls == core::CallClass::not_found) {
        const auto reason = "session " + session_id + " not found (404): " + answer.outcome.detail;
        spdlog::error("job '{}': lost: {}", it->second.job_key, reason);
        (void)store_->finish(it->second.job_id, core::JobState::lost, reason, now);
        count_job_end(core::JobState::lost);
        untrack_session(org, session_id);
      } else {
        org.planner.retry_later(session_id, poll_retry_delay(org), now);
      }
      org.poll_wakeup.notify();
    }
    --batches_in_flight_;
  }

  void apply_status(Org& org, api::Session session, TimePoint now,
                    std::vector<store::StatusUpdate>& updates) {
    const auto it = tracked_.find(session.session_id);
    if (it == tracked_.end()) return;
    TrackedSession& tracked = it->second;
    const bool changed =
        tracked.status != session.status || tracked.status_detail != session.status_detail;
    auto decision = tracked.policy.observe({.status = session.status,
                                            .status_detail = session.status_detail,
                                            .updated_at = session.updated_at,
                                            .now = now});
    if (decision.waiting_since_changed) {
      (void)store_->set_waiting_since(tracked.job_id, tracked.policy.waiting_since_ms(), now);
    }
    if (decision.message) {
      net::co_spawn(io_,
                    send_message(org, session.session_id, std::move(*decision.message),
                                 tracked.policy.messages_sent()),
                    net::detached);
    }
    const core::SessionVerdict& verdict = decision.verdict;
    if (changed) {
      spdlog::info("job '{}': session {} is {}{}", tracked.job_key, session.session_id,
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
  awaitable<void> send_message(Org& org, std::string session_id, std::string text,
                               std::int64_t count) {
    ++batches_in_flight_;
    const auto it = tracked_.find(session_id);
    if (it != tracked_.end()) {
      const auto job_id = it->second.job_id;
      const auto key = it->second.job_key;
      (void)store_->record_message(job_id, count, text, core::wall_now());
      if (co_await pass_gate(org, core::RequestKind::other)) {
        const auto started = SteadyClock::now();
        auto answer = co_await client_.send_message(org.org_id, session_id, text);
        release(org, answer.outcome);
        observe_call("message", answer.outcome, started);
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

  // ---- deadlines and cancellations ----------------------------------------------------------

  void enforce_deadlines() {
    auto due = store_->past_deadline(core::wall_now());
    if (!due) return;
    for (auto& job : *due) {
      end_by_termination(std::move(job), core::JobState::timed_out,
                         "deadline passed: the session was terminated", /*archive=*/false);
    }
  }

  void handle_cancellations() {
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
  void end_by_termination(core::JobRecord job, core::JobState state, std::string reason,
                          bool archive) {
    const auto now = core::wall_now();
    if (job.state == core::JobState::queued && !in_progress_.contains(job.id)) {
      (void)store_->finish(job.id, state,
                           state == core::JobState::timed_out
                               ? "deadline passed before the job started"
                               : "cancelled by an operator before it started",
                           now);
      count_job_end(state);
      spdlog::info("job '{}': {} before it started", job.definition.key, core::to_string(state));
      return;
    }
    if (job.state != core::JobState::running || !job.session_id) return;
    if (!terminating_.insert(job.id).second) return;
    net::co_spawn(io_, terminate(org_for(job), std::move(job), state, std::move(reason), archive),
                  net::detached);
  }

  awaitable<void> terminate(Org& org, core::JobRecord job, core::JobState state,
                            std::string reason, bool archive) {
    ++batches_in_flight_;
    const std::string session_id = *job.session_id;
    if (co_await pass_gate(org, core::RequestKind::other)) {
      const auto started = SteadyClock::now();
      auto answer = co_await client_.terminate_session(org.org_id, session_id, archive);
      release(org, answer.outcome);
      observe_call("terminate", answer.outcome, started);
      const auto now = core::wall_now();
      if (answer.outcome.ok() || answer.outcome.cls == core::CallClass::not_found) {
        if (answer.value) {
          const std::vector<store::StatusUpdate> update{store::StatusUpdate{
              .job_id = job.id, .session = std::move(*answer.value), .new_state = state,
              .reason = reason}};
          commit_updates(update, now);
        } else {
          (void)store_->finish(job.id, state, reason, now);
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

  // ---- fan-out ------------------------------------------------------------------------------

  // One child job per organisation of the enterprise, keyed `<key>@<org_id>`; idempotent (the
  // children's keys make a repeat after a crash add nothing).
  awaitable<void> fan_out(Org& org, core::JobRecord job) {
    std::vector<std::string> org_ids;
    std::optional<std::string> after;
    int failures = 0;
    bool complete = false;
    while (!complete && !stopping_) {
      if (!co_await pass_gate(org, core::RequestKind::other)) break;
      const auto started = SteadyClock::now();
      auto answer = co_await client_.list_organizations(200, after);
      release(org, answer.outcome);
      observe_call("list_organizations", answer.outcome, started);
      if (!answer.value) {
        spdlog::warn("job '{}': listing the enterprise's organisations failed ({})",
                     job.definition.key, answer.outcome.detail);
        if (answer.outcome.cls == core::CallClass::forbidden ||
            answer.outcome.cls == core::CallClass::rejected) {
          (void)store_->finish(job.id, core::JobState::dead,
                               "fan-out: cannot list organisations: " + answer.outcome.detail,
                               core::wall_now());
          count_job_end(core::JobState::dead);
          break;
        }
        co_await sleep_for(core::full_jitter_delay(creation_policy_.retry, failures++, random_));
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
        const auto result = store_->add_job(child, "fan-out:" + job.definition.key, now,
                                            job.definition.key);
        added += result && *result == store::AddResult::inserted ? 1 : 0;
      }
      (void)store_->finish(job.id, core::JobState::finished, "", now);
      count_job_end(core::JobState::finished);
      spdlog::info("job '{}': fanned out to {} organisation(s) ({} new child jobs)",
                   job.definition.key, org_ids.size(), added);
    }
    in_progress_.erase(job.id);
    dispatch_requested_ = true;
    dispatch_wakeup_.notify();
  }

  void commit_updates(const std::vector<store::StatusUpdate>& updates, TimePoint now) {
    if (updates.empty()) return;
    if (const auto written = store_->record_statuses(updates, now); !written) {
      // The next poll sees the same status again and retries the write.
      spdlog::error("cannot record {} status update(s): {}", updates.size(),
                    written.error().message());
    }
  }

  net::io_context& io_;
  server::MetricsRegistry& metrics_;
  const Config& config_;
  std::unique_ptr<store::JobStore> store_;
  std::unique_ptr<api::HttpClient> http_;
  api::DevinClient client_;
  DaemonOptions options_;
  SystemdNotifier notifier_;
  core::Random random_;
  Wakeup dispatch_wakeup_;
  net::steady_timer drain_timer_;
  net::signal_set signals_;
  core::CreationPolicy creation_policy_;
  std::map<std::string, std::unique_ptr<Org>> orgs_;
  std::unordered_map<std::string, TrackedSession> tracked_;
  std::unordered_set<std::int64_t> in_progress_;
  std::unordered_set<std::int64_t> terminating_;  // jobs whose session DELETE is in flight
  std::optional<std::string> global_pause_;       // org_pauses row "*"
  std::map<std::string, std::string> pauses_;     // org_pauses as last read
  std::set<net::steady_timer*> sleepers_;
  int batches_in_flight_ = 0;
  std::unique_ptr<StoreWatch> store_watch_;  // null: polling every queue_check_interval
  core::RecheckSchedule recheck_;            // looks due after the watch's latest notice
  bool dispatch_requested_ = false;
  bool cancellations_pending_ = false;
  bool stopping_ = false;
  bool ready_ = false;
  int exit_code_ = 0;
};

}  // namespace

int run_daemon(const Config& config, const std::string& api_key, const DaemonOptions& options) {
  std::string error;
  auto store = store::JobStore::open(
      store::StoreOptions{.path = config.database.path,
                          .busy_timeout = config.database.busy_timeout},
      &error);
  if (!store) {
    spdlog::error("cannot open database {}: {}", config.database.path,
                  error.empty() ? store.error().message() : error);
    return 1;
  }
  const auto loaded = load_job_files_into(**store, config.jobs.files, core::wall_now());
  if (loaded.fatal_errors > 0) return 2;

  net::io_context io{1};
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
  Daemon daemon{io, config, std::move(*store), std::move(*http), options, metrics};
  std::unique_ptr<server::StatusServer> status_server;
  if (config.metrics.enabled) {
    auto started = server::StatusServer::start(
        io.get_executor(),
        server::StatusServerOptions{.address = config.metrics.address,
                                    .port = static_cast<std::uint16_t>(config.metrics.port)},
        metrics, [&daemon] { return daemon.ready(); }, [&daemon] { daemon.refresh_gauges(); },
        &error);
    if (!started) {
      spdlog::error("metrics listener: {}", error.empty() ? started.error().message() : error);
      return 1;
    }
    status_server = std::move(*started);
    spdlog::info("metrics listening on http://{}:{}/metrics", config.metrics.address,
                 status_server->port());
  }
  if (!daemon.start()) return daemon.exit_code();
  io.run();
  if (status_server) status_server->stop();
  return daemon.exit_code();
}

}  // namespace devin_orch::app
