// The libpq layer of the PostgreSQL store (pq.hpp): connection, prepared statements, parameters,
// rows and the error codes of SQLSTATEs.
#include "pq.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace devin_orch::store::pg {
namespace {

bool has_prefix(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

struct OptionsDeleter {
  void operator()(PQconninfoOption* options) const noexcept { PQconninfoFree(options); }
};
using OptionsPtr = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

OptionsPtr parse_url(const std::string& url, std::string& error) {
  char* message = nullptr;
  OptionsPtr options{PQconninfoParse(url.c_str(), &message)};
  if (!options) {
    error = message != nullptr ? trimmed(message) : "cannot parse it";
    PQfreemem(message);
  }
  return options;
}

std::string option(const PQconninfoOption* options, std::string_view keyword) {
  for (const auto* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (keyword == o->keyword) return o->val != nullptr ? o->val : "";
  }
  return {};
}

}  // namespace

errc storage_error(const PGresult* result, const PGconn* conn) noexcept {
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) return errc::storage_io;
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr) return errc::storage_io;  // no answer from the server at all
  const std::string_view sqlstate{state};
  if (has_prefix(sqlstate, "08") || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03" || sqlstate == "58030") {
    return errc::storage_io;  // connection lost, server shutting down or starting, I/O error
  }
  if (sqlstate == "53100") return errc::storage_full;
  if (sqlstate == "53300" || sqlstate == "55P03" || sqlstate == "40001" || sqlstate == "40P01" ||
      sqlstate == "57014") {
    return errc::storage_busy;  // too many connections, a lock or statement timeout, deadlock
  }
  if (has_prefix(sqlstate, "53")) return errc::storage_io;  // out of memory and the like
  if (sqlstate == "XX001" || sqlstate == "XX002") return errc::storage_corrupt;
  return errc::database_error;
}

// ---- parameters and rows ----

Params& Params::add(std::int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

Params& Params::add(double value) {
  char buffer[64];
  const auto written = std::to_chars(buffer, buffer + sizeof buffer, value);
  values_.emplace_back(std::string(buffer, written.ptr));
  return *this;
}

Params& Params::add(bool value) {
  values_.emplace_back(value ? "true" : "false");
  return *this;
}

Params& Params::add(std::string_view value) {
  values_.emplace_back(std::string(value));
  return *this;
}

Params& Params::add(const std::optional<std::string>& value) {
  values_.push_back(value);
  return *this;
}

Params& Params::add(std::optional<std::int64_t> value) {
  if (!value) return add_null();
  return add(*value);
}

Params& Params::add_null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& value : values_) out.push_back(value ? value->c_str() : nullptr);
  return out;
}

bool Row::is_null_at(int column) const noexcept { return PQgetisnull(result_, row_, column) != 0; }

std::int64_t Row::int64_at(int column) const noexcept {
  const char* text = PQgetvalue(result_, row_, column);
  std::int64_t value = 0;
  std::from_chars(text, text + std::strlen(text), value);
  return value;
}

double Row::double_at(int column) const noexcept {
  return std::strtod(PQgetvalue(result_, row_, column), nullptr);
}

bool Row::bool_at(int column) const noexcept { return PQgetvalue(result_, row_, column)[0] == 't'; }

std::string Row::text_at(int column) const {
  return std::string(PQgetvalue(result_, row_, column),
                     static_cast<std::size_t>(PQgetlength(result_, row_, column)));
}

std::optional<std::string> Row::optional_text_at(int column) const {
  if (is_null_at(column)) return std::nullopt;
  return text_at(column);
}

std::optional<std::int64_t> Row::optional_int64_at(int column) const noexcept {
  if (is_null_at(column)) return std::nullopt;
  return int64_at(column);
}

std::optional<double> Row::optional_double_at(int column) const noexcept {
  if (is_null_at(column)) return std::nullopt;
  return double_at(column);
}

std::int64_t Rows::affected() const noexcept {
  return std::strtoll(PQcmdTuples(result_.get()), nullptr, 10);
}

// ---- URLs ----

std::string redacted(const std::string& url) {
  std::string ignored;
  const auto options = parse_url(url, ignored);
  if (!options) return "(a PostgreSQL URL libpq cannot parse)";
  const std::string user = option(options.get(), "user");
  const std::string host = option(options.get(), "host");
  const std::string port = option(options.get(), "port");
  const std::string dbname = option(options.get(), "dbname");
  return "postgresql://" + (user.empty() ? "" : user + "@") + host +
         (port.empty() ? "" : ":" + port) + "/" + dbname;
}

std::optional<std::string> url_problem(const std::string& url) {
  if (!has_prefix(url, "postgresql://") && !has_prefix(url, "postgres://")) {
    return "must start with postgresql:// (or postgres://)";
  }
  std::string error;
  const auto options = parse_url(url, error);
  if (!options) return "libpq cannot parse it: " + error;
  if (!option(options.get(), "password").empty()) {
    return "must not carry a password: put it in a password file (database.password_file, or "
           "libpq's PGPASSFILE / ~/.pgpass)";
  }
  return std::nullopt;
}

// ---- the connection ----

bool Connection::connected() const noexcept {
  return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}

bool Connection::in_transaction() const noexcept {
  if (!conn_) return false;
  const auto status = PQtransactionStatus(conn_.get());
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

void Connection::drop() noexcept {
  conn_.reset();
  prepared_.clear();
}

result<void> Connection::ensure() {
  if (connected()) return {};
  drop();
  if (const auto problem = url_problem(target_.url)) {
    return fail(errc::invalid_argument, "database URL " + *problem);
  }
  // libpq's minimum is 2 s; it counts whole seconds.
  const auto timeout_s = std::max<std::int64_t>(2, (target_.connect_timeout.count() + 999) / 1000);
  const std::string connect_timeout = std::to_string(timeout_s);
  // Our defaults first: the URL's own settings, expanded from `dbname`, override them. A dead
  // server or path is noticed within about 20 s even with no request outstanding (keepalives)
  // and with one outstanding (tcp_user_timeout).
  std::vector<const char*> keywords{"connect_timeout",    "application_name", "keepalives",
                                    "keepalives_idle",    "keepalives_interval",
                                    "keepalives_count",   "tcp_user_timeout", "dbname"};
  std::vector<const char*> values{connect_timeout.c_str(), "devin-orch", "1", "10", "5", "2",
                                  "20000", target_.url.c_str()};
  if (!target_.password_file.empty()) {
    keywords.push_back("passfile");
    values.push_back(target_.password_file.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  conn_.reset(PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1));
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    const std::string words = conn_ ? trimmed(PQerrorMessage(conn_.get())) : "out of memory";
    conn_.reset();
    return fail(errc::storage_io,
                "cannot connect to PostgreSQL at " + redacted(target_.url) + ": " + words);
  }
  // Server notices (a DDL's "already exists, skipping") are not ours to print on stderr.
  PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr);
  std::vector<std::string> setup{
      "SET lock_timeout = " + std::to_string(target_.lock_timeout.count()),
      // A statement the server cannot finish in a minute is stuck: fail it like a lost
      // connection rather than block the daemon's loop.
      "SET statement_timeout = 60000",
      "SET idle_in_transaction_session_timeout = 60000",
  };
  setup.insert(setup.end(), on_connect_.begin(), on_connect_.end());
  for (const auto& statement : setup) {
    if (auto done = simple(statement); !done) {
      conn_.reset();
      return done.error();
    }
  }
  if (ever_connected_) reconnected_ = true;
  ever_connected_ = true;
  return {};
}

result<Rows> Connection::check(ResultPtr result, std::string_view sql) {
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return Rows{std::move(result)};
  }
  const errc code = storage_error(result.get(), conn_.get());
  std::string words = trimmed(result ? PQresultErrorMessage(result.get()) : "");
  if (words.empty() && conn_) words = trimmed(PQerrorMessage(conn_.get()));
  if (words.empty()) words = "no answer from the server";
  constexpr std::size_t kShown = 60;
  if (!sql.empty()) {
    words += " (in: ";
    words += sql.substr(0, kShown);
    if (sql.size() > kShown) words += "...";
    words += ")";
  }
  return fail(code, std::move(words));
}

result<Rows> Connection::simple(const std::string& sql) {
  if (!conn_) return fail(errc::storage_io, "not connected to PostgreSQL");
  return check(ResultPtr{PQexec(conn_.get(), sql.c_str())}, sql);
}

result<Rows> Connection::exec(std::string_view sql, const Params& params) {
  if (!conn_) return fail(errc::storage_io, "not connected to PostgreSQL");
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "orch_" + std::to_string(prepared_.size() + 1);
    const std::string text(sql);
    auto prepared = check(ResultPtr{PQprepare(conn_.get(), name.c_str(), text.c_str(), 0, nullptr)},
                          sql);
    if (!prepared) return prepared.error();
    it = prepared_.emplace(text, std::move(name)).first;
  }
  const auto values = params.pointers();
  return check(ResultPtr{PQexecPrepared(conn_.get(), it->second.c_str(), params.size(),
                                        values.data(), nullptr, nullptr, 0)},
               sql);
}

}  // namespace devin_orch::store::pg
