// devin-sim's network front end: serves a World over HTTP/1.1 (or HTTPS) on loopback, one
// thread, keep-alive, carrying out each reply's delivery (answer, reset, drop, delay).
#pragma once

#include "devin_orch/sim/world.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace devin_orch::sim {

struct ServerConfig {
  std::string host = "127.0.0.1";  // must be a loopback address
  unsigned short port = 0;         // 0: any free port, see Server::port()
  std::string tls_cert_file;       // both set: HTTPS with this PEM chain and key
  std::string tls_key_file;
  bool log_requests = false;       // one line per request to stderr
  bool handle_signals = false;     // SIGINT/SIGTERM stop run(); for the binary, not for tests
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

class Server {
 public:
  // Binds and listens at once; throws std::runtime_error when that or the TLS setup fails.
  // `world` must outlive the server and is only touched from the thread calling run().
  Server(World& world, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  unsigned short port() const noexcept;
  bool tls() const noexcept;

  // Serves until stop() (or a signal, if enabled).
  void run();
  // Safe from any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devin_orch::sim
