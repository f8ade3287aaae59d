// The daemon's metrics (daemon_metrics.hpp): each family's name and help once, its known label
// values registered at start-up, and the mapping of events to label values.
#include "daemon_metrics.hpp"

#include "devin_orch/app/build_info.hpp"
#include "devin_orch/core/error.hpp"

#include <array>
#include <vector>

namespace devin_orch::app::detail {
namespace {

struct Family {
  std::string_view name;
  std::string_view help;
};

// Counters.
constexpr Family kApiRequests{"devin_orch_api_requests_total",
                              "Devin API requests by operation and outcome."};
constexpr Family kRateLimited{"devin_orch_rate_limited_total", "429 answers, by kind."};
constexpr Family kServerWaits{
    "devin_orch_server_waits_total",
    "Answers other than 429 that asked for a wait (Retry-After), by HTTP status."};
constexpr Family kCreateLookups{
    "devin_orch_create_lookups_total",
    "Lookups by creation tag after an ambiguous failure or a restart, by result."};
constexpr Family kStatusPolls{
    "devin_orch_status_polls_total",
    "Status polls of session batches: full, or incremental (only sessions updated since)."};
constexpr Family kStoreErrors{"devin_orch_store_errors_total",
                              "Failed database calls of the daemon, by cause."};
constexpr Family kSessions{"devin_orch_sessions_total",
                           "Sessions the daemon started tracking, by origin."};
constexpr Family kJobsEnded{"devin_orch_jobs_ended_total",
                            "Jobs that reached a terminal state, by state."};
constexpr Family kUnknownSuspensions{
    "devin_orch_unknown_suspensions_total",
    "Sessions suspended with a status_detail the daemon does not know (maybe a new billing or "
    "quota stop)."};
constexpr Family kDuplicateSessions{
    "devin_orch_duplicate_sessions_total",
    "Sessions found carrying a job's tag beside the one it keeps, by whether terminating them "
    "succeeded."};
constexpr Family kAcus{"devin_orch_acus_consumed_total",
                       "ACUs consumed by the sessions of the daemon's jobs (children included), "
                       "by organisation."};
constexpr Family kSpendingHolds{
    "devin_orch_spending_holds_total",
    "Times an organisation's creates began to wait for an ACU budget, by window."};
constexpr Family kSpendingKeyHolds{
    "devin_orch_spending_key_holds_total",
    "Times a concurrency key's creates began to wait for its ACU budget, by window."};
constexpr Family kSpendingTerminations{
    "devin_orch_spending_terminations_total",
    "Live sessions terminated because their window's ACU budget was spent."};
// Histograms.
constexpr Family kApiDuration{"devin_orch_api_request_duration_seconds",
                              "Devin API request latency, including connection set-up."};
constexpr Family kQueueWait{"devin_orch_queue_wait_seconds",
                            "From a job's submission to its session being recorded."};
constexpr Family kSessionDuration{"devin_orch_session_duration_seconds",
                                  "From a session being recorded to its job ending."};
constexpr Family kNotifications{
    "devin_orch_notifications_total",
    "Notification delivery attempts, by outcome (delivered, failed: retried, dead)."};
constexpr Family kNotificationSeconds{
    "devin_orch_notification_request_seconds",
    "Time of each notification delivery attempt (answered or not)."};
// Gauges.
constexpr Family kNotificationsDead{
    "devin_orch_notifications_dead",
    "Notification deliveries dead-lettered and not retried since."};
constexpr Family kNotificationsPending{
    "devin_orch_notifications_pending",
    "Notification deliveries waiting, and events not routed yet."};
constexpr Family kBuildInfo{"devin_orch_build_info",
                            "The build: version, git commit and compiler; always 1."};
constexpr Family kJobs{"devin_orch_jobs", "Jobs by state."};
constexpr Family kOldestAge{
    "devin_orch_oldest_queued_job_age_seconds",
    "How long the longest-waiting job that could start now has waited (since its submission or "
    "its not_before, whichever is later); 0 when none."};
constexpr Family kSpendingCommitted{
    "devin_orch_spending_committed_acus",
    "ACUs an organisation's jobs hold of its budget in the current UTC day or month: what ended "
    "jobs consumed, and the larger of max_acu_limit and consumption for live ones."};
constexpr Family kSpendingHeldOrgs{"devin_orch_spending_held_organizations",
                                   "Organisations whose next create waits for an ACU budget."};
constexpr Family kSpendingHeldKeys{"devin_orch_spending_held_keys",
                                   "Concurrency keys whose next create waits for their ACU budget."};
constexpr Family kPausedOrgs{"devin_orch_paused_organizations",
                             "Organisations whose dispatch is paused."};
constexpr Family kPausedUsers{"devin_orch_paused_users",
                              "Users whose jobs' creation is paused (a usage limit)."};
constexpr Family kActiveSessions{"devin_orch_active_sessions", "Sessions being polled."};
constexpr Family kOrgsHeld{"devin_orch_organizations_held",
                           "Organisations whose lease this daemon holds (it works their jobs)."};
constexpr Family kSessionsStalled{
    "devin_orch_sessions_stalled",
    "Running sessions that made no progress for their stall_after (stall.after), now."};
constexpr Family kStalls{"devin_orch_stalls_total",
                         "Stalls reported (a session that made no progress for its stall_after), "
                         "by the action taken."};
constexpr Family kCreationsInFlight{"devin_orch_creations_in_flight",
                                    "Jobs between intent and session."};
constexpr Family kRequestsInFlight{"devin_orch_requests_in_flight",
                                   "API requests awaiting an answer."};
constexpr Family kGateConfigured{
    "devin_orch_rate_gate_configured_requests_per_second",
    "The configured ceiling of an organisation's request rate (rate.requests_per_minute / 60)."};
constexpr Family kGateRate{"devin_orch_rate_gate_requests_per_second",
                           "The request rate an organisation's gate allows now (lowered by "
                           "429s, recovering towards the ceiling)."};
constexpr Family kGateTokens{"devin_orch_rate_gate_tokens",
                             "Requests an organisation's gate would let go at once now."};

constexpr std::array kOperations{
    ApiOperation::self,          ApiOperation::create,        ApiOperation::lookup,
    ApiOperation::poll_batch,    ApiOperation::poll_single,   ApiOperation::poll_children,
    ApiOperation::message,       ApiOperation::terminate,     ApiOperation::terminate_child,
    ApiOperation::list_organizations, ApiOperation::upload_attachment, ApiOperation::list_messages};
constexpr std::array kOutcomes{core::CallClass::ok,           core::CallClass::not_sent,
                               core::CallClass::ambiguous,    core::CallClass::rate_limited,
                               core::CallClass::unauthorized, core::CallClass::forbidden,
                               core::CallClass::not_found,    core::CallClass::rejected};
// The answers that come with Retry-After in practice; any other status counts as `other`, so the
// label's values stay a fixed set (the log names the exact status).
constexpr std::array<std::string_view, 4> kWaitStatuses{"500", "502", "503", "504"};
constexpr std::array<std::string_view, 8> kStoreErrorKinds{
    "disk_full", "io_error", "busy", "corrupt", "lease_lost", "fsync_failed", "refused", "other"};
// Every terminal state the daemon ends a job in (`invalid` is decided when a job is read, not by
// the daemon).
constexpr std::array kEndedStates{core::JobState::finished,  core::JobState::failed,
                                  core::JobState::suspended, core::JobState::dead,
                                  core::JobState::lost,      core::JobState::cancelled,
                                  core::JobState::timed_out, core::JobState::stalled};

std::string_view lookup_result_name(LookupResult result) {
  switch (result) {
    case LookupResult::found: return "found";
    case LookupResult::absent: return "absent";
    case LookupResult::failed: return "failed";
  }
  return "failed";
}

std::string_view store_error_kind(const boost::system::error_code& error) {
  if (error.category() != orch_category()) return "other";
  switch (static_cast<errc>(error.value())) {
    case errc::storage_full: return "disk_full";
    case errc::storage_io: return "io_error";
    case errc::storage_busy: return "busy";
    case errc::storage_corrupt: return "corrupt";
    case errc::lease_lost: return "lease_lost";
    case errc::sync_failed: return "fsync_failed";
    case errc::conflict:
    case errc::not_found: return "refused";
    default: return "other";
  }
}

std::string wait_status(int http_status) {
  const auto status = std::to_string(http_status);
  for (const auto known : kWaitStatuses) {
    if (known == status) return status;
  }
  return "other";
}

server::Labels one(std::string_view name, std::string_view value) {
  return {{std::string{name}, std::string{value}}};
}

server::Counter& counter(server::MetricsRegistry& registry, const Family& family,
                         server::Labels labels = {}) {
  return registry.counter(family.name, family.help, std::move(labels));
}

server::Gauge& gauge(server::MetricsRegistry& registry, const Family& family,
                     server::Labels labels = {}) {
  return registry.gauge(family.name, family.help, std::move(labels));
}

server::Histogram& histogram(server::MetricsRegistry& registry, const Family& family,
                             std::vector<double> buckets, server::Labels labels = {}) {
  return registry.histogram(family.name, family.help, std::move(buckets), std::move(labels));
}

}  // namespace

std::string_view to_string(ApiOperation operation) noexcept {
  switch (operation) {
    case ApiOperation::self: return "self";
    case ApiOperation::create: return "create";
    case ApiOperation::lookup: return "lookup";
    case ApiOperation::poll_batch: return "poll_batch";
    case ApiOperation::poll_single: return "poll_single";
    case ApiOperation::poll_children: return "poll_children";
    case ApiOperation::message: return "message";
    case ApiOperation::terminate: return "terminate";
    case ApiOperation::terminate_child: return "terminate_child";
    case ApiOperation::list_organizations: return "list_organizations";
    case ApiOperation::upload_attachment: return "upload_attachment";
    case ApiOperation::list_messages: return "list_messages";
  }
  return "unknown";
}

DaemonMetrics::DaemonMetrics(server::MetricsRegistry& registry, const std::string& default_org)
    : registry_{registry} {
  const auto& build = build_info();
  gauge(registry_, kBuildInfo,
        {{"version", std::string{build.version}},
         {"git_commit", std::string{build.git_commit}},
         {"compiler", std::string{build.compiler}}})
      .set(1);
  for (const auto operation : kOperations) {
    for (const auto outcome : kOutcomes) {
      counter(registry_, kApiRequests,
              {{"operation", std::string{to_string(operation)}},
               {"outcome", std::string{core::to_string(outcome)}}});
    }
    histogram(registry_, kApiDuration, server::default_latency_buckets(),
              one("operation", to_string(operation)));
  }
  const auto each = [this](const Family& family, std::string_view label, const auto& values) {
    for (const std::string_view value : values) counter(registry_, family, one(label, value));
  };
  each(kRateLimited, "kind", std::array{"rate", "concurrency_cap"});
  each(kServerWaits, "status", kWaitStatuses);
  each(kServerWaits, "status", std::array{"other"});
  each(kCreateLookups, "result", std::array{"found", "absent", "failed"});
  each(kStatusPolls, "kind", std::array{"full", "incremental"});
  each(kStoreErrors, "kind", kStoreErrorKinds);
  each(kSessions, "origin", std::array{"created", "adopted"});
  for (const auto state : kEndedStates) {
    counter(registry_, kJobsEnded, one("state", core::to_string(state)));
  }
  counter(registry_, kUnknownSuspensions);
  each(kDuplicateSessions, "result", std::array{"terminated", "failed"});
  histogram(registry_, kQueueWait, server::default_duration_buckets());
  histogram(registry_, kSessionDuration, server::default_duration_buckets());
  each(kNotifications, "outcome", std::array{"delivered", "failed", "dead"});
  histogram(registry_, kNotificationSeconds, server::default_latency_buckets());
  for (int value = 0;; ++value) {
    const auto state = static_cast<core::JobState>(value);
    if (core::to_string(state) == "unknown") break;
    jobs(state, 0);
  }
  counter(registry_, kSpendingTerminations);
  for (const auto window : {core::SpendingWindow::day, core::SpendingWindow::month}) {
    counter(registry_, kSpendingKeyHolds, one("window", core::to_string(window)));
  }
  each(kStalls, "action", std::array{"report", "message", "terminate"});
  for (const auto* family : {&kSpendingHeldOrgs, &kSpendingHeldKeys, &kOldestAge, &kPausedOrgs, &kPausedUsers, &kActiveSessions,
                             &kSessionsStalled, &kCreationsInFlight, &kRequestsInFlight, &kNotificationsDead,
                             &kNotificationsPending}) {
    gauge(registry_, *family);
  }
  add_organization(default_org);
}

void DaemonMetrics::add_organization(const std::string& org_id) {
  counter(registry_, kAcus, one("org_id", org_id));
  for (const auto window : {core::SpendingWindow::day, core::SpendingWindow::month}) {
    counter(registry_, kSpendingHolds,
            {{"org_id", org_id}, {"window", std::string{core::to_string(window)}}});
    gauge(registry_, kSpendingCommitted,
          {{"org_id", org_id}, {"window", std::string{core::to_string(window)}}});
  }
}

void DaemonMetrics::spending_held(const std::string& org_id, core::SpendingWindow window) {
  counter(registry_, kSpendingHolds,
          {{"org_id", org_id}, {"window", std::string{core::to_string(window)}}})
      .inc();
}

void DaemonMetrics::spending_key_held(core::SpendingWindow window) {
  counter(registry_, kSpendingKeyHolds, one("window", core::to_string(window))).inc();
}

void DaemonMetrics::spending_termination() { counter(registry_, kSpendingTerminations).inc(); }

void DaemonMetrics::stall(core::StallAction action) {
  counter(registry_, kStalls, one("action", core::to_string(action))).inc();
}

void DaemonMetrics::spending_committed(const std::string& org_id, core::SpendingWindow window,
                                       double acus) {
  gauge(registry_, kSpendingCommitted,
        {{"org_id", org_id}, {"window", std::string{core::to_string(window)}}})
      .set(acus);
}

void DaemonMetrics::spending_held_organizations(double count) {
  gauge(registry_, kSpendingHeldOrgs).set(count);
}

void DaemonMetrics::spending_held_keys(double count) {
  gauge(registry_, kSpendingHeldKeys).set(count);
}

void DaemonMetrics::api_call(ApiOperation operation, core::CallClass outcome, double seconds) {
  counter(registry_, kApiRequests,
          {{"operation", std::string{to_string(operation)}},
           {"outcome", std::string{core::to_string(outcome)}}})
      .inc();
  histogram(registry_, kApiDuration, server::default_latency_buckets(),
            one("operation", to_string(operation)))
      .observe(seconds);
}

void DaemonMetrics::rate_limited(bool concurrency_cap) {
  counter(registry_, kRateLimited, one("kind", concurrency_cap ? "concurrency_cap" : "rate")).inc();
}

void DaemonMetrics::server_wait(int http_status) {
  counter(registry_, kServerWaits, one("status", wait_status(http_status))).inc();
}

void DaemonMetrics::create_lookup(LookupResult result) {
  counter(registry_, kCreateLookups, one("result", lookup_result_name(result))).inc();
}

void DaemonMetrics::status_poll(bool full) {
  counter(registry_, kStatusPolls, one("kind", full ? "full" : "incremental")).inc();
}

void DaemonMetrics::store_error(const boost::system::error_code& error) {
  counter(registry_, kStoreErrors, one("kind", store_error_kind(error))).inc();
}

void DaemonMetrics::session_tracked(bool adopted) {
  counter(registry_, kSessions, one("origin", adopted ? "adopted" : "created")).inc();
}

void DaemonMetrics::job_ended(core::JobState state) {
  counter(registry_, kJobsEnded, one("state", core::to_string(state))).inc();
}

void DaemonMetrics::unknown_suspension() { counter(registry_, kUnknownSuspensions).inc(); }

void DaemonMetrics::duplicate_session(bool terminated) {
  counter(registry_, kDuplicateSessions, one("result", terminated ? "terminated" : "failed")).inc();
}

void DaemonMetrics::acus_consumed(const std::string& org_id, double acus) {
  if (acus > 0) counter(registry_, kAcus, one("org_id", org_id)).inc(acus);
}

void DaemonMetrics::queue_wait(double seconds) {
  histogram(registry_, kQueueWait, server::default_duration_buckets()).observe(seconds);
}

void DaemonMetrics::session_duration(double seconds) {
  histogram(registry_, kSessionDuration, server::default_duration_buckets()).observe(seconds);
}

void DaemonMetrics::notification_attempt(NotificationOutcome outcome) {
  const char* name = outcome == NotificationOutcome::delivered ? "delivered"
                     : outcome == NotificationOutcome::dead    ? "dead"
                                                               : "failed";
  counter(registry_, kNotifications, one("outcome", name)).inc();
}

void DaemonMetrics::notification_request(double seconds) {
  histogram(registry_, kNotificationSeconds, server::default_latency_buckets()).observe(seconds);
}

void DaemonMetrics::jobs(core::JobState state, double count) {
  gauge(registry_, kJobs, one("state", core::to_string(state))).set(count);
}

void DaemonMetrics::oldest_startable_job_age(double seconds) {
  gauge(registry_, kOldestAge).set(seconds);
}

void DaemonMetrics::paused_organizations(double count) {
  gauge(registry_, kPausedOrgs).set(count);
}

void DaemonMetrics::paused_users(double count) { gauge(registry_, kPausedUsers).set(count); }

void DaemonMetrics::sessions_stalled(double count) {
  gauge(registry_, kSessionsStalled).set(count);
}

void DaemonMetrics::active_sessions(double count) {
  gauge(registry_, kActiveSessions).set(count);
}

void DaemonMetrics::organizations_held(double count) { gauge(registry_, kOrgsHeld).set(count); }

void DaemonMetrics::creations_in_flight(double count) {
  gauge(registry_, kCreationsInFlight).set(count);
}

void DaemonMetrics::requests_in_flight(double count) {
  gauge(registry_, kRequestsInFlight).set(count);
}

void DaemonMetrics::notifications_dead(double count) {
  gauge(registry_, kNotificationsDead).set(count);
}

void DaemonMetrics::notifications_pending(double count) {
  gauge(registry_, kNotificationsPending).set(count);
}

void DaemonMetrics::rate_gate(const std::string& org_id, const GateLevels& levels) {
  gauge(registry_, kGateConfigured, one("org_id", org_id)).set(levels.configured_per_second);
  gauge(registry_, kGateRate, one("org_id", org_id)).set(levels.per_second);
  gauge(registry_, kGateTokens, one("org_id", org_id)).set(levels.tokens);
}

}  // namespace devin_orch::app::detail
