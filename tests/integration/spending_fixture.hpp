// The spending guard's acceptance scenario, shared by the SQLite (spending_test.cpp) and the
// PostgreSQL (postgres_spending_test.cpp) runs: only the database and how SQL reaches it differ.
#pragma once

#include "daemon_fixture.hpp"

#include <functional>
#include <string>

namespace devin_orch::testing {

class SpendingFixture : public DaemonFixture {
 protected:
  // 10 ACUs a day, five jobs of max_acu_limit 3 held running by the simulator: three sessions
  // start and the other two wait with the acu_budget reason, through a restart; once `run_sql`
  // has moved the charges back a day, the two go. `settings` names the database.
  void budget_scenario(DaemonSettings settings,
                       const std::function<void(const std::string&)>& run_sql);
};

}  // namespace devin_orch::testing
