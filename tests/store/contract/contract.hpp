// The store's contract suite: the backends it runs against, the fixture every contract test
// derives from, and helpers written against the interfaces only (no backend type appears here).
// A backend joins by registering a factory (see sqlite_backend.cpp); every TEST_P then runs on it.
#pragma once

#include "devin_orch/store/store.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace devin_orch::store::contract {

// One fresh, empty database for one test. Each connect() is another connection to it, as another
// process (a second daemon, a producer, the CLI) would have.
class Database {
 public:
  virtual ~Database() = default;
  virtual StoreResult<std::unique_ptr<Store>> connect() = 0;
};

struct Backend {
  std::string name;  // a test-name suffix: letters and digits only
  std::function<std::unique_ptr<Database>()> make_database;
};
inline void PrintTo(const Backend& backend, std::ostream* out) { *out << backend.name; }

// Every registered backend, in registration order.
std::vector<Backend> backends();
// Registers a backend at static initialisation: `static const Registrar r{{"Name", factory}};`.
struct Registrar {
  explicit Registrar(Backend backend);
};

// Runs each test on a new database of the parameter's backend, with one connection open.
class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Another connection to this test's database.
  std::unique_ptr<Store> connect();

  JobIntake& intake() { return store_->intake(); }
  QueueStore& queue() { return store_->queue(); }
  OperatorStore& operators() { return store_->operators(); }
  ChangeFeed& changes() { return store_->changes(); }

  std::int64_t id_of(const std::string& key);
  core::JobRecord record(const std::string& key);
  // Adds a job and drives it to running.
  std::int64_t running_job(const std::string& key, const std::string& status = "running");

  std::unique_ptr<Database> database_;
  std::unique_ptr<Store> store_;
};

// Instantiates a contract test suite over every registered backend.
#define DEVIN_ORCH_STORE_CONTRACT(suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::ValuesIn(::devin_orch::store::contract::backends()), \
                           [](const auto& info) { return info.param.name; })

// ---- values and helpers ----
inline core::TimePoint at(std::int64_t ms) { return core::from_epoch_ms(ms); }

core::JobDefinition job(std::string key, std::int64_t priority = 0);
core::Session session(std::string id, std::string status,
                      std::optional<std::string> detail = std::nullopt);
// One intent or one session alone, through the batch calls.
StoreResult<void> commit_intent(QueueStore& store, std::int64_t job_id, std::int64_t attempt,
                                std::string_view tag, std::int64_t intent_at_ms,
                                core::TimePoint now);
StoreResult<void> commit_session(QueueStore& store, std::int64_t job_id,
                                 const core::Session& session, bool adopted, core::TimePoint now);
std::vector<std::string> events(OperatorStore& store, std::int64_t job_id);
std::vector<std::string> keys(const std::vector<core::JobRecord>& jobs);

}  // namespace devin_orch::store::contract
