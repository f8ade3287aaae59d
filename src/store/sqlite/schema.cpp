// The store's schema, version by version, and the migration runner.
#include "devin_orch/store/sqlite/schema.hpp"

#include <sqlite3.h>

#include <array>

namespace devin_orch::store {
namespace {

// v1. `jobs` is also the contract for external producers: they INSERT key and spec (JSON text),
// optionally org_id, priority and source; every other column has a default. Times are epoch
// milliseconds. The state list is spelled out rather than generated so that this migration
// never changes after release; a new JobState needs a new migration.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 512),
  org_id TEXT,
  priority INTEGER NOT NULL DEFAULT 0,
  spec TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT 'queue',
  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'creating', 'running',
      'finished', 'failed', 'suspended', 'dead', 'lost', 'invalid', 'cancelled', 'timed_out')),
  generation INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  creation_tag TEXT,
  intent_at INTEGER,
  session_id TEXT,
  session_url TEXT,
  status TEXT,
  status_detail TEXT,
  pull_requests TEXT,
  acus_consumed REAL,
  structured_output TEXT,
  last_error TEXT,
  created_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
  updated_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
  started_at INTEGER,
  finished_at INTEGER
) STRICT;

CREATE INDEX jobs_claim ON jobs (state, priority DESC, id);
CREATE INDEX jobs_session ON jobs (session_id);

CREATE TABLE job_events (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  state TEXT,
  status TEXT,
  status_detail TEXT,
  message TEXT
) STRICT;

CREATE INDEX job_events_job ON job_events (job_id);
)sql";

// v2: job controls (producer-writable: not_before, deadline, max_attempts, controls), their
// runtime progress, operator pauses per organisation, and the outcomes kept after pruning.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE jobs ADD COLUMN not_before INTEGER;
ALTER TABLE jobs ADD COLUMN deadline INTEGER;
ALTER TABLE jobs ADD COLUMN max_attempts INTEGER;
ALTER TABLE jobs ADD COLUMN controls TEXT;
ALTER TABLE jobs ADD COLUMN parent_key TEXT;
ALTER TABLE jobs ADD COLUMN messages_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN waiting_since INTEGER;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_deadline ON jobs (deadline) WHERE deadline IS NOT NULL;
CREATE TABLE org_pauses (
  org_id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  paused_at INTEGER NOT NULL,
  source TEXT NOT NULL
) STRICT;
CREATE TABLE outcomes (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  generation INTEGER NOT NULL,
  org_id TEXT,
  state TEXT NOT NULL,
  session_id TEXT,
  session_url TEXT,
  status TEXT,
  status_detail TEXT,
  acus_consumed REAL,
  pull_requests TEXT,
  structured_output TEXT,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  pruned_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outcomes_key ON outcomes (key);
)sql";

// v3: the daemon looks for operator cancellations whenever another process writes; without
// this index every such look was a scan of the whole jobs table.
constexpr const char* kSchemaV3 = R"sql(
CREATE INDEX jobs_cancel_requested ON jobs (id) WHERE cancel_requested <> 0;
)sql";

// v4: the same state constraint without an IN list. SQLite 3.40 builds a temporary b-tree for
// an IN list of more than two values on every run of a statement that checks it, and this
// constraint is checked by every INSERT into jobs and every UPDATE that assigns state, so every
// such write built and freed one. A chain of `=` comparisons needs no b-tree.
// Every row that satisfied the old text satisfies this one, so the definition is edited in place.
constexpr const char* kSchemaV4 = R"sql(
UPDATE sqlite_schema SET sql = replace(sql,
  'CHECK (state IN (''queued'', ''creating'', ''running'',
      ''finished'', ''failed'', ''suspended'', ''dead'', ''lost'', ''invalid'', ''cancelled'', ''timed_out''))',
  'CHECK (state = ''queued'' OR state = ''creating'' OR state = ''running'' OR
      state = ''finished'' OR state = ''failed'' OR state = ''suspended'' OR state = ''dead'' OR
      state = ''lost'' OR state = ''invalid'' OR state = ''cancelled'' OR state = ''timed_out'')')
WHERE type = 'table' AND name = 'jobs';
)sql";

// v5: ownership leases. One row per queue (name 'queue'): the process that holds it is the only
// one that works the queue, and every write it makes on the queue's behalf checks that the row
// still carries its owner and epoch (the fence). Expiry is epoch milliseconds of the writer's
// clock; a new owner bumps the epoch.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  acquired_at INTEGER NOT NULL,
  renewed_at INTEGER NOT NULL
) STRICT;
)sql";

// v6: exactly-once under a lagging list, waits the server asks for, parent and child sessions,
// user-level quota pauses.
// - jobs.sends: create requests that may have left (committed intents) in this generation;
//   jobs.attempts now counts only those the server answered, so a crash does not burn one.
// - jobs.duplicate_watch_until: until when (epoch ms) the job's tag is checked for a second
//   session, after a re-create that a lagging list could not rule out.
// - jobs.child_session_ids (JSON array) and jobs.children_acus: the session's children.
// - org_holds: a wait the server announced (Retry-After on any answer), kept across restarts.
// - user_pauses: creation paused for one user's jobs (user_usage_limit_exceeded).
constexpr const char* kSchemaV6 = R"sql(
ALTER TABLE jobs ADD COLUMN sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN duplicate_watch_until INTEGER;
ALTER TABLE jobs ADD COLUMN child_session_ids TEXT;
ALTER TABLE jobs ADD COLUMN children_acus REAL;
CREATE TABLE org_holds (
  org_id TEXT PRIMARY KEY,
  until_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  held_at INTEGER NOT NULL
) STRICT;
CREATE TABLE user_pauses (
  org_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  paused_at INTEGER NOT NULL,
  PRIMARY KEY (org_id, user_id)
) STRICT;
)sql";

// v7: input that never loses a job.
// - jobs_ended: retention prunes ended jobs in small batches, earliest end first; the
//   expression and the condition are those of its query (prune_ended), so each batch reads
//   only the rows it removes, whatever the size of the table.
// - jobs_mend_invalid: a producer's INSERT of a key whose job is `invalid`, with a different
//   definition (docs/queue.md: ON CONFLICT (key) DO NOTHING), mends that job as add_job does:
//   the definition is replaced, the job queued again, and the history says which columns
//   changed. Its own row then conflicts and is dropped. A plain INSERT that fails on the key
//   undoes the trigger's work with it. The daemon validates the new spec as for any row.
constexpr const char* kSchemaV7 = R"sql(
CREATE INDEX jobs_ended ON jobs (coalesce(finished_at, updated_at))
  WHERE NOT (state = 'queued' OR state = 'creating' OR state = 'running');
CREATE TRIGGER jobs_mend_invalid BEFORE INSERT ON jobs
WHEN EXISTS (SELECT 1 FROM jobs WHERE key = NEW.key AND state = 'invalid' AND (
  spec IS NOT NEW.spec OR org_id IS NOT NEW.org_id OR priority IS NOT NEW.priority OR
  not_before IS NOT NEW.not_before OR deadline IS NOT NEW.deadline OR
  max_attempts IS NOT NEW.max_attempts OR controls IS NOT NEW.controls))
BEGIN
  INSERT INTO job_events (job_id, at, event, state, message)
    SELECT id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'mended', 'queued',
           'definition replaced by ' || NEW.source || ': ' || fields ||
           CASE WHEN instr(fields, ',') > 0 THEN ' differ' ELSE ' differs' END
    FROM (SELECT id, substr(
            CASE WHEN org_id IS NOT NEW.org_id THEN ', org_id' ELSE '' END ||
            CASE WHEN priority IS NOT NEW.priority THEN ', priority' ELSE '' END ||
            CASE WHEN spec IS NOT NEW.spec THEN ', spec' ELSE '' END ||
            CASE WHEN not_before IS NOT NEW.not_before THEN ', not_before' ELSE '' END ||
            CASE WHEN deadline IS NOT NEW.deadline THEN ', deadline' ELSE '' END ||
            CASE WHEN max_attempts IS NOT NEW.max_attempts THEN ', max_attempts' ELSE '' END ||
            CASE WHEN controls IS NOT NEW.controls THEN ', controls' ELSE '' END, 3) AS fields
          FROM jobs WHERE key = NEW.key);
  UPDATE jobs SET spec = NEW.spec, org_id = NEW.org_id, priority = NEW.priority,
    source = NEW.source, not_before = NEW.not_before, deadline = NEW.deadline,
    max_attempts = NEW.max_attempts, controls = NEW.controls, state = 'queued',
    last_error = NULL, finished_at = NULL,
    updated_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
  WHERE key = NEW.key AND state = 'invalid';
END;
)sql";

// v8: the notification outbox (docs/notifications.md). An event row is written in the
// transaction of the change it announces; `seq` (AUTOINCREMENT: never reused, even after
// pruning) is its commit order. The daemon routes each event once (routed_at) to the receivers
// that want it, one notify_deliveries row each, and records every attempt there. job_id has no
// foreign key: an event outlives its job's pruning.
constexpr const char* kSchemaV8 = R"sql(
CREATE TABLE notify_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  job_id INTEGER,
  job_key TEXT,
  org_id TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '[]',
  targets TEXT,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  routed_at INTEGER
) STRICT;
CREATE INDEX notify_events_unrouted ON notify_events (seq) WHERE routed_at IS NULL;
CREATE INDEX notify_events_job ON notify_events (job_key, seq);
CREATE TABLE notify_deliveries (
  seq INTEGER NOT NULL REFERENCES notify_events (seq) ON DELETE CASCADE,
  sink TEXT NOT NULL,
  target TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending'
    CHECK (state = 'pending' OR state = 'delivered' OR state = 'dead'),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  age_from INTEGER NOT NULL,
  last_error TEXT,
  delivered_at INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (seq, sink)
) STRICT;
CREATE INDEX notify_deliveries_pending ON notify_deliveries (sink, seq) WHERE state = 'pending';
CREATE INDEX notify_deliveries_dead ON notify_deliveries (seq) WHERE state = 'dead';
)sql";

// v9: the state `stalled` (a session that made no progress for stall_after was terminated;
// docs/stalls.md) joins the state constraint. Edited in place as v4 did: every row that
// satisfied the old text satisfies the new one.
constexpr const char* kSchemaV9 = R"sql(
UPDATE sqlite_schema SET sql = replace(sql,
  'state = ''lost'' OR state = ''invalid'' OR state = ''cancelled'' OR state = ''timed_out'')',
  'state = ''lost'' OR state = ''invalid'' OR state = ''cancelled'' OR state = ''timed_out'' OR
      state = ''stalled'')')
WHERE type = 'table' AND name = 'jobs';
)sql";

// v10: since when (epoch ms, the session's updated_at) the job's running session is stalled,
// as the daemon last reported it; NULL while it progresses. Kept so a restart does not report
// (or message) the same stall again.
constexpr const char* kSchemaV10 = R"sql(
ALTER TABLE jobs ADD COLUMN stalled_since INTEGER;
)sql";

// v11: the URLs of a job's uploaded attachments (docs/jobs.md, attachments), one row per file,
// written before the job's create intent so that neither a retry nor a restart uploads a file
// twice. Deleted with the job.
constexpr const char* kSchemaV11 = R"sql(
CREATE TABLE job_attachments (
  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  url TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, path)
) STRICT;
)sql";

constexpr std::array<Migration, 11> kMigrations{{
    {1, kSchemaV1},
    {2, kSchemaV2},
    {3, kSchemaV3},
    {4, kSchemaV4, /*edits_schema_text=*/true},
    {5, kSchemaV5},
    {6, kSchemaV6},
    {7, kSchemaV7},
    {8, kSchemaV8},
    {9, kSchemaV9, /*edits_schema_text=*/true},
    {10, kSchemaV10},
    {11, kSchemaV11},
}};

bool exec(sqlite3* db, const char* sql, std::string& error) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return true;
  error = message != nullptr ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  return false;
}

bool read_integer_pragma(sqlite3* db, const char* sql, int& value, std::string& error) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK ||
      sqlite3_step(stmt) != SQLITE_ROW) {
    error = sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    return false;
  }
  value = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  return true;
}

// SQLite's procedure for editing a definition in place, inside the caller's transaction:
// writable_schema for the edit, then a new schema_version so that every connection, this one
// included, parses the schema again. Defensive mode, if a build enables it, forbids the edit.
bool run_schema_text_edit(sqlite3* db, const char* sql, std::string& error) {
  int schema_version = 0;
  if (!read_integer_pragma(db, "PRAGMA schema_version", schema_version, error)) return false;
  int defensive = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, -1, &defensive);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, nullptr);
  // PRAGMA takes no bound parameters; the value is read from the database just above.
  const std::string bump = "PRAGMA schema_version = " + std::to_string(schema_version + 1);
  const bool ok = exec(db, "PRAGMA writable_schema = ON", error) && exec(db, sql, error) &&
                  exec(db, bump.c_str(), error);
  std::string ignored;
  exec(db, "PRAGMA writable_schema = OFF", ignored);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, defensive, nullptr);
  return ok;
}

}  // namespace

std::span<const Migration> migrations() noexcept { return kMigrations; }

int latest_schema_version() noexcept { return kMigrations.back().version; }

result<void> migrate(sqlite3* db, std::string& error) {
  if (!exec(db, "BEGIN IMMEDIATE", error)) {
    error = "cannot start the schema migration: " + error;
    return errc::database_error;
  }
  auto fail = [&](std::string message) -> result<void> {
    error = std::move(message);
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return errc::database_error;
  };

  int version = 0;
  std::string detail;
  if (!read_integer_pragma(db, "PRAGMA user_version", version, detail)) {
    return fail("cannot read user_version: " + detail);
  }
  const int latest = latest_schema_version();
  if (version > latest) {
    return fail("database schema version " + std::to_string(version) +
                " is newer than this devin-orch supports (" + std::to_string(latest) + ")");
  }
  for (const Migration& migration : kMigrations) {
    if (migration.version <= version) continue;
    const bool applied = migration.edits_schema_text
                             ? run_schema_text_edit(db, migration.sql, detail)
                             : exec(db, migration.sql, detail);
    if (!applied) {
      return fail("schema migration to version " + std::to_string(migration.version) +
                  " failed: " + detail);
    }
  }
  if (version != latest) {
    // PRAGMA takes no bound parameters; the value is this build's own constant.
    const std::string set_version = "PRAGMA user_version = " + std::to_string(latest);
    if (!exec(db, set_version.c_str(), detail)) return fail("cannot set user_version: " + detail);
  }
  if (!exec(db, "COMMIT", detail)) return fail("cannot commit the schema migration: " + detail);
  return {};
}

}  // namespace devin_orch::store
