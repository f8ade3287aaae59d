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
  // Watches the directory of `database_path` (Linux inotify) and calls `on_write` on the
  // io_context whenever the database or its -wal file is written, by any process (this one
  // included: telling writers apart is left to PRAGMA data_version). Fails where inotify is
  // unavailable (out of watches, no such directory); the caller then polls instead.
  static result<std::unique_ptr<StoreWatch>> start(boost::asio::io_context& io,
                                                   const std::string& database_path,
                                                   std::function<void()> on_write);

  virtual ~StoreWatch() = default;

  // Stops watching; `on_write` is not called afterwards.
  virtual void stop() = 0;
};

}  // namespace devin_orch::app
