// Registers PostgreSQL with the contract suite: each test gets a database of its own on the test
// cluster (DEVIN_ORCH_TEST_PG_URL), dropped with the test. Built only with
// -DDEVIN_ORCH_TEST_POSTGRESQL=ON (scripts/test.sh); then a missing URL fails every test with
// what to do, rather than skipping them.
#include "contract.hpp"

#include "support/pg_database.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace devin_orch::store::contract {
namespace {

class PostgresDatabase final : public Database {
 public:
  StoreResult<std::unique_ptr<Store>> connect() override {
    return open_store(StoreOptions{.url = database_.url()});
  }

 private:
  devin_orch::testing::PgDatabase database_;
};

std::unique_ptr<Database> make_postgres_database() {
  try {
    return std::make_unique<PostgresDatabase>();
  } catch (const std::exception& error) {
    ADD_FAILURE() << error.what();
    return nullptr;
  }
}

const Registrar postgres{{"Postgres", make_postgres_database}};

}  // namespace
}  // namespace devin_orch::store::contract
