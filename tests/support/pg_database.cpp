// Per-test PostgreSQL databases (pg_database.hpp), made and dropped with psql.
#include "support/pg_database.hpp"

#include "support/process.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace devin_orch::testing {
namespace {

// The URL with its database (the path) replaced by `database`.
std::string with_database(const std::string& url, const std::string& database) {
  const auto query = url.find('?');
  const std::string base = url.substr(0, query);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  const auto authority = base.find("//");
  const auto slash = base.find('/', authority == std::string::npos ? 0 : authority + 2);
  return (slash == std::string::npos ? base : base.substr(0, slash)) + "/" + database + rest;
}

std::string psql(const std::string& url, const std::string& command) {
  const RunResult run = run_command(
      {.args = {"/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command}},
      std::chrono::seconds{60});
  if (run.exit_code != 0) {
    throw std::runtime_error("psql failed (" + std::to_string(run.exit_code) + ") on '" + command +
                             "': " + run.err);
  }
  return run.out;
}

}  // namespace

const char* const kPgClusterHint =
    "DEVIN_ORCH_TEST_PG_URL is not set, and this build runs the PostgreSQL tests "
    "(-DDEVIN_ORCH_TEST_POSTGRESQL=ON). Start a throwaway server and export its URL: "
    "export DEVIN_ORCH_TEST_PG_URL=$(scripts/pg-cluster.sh start /tmp/orch-pg) "
    "(scripts/test.sh does both), or configure with -DDEVIN_ORCH_TEST_POSTGRESQL=OFF.";

std::optional<std::string> pg_cluster_url() {
  const char* url = std::getenv("DEVIN_ORCH_TEST_PG_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

PgDatabase::PgDatabase() {
  const auto cluster = pg_cluster_url();
  if (!cluster) throw std::runtime_error(kPgClusterHint);
  cluster_ = *cluster;
  static std::atomic<int> counter{0};
  std::random_device random;
  name_ = "orch_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(random() % 100000);
  psql(cluster_, "CREATE DATABASE " + name_ + " TEMPLATE template0");
  url_ = with_database(cluster_, name_);
}

PgDatabase::~PgDatabase() {
  try {
    psql(cluster_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // A server stopped by the test itself takes its databases with it.
  }
}

std::string PgDatabase::sql(const std::string& command) const { return psql(url_, command); }

}  // namespace devin_orch::testing
