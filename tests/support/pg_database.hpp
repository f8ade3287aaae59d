// A fresh PostgreSQL database on the test cluster for one test: created with psql on the server
// DEVIN_ORCH_TEST_PG_URL names (scripts/pg-cluster.sh), dropped when the object goes. Each test
// gets its own database because notifications (LISTEN/NOTIFY) are per database, and tests run
// in parallel.
#pragma once

#include <optional>
#include <string>

namespace devin_orch::testing {

// The cluster's URL from the environment, or nullopt.
std::optional<std::string> pg_cluster_url();
// What to do when the URL is missing, for a failure message.
extern const char* const kPgClusterHint;

class PgDatabase {
 public:
  // Throws std::runtime_error when the cluster is not configured or psql fails.
  PgDatabase();
  ~PgDatabase();
  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;

  // postgresql://...: the cluster's URL with this database's name.
  const std::string& url() const noexcept { return url_; }
  const std::string& name() const noexcept { return name_; }
  // Runs one SQL command (or several, separated by ';') on this database with psql; its output.
  std::string sql(const std::string& command) const;

 private:
  std::string cluster_;
  std::string name_;
  std::string url_;
};

}  // namespace devin_orch::testing
