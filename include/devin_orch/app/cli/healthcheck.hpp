// `devin-orch healthcheck`: asks a running daemon's /healthz (for Docker HEALTHCHECK and
// scripts). Blocking and tiny on purpose: no event loop, no Beast.
#pragma once

#include "devin_orch/core/time.hpp"

#include <string>

namespace devin_orch::app {

struct HealthcheckResult {
  bool healthy = false;
  std::string detail;  // e.g. "HTTP 200" or "connect 127.0.0.1:9464: Connection refused"
};

HealthcheckResult check_health(const std::string& address, int port, core::Duration timeout);

}  // namespace devin_orch::app
