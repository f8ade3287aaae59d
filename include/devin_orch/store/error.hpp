// The store's one error style: every call answers StoreResult<T>, whose error is a project
// error code (what the caller acts on) plus the backend's own words (what an operator reads).
#pragma once

#include "devin_orch/core/error.hpp"

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <ostream>
#include <string>
#include <utility>

namespace devin_orch::store {

struct Error {
  boost::system::error_code code;
  // The database's own message ("database is locked", a constraint, a refused connection);
  // empty when the code says it all (not_found, conflict, lease_lost, ...).
  std::string detail;

  Error() = default;
  // Implicit: a code alone is a complete error, and code paths that only decide on the code
  // (storage_may_recover, a retry policy) take an Error where they take an error_code.
  Error(boost::system::error_code c) noexcept : code{c} {}  // NOLINT(google-explicit-constructor)
  Error(errc c) noexcept : code{make_error_code(c)} {}      // NOLINT(google-explicit-constructor)
  Error(boost::system::error_code c, std::string words) : code{c}, detail{std::move(words)} {}

  operator const boost::system::error_code&() const noexcept { return code; }  // NOLINT

  // The code's message, then the detail in parentheses when there is one.
  std::string message() const;

  friend bool operator==(const Error& error, errc c) noexcept { return error.code == c; }
  friend bool operator==(const Error& error, const boost::system::error_code& c) noexcept {
    return error.code == c;
  }
};

std::ostream& operator<<(std::ostream& out, const Error& error);

// StoreResult<T>::value() on an error throws system_error carrying the whole message.
[[noreturn]] void throw_exception_from_error(const Error& error,
                                             const boost::source_location& location);

template <class T>
using StoreResult = boost::system::result<T, Error>;

}  // namespace devin_orch::store
