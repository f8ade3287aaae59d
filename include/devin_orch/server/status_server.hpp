// The metrics and health HTTP listener on the daemon's event loop: /metrics for Prometheus,
// /healthz for liveness, /readyz for readiness. Beast stays in the .cpp.
#pragma once

#include "devin_orch/core/error.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/server/metrics.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace devin_orch::server {

struct StatusServerOptions {
  std::string address = "127.0.0.1";  // an IP literal (v4 or v6), not a host name
  std::uint16_t port = 9464;          // Prometheus' customary exporter range; 0: any free port
  std::size_t max_connections = 64;   // connections beyond this are closed right after accept
  // Deadline for each request read (an idle keep-alive connection included) and each write.
  core::Duration read_timeout{5000};
};

// What /readyz answers: 200 "ready", or 503 "not ready: <detail>" (e.g. a standby naming the
// daemon it waits for). A plain bool converts, for callers with nothing to explain.
struct Readiness {
  Readiness(bool is_ready) : ready{is_ready} {}  // NOLINT(google-explicit-constructor)
  Readiness(bool is_ready, std::string why) : ready{is_ready}, detail{std::move(why)} {}
  bool ready = true;
  std::string detail;
};

// Request handling happens on `executor`, which must be single-threaded (the daemon's event loop
// or a strand): the registry and both callbacks are called only there. Call stop() there too, and
// destroy the server before the io_context. Switching the listener off means not starting it.
class StatusServer {
 public:
  // Binds and listens at once. Failures (an address that is not an IP literal, a port in use,
  // zero max_connections or read_timeout) come back as an error, with a readable message in
  // `*error` when given; never as an exception.
  // `ready` answers /readyz (an empty function counts as always ready); `before_scrape` runs just
  // before each /metrics render so the daemon can refresh its gauges. If either throws, the
  // request gets 503 / 500 and the loop carries on. `registry` must outlive the server.
  static result<std::unique_ptr<StatusServer>> start(boost::asio::any_io_executor executor,
                                                     StatusServerOptions options,
                                                     MetricsRegistry& registry,
                                                     std::function<Readiness()> ready,
                                                     std::function<void()> before_scrape = {},
                                                     std::string* error = nullptr);

  ~StatusServer();  // stop()s
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // The bound port: the real one when options.port was 0.
  std::uint16_t port() const noexcept;

  // Closes the acceptor and every connection, so the event loop can run out of work. Idempotent.
  // The callbacks and the registry are not touched after it returns.
  void stop() noexcept;

 private:
  struct Impl;
  explicit StatusServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace devin_orch::server
