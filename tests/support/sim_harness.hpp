// Starts devin-sim as a child process on a free loopback port and reads its admin counters.
#pragma once

#include "support/process.hpp"

#include <boost/json/value.hpp>

#include <memory>
#include <string>
#include <vector>

namespace devin_orch::testing {

class SimHarness {
 public:
  // `flags` are extra devin-sim flags (e.g. {"--time-factor", "0.01"}). Waits for the port.
  SimHarness(const TempDir& dir, std::vector<std::string> flags);
  ~SimHarness();

  int port() const noexcept { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  boost::json::value stats() const;       // GET /_sim/stats
  boost::json::array sessions() const;    // GET /_sim/sessions -> items
  void configure(const std::string& json) const;  // POST /_sim/config
  std::string log() const;                // what devin-sim wrote to stderr

 private:
  std::unique_ptr<Process> process_;
  std::string stderr_path_;
  int port_ = 0;
};

// Counts sessions per `orch-` tag; returns the number of tags carried by more than one session.
int duplicate_creation_tags(const boost::json::array& sessions);

}  // namespace devin_orch::testing
