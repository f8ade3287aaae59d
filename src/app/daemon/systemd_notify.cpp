// sd_notify without libsystemd: one AF_UNIX datagram per message.
#include "devin_orch/app/daemon/systemd_notify.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace devin_orch::app {

SystemdNotifier SystemdNotifier::from_environment() {
  SystemdNotifier notifier;
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || socket_path[0] == '\0') return notifier;
  std::string address{socket_path};
  if (address[0] == '@') address[0] = '\0';
  else if (address[0] != '/') return notifier;  // only absolute or abstract sockets exist
  if (address.size() >= sizeof(sockaddr_un::sun_path)) return notifier;
  notifier.fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  notifier.address_ = std::move(address);

  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  const bool for_us = pid == nullptr || std::strtol(pid, nullptr, 10) == ::getpid();
  if (usec != nullptr && for_us) {
    const long long micros = std::strtoll(usec, nullptr, 10);
    if (micros > 0) notifier.watchdog_period_ = core::Duration{micros / 2000};
  }
  return notifier;
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

SystemdNotifier::SystemdNotifier(SystemdNotifier&& other) noexcept
    : fd_{other.fd_}, address_{std::move(other.address_)}, watchdog_period_{other.watchdog_period_} {
  other.fd_ = -1;
}

void SystemdNotifier::notify(std::string_view message) const {
  if (fd_ < 0) return;
  sockaddr_un target{};
  target.sun_family = AF_UNIX;
  std::memcpy(target.sun_path, address_.data(), address_.size());
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
  (void)::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&target), length);
}

}  // namespace devin_orch::app
