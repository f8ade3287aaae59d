// The daemon's supervisor: wires its parts (runtime, store writer, gates, poller, creator,
// dispatcher, retention) and owns what concerns the process as a whole: the queue's lease, recovery at
// take-over, signals, the systemd heartbeat, readiness, gauges and shutdown.
#include "devin_orch/app/daemon/daemon.hpp"

#include "creator.hpp"
#include "dispatcher.hpp"
#include "notifier.hpp"
#include "org_gates.hpp"
#include "parts.hpp"
#include "poller.hpp"
#include "queue_lease.hpp"
#include "retention.hpp"
#include "store_writer.hpp"

#include "devin_orch/api/http_client.hpp"
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
         std::unique_ptr<api::HttpClient> http, const DaemonOptions& options,
         server::MetricsRegistry& metrics);

  // Signals, the systemd heartbeat and the queue's lease: from here the daemon either works
  // the queue or stands by until it may.
  void start();
  int exit_code() const noexcept { return exit_code_; }
  // /readyz: this process works the queue, restart recovery is done and the lease is proven;
  // otherwise why not (a standby names the daemon it waits for).
  server::Readiness readiness() const;
  // After the loop has ended: lets the lease lapse at once if this process holds it.
  void release_lease() { lease_.stop_and_release(); }
  void refresh_gauges();
  // Each organisation's rate gate, for the dashboard's overview.
  std::vector<dashboard::RateUse> rate_use() const;

 private:
  void take_over();
  awaitable<void> check_key_then_dispatch();
  awaitable<void> check_key();
  void stand_by(const core::LeaseHolder& holder);
  void abandon(const std::string& why);
  bool recover();
  std::string status_line();
  awaitable<void> heartbeat();
  void listen_for_signals();
  void reload_job_files();
  // The one way to stop: the runtime's signal ends every wait; the loop ends once every task
  // has, or at the drain deadline.
  void request_stop(const std::string& why, int exit_code = 0);
  awaitable<void> end_when_drained();

  net::io_context& io_;
  const Config& config_;
  store::QueueStore& store_;
  std::unique_ptr<api::HttpClient> http_;
  api::DevinClient client_;
  DaemonOptions options_;
  SystemdNotifier notifier_;
  core::Random random_;
  Runtime runtime_;
  DaemonMetrics metrics_;
  Services services_;
  StoreWriter writer_;
  QueueLease lease_;  // whether this process may work the queue
  OrgGates gates_;
  Poller poller_;
  Creator creator_;
  Notifier notifications_;
  Dispatcher dispatcher_;
  Retention retention_;
  net::signal_set signals_;
  net::steady_timer drain_deadline_;
  bool ready_ = false;
  int exit_code_ = 0;
  std::optional<std::string> key_problem_;  // GET /v3/self refused the key at take-over
};

Daemon::Daemon(net::io_context& io, const Config& config, store::QueueStore& store,
               store::ChangeFeed& changes, store::OutboxStore& outbox,
               std::unique_ptr<api::HttpClient> http, const DaemonOptions& options,
               server::MetricsRegistry& metrics)
    : io_{io},
      config_{config},
      store_{store},
      http_{std::move(http)},
      client_{*http_, config_.api.version},
      options_{options},
      notifier_{SystemdNotifier::from_environment()},
      random_{std::random_device{}()},
      runtime_{io},
      metrics_{metrics, config.api.org_id},
      services_{runtime_, config, store, client_, metrics_, random_},
      writer_{services_},
      lease_{io, store, lease_policy(config.lease),
             QueueLease::Callbacks{
                 .took_over = [this](std::int64_t) { take_over(); },
                 .paused = [](const std::string&) {},  // the gates hold every request
                 .resumed =
                     [this] {
                       gates_.lease_resumed();
                       dispatcher_.wake();
                       for (auto& [id, org] : gates_.all()) org->poll_wakeup.notify();
                     },
                 .abandoned = [this](const std::string& why) { abandon(why); },
                 .waiting = [this](const core::LeaseHolder& holder) { stand_by(holder); },
             }},
      gates_{services_, writer_, lease_},
      poller_{services_, writer_, gates_, [this] { dispatcher_.slot_freed(); }},
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

// This process holds the queue's lease now: re-attach what a previous owner (this process's
// predecessor, or another daemon that died) left in flight, then start dispatching.
void Daemon::take_over() {
  if (runtime_.stopping()) return;
  if (!recover()) {
    request_stop("cannot read the queue", 1);
    return;
  }
  ready_ = true;
  gates_.lease_resumed();
  runtime_.spawn(notifications_.run());  // what earlier owners left undelivered goes first
  runtime_.spawn(check_key_then_dispatch());
  if (retention_.enabled()) runtime_.spawn(retention_.run());
}

// Dispatch starts once the key was checked: a pause set for a key the operator has since fixed
// is lifted first, so the queued jobs run without a `resume`.
awaitable<void> Daemon::check_key_then_dispatch() {
  co_await check_key();
  if (runtime_.stopping()) co_return;
  co_await dispatcher_.run();
}

// GET /v3/self, through the default organisation's gate (it is the daemon's key, not an
// org's). A key that works lifts every pause the daemon set for a rejected key; one that does
// not is reported now, by name of its source, rather than at the first create. No answer
// (network down, 5xx) decides nothing: the pauses stay, the first 401 pauses as before.
awaitable<void> Daemon::check_key() {
  Org& org = gates_.named(config_.api.org_id);
  auto answer = co_await gates_.call(org, core::RequestKind::other, ApiOperation::self,
                                     [this] { return client_.self(); });
  if (!answer) co_return;  // stopping
  if (answer->value) {
    const auto pauses = gates_.stored_pauses();  // a copy: lifting edits the original
    for (const auto& [id, reason] : pauses) {
      if (id == "*" || !is_key_pause(reason)) continue;
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
                             describe_api_key_source(config_.api), answer->outcome.detail);
  log_event(spdlog::level::err, {.event = "api_key_rejected"},
            "{}; no session can be created until it is replaced and the daemon restarted",
            *key_problem_);
  for (const auto& [id, known] : gates_.all()) {
    gates_.pause(*known, "API key rejected (401): " + answer->outcome.detail);
  }
}

// Another daemon works the queue. A batch run (--until-idle) beside it ends once the queue has
// nothing left in progress: the other daemon did the work.
void Daemon::stand_by(const core::LeaseHolder&) {
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

// Another process took the queue while this one still had work in memory. Nothing of it can be
// written any more (the store refuses every fenced write), and requests must stop at once: exit,
// and let the supervisor start this process again as a standby.
void Daemon::abandon(const std::string& why) {
  log_event(spdlog::level::critical, {.event = "lease_lost"},
            "giving up the queue: {}; exiting so that nothing more is sent", why);
  exit_code_ = 1;
  runtime_.stop();
  io_.stop();
}

server::Readiness Daemon::readiness() const {
  if (runtime_.stopping()) return {false, "stopping"};
  if (!lease_.may_act()) return {false, lease_.describe()};
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
  metrics.creations_in_flight(static_cast<double>(creator_.size()));
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
  if (lease_.role() == core::LeaseRole::standby) return lease_.describe();
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

bool Daemon::recover() {
  const auto now = core::wall_now();
  gates_.sync_pauses();  // before any Org exists, so recovered organisations start paused if they are
  gates_.load_holds();   // likewise, so they send nothing inside a wait announced before the stop
  auto creating = store_.in_state(core::JobState::creating);
  auto running = store_.in_state(core::JobState::running);
  if (!creating || !running) {
    spdlog::error("cannot read jobs from the database: {}",
                  (!creating ? creating.error() : running.error()).message());
    return false;
  }
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
  spdlog::info("recovered {} running and {} creating jobs", running->size(), creating->size());
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
  const auto report = load_job_files_into(store_, config_.jobs.files, core::wall_now(),
                                          config_.api.version, config_.attachments.max_bytes);
  if (report.fatal_errors > 0) {
    spdlog::error("reload: {} job file(s) could not be read; nothing else changed",
                  report.fatal_errors);
  }
  notifier_.notify("READY=1\nSTATUS=" + status_line());
  dispatcher_.look_again();
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
  auto http = api::HttpClient::create(
      io.get_executor(),
      http_client_options(config.api, api_key,
                          static_cast<std::size_t>(config.api.max_in_flight)),
      &error);
  if (!http) {
    spdlog::error("api.base_url: {}", error.empty() ? http.error().message() : error);
    return 2;
  }
  server::MetricsRegistry metrics;
  // Constructed before the job files are read: from here a SIGTERM is handled (at the first
  // turn of the loop), however long reading them takes.
  detail::Daemon daemon{io,      config,           (*store)->queue(), (*store)->changes(),
                       (*store)->outbox(), std::move(*http), options, metrics};
  const auto loaded = load_job_files_into(**store, config.jobs.files, core::wall_now(),
                                          config.api.version, config.attachments.max_bytes);
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
