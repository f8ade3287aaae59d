// Internal to the store: the ordered schema migrations and the code that applies them through
// PRAGMA user_version. Each migration is frozen once released; changes go in a new one.
#pragma once

#include "devin_orch/core/error.hpp"

#include <span>
#include <string>

struct sqlite3;

namespace devin_orch::store {

struct Migration {
  int version;      // user_version after this migration; consecutive from 1
  const char* sql;  // DDL only, no values
  // The sql edits table definitions in sqlite_schema in place, which SQLite allows for changes
  // that leave every stored row valid (https://sqlite.org/lang_altertable.html, "Making Other
  // Kinds Of Table Schema Changes"): run with writable_schema on and the schema_version bumped.
  bool edits_schema_text = false;
};

std::span<const Migration> migrations() noexcept;
int latest_schema_version() noexcept;

// Brings the database to latest_schema_version() inside one BEGIN IMMEDIATE transaction, so
// two processes opening a fresh file at once cannot both migrate it. Refuses a database whose
// version is newer than this build knows. On failure `error` says why.
result<void> migrate(sqlite3* db, std::string& error);

}  // namespace devin_orch::store
