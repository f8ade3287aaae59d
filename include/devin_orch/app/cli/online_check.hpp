// `check-config --online`, the checks that need the API. What the answer
// to GET /v3/self means for the config is a pure function, so its wording is unit-tested
// without a server; check_online() does the one request.
#pragma once

#include "devin_orch/api/devin_client.hpp"
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/core/job.hpp"

#include <string>
#include <vector>

namespace devin_orch::app {

struct OnlineLine {
  enum class Level { ok, note, problem };
  Level level = Level::ok;
  std::string text;  // one line, no newline
};

struct OnlineReport {
  std::vector<OnlineLine> lines;
  bool ok() const noexcept;  // no line is a problem
};

// `self` is the outcome of GET /v3/self with the configured key; `jobs` are the jobs of the
// config's job files (only they are known before the daemon runs).
OnlineReport judge_online(const api::ApiResult<api::Principal>& self, const Config& config,
                          const std::vector<core::JobDefinition>& jobs);

// Calls GET /v3/self at config.api.base_url with `api_key` (one request, the configured
// timeouts) and judges the answer.
OnlineReport check_online(const Config& config, const std::string& api_key,
                          const std::vector<core::JobDefinition>& jobs);

}  // namespace devin_orch::app
