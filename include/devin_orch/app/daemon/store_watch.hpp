// Notices writes to the job store's files (the database and its WAL) as they happen, so the
// daemon sees another process's commit without polling PRAGMA data_version every few ms.
#pragma once

#include "devin_orch/core/error.hpp"

#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace devin_orch::app {

class StoreWatch {
 public:
  // Watches `database_path` and its -wal file (Linux inotify; the directory too, for when
  // either is created or replaced) and calls `on_write` on the io_context whenever one of them
  // is written or appears, by any process (this one included: telling writers apart is left to
  // PRAGMA data_version). Other files in the directory, such as a log, raise nothing. Fails
  // where inotify is unavailable (out of watches, no such directory); the caller then polls.
  static result<std::unique_ptr<StoreWatch>> start(boost::asio::io_context& io,
                                                   const std::string& database_path,
                                                   std::function<void()> on_write);

  virtual ~StoreWatch() = default;

  // Stops watching; `on_write` is not called afterwards.
  virtual void stop() = 0;

  // Reads, now, the notices the kernel holds that the loop has not read yet, instead of
  // letting them reach `on_write`. True if any was about the store. Lets the owner take the
  // notices of its own writes (right after them) apart from other processes'.
  virtual bool take_pending() = 0;
};

}  // namespace devin_orch::app
