// Internal to the PostgreSQL store: RAII ownership of a libpq connection and its results, text
// parameters, typed column reads, a cache of prepared statements, and the project's code for a
// server error. Only src/store/postgres/ includes this (it pulls in libpq-fe.h).
#pragma once

#include "devin_orch/core/error.hpp"
#include "devin_orch/core/time.hpp"

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store::pg {

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnectionDeleter {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using ConnectionPtr = std::unique_ptr<PGconn, ConnectionDeleter>;

// The project's code for a failed result (its SQLSTATE) or a connection that broke: the
// failures an operator and the daemon's retry must tell apart; database_error for the rest.
errc storage_error(const PGresult* result, const PGconn* conn) noexcept;

// Parameters as text, in order ($1, $2, ...); a nullopt is SQL NULL.
class Params {
 public:
  Params& add(std::int64_t value);
  Params& add(int value) { return add(static_cast<std::int64_t>(value)); }
  Params& add(double value);
  Params& add(bool value);
  Params& add(std::string_view value);
  Params& add(const char* value) { return add(std::string_view{value}); }
  Params& add(const std::string& value) { return add(std::string_view{value}); }
  Params& add(const std::optional<std::string>& value);
  Params& add(std::optional<std::int64_t> value);
  Params& add_null();

  int size() const noexcept { return static_cast<int>(values_.size()); }
  // Pointers for PQexecPrepared: valid while this object lives and is not changed.
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

// One row of a result, read by column index (text format).
class Row {
 public:
  Row(const PGresult* result, int row) noexcept : result_{result}, row_{row} {}
  bool is_null_at(int column) const noexcept;
  std::int64_t int64_at(int column) const noexcept;
  double double_at(int column) const noexcept;
  bool bool_at(int column) const noexcept;
  std::string text_at(int column) const;
  std::optional<std::string> optional_text_at(int column) const;
  std::optional<std::int64_t> optional_int64_at(int column) const noexcept;
  std::optional<double> optional_double_at(int column) const noexcept;

 private:
  const PGresult* result_;
  int row_;
};

// A successful result: its rows and the rows a command changed.
class Rows {
 public:
  explicit Rows(ResultPtr result) noexcept : result_{std::move(result)} {}
  int size() const noexcept { return PQntuples(result_.get()); }
  bool empty() const noexcept { return size() == 0; }
  Row operator[](int row) const noexcept { return Row{result_.get(), row}; }
  // INSERT/UPDATE/DELETE: how many rows the command touched.
  std::int64_t affected() const noexcept;

 private:
  ResultPtr result_;
};

// How to reach the server: everything libpq needs but the password (see StoreOptions).
struct ConnectTarget {
  std::string url;
  std::string password_file;  // empty: libpq's own (PGPASSFILE, ~/.pgpass)
  core::Duration connect_timeout{5'000};
  core::Duration lock_timeout{5'000};
};

// The URL without its password and query, safe for messages and logs.
std::string redacted(const std::string& url);
// Why `url` cannot be used (not a libpq URL, carries a password), or nullopt.
std::optional<std::string> url_problem(const std::string& url);

// One connection to the server. Statements are prepared once per connection and kept; a
// connection that broke is opened again by ensure() (the next call after an outage), which also
// forgets the statements prepared on the old one. Records the server's words for every failure.
class Connection {
 public:
  explicit Connection(ConnectTarget target) : target_{std::move(target)} {}

  // Connected (reconnecting if the last connection broke). `on_connect` statements run on every
  // new connection (session settings, LISTEN).
  result<void> ensure();
  bool connected() const noexcept;
  // True once per reconnection since the last call: what the old connection would have
  // received meanwhile is lost.
  bool take_reconnected() noexcept { return std::exchange(reconnected_, false); }
  void set_on_connect(std::vector<std::string> statements) { on_connect_ = std::move(statements); }

  // Runs a prepared statement (prepared on first use) with `params`.
  result<Rows> exec(std::string_view sql, const Params& params = {});
  // Runs `sql` as one simple query without parameters (BEGIN, COMMIT, DDL, "").
  result<Rows> simple(const std::string& sql);

  PGconn* get() const noexcept { return conn_.get(); }
  int backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_.get()) : 0; }
  bool in_transaction() const noexcept;

  std::string take_error() noexcept { return std::exchange(last_error_, {}); }
  void forget_error() noexcept { last_error_.clear(); }
  errc fail(errc code, std::string message) {
    last_error_ = std::move(message);
    return code;
  }
  // Closes the connection (the next ensure() opens a new one).
  void drop() noexcept;

 private:
  result<Rows> check(ResultPtr result, std::string_view sql);

  ConnectTarget target_;
  ConnectionPtr conn_;
  std::map<std::string, std::string, std::less<>> prepared_;  // sql -> statement name
  std::vector<std::string> on_connect_;
  std::string last_error_;
  bool ever_connected_ = false;
  bool reconnected_ = false;
};

}  // namespace devin_orch::store::pg
