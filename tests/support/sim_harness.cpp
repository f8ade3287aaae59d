// devin-sim process management for integration tests.
#include "support/sim_harness.hpp"

#include "support/http.hpp"

#include <boost/json/parse.hpp>

#include <chrono>
#include <map>
#include <stdexcept>
#include <csignal>
#include <thread>


namespace devin_orch::testing {

SimHarness::SimHarness(const TempDir& dir, std::vector<std::string> flags) {
  const auto port_file = dir.file("sim.port");
  stderr_path_ = dir.file("sim.stderr");
  ProcessOptions options{.args = {DEVIN_SIM_BIN, "--port", "0", "--port-file", port_file}};
  options.args.insert(options.args.end(), flags.begin(), flags.end());
  options.stdout_path = dir.file("sim.stdout");
  options.stderr_path = stderr_path_;
  process_ = std::make_unique<Process>(options);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline) {
    const auto text = read_file(port_file);
    if (!text.empty()) {
      port_ = std::stoi(text);
      return;
    }
    if (!process_->running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  throw std::runtime_error("devin-sim did not start: " + read_file(stderr_path_));
}

SimHarness::~SimHarness() {
  if (process_) {
    process_->signal(SIGTERM);
    if (!process_->wait_for(std::chrono::seconds{5})) process_->signal(SIGKILL);
  }
}

boost::json::value SimHarness::stats() const {
  const auto reply = http_call(port_, "GET", "/_sim/stats");
  if (reply.status != 200) throw std::runtime_error("GET /_sim/stats failed");
  return boost::json::parse(reply.body);
}

boost::json::array SimHarness::sessions() const {
  const auto reply = http_call(port_, "GET", "/_sim/sessions");
  if (reply.status != 200) throw std::runtime_error("GET /_sim/sessions failed");
  return boost::json::parse(reply.body).at("items").as_array();
}

void SimHarness::configure(const std::string& json) const {
  const auto reply = http_call(port_, "POST", "/_sim/config", json);
  if (reply.status != 200) throw std::runtime_error("POST /_sim/config failed: " + reply.body);
}

std::string SimHarness::log() const { return read_file(stderr_path_); }

int duplicate_creation_tags(const boost::json::array& sessions) {
  std::map<std::string, int> per_tag;
  for (const auto& session : sessions) {
    for (const auto& tag : session.at("tags").as_array()) {
      const auto text = std::string{tag.as_string()};
      if (text.rfind("orch-", 0) == 0) ++per_tag[text];
    }
  }
  int duplicates = 0;
  for (const auto& [tag, count] : per_tag) duplicates += count > 1 ? 1 : 0;
  return duplicates;
}

}  // namespace devin_orch::testing
