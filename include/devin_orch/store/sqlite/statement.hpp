// Internal to the store: RAII ownership of a prepared sqlite3_stmt, typed binding of every value
// and typed column reads. Only the store's sources include this (it pulls in sqlite3.h).
#pragma once

#include "devin_orch/core/error.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::store {

// The project's code for an SQLite result code (extended or primary): the storage failures an
// operator must tell apart (full, I/O, busy, corrupt), database_error for the rest.
// `system_errno` (sqlite3_system_errno) tells a write that failed for want of space.
errc storage_error(int sqlite_code, int system_errno = 0) noexcept;
// The same for the last failure on `db`.
errc storage_error(sqlite3* db) noexcept;

class Statement {
 public:
  Statement() noexcept = default;
  // On failure the message is left in sqlite3_errmsg(db).
  static result<Statement> prepare(sqlite3* db, std::string_view sql) noexcept;

  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based. Text is copied (SQLITE_TRANSIENT) so temporaries are safe to pass.
  // A failed bind is remembered and reported by the next step().
  void bind(int index, std::int64_t value) noexcept;
  void bind(int index, double value) noexcept;
  void bind(int index, std::string_view value) noexcept;
  void bind(int index, const char* value) noexcept { bind(index, std::string_view{value}); }
  void bind(int index, const std::string& value) noexcept { bind(index, std::string_view{value}); }
  void bind(int index, const std::optional<std::string>& value) noexcept;
  void bind(int index, std::optional<std::int64_t> value) noexcept;
  void bind_null(int index) noexcept;

  // true: a row is available; false: done. Errors map through storage_error().
  result<bool> step() noexcept;
  // Steps a statement expected to produce no rows (or whose rows are ignored).
  result<void> run() noexcept;

  std::int64_t int64_at(int column) const noexcept;
  double double_at(int column) const noexcept;
  std::string text_at(int column) const;
  std::optional<std::string> optional_text_at(int column) const;
  std::optional<std::int64_t> optional_int64_at(int column) const noexcept;
  std::optional<double> optional_double_at(int column) const noexcept;
  bool is_null_at(int column) const noexcept;

  // Rewinds and clears bindings. Until this runs a read statement keeps its read transaction
  // (and snapshot) open, so every use of a cached statement ends with it (see StatementUse).
  void reset() noexcept;

  sqlite3_stmt* get() const noexcept { return stmt_; }

 private:
  explicit Statement(sqlite3_stmt* stmt) noexcept : stmt_{stmt} {}
  void note_bind(int rc) noexcept;

  sqlite3_stmt* stmt_ = nullptr;
  int bind_error_ = SQLITE_OK;
};

// Borrows a (cached) statement for one use and resets it when the scope ends, whatever path
// leaves the scope.
class StatementUse {
 public:
  explicit StatementUse(Statement& statement) noexcept : statement_{&statement} {}
  ~StatementUse() { statement_->reset(); }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;

  Statement* operator->() const noexcept { return statement_; }
  Statement& operator*() const noexcept { return *statement_; }

 private:
  Statement* statement_;
};

}  // namespace devin_orch::store
