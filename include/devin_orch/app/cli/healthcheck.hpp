// Asks a running daemon's status listener: /healthz for `devin-orch healthcheck` (Docker
// HEALTHCHECK, scripts), /readyz for `devin-orch status`. Blocking and tiny on purpose: no event
// loop, no Beast.
#pragma once

#include "devin_orch/core/time.hpp"

#include <string>

namespace devin_orch::app {

struct HealthcheckResult {
  bool healthy = false;
  std::string detail;  // e.g. "HTTP 200" or "connect 127.0.0.1:9464: Connection refused"
};

HealthcheckResult check_health(const std::string& address, int port, core::Duration timeout);

struct ProbeResult {
  int status = 0;      // the HTTP status; 0 when no HTTP answer came
  std::string body;    // the answer's body (at most a few KiB), or why there was none
  std::string where;   // address:port
};

// GET `path` (HTTP/1.0) with a deadline for connecting and for each read.
ProbeResult probe(const std::string& address, int port, const std::string& path,
                  core::Duration timeout);

}  // namespace devin_orch::app
