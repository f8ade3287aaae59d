// One-shot HTTP/1.0 GETs of the daemon's status listener over a blocking socket with a deadline.
#include "devin_orch/app/cli/healthcheck.hpp"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace devin_orch::app {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_{fd} {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

bool wait_for(int fd, short events, core::Duration timeout) {
  pollfd entry{.fd = fd, .events = events, .revents = 0};
  return ::poll(&entry, 1, static_cast<int>(timeout.count())) == 1;
}

}  // namespace

ProbeResult probe(const std::string& address, int port, const std::string& path,
                  core::Duration timeout) {
  const std::string where = address + ":" + std::to_string(port);
  const auto failed = [&where](std::string why) { return ProbeResult{0, std::move(why), where}; };
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  // A wildcard listen address is reached through loopback.
  const std::string target = address == "0.0.0.0" ? "127.0.0.1" : address == "::" ? "::1" : address;
  if (::inet_pton(AF_INET, target.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, target.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    return failed("metrics.address '" + address + "' is not an IP address");
  }
  Fd fd{::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (fd.get() < 0) return failed(std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    if (errno != EINPROGRESS || !wait_for(fd.get(), POLLOUT, timeout)) {
      return failed("connect " + where + ": " +
                    (errno == EINPROGRESS ? "timed out" : std::strerror(errno)));
    }
    int error = 0;
    socklen_t size = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) return failed("connect " + where + ": " + std::strerror(error));
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + where + "\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return failed("send to " + where + " failed");
  }
  std::string response;
  char buffer[512];
  constexpr std::size_t kMaxResponse = 8192;
  while (response.size() < kMaxResponse) {
    if (!wait_for(fd.get(), POLLIN, timeout)) {
      if (response.size() >= 12) break;
      return failed("no answer from " + where + " in time");
    }
    const auto n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) {
    return failed("not an HTTP answer from " + where);
  }
  const std::string status = response.substr(9, 3);
  if (status.find_first_not_of("0123456789") != std::string::npos) {
    return failed("not an HTTP answer from " + where);
  }
  const auto body_at = response.find("\r\n\r\n");
  return ProbeResult{std::stoi(status),
                     body_at == std::string::npos ? std::string{} : response.substr(body_at + 4),
                     where};
}

HealthcheckResult check_health(const std::string& address, int port, core::Duration timeout) {
  const auto answer = probe(address, port, "/healthz", timeout);
  if (answer.status == 0) return {.healthy = false, .detail = answer.body};
  return {.healthy = answer.status == 200,
          .detail = "HTTP " + std::to_string(answer.status) + " from " + answer.where};
}

}  // namespace devin_orch::app
