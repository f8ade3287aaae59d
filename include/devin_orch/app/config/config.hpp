// The daemon's configuration: every key with its documented default (config/devin-orch.yaml
// is the annotated reference). Loaded from YAML, then environment overrides applied.
#pragma once

#include "devin_orch/app/formats/diagnostic.hpp"
#include "devin_orch/core/api_version.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/core/concurrency_groups.hpp"
#include "devin_orch/core/notify_target.hpp"
#include "devin_orch/core/session_verdict.hpp"
#include "devin_orch/core/spending_guard.hpp"
#include "devin_orch/core/stall_rule.hpp"
#include "devin_orch/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {
struct StoreOptions;
}  // namespace devin_orch::store

namespace devin_orch::api {
struct HttpClientOptions;
}  // namespace devin_orch::api

namespace devin_orch::app {

using namespace std::chrono_literals;

// One organisation's own API (api.organizations): a v1 key acts on its own organisation only,
// so an organisation still on v1 needs its own entry and, beside v3 ones, its own key.
struct OrgApiConfig {
  core::ApiVersion version = core::ApiVersion::v3;  // required in the file
  std::optional<std::string> api_key_file;  // else the global key (resolve_api_key)

  bool operator==(const OrgApiConfig&) const = default;
};

struct ApiConfig {
  std::string base_url = "https://api.devin.ai";
  std::string org_id;                          // required
  // v1: the legacy API with apk_ keys (docs/api-v1.md); for every organisation not listed in
  // `organizations`.
  core::ApiVersion version = core::ApiVersion::v3;
  std::optional<std::string> api_key_file;     // else $CREDENTIALS_DIRECTORY or DEVIN_API_KEY
  // Organisations whose API or key differ from the global ones, by org id.
  std::map<std::string, OrgApiConfig, std::less<>> organizations;
  std::optional<std::string> ca_file;          // extra CA bundle for TLS
  core::Duration connect_timeout = 10s;
  core::Duration request_timeout = 30s;        // polls and lookups
  core::Duration create_timeout = 60s;         // session creation
  std::size_t max_body_bytes = 8U << 20U;
  int max_in_flight = 8;                       // concurrent requests per organisation
};

struct RateConfig {
  double requests_per_minute = 60.0;  // per organisation, creates and polls together
  double burst = 5.0;
  core::Duration concurrency_hold = 60s;  // creates held after a concurrency-cap 429
};

struct PollConfig {
  core::Duration initial_delay = 10s;
  core::Duration max_delay = 60s;
  double multiplier = 1.5;
  double jitter = 0.2;        // +/- fraction
  int batch_size = 200;       // session ids per list request (1..200)
  // Polls between two full ones ask only for sessions updated since (`updated_after`); each
  // session is polled in full at least this often. 0s: every poll is a full one.
  core::Duration full_every = 5min;
  // While polls are incremental, a session's cadence grows only up to this: such a poll costs
  // one request per batch whatever its size, so ends are seen within about this long for few
  // more requests (bench/cost.py). max_delay still caps full polls.
  core::Duration incremental_max_delay = 10s;
};

struct CreateConfig {
  int max_attempts = 5;                   // answered create requests per job before `dead`
  core::Duration retry_initial = 500ms;   // full-jitter backoff between retries
  core::Duration retry_max = 30s;
  core::Duration settle_delay = 2s;       // after an ambiguous failure, before the first lookup
  core::Duration settle_window = 30s;     // lookups go on this long before absence is proven
  core::Duration duplicate_watch = 15min; // after a re-create: how long the tag is checked
  int max_cut_short = 10;                 // creates cut short by restarts before `dead`
  int max_active_sessions = 50;           // per organisation: sessions running at once
  int max_concurrent_creates = 4;         // per organisation: create flows at once
};

struct DatabaseConfig {
  std::string path = "/var/lib/devin-orch/devin-orch.db";
  // PostgreSQL instead of the SQLite file: postgresql://user@host:port/db?sslmode=verify-full.
  // Never with a password (refused): that comes from password_file or libpq's PGPASSFILE.
  std::string url;
  std::string password_file;       // a libpq password file (host:port:db:user:password), 0600
  core::Duration connect_timeout = 5s;  // PostgreSQL: one attempt to reach the server
  core::Duration busy_timeout = 5s;     // a write waits this long for another writer's lock
  std::int64_t cache_kib = 256;  // SQLite page cache, KiB (SQLite's own default is 2 MiB)
};

// How the daemon and the CLI open the store for this configuration.
store::StoreOptions store_options(const DatabaseConfig& database);
// The database for messages and logs: the PostgreSQL URL (which never has a password) or the
// SQLite file's path.
const std::string& database_name(const DatabaseConfig& database);

struct JobsConfig {
  std::vector<std::string> files;  // YAML job files; relative paths resolve against the config
  core::CompletionPolicy complete_on = core::CompletionPolicy::on_stop;
  // Whether the API's acus_consumed of a parent session already counts its children's (the
  // reference does not say; devin-sim does not): decides core::job_acus's rule.
  bool parent_acus_include_children = false;
  // Notice other processes' commits as they happen (Linux inotify on the database's directory);
  // the queue is still read once a second whatever the watch says.
  bool queue_watch = true;
  core::Duration queue_check_interval = 50ms;  // PRAGMA data_version polling without the watch
};

struct ShutdownConfig {
  core::Duration drain_timeout = 10s;  // SIGTERM: in-flight work gets this long
};

// The queue's ownership lease: one daemon works a database's queue; others stand by and take
// over when its lease lapses.
struct LeaseConfig {
  core::Duration ttl = 15s;  // lapse after the holder's last renewal (renewed every third of it)
};

// What the daemon keeps of jobs that ended. Off by default: ended jobs stay until an operator
// prunes or deletes them.
struct RetentionConfig {
  // Ended jobs whose end is older than this are pruned (outcomes archived, job and history
  // deleted), a small batch at a time; nullopt: never.
  std::optional<core::Duration> ended_after;
};

// One field of an organisation's own budgets: left out, the global budget holds; `~`, the
// organisation has none; else its ACUs.
struct BudgetOverride {
  bool set = false;
  std::optional<double> acus;

  std::optional<double> over(const std::optional<double>& global) const {
    return set ? acus : global;
  }
  bool operator==(const BudgetOverride&) const = default;
};

// spending.organizations.ORG: an organisation's own budgets, each over the global one.
struct OrgSpendingConfig {
  BudgetOverride acus_per_day;
  BudgetOverride acus_per_month;

  bool operator==(const OrgSpendingConfig&) const = default;
};

// The spending guard (docs/spending.md): ACU budgets per UTC day and calendar month, the same
// for each organisation unless it has its own, and per concurrency key. A create waits while
// the ACUs its organisation (or its key) committed in the window plus the job's max_acu_limit
// would pass a budget.
struct SpendingConfig {
  std::optional<double> acus_per_day;    // nullopt: no daily budget
  std::optional<double> acus_per_month;  // nullopt: no monthly budget
  double reserve_without_limit = 10.0;   // what a job naming no max_acu_limit is taken to reserve
  // Live sessions charged to a window whose consumed ACUs passed its budget are terminated
  // (their jobs end `suspended`).
  bool terminate_over_budget = false;
  // Organisations whose budgets differ from the ones above.
  std::map<std::string, OrgSpendingConfig, std::less<>> organizations;
  // Budgets of concurrency keys, in order: each distinct key the first matching pattern
  // matches has that pattern's budgets, over its jobs in every organisation.
  std::vector<core::KeySpendingBudget> concurrency_keys;
};

// Files jobs attach (a job's `attachments`): checked when the job is read, uploaded once each
// before its first create.
struct AttachmentsConfig {
  std::int64_t max_bytes = core::job_limits::default_max_attachment_bytes;  // per file
  core::Duration upload_timeout = 60s;  // one upload request, the whole exchange
};
// Stall detection (docs/stalls.md): `after` (none: off), `action`, `message`. A job's own
// stall_after / stall_action override the first two (core::stall_policy_for).
using StallConfig = core::StallPolicy;

struct MetricsConfig {
  bool enabled = true;                // serve /metrics, /healthz, /readyz
  std::string address = "127.0.0.1";  // an IP address; 0.0.0.0 exposes it to the network
  int port = 9464;                    // 0: any free port (logged at start-up)
};

// The web dashboard and HTTP JSON API (docs/dashboard.md). Off by default: it is an operator's
// door into the queue. Without a token file it is read-only (the API refuses every write).
struct DashboardConfig {
  bool enabled = false;
  std::string address = "127.0.0.1";  // an IP address; 0.0.0.0 exposes it to the network
  int port = 9465;                    // 0: any free port (logged at start-up)
  std::optional<std::string> token_file;  // the bearer token writes need; mode 0600
};

// Notifications (docs/notifications.md): the receivers every event may go to, besides a job's
// own `notify:`, and how the outbox delivers.
struct NotifyConfig {
  std::vector<core::NotifyTarget> webhooks;  // signed JSON POSTs
  std::vector<core::NotifyTarget> slack;     // Slack incoming webhooks
  core::Duration connect_timeout = 5s;       // per attempt
  core::Duration request_timeout = 10s;      // per attempt, the whole exchange
  core::Duration retry_initial = 1s;         // backoff ceiling after the first failure
  core::Duration retry_max = 5min;           // no retry waits longer
  core::Duration max_age = 24h;              // then the delivery is dead-lettered
  int max_in_flight = 32;                    // deliveries at once, every receiver together
  int max_in_flight_per_receiver = 4;        // deliveries at once to one receiver
  core::Duration check_interval = 200ms;     // how often the outbox is read for new events
};

struct LogConfig {
  std::string level = "info";    // trace, debug, info, warn, error
  std::string format = "text";   // text | json
};

struct Config {
  ApiConfig api;
  RateConfig rate;
  PollConfig poll;
  CreateConfig create;
  DatabaseConfig database;
  JobsConfig jobs;
  ShutdownConfig shutdown;
  LeaseConfig lease;
  RetentionConfig retention;
  SpendingConfig spending;
  AttachmentsConfig attachments;
  // Concurrency groups (docs/concurrency.md): the top-level `concurrency:` list, in order; the
  // first pattern a job's concurrency_key matches limits it. Empty: no job is held for its key.
  std::vector<core::ConcurrencyLimit> concurrency;
  StallConfig stall;
  MetricsConfig metrics;
  DashboardConfig dashboard;
  NotifyConfig notify;
  LogConfig log;
  std::string source_path;  // the file it was loaded from
};

struct ConfigLoad {
  std::optional<Config> config;       // set iff errors is empty
  std::vector<Diagnostic> errors;     // every problem found, each located
};

// Checks beyond the file's own content, for `check-config`.
struct ConfigChecks {
  // database.path (SQLite; not with database.url) can be opened, or created with its missing
  // directories, by this process:
  // probed by creating (and removing) a file where the database would go, so a missing parent
  // that cannot be made or a read-only directory is reported with the setting's location.
  // The commands that open the database learn it anyway, in the database's words.
  bool database_location = false;
};

// Reads the YAML file, applies environment overrides (DEVIN_ORCH_BASE_URL, DEVIN_ORCH_ORG_ID,
// DEVIN_ORCH_DATABASE), validates. Unknown keys are errors (typos must not pass silently); one
// mistake is reported once (a misspelt key is not also "required").
ConfigLoad load_config(const std::string& path, const ConfigChecks& checks = {});

// Renders the effective configuration as YAML, secrets masked.
std::string render_config(const Config& config);

// Resolves the API key: $CREDENTIALS_DIRECTORY/devin-api-key, api.api_key_file, DEVIN_API_KEY,
// in that order. A key file readable by group or others is refused. Trailing whitespace is
// trimmed. On failure returns nullopt and sets `error` to the reason (without a "no API key"
// prefix, which is the caller's).
std::optional<std::string> resolve_api_key(const ApiConfig& api, std::string* error);

// Where resolve_api_key takes the key from, in words for a message ("DEVIN_API_KEY", ...).
std::string describe_api_key_source(const ApiConfig& api);

// The API an organisation's sessions are created and polled through: its api.organizations
// entry's version, else api.version.
core::ApiVersion api_version_for(const ApiConfig& api, std::string_view org_id);

// An organisation's key: its api.organizations entry's api_key_file (same rules as
// api.api_key_file), else resolve_api_key's. A key whose shape contradicts the organisation's
// listed version (v1 keys start with apk_, v3 refuses them) is refused too. On failure nullopt
// and `error` names the setting (never the key).
std::optional<std::string> resolve_org_api_key(const ApiConfig& api, std::string_view org_id,
                                               std::string* error);

// Where resolve_org_api_key takes an organisation's key from, in words for a message.
std::string describe_org_api_key_source(const ApiConfig& api, std::string_view org_id);

// The signing secret of a webhook: its secret_file, else $CREDENTIALS_DIRECTORY/
// devin-orch-webhook-secret (systemd's LoadCredential=). A file readable by group or others is
// refused. On failure returns nullopt and sets `error`.
std::optional<std::string> resolve_webhook_secret(const core::NotifyTarget& target,
                                                  std::string* error);

// The dashboard's bearer token from dashboard.token_file (the same rules as api.api_key_file:
// a file readable by group or others is refused; trailing whitespace trimmed; empty refused).
// nullopt without a token_file (error left empty) or on failure (error set).
std::optional<std::string> resolve_dashboard_token(const DashboardConfig& dashboard,
                                                   std::string* error);

// The API client's options for this configuration and key; `max_idle_connections` is how many
// kept-alive connections the caller can use at once.
api::HttpClientOptions http_client_options(const ApiConfig& api, std::string api_key,
                                           std::size_t max_idle_connections);

}  // namespace devin_orch::app
