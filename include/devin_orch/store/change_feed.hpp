// ChangeFeed: how a daemon learns that another process committed to the queue (a producer's
// insert, an operator's cancel), so that it looks again at once instead of at its next tick.
// SQLite answers from the file (data_version, the WAL write lock); PostgreSQL from LISTEN/NOTIFY.
#pragma once

#include "devin_orch/store/error.hpp"
#include "devin_orch/store/types.hpp"

#include <cstdint>

namespace devin_orch::store {

class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;

  // A mark that moves whenever another connection's commit becomes visible to this store, and
  // never for this store's own commits: compare it with a mark read earlier (reading does not
  // consume anything, so two readers may compare against one earlier mark). SQLite: PRAGMA
  // data_version; PostgreSQL: a count of the notifications received on the queue's channel.
  virtual StoreResult<std::int64_t> change_mark() = 0;

  // Whether another connection is committing at this instant: a change that may not be visible
  // yet, worth a second look shortly. A backend that cannot tell answers false (PostgreSQL
  // notifies after the commit, so it has nothing in flight to report).
  virtual StoreResult<bool> commit_in_flight_elsewhere() = 0;

  // Hooks around each of this store's own write transactions, so a watcher can tell its own
  // commits from other processes' where the backend cannot (SQLite's data_version does, a
  // -shm lock held by our own write does not). Empty hooks: none.
  virtual void set_write_hooks(WriteHooks hooks) = 0;

  // A descriptor that becomes readable when another connection's change may have arrived
  // (PostgreSQL: the socket that receives the notifications), for a loop to wait on; then
  // change_mark() tells. -1 when the backend has none (SQLite: watch its files instead) or has
  // no connection to the server right now (look again on the next tick). It may change after a
  // reconnection; the caller must not close it.
  virtual int notification_descriptor() { return -1; }
};

}  // namespace devin_orch::store
