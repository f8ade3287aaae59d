// Internal to the PostgreSQL store: the ordered schema migrations and the code that applies them,
// recorded in table devin_orch_schema. Each migration is frozen once released; changes go in a
// new one.
#pragma once

#include "devin_orch/core/error.hpp"

#include <span>

namespace devin_orch::store::pg {

class Connection;

struct Migration {
  int version;      // consecutive from 1
  const char* sql;  // DDL only, no values
};

std::span<const Migration> migrations() noexcept;
int latest_schema_version() noexcept;

// Brings the database to latest_schema_version() in one transaction that holds an advisory
// lock, so two processes starting on a fresh database at once cannot both migrate it (the
// second waits, then finds nothing to do). Refuses a database newer than this build knows.
result<void> migrate(Connection& connection);

// The channel the jobs table's triggers notify on a producer's or an operator's change.
inline constexpr const char* kQueueChannel = "devin_orch_queue";

}  // namespace devin_orch::store::pg
