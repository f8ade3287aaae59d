// The daemon's one place for a store write it must not drop, and for every failed store call:
// logged with its cause, counted by kind, retried while the cause may pass (a full disk, an I/O
// error, a lock held elsewhere), and remembered for /readyz and the status line.
#pragma once

#include "parts.hpp"

#include "devin_orch/store/error.hpp"

#include <boost/system/error_code.hpp>

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app::detail {

class StoreWriter {
 public:
  explicit StoreWriter(Services& services) : services_{services} {}

  // Goes now, or after the writes still waiting (in order); a failure whose cause may pass
  // keeps it waiting until it goes through; any other failure is logged and counted.
  void write(std::string what, std::function<store::StoreResult<void>()> attempt);
  // A job's end, through write(): never dropped while its cause may pass.
  void finish_job(const core::JobRecord& job, core::JobState state, std::string reason);

  void failed(std::string_view what, const store::Error& error);
  void succeeded();

  std::size_t waiting() const noexcept { return pending_.size(); }
  // Why the database takes no writes, while it does not: "cannot write ... for N s: cause".
  std::optional<std::string> trouble() const;
  std::optional<std::string> trouble_cause() const;

 private:
  struct PendingWrite {
    std::string what;
    std::function<store::StoreResult<void>()> attempt;
  };
  struct StorageTrouble {
    boost::system::error_code error;
    SteadyClock::time_point since;
    SteadyClock::time_point last_logged;
  };

  awaitable<void> retry();

  Services& services_;
  std::deque<PendingWrite> pending_;
  bool retrying_ = false;
  std::optional<StorageTrouble> trouble_;
};

}  // namespace devin_orch::app::detail
