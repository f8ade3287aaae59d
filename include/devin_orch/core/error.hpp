// The project's error enum, wired into boost::system::error_code through its own category.
// Expected failures travel as error codes or result<T>; exceptions are for start-up only.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace devin_orch {

template <class T>
using result = boost::system::result<T>;

enum class errc {
  ok = 0,
  // Transport, before the request left the process: always safe to retry.
  resolve_failed = 1,
  connect_failed,
  tls_handshake_failed,
  // Transport, after (part of) the request was written: the server may have acted on it.
  timeout,
  connection_lost,
  // The response itself.
  response_too_large,
  malformed_http,
  malformed_json,
  unexpected_shape,
  http_status,
  // Local.
  invalid_argument,
  invalid_config,
  database_error,   // any other failure of the database (a constraint, a bad statement, ...)
  // The database's storage, told apart because an operator acts on each differently and the
  // daemon waits out the transient ones.
  storage_full,     // no space left for the database, its WAL or its temporary files
  storage_io,       // an I/O error reading or writing the database's files
  storage_busy,     // another process held the database's lock longer than busy_timeout
  storage_corrupt,  // the file is not a database or is damaged
  // An fsync failed: what the page cache holds may never reach the disk, and a later fsync
  // can report success all the same. Nothing that relies on durability may go on.
  sync_failed,
  cancelled,
  not_found,
  conflict,
  // A write on the queue's behalf by a process whose ownership lease is no longer current:
  // another process took the queue, so this one must not act on it any more.
  lease_lost,
  // A claim refused because its concurrency group already has its limit of jobs creating or
  // running (counted in the claim's own transaction): the job stays queued for a later turn.
  group_full,
};

const boost::system::error_category& orch_category() noexcept;

// Whether a failed store call may succeed later by itself, once space, the disk or another
// process's lock is back: worth retrying as it was. Anything else will fail the same way.
bool storage_may_recover(const boost::system::error_code& error) noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), orch_category()};
}

}  // namespace devin_orch

template <>
struct boost::system::is_error_code_enum<devin_orch::errc> : std::true_type {};
