// The spending guard's acceptance scenario (spending_fixture.hpp) on PostgreSQL: the charges,
// read from the database, hold three sessions through a restart and let the rest go the next day.
#include "spending_fixture.hpp"

#include "support/pg_database.hpp"

namespace devin_orch::testing {
namespace {

using PostgresSpending = SpendingFixture;

TEST_F(PostgresSpending, TenAcusADayStartThreeJobsOfThreeAndTheRestGoTheNextDay) {
  PgDatabase database;
  DaemonSettings settings;
  settings.database_url = database.url();
  budget_scenario(settings, [&](const std::string& sql) { (void)database.sql(sql); });
}

}  // namespace
}  // namespace devin_orch::testing
