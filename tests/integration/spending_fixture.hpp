// The spending guard's acceptance scenario, shared by the SQLite (spending_test.cpp) and the
// PostgreSQL (postgres_spending_test.cpp) runs: only the database and how SQL reaches it differ.
#pragma once

#include "daemon_fixture.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace devin_orch::testing {

// The real UTC day must not roll while a budget test runs: waits past midnight when it is near.
inline void wait_clear_of_utc_midnight() {
  const auto now = std::chrono::system_clock::now();
  const auto to_midnight = std::chrono::floor<std::chrono::days>(now) + std::chrono::days{1} - now;
  if (to_midnight < std::chrono::minutes{2}) {
    std::this_thread::sleep_for(to_midnight + std::chrono::seconds{1});
  }
}

// Whether `condition` holds within `patience` (a limit on waiting, never a timing assertion).
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::seconds patience = std::chrono::seconds{60}) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  return condition();
}

class SpendingFixture : public DaemonFixture {
 protected:
  // 10 ACUs a day, five jobs of max_acu_limit 3 held running by the simulator: three sessions
  // start and the other two wait with the acu_budget reason, through a restart; once `run_sql`
  // has moved the charges back a day, the two go. `settings` names the database.
  void budget_scenario(DaemonSettings settings,
                       const std::function<void(const std::string&)>& run_sql);
};

}  // namespace devin_orch::testing
