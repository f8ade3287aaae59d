// open_store: the one place that picks a backend for StoreOptions. SQLite is the only one
// today; the PostgreSQL store joins here, chosen by its URL.
#include "devin_orch/store/store.hpp"

#include "devin_orch/store/sqlite/sqlite_store.hpp"

namespace devin_orch::store {

StoreResult<std::unique_ptr<Store>> open_store(const StoreOptions& options) {
  auto opened = SqliteStore::open(options);
  if (!opened) return opened.error();
  return std::unique_ptr<Store>{std::move(*opened)};
}

}  // namespace devin_orch::store
