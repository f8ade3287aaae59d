// Registers SQLite with the contract suite: each test gets a database file of its own in a
// temporary directory, removed with the test.
#include "contract.hpp"

#include "support/process.hpp"

namespace devin_orch::store::contract {
namespace {

class SqliteDatabase final : public Database {
 public:
  StoreResult<std::unique_ptr<Store>> connect() override {
    return open_store(StoreOptions{.path = dir_.file("orch.db")});
  }

 private:
  devin_orch::testing::TempDir dir_;
};

const Registrar sqlite{{"Sqlite", [] { return std::make_unique<SqliteDatabase>(); }}};

}  // namespace
}  // namespace devin_orch::store::contract
