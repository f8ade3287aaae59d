// The daemon speaking the systemd notify protocol over a real AF_UNIX datagram socket:
// READY=1 once recovery is done, WATCHDOG=1 at half of WATCHDOG_USEC from the event loop,
// RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
#include "daemon_fixture.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <thread>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace devin_orch::testing {
namespace {

using SystemdNotify = DaemonFixture;

struct Datagram {
  std::chrono::steady_clock::time_point at;
  std::string text;
};

TEST_F(SystemdNotify, ReadyWatchdogAndStopping) {
  start_sim({"--time-factor", "0.005"});
  write_config(DaemonSettings{});
  write_jobs(generate_jobs(2, {"[sim:hold]"}));

  const auto socket_path = dir_.file("notify.sock");
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  timeval timeout{.tv_sec = 0, .tv_usec = 100'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
  options.env.emplace_back("NOTIFY_SOCKET", socket_path);
  options.env.emplace_back("WATCHDOG_USEC", "400000");
  options.unset_env = {"CREDENTIALS_DIRECTORY", "DEVIN_ORCH_BASE_URL", "DEVIN_ORCH_ORG_ID",
                       "DEVIN_ORCH_DATABASE", "JOURNAL_STREAM", "WATCHDOG_PID"};
  options.stderr_path = dir_.file("daemon.log");
  Process daemon{options};

  // Each wait below ends when what it waits for arrives, so a loaded machine that starts the
  // daemon slowly makes the test slower, not wrong.
  std::vector<Datagram> received;
  const auto receive_until = [&](const auto& done, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    char buffer[4096];
    while (!done() && std::chrono::steady_clock::now() < until) {
      const auto n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        received.push_back({std::chrono::steady_clock::now(),
                            std::string(buffer, static_cast<std::size_t>(n))});
      }
    }
  };
  const auto seen = [&](std::string_view prefix) {
    return std::any_of(received.begin(), received.end(),
                       [&](const Datagram& d) { return d.text.rfind(prefix, 0) == 0; });
  };
  receive_until([&] { return seen("READY=1"); }, std::chrono::seconds{30});
  ASSERT_FALSE(received.empty()) << read_file(dir_.file("daemon.log"));
  EXPECT_EQ(received.front().text.rfind("READY=1\nSTATUS=", 0), 0U) << received.front().text;

  received.clear();
  receive_until([] { return false; }, std::chrono::milliseconds{2'000});
  std::vector<std::chrono::steady_clock::time_point> pings;
  for (const auto& datagram : received) {
    if (datagram.text == "WATCHDOG=1") pings.push_back(datagram.at);
  }
  // Half of 400 ms: about ten pings in two seconds, each gap near 200 ms; never a flood. A
  // starved process may ping late now and then, so the typical gap is what is checked.
  ASSERT_GE(pings.size(), 5U);
  EXPECT_LE(pings.size(), 13U);
  std::vector<std::chrono::steady_clock::duration> gaps;
  for (std::size_t i = 1; i < pings.size(); ++i) {
    gaps.push_back(pings[i] - pings[i - 1]);
    EXPECT_GT(gaps.back(), std::chrono::milliseconds{120});
  }
  std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2),
                   gaps.end());
  EXPECT_LT(gaps[gaps.size() / 2], std::chrono::milliseconds{350});

  received.clear();
  daemon.signal(SIGHUP);
  std::vector<std::string> reload;
  const auto reloaded = [&] {
    reload.clear();
    for (const auto& datagram : received) {
      if (datagram.text != "WATCHDOG=1") reload.push_back(datagram.text);
    }
    return reload.size() >= 2;
  };
  receive_until(reloaded, std::chrono::seconds{30});
  ASSERT_GE(reload.size(), 2U);
  EXPECT_EQ(reload[0], "RELOADING=1");
  EXPECT_EQ(reload[1].rfind("READY=1\nSTATUS=", 0), 0U) << reload[1];

  received.clear();
  daemon.signal(SIGTERM);
  receive_until([&] { return seen("STOPPING=1"); }, std::chrono::seconds{30});
  ASSERT_TRUE(daemon.wait_for(std::chrono::seconds{30}).has_value());
  EXPECT_TRUE(seen("STOPPING=1"));
  ::close(fd);
}

}  // namespace
}  // namespace devin_orch::testing
