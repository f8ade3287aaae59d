// open_store: the one place that picks a backend for StoreOptions: PostgreSQL when a URL is
// set, SQLite's file otherwise.
#include "devin_orch/store/store.hpp"

#include "devin_orch/store/sqlite/sqlite_store.hpp"
#include "postgres/postgres_store.hpp"

namespace devin_orch::store {

StoreResult<std::unique_ptr<Store>> open_store(const StoreOptions& options) {
  if (!options.url.empty()) {
    auto opened = PostgresStore::open(options);
    if (!opened) return opened.error();
    return std::unique_ptr<Store>{std::move(*opened)};
  }
  auto opened = SqliteStore::open(options);
  if (!opened) return opened.error();
  return std::unique_ptr<Store>{std::move(*opened)};
}

}  // namespace devin_orch::store
