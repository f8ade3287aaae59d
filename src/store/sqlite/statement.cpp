// Prepared statement ownership, binding and column reads for the SQLite store.
#include "devin_orch/store/sqlite/statement.hpp"

#include <cerrno>
#include <utility>

namespace devin_orch::store {

errc storage_error(int sqlite_code, int system_errno) noexcept {
  switch (sqlite_code & 0xff) {
    case SQLITE_FULL: return errc::storage_full;
    case SQLITE_IOERR:
      // ENOSPC during a write comes back as an I/O error on some paths.
      return system_errno == ENOSPC || system_errno == EDQUOT ? errc::storage_full
                                                              : errc::storage_io;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return errc::storage_io;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return errc::storage_busy;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return errc::storage_corrupt;
    default:
      return errc::database_error;
  }
}

errc storage_error(sqlite3* db) noexcept {
  return storage_error(sqlite3_extended_errcode(db), sqlite3_system_errno(db));
}

result<Statement> Statement::prepare(sqlite3* db, std::string_view sql) noexcept {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return storage_error(db);
  }
  return Statement{stmt};
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : stmt_{std::exchange(other.stmt_, nullptr)}, bind_error_{other.bind_error_} {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_error_ = other.bind_error_;
  }
  return *this;
}

void Statement::note_bind(int rc) noexcept {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

void Statement::bind(int index, std::int64_t value) noexcept {
  note_bind(sqlite3_bind_int64(stmt_, index, value));
}

void Statement::bind(int index, double value) noexcept {
  note_bind(sqlite3_bind_double(stmt_, index, value));
}

void Statement::bind(int index, std::string_view value) noexcept {
  // A null data pointer would bind SQL NULL; an empty string must stay an empty string.
  const char* data = value.data() != nullptr ? value.data() : "";
  note_bind(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

void Statement::bind(int index, const std::optional<std::string>& value) noexcept {
  if (value) {
    bind(index, std::string_view{*value});
  } else {
    bind_null(index);
  }
}

void Statement::bind(int index, std::optional<std::int64_t> value) noexcept {
  if (value) {
    bind(index, *value);
  } else {
    bind_null(index);
  }
}

void Statement::bind_null(int index) noexcept { note_bind(sqlite3_bind_null(stmt_, index)); }

result<bool> Statement::step() noexcept {
  if (bind_error_ != SQLITE_OK) return errc::database_error;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return storage_error(sqlite3_db_handle(stmt_));
}

result<void> Statement::run() noexcept {
  for (;;) {
    auto row = step();
    if (!row) return row.error();
    if (!*row) return {};
  }
}

std::int64_t Statement::int64_at(int column) const noexcept {
  return sqlite3_column_int64(stmt_, column);
}

double Statement::double_at(int column) const noexcept {
  return sqlite3_column_double(stmt_, column);
}

std::string Statement::text_at(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  // Length after the text call: it is the length of the converted representation.
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Statement::optional_text_at(int column) const {
  if (is_null_at(column)) return std::nullopt;
  return text_at(column);
}

std::optional<std::int64_t> Statement::optional_int64_at(int column) const noexcept {
  if (is_null_at(column)) return std::nullopt;
  return int64_at(column);
}

std::optional<double> Statement::optional_double_at(int column) const noexcept {
  if (is_null_at(column)) return std::nullopt;
  return double_at(column);
}

bool Statement::is_null_at(int column) const noexcept {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
}

}  // namespace devin_orch::store
