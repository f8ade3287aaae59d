// The daemon's supervisor: wires its parts (runtime, store writer, gates, poller, creator,
// dispatcher, retention) and owns what concerns the process as a whole: the organisations'
// leases, recovery at each take-over, signals, the systemd heartbeat, readiness, gauges and
// shutdown.
#include "devin_orch/app/daemon/daemon.hpp"

#include "creator.hpp"
#include "dispatcher.hpp"
#include "notifier.hpp"
#include "org_gates.hpp"
#include "parts.hpp"
#include "poller.hpp"
#include "org_leases.hpp"
#include "retention.hpp"
#include "store_writer.hpp"

#include "devin_orch/api/http_client.hpp"
#include "devin_orch/app/config/job_api.hpp"
#include "devin_orch/app/spending.hpp"
#include "devin_orch/app/daemon/runtime.hpp"
#include "devin_orch/app/daemon/systemd_notify.hpp"
#include "devin_orch/app/dashboard/dashboard.hpp"
#include "devin_orch/app/jobs/job_loader.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/server/metrics.hpp"
#include "devin_orch/server/http_listener.hpp"
#include "devin_orch/server/status_server.hpp"
#include "devin_orch/store/store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>

namespace devin_orch::app {
namespace detail {
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

// The reasons the poller and the creation machine give a pause for a rejected key.
bool is_key_pause(std::string_view reason) {
  return reason.starts_with("API key rejected (401)") || reason.starts_with("unauthorized");
}

// Where resolve_api_key found the key, in the same order, for an error that names it.
}  // namespace

class Daemon {
 public:
  Daemon(net::io_context& io, const Config& config, store::QueueStore& store,
         store::ChangeFeed& changes, store::OutboxStore& outbox,
         std::unique_ptr<ApiClients> clients, const DaemonOptions& options,
         server::MetricsRegistry& metrics);

  // Signals, the systemd heartbeat and the organisations' leases: from here the daemon works
  // the organisations it holds and takes its share of the others as they come free.
  void start();
  int exit_code() const noexcept { return exit_code_; }
  // /readyz: this process works at least one organisation, restart recovery is done and the
  // leases are proven; otherwise why not.
  server::Readiness readiness() const;
  // After the loop has ended: lets the leases this process holds lapse at once.
  void release_lease() { lease_.stop_and_release(); }
  void refresh_gauges();
  // Each organisation's rate gate, for the dashboard's overview.
  std::vector<dashboard::RateUse> rate_use() const;

 private:
  void take_over(const std::string& org_id);
  awaitable<void> check_key(std::string org_id);
  void hand_over(const std::string& org_id);
  void stand_by();
  bool org_busy(const std::string& org_id);
  void abandon(const std::string& why);
  bool recover(const std::string& org_id);
  std::string status_line();
  awaitable<void> heartbeat();
  void listen_for_signals();
  void reload_job_files();
  void reload_budgets();
  // The one way to stop: the runtime's signal ends every wait; the loop ends once every task
  // has, or at the drain deadline.
  void request_stop(const std::string& why, int exit_code = 0);
  awaitable<void> end_when_drained();

  net::io_context& io_;
  const Config& config_;
  store::QueueStore& store_;
  std::unique_ptr<ApiClients> clients_;
  DaemonOptions options_;
  SystemdNotifier notifier_;
  core::Random random_;
  Runtime runtime_;
  DaemonMetrics metrics_;
  Services services_;
  StoreWriter writer_;
  OrgLeases lease_;  // which organisations this process works
  OrgGates gates_;
  Poller poller_;
  Creator creator_;
  Notifier notifications_;
  Dispatcher dispatcher_;
  Retention retention_;
  net::signal_set signals_;
  net::steady_timer drain_deadline_;
  bool ready_ = false;    // the first organisation was taken and its jobs recovered
  bool started_ = false;  // the dispatcher, notifications and retention run
  int exit_code_ = 0;
  std::optional<std::string> key_problem_;  // GET /v3/self refused the key at take-over
};

Daemon::Daemon(net::io_context& io, const Config& config, store::QueueStore& store,
               store::ChangeFeed& changes, store::OutboxStore& outbox,
               std::unique_ptr<ApiClients> clients, const DaemonOptions& options,
               server::MetricsRegistry& metrics)
    : io_{io},
      config_{config},
      store_{store},
      clients_{std::move(clients)},
      options_{options},
      notifier_{SystemdNotifier::from_environment()},
      random_{std::random_device{}()},
      runtime_{io},
      metrics_{metrics, config.api.org_id},
      services_{runtime_, config, store, *clients_, metrics_, random_},
      writer_{services_},
      lease_{io, store, lease_policy(config.lease), config.api.org_id,
             OrgLeases::Callbacks{
                 .took_over = [this](const std::string& org, std::int64_t) { take_over(org); },
                 // The org's gate holds every request.
                 .paused = [](const std::string&, const std::string&) {},
                 .resumed =
                     [this](const std::string& org) {
                       gates_.lease_resumed();
                       dispatcher_.wake();
                       gates_.named(org).poll_wakeup.notify();
                     },
                 .lost = [this](const std::string&, const std::string& why) { abandon(why); },
                 .busy = [this](const std::string& org) { return org_busy(org); },
                 .handing_over = [this](const std::string& org) { hand_over(org); },
                 .holding_none = [this] { stand_by(); },
             }},
      gates_{services_, writer_, lease_},
      poller_{services_, writer_, gates_, [this] { dispatcher_.slot_freed(); },
              [this](const std::string& key, std::string reason) {
                dispatcher_.end_stalled(key, std::move(reason));
              }},
      creator_{services_, writer_, gates_,
               Creator::Callbacks{
                   .recorded =
                       [this](Org& org, const core::JobRecord& job, const api::Session& session,
                              TimePoint now) {
                         poller_.track(org, job, session.status, session.status_detail, now,
                                       /*reattached=*/false,
                                       std::max(session.created_at, session.updated_at));
                       },
                   .flow_ended = [this] { dispatcher_.slot_freed(); },
                   .fatal = [this](const std::string& why) { request_stop(why, 1); },
               }},
      notifications_{services_, writer_, outbox, [this] { return lease_.may_act(); }},
      dispatcher_{services_,
                  Dispatcher::Parts{.writer = writer_,
                                    .gates = gates_,
                                    .creator = creator_,
                                    .poller = poller_,
                                    .lease = lease_,
                                    .changes = changes,
                                    .notifier = notifications_},
                  options.until_idle, options.progress_every,
                  [this](const std::string& why, int code) { request_stop(why, code); }},
      retention_{services_, writer_, lease_},
      signals_{io, SIGINT, SIGTERM, SIGHUP},
      drain_deadline_{io} {
  gates_.on_new_org([this](Org& org) { poller_.start(org); });
}

void Daemon::start() {
  listen_for_signals();
  notifier_.notify("READY=1\nSTATUS=" + status_line());
  runtime_.spawn(heartbeat());
  lease_.start();
}

// This process holds the org's lease now: re-attach what a previous holder (this process's
// predecessor, or another daemon that died or handed it over) left in flight, then dispatch its
// jobs too. The first org taken starts the dispatcher, notifications and retention.
void Daemon::take_over(const std::string& org_id) {
  if (runtime_.stopping()) return;
  // Read at each take-over, as the previous holder left them: the org's Org (created by the
  // recovery below if new) starts paused if it is, and sends nothing inside a wait announced
  // before the previous holder stopped.
  if (!gates_.taking_over(org_id) || !recover(org_id)) {
    request_stop("cannot read the queue", 1);
    return;
  }
  ready_ = true;
  gates_.lease_resumed();
  // Each key once per take-over of an organisation using it: the global one with the default
  // organisation, an organisation's own (api.organizations) with that organisation.
  if (org_id == config_.api.org_id || clients_->own_key(org_id)) {
    runtime_.spawn(check_key(org_id));
  }
  if (!started_) {
    started_ = true;
    runtime_.spawn(notifications_.run());  // what earlier owners left undelivered goes first
    runtime_.spawn(dispatcher_.run());
    if (retention_.enabled()) runtime_.spawn(retention_.run());
  } else {
    dispatcher_.look_again();
  }
}

// Another daemon takes the org over: its sessions are no longer polled here (the successor
// re-attaches them from the store). Only an org with no create in flight is handed over.
void Daemon::hand_over(const std::string& org_id) {
  poller_.drop_org(gates_.named(org_id));
  notifier_.notify("STATUS=" + status_line());
}

bool Daemon::org_busy(const std::string& org_id) {
  const auto& orgs = gates_.all();
  const auto it = orgs.find(org_id);
  return it != orgs.end() && it->second->creating > 0;
}

// GET /v3/self (v1: GET /v1/sessions?limit=1), through the gate of `org_id`: the default
// organisation for the global key, an organisation with its own key for that key. A key that
// works lifts every pause the daemon set for a rejected key on the organisations using it; one
// that does not is reported now, by name of its source, rather than at the first create, and
// pauses only those organisations. No answer (network down, 5xx) decides nothing: the pauses
// stay, the first 401 pauses as before.
awaitable<void> Daemon::check_key(std::string org_id) {
  Org& org = gates_.named(org_id);
  auto answer = co_await gates_.call(org, core::RequestKind::other, ApiOperation::self,
                                     [this, &org_id] { return clients_->for_org(org_id).self(); });
  if (!answer) co_return;  // stopping
  if (answer->value) {
    const auto pauses = gates_.stored_pauses();  // a copy: lifting edits the original
    for (const auto& [id, reason] : pauses) {
      if (id == "*" || !is_key_pause(reason) || !clients_->same_key(id, org_id)) continue;
      log_event(spdlog::level::info, {.event = "org_resumed", .org_id = id},
                "org {}: the API key works again (GET /v3/self answered for {}); lifting the "
                "pause \"{}\"",
                id, answer->value->principal_type, reason);
      gates_.lift_pause(gates_.named(id), reason);
    }
    dispatcher_.look_again();
    co_return;
  }
  if (answer->outcome.cls != core::CallClass::unauthorized) {
    spdlog::warn("could not check the API key: GET /v3/self answered {} (HTTP {}): {}",
                 core::to_string(answer->outcome.cls), answer->outcome.http_status,
                 answer->outcome.detail);
    co_return;
  }
  key_problem_ = fmt::format("the API key from {} is rejected by the API (401: {})",
                             describe_org_api_key_source(config_.api, org_id),
                             answer->outcome.detail);
  log_event(spdlog::level::err, {.event = "api_key_rejected"},
            "{}; no session can be created until it is replaced and the daemon restarted",
            *key_problem_);
  for (const auto& [id, known] : gates_.all()) {
    if (!clients_->same_key(id, org_id)) continue;  // another key: its own check decides
    gates_.pause(*known, "API key rejected (401): " + answer->outcome.detail);
  }
}

// No organisation is free for this daemon. A batch run (--until-idle) ends once the queue has
// nothing left in progress: the other daemons did the work.
void Daemon::stand_by() {
  notifier_.notify("STATUS=" + lease_.describe());
  if (!options_.until_idle || runtime_.stopping()) return;
  const auto counts = store_.count_by_state();
  if (!counts) return;
  std::int64_t in_progress = 0;
  for (const auto state : {core::JobState::queued, core::JobState::creating,
                           core::JobState::running}) {
    if (const auto it = counts->find(state); it != counts->end()) in_progress += it->second;
  }
  if (in_progress == 0) {
    log_event(spdlog::level::info, {.event = "idle"},
              "idle: no job queued or in flight (worked by another daemon)");
    request_stop("idle");
  }
}

// Another process took an organisation while this one still had its work in memory. Nothing of
// it can be written any more (the store refuses its fenced writes), and its requests must stop
// at once: exit, and let the supervisor start this process again (it takes its share anew).
void Daemon::abandon(const std::string& why) {
  log_event(spdlog::level::critical, {.event = "lease_lost"},
            "giving up the queue: {}; exiting so that nothing more is sent", why);
  exit_code_ = 1;
  runtime_.stop();
  io_.stop();
}

server::Readiness Daemon::readiness() const {
  if (runtime_.stopping()) return {false, "stopping"};
  if (!lease_.may_act_any()) return {false, lease_.describe()};
  if (auto trouble = writer_.trouble()) return {false, std::move(*trouble)};
  if (!ready_) return {false, "recovering the jobs a previous run left in flight"};
  if (key_problem_) return {false, *key_problem_};
  return true;
}

// Gauges are computed when scraped, from the store and the parts' own state.
void Daemon::refresh_gauges() {
  auto& metrics = services_.metrics;
  if (const auto counts = store_.count_by_state(); counts) {
    for (const auto& [state, count] : *counts) metrics.jobs(state, static_cast<double>(count));
  }
  const auto now = core::wall_now();
  // Only jobs the daemon could start now: a job scheduled for later is not late, and a paused
  // one waits for an operator (devin_orch_paused_organizations and _users say so). Under a
  // pause of every organisation no job could start.
  double oldest_age = 0;
  if (const auto oldest = store_.oldest_startable_since_ms(now, gates_.claim_filter());
      oldest && oldest->has_value() && !gates_.global_pause()) {
    oldest_age = std::max<double>(0, (core::to_epoch_ms(now) - **oldest) / 1000.0);
  }
  metrics.oldest_startable_job_age(oldest_age);
  // Paused in the store (by an operator or by this daemon) or only in memory (not saved yet);
  // under a pause of every organisation, every one the daemon knows.
  std::set<std::string> paused;
  for (const auto& [id, reason] : gates_.stored_pauses()) {
    if (id != "*") paused.insert(id);
  }
  for (const auto& [id, org] : gates_.all()) {
    if (gates_.paused(*org)) paused.insert(id);
  }
  for (const auto& gate : rate_use()) {
    metrics.rate_gate(gate.org_id, {.configured_per_second = gate.ceiling_per_minute / 60.0,
                                    .per_second = gate.allowed_per_minute / 60.0,
                                    .tokens = gate.tokens});
  }
  metrics.paused_organizations(static_cast<double>(paused.size()));
  metrics.paused_users(static_cast<double>(gates_.paused_users()));
  metrics.active_sessions(static_cast<double>(poller_.size()));
  metrics.sessions_stalled(static_cast<double>(poller_.stalled()));
  metrics.creations_in_flight(static_cast<double>(creator_.size()));
  metrics.organizations_held(static_cast<double>(lease_.held().size()));
  metrics.requests_in_flight(gates_.requests_in_flight());
}

std::vector<dashboard::RateUse> Daemon::rate_use() const {
  const auto now = core::wall_now();
  std::vector<dashboard::RateUse> gates;
  for (const auto& [id, org] : gates_.all()) {
    const auto& gate = org->admission.gate();
    gates.push_back({.org_id = id,
                     .ceiling_per_minute = config_.rate.requests_per_minute,
                     .allowed_per_minute = gate.rate_per_minute(),
                     .tokens = gate.tokens(now),
                     .burst = config_.rate.burst,
                     .requests_in_flight = org->admission.in_flight()});
  }
  return gates;
}

std::string Daemon::status_line() {
  if (lease_.held_count() == 0) return lease_.describe();
  std::int64_t queued = 0;
  if (const auto counts = store_.count_by_state(); counts) {
    if (const auto it = counts->find(core::JobState::queued); it != counts->end()) {
      queued = it->second;
    }
  }
  std::string paused;
  for (const auto& [id, org] : gates_.all()) {
    if (org->paused_reason) paused += (paused.empty() ? "" : ",") + id;
  }
  const auto trouble = writer_.trouble_cause();
  return fmt::format("{} queued, {} creating, {} running{}{}{}", queued, creator_.size(),
                     poller_.size(), paused.empty() ? "" : "; paused: " + paused,
                     trouble ? "; database: " + *trouble : "",
                     key_problem_ ? "; " + *key_problem_ : "");
}

// WATCHDOG=1 from the event loop itself, so a stuck loop is caught; STATUS= every 5 s.
awaitable<void> Daemon::heartbeat() {
  if (!notifier_.enabled()) co_return;
  const core::Duration status_period = std::chrono::seconds{5};
  const auto period = std::min(notifier_.watchdog_period().value_or(status_period), status_period);
  auto last_status = SteadyClock::now();
  do {
    if (notifier_.watchdog_period()) notifier_.notify("WATCHDOG=1");
    if (SteadyClock::now() - last_status >= status_period) {
      notifier_.notify("STATUS=" + status_line());
      last_status = SteadyClock::now();
    }
  } while (co_await runtime_.sleep_for(period));
}

bool Daemon::recover(const std::string& org_id) {
  const auto now = core::wall_now();
  auto creating = store_.in_state(core::JobState::creating);
  auto running = store_.in_state(core::JobState::running);
  if (!creating || !running) {
    spdlog::error("cannot read jobs from the database: {}",
                  (!creating ? creating.error() : running.error()).message());
    return false;
  }
  // Only this org's jobs; another daemon works the others.
  const auto other_org = [this, &org_id](const core::JobRecord& job) {
    return job.definition.org_id.value_or(config_.api.org_id) != org_id;
  };
  std::erase_if(*running, other_org);
  std::erase_if(*creating, [this, &other_org](const core::JobRecord& job) {
    return other_org(job) || creator_.in_flight(job.id);
  });
  for (auto& job : *running) {
    if (!job.session_id) {
      log_event(spdlog::level::err,
                {.event = "job_ended", .key = job.definition.key, .state = "lost"},
                "job '{}' is running without a session id; marking it lost",
                job.definition.key);
      writer_.write("job '" + job.definition.key + "' as lost", [this, id = job.id, now] {
        return store_.finish(id, core::JobState::lost, "running without a session id", now);
      });
      continue;
    }
    // Poll soon: the session may have moved on while we were down.
    poller_.track(gates_.for_job(job), job, job.status.value_or(""), job.status_detail, now);
  }
  for (auto& job : *creating) {
    spdlog::info("job '{}' was being created when the daemon stopped; reconciling by tag {}",
                 job.definition.key, job.creation_tag);
    creator_.launch(std::move(job), /*resumed=*/true);
  }
  spdlog::info("org {}: recovered {} running and {} creating jobs", org_id, running->size(),
               creating->size());
  return true;
}

void Daemon::listen_for_signals() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      reload_job_files();
    } else if (runtime_.stopping()) {
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
  reload_budgets();
  const auto report = load_job_files_into(store_, config_.jobs.files, core::wall_now(),
                                          job_api_check(config_.api),
                                          config_.attachments.max_bytes);
  if (report.fatal_errors > 0) {
    spdlog::error("reload: {} job file(s) could not be read; nothing else changed",
                  report.fatal_errors);
  }
  notifier_.notify("READY=1\nSTATUS=" + status_line());
  dispatcher_.look_again();
}

// The spending section is read again (a raised budget lets held jobs go); other settings take
// effect at the next start.
void Daemon::reload_budgets() {
  if (config_.source_path.empty()) return;
  const auto load = load_config(config_.source_path);
  if (!load.config) {
    spdlog::error("SIGHUP: {} has errors, so the ACU budgets stay as they were: {}",
                  config_.source_path,
                  load.errors.empty() ? std::string{"unreadable"} : load.errors.front().to_string());
    return;
  }
  if (!dispatcher_.set_spending_budgets(spending_budgets(load.config->spending))) {
    spdlog::error("SIGHUP: the ACU budgets stay as they were: the charged jobs cannot be read");
    return;
  }
  spdlog::info("SIGHUP: ACU budgets applied from {} (other settings take effect at the next "
               "start)", config_.source_path);
}

void Daemon::request_stop(const std::string& why, int exit_code) {
  if (exit_code != 0) exit_code_ = exit_code;
  if (runtime_.stopping()) return;
  notifier_.notify("STOPPING=1");
  log_event(spdlog::level::info, {.event = "stopping"},
            "stopping ({}): no new work; draining for at most {} ms", why,
            config_.shutdown.drain_timeout.count());
  creator_.flush_now();  // not after its linger: a second signal may not leave that long
  runtime_.stop();
  drain_deadline_.expires_after(config_.shutdown.drain_timeout);
  drain_deadline_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::warn("drain deadline reached with {} creation flow(s) and {} request(s) in "
                 "flight; they resume at the next start",
                 creator_.size(), gates_.requests_in_flight());
    io_.stop();
  });
  net::co_spawn(io_, end_when_drained(), net::detached);
}

// Ends the loop as soon as every task of the runtime has ended.
awaitable<void> Daemon::end_when_drained() {
  co_await runtime_.drained();
  spdlog::info("drained; exiting");
  io_.stop();
}

}  // namespace detail

namespace {

// The key of the dashboard's session cookies and CSRF tokens: fresh at every start, so both
// lapse with the process.
std::string dashboard_secret() {
  std::random_device random;
  std::string secret;
  for (int i = 0; i < 32; ++i) secret += static_cast<char>(random() & 0xFFU);
  return secret;
}

}  // namespace

int run_daemon(const Config& config, const std::string& api_key, const DaemonOptions& options) {
  auto store = store::open_store(store_options(config.database));
  if (!store) {
    spdlog::error("cannot open database {}: {}", database_name(config.database), store.error().message());
    return 1;
  }

  boost::asio::io_context io{1};
  std::string error;
  const DeferredLogWrites log_writes{
      [&io](std::function<void()> write) { boost::asio::post(io, std::move(write)); }};
  auto clients = detail::ApiClients::create(io.get_executor(), config.api, api_key, &error);
  if (!clients) {
    spdlog::error("{}", error);
    return 2;
  }
  server::MetricsRegistry metrics;
  // Constructed before the job files are read: from here a SIGTERM is handled (at the first
  // turn of the loop), however long reading them takes.
  detail::Daemon daemon{io,      config,           (*store)->queue(), (*store)->changes(),
                       (*store)->outbox(), std::move(clients), options, metrics};
  const auto loaded = load_job_files_into(**store, config.jobs.files, core::wall_now(),
                                          job_api_check(config.api),
                                          config.attachments.max_bytes);
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
  std::unique_ptr<store::Store> web_store;
  std::unique_ptr<dashboard::Dashboard> web;
  std::unique_ptr<server::HttpListener> web_listener;
  if (config.dashboard.enabled) {
    std::string token_error;
    auto token = resolve_dashboard_token(config.dashboard, &token_error);
    if (!token && !token_error.empty()) {
      spdlog::error("dashboard: {}", token_error);
      return 2;
    }
    // Its own connection, as the CLI's commands have: an operator beside the daemon, whose
    // reads see every commit and never share the daemon's statements or transactions.
    auto opened = store::open_store(store_options(config.database));
    if (!opened) {
      spdlog::error("dashboard: cannot open database {}: {}", database_name(config.database),
                    opened.error().message());
      return 1;
    }
    web_store = std::move(*opened);
    web = std::make_unique<dashboard::Dashboard>(
        web_store->operators(), &web_store->outbox(), config,
        dashboard::WebAuth{std::move(token), dashboard_secret()}, [] { return core::wall_now(); });
    web->set_rate_use([&daemon] { return daemon.rate_use(); });
    auto started = server::HttpListener::start(
        io.get_executor(),
        server::HttpListenerOptions{.name = "dashboard",
                                    .address = config.dashboard.address,
                                    .port = static_cast<std::uint16_t>(config.dashboard.port),
                                    .max_body_bytes = dashboard::kMaxJobBodyBytes},
        [&web](const server::HttpRequest& request) { return web->handle(request); },
        &dashboard::Dashboard::rejected, &error);
    if (!started) {
      spdlog::error("dashboard listener: {}", error.empty() ? started.error().message() : error);
      return 1;
    }
    web_listener = std::move(*started);
    spdlog::info("dashboard listening on http://{}:{}/ ({})", config.dashboard.address,
                 web_listener->port(),
                 web->auth().writes_enabled() ? "writes need the token" : "read-only: no token_file");
  }
  daemon.start();
  io.run();
  if (web_listener) web_listener->stop();
  if (status_server) status_server->stop();
  daemon.release_lease();
  return daemon.exit_code();
}

}  // namespace devin_orch::app
