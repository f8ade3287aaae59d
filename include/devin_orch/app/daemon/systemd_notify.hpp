// The systemd notify protocol, written by hand (a datagram to $NOTIFY_SOCKET; '@' means the
// abstract namespace): READY=1, STATUS=, STOPPING=1, RELOADING=1, WATCHDOG=1.
#pragma once

#include "devin_orch/core/time.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. Disabled when NOTIFY_SOCKET is unset.
  static SystemdNotifier from_environment();
  ~SystemdNotifier();
  SystemdNotifier(SystemdNotifier&& other) noexcept;
  SystemdNotifier& operator=(SystemdNotifier&&) = delete;
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const noexcept { return fd_ >= 0; }
  // Sends one message (e.g. "READY=1\nSTATUS=running"). Failures are ignored: a supervisor
  // that went away must not take the daemon with it.
  void notify(std::string_view message) const;
  // How often to send WATCHDOG=1 (half the configured WatchdogSec), if a watchdog is set for us.
  std::optional<core::Duration> watchdog_period() const noexcept { return watchdog_period_; }

 private:
  SystemdNotifier() = default;
  int fd_ = -1;
  std::string address_;  // sun_path bytes (leading NUL for the abstract namespace)
  std::optional<core::Duration> watchdog_period_;
};

}  // namespace devin_orch::app
