// The notify protocol over a real AF_UNIX datagram socket, as systemd would receive it.
#include "devin_orch/app/daemon/systemd_notify.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace devin_orch::app {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_{path} {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    timeval timeout{.tv_sec = 2, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() { ::close(fd_); }

  std::string receive() {
    char buffer[4096];
    const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string{};
  }

 private:
  std::string path_;
  int fd_;
};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_{name} {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(SystemdNotifier, DisabledWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  const auto notifier = SystemdNotifier::from_environment();
  EXPECT_FALSE(notifier.enabled());
  notifier.notify("READY=1");  // a no-op, not a crash
}

TEST(SystemdNotifier, SendsDatagramsToTheSocket) {
  testing::TempDir dir;
  NotifySocket socket{dir.file("notify")};
  ScopedEnv env{"NOTIFY_SOCKET", dir.file("notify")};
  const auto notifier = SystemdNotifier::from_environment();
  ASSERT_TRUE(notifier.enabled());
  notifier.notify("READY=1\nSTATUS=3 queued");
  EXPECT_EQ(socket.receive(), "READY=1\nSTATUS=3 queued");
  notifier.notify("STOPPING=1");
  EXPECT_EQ(socket.receive(), "STOPPING=1");
}

TEST(SystemdNotifier, WatchdogPeriodIsHalfTheTimeoutAndOnlyForOurPid) {
  testing::TempDir dir;
  NotifySocket socket{dir.file("notify")};
  ScopedEnv env{"NOTIFY_SOCKET", dir.file("notify")};
  {
    ScopedEnv usec{"WATCHDOG_USEC", "3000000"};
    ScopedEnv pid{"WATCHDOG_PID", std::to_string(::getpid())};
    const auto notifier = SystemdNotifier::from_environment();
    ASSERT_TRUE(notifier.watchdog_period().has_value());
    EXPECT_EQ(notifier.watchdog_period()->count(), 1500);
  }
  {
    ScopedEnv usec{"WATCHDOG_USEC", "3000000"};
    ScopedEnv pid{"WATCHDOG_PID", std::to_string(::getpid() + 1)};
    EXPECT_FALSE(SystemdNotifier::from_environment().watchdog_period().has_value());
  }
}

}  // namespace
}  // namespace devin_orch::app
