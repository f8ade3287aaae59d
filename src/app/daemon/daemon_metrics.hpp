// Every metric the daemon exports, in one place: names, help texts and the label values known in
// advance (docs/metrics.md lists the same). Each series exists from start-up at 0, so that
// increase() and rate() see the first event: a series that first appears at 1 looks to Prometheus
// like one that was always 1. Private to the app module.
#pragma once

#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/spending_guard.hpp"
#include "devin_orch/server/metrics.hpp"

#include <boost/system/error_code.hpp>

#include <string>
#include <string_view>

namespace devin_orch::app::detail {

// The Devin API calls the daemon makes: the values of the `operation` label.
enum class ApiOperation {
  self,                // GET /v3/self: the key check at take-over
  create,              // POST /sessions
  lookup,              // GET /sessions?tags=: a job's creation tag after an ambiguous create
  poll_batch,          // GET /sessions?session_ids=: status polls
  poll_single,         // GET /sessions/{id}: a session a full poll left out
  poll_children,       // GET /sessions?session_ids=: a session's children, for their ACUs
  message,             // POST /sessions/{id}/messages: follow-ups and answers to a waiting one
  terminate,           // DELETE /sessions/{id}: cancel, deadline, duplicates
  terminate_child,     // DELETE /sessions/{id} of a child, before its parent
  list_organizations,  // GET /enterprise/organizations: the enterprise fan-out
  upload_attachment,   // POST /attachments: a job's file, before its first create
  list_messages,       // GET /sessions/{id}/messages: Devin's messages, around a quiet spell
};
std::string_view to_string(ApiOperation operation) noexcept;

enum class LookupResult { found, absent, failed };

class DaemonMetrics {
 public:
  // Registers every series whose label values are known in advance, the build's and the
  // configured organisation's.
  DaemonMetrics(server::MetricsRegistry& registry, const std::string& default_org);

  server::MetricsRegistry& registry() noexcept { return registry_; }

  // An organisation the daemon works for (the configured one, a job's org_id, the enterprise
  // fan-out's): its counters, at 0, from now on. Its gate's gauges come with its gate.
  void add_organization(const std::string& org_id);

  // ---- counters and histograms, as events happen ----
  void api_call(ApiOperation operation, core::CallClass outcome, double seconds);
  void rate_limited(bool concurrency_cap);
  // An answer other than a 429 that asked for a wait (Retry-After).
  void server_wait(int http_status);
  void create_lookup(LookupResult result);
  void status_poll(bool full);
  void store_error(const boost::system::error_code& error);
  void session_tracked(bool adopted);
  void job_ended(core::JobState state);
  void unknown_suspension();
  void duplicate_session(bool terminated);
  void acus_consumed(const std::string& org_id, double acus);
  void queue_wait(double seconds);
  void session_duration(double seconds);
  enum class NotificationOutcome { delivered, failed, dead };  // failed: retried later
  void notification_attempt(NotificationOutcome outcome);
  // The spending guard: an organisation's creates began to wait for a budget; a live session
  // was terminated over one (spending.terminate_over_budget).
  void spending_held(const std::string& org_id, core::SpendingWindow window);
  void spending_key_held(core::SpendingWindow window);  // a concurrency key's budget
  void spending_termination();
  // A stall reported (core/stall_rule.hpp), by what the daemon does about it.
  void stall(core::StallAction action);
  void notification_request(double seconds);  // one webhook request, answered or not

  // ---- gauges, set when /metrics is scraped ----
  void jobs(core::JobState state, double count);
  void oldest_startable_job_age(double seconds);
  void paused_organizations(double count);
  void paused_users(double count);
  // Set by the spending guard when it reads the store (once a second with budgets).
  void spending_committed(const std::string& org_id, core::SpendingWindow window, double acus);
  void spending_held_organizations(double count);
  void spending_held_keys(double count);
  void active_sessions(double count);
  void sessions_stalled(double count);
  void creations_in_flight(double count);
  void organizations_held(double count);
  void requests_in_flight(double count);
  void notifications_dead(double count);
  // Deliveries waiting, and events not routed yet.
  void notifications_pending(double count);
  struct GateLevels {
    double configured_per_second = 0;  // the configured ceiling
    double per_second = 0;             // the refill rate the gate has settled on
    double tokens = 0;                 // the bucket's content now
  };
  void rate_gate(const std::string& org_id, const GateLevels& levels);

 private:
  server::MetricsRegistry& registry_;
};

}  // namespace devin_orch::app::detail
