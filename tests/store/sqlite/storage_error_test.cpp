// The store's storage failures, told apart from SQLite's result codes: an operator acts on a
// full disk, an I/O error, a lock held elsewhere and a damaged file differently.
#include "devin_orch/store/sqlite/statement.hpp"

#include <gtest/gtest.h>

#include <cerrno>

namespace devin_orch::store {
namespace {

TEST(StorageError, EachKindOfStorageFailureHasItsOwnCode) {
  EXPECT_EQ(storage_error(SQLITE_FULL), errc::storage_full);
  EXPECT_EQ(storage_error(SQLITE_IOERR_WRITE, ENOSPC), errc::storage_full);
  EXPECT_EQ(storage_error(SQLITE_IOERR_FSYNC, EDQUOT), errc::storage_full);
  EXPECT_EQ(storage_error(SQLITE_IOERR_WRITE, EIO), errc::storage_io);
  EXPECT_EQ(storage_error(SQLITE_IOERR_READ), errc::storage_io);
  EXPECT_EQ(storage_error(SQLITE_CANTOPEN), errc::storage_io);
  EXPECT_EQ(storage_error(SQLITE_READONLY_DBMOVED), errc::storage_io);
  EXPECT_EQ(storage_error(SQLITE_BUSY), errc::storage_busy);
  EXPECT_EQ(storage_error(SQLITE_BUSY_SNAPSHOT), errc::storage_busy);
  EXPECT_EQ(storage_error(SQLITE_LOCKED), errc::storage_busy);
  EXPECT_EQ(storage_error(SQLITE_CORRUPT), errc::storage_corrupt);
  EXPECT_EQ(storage_error(SQLITE_NOTADB), errc::storage_corrupt);
  EXPECT_EQ(storage_error(SQLITE_CONSTRAINT_CHECK), errc::database_error);
  EXPECT_EQ(storage_error(SQLITE_ERROR), errc::database_error);
}

TEST(StorageError, TheMessagesNameTheCause) {
  EXPECT_EQ(make_error_code(errc::storage_full).message(), "the database's disk is full");
  EXPECT_EQ(make_error_code(errc::storage_busy).message(),
            "the database is locked by another process");
}

}  // namespace
}  // namespace devin_orch::store
