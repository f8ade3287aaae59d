// Notification tests' fixture: Python webhook receivers (webhook_receiver.py, which checks every
// signature with hmac), their logs, and the outbox as `events ls --json` shows it. Shared by
// the SQLite and the PostgreSQL notification tests.
#pragma once

#include "daemon_fixture.hpp"

#include <boost/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace devin_orch::testing {

inline constexpr const char* kWebhookSecret = "whsec_integration_5b1f0c";

// One receiver process and what it logged.
struct Receiver {
  std::unique_ptr<Process> process;
  std::string log_path;
  int port = 0;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
  std::vector<boost::json::object> entries() const;
};

class NotifyFixture : public DaemonFixture {
 protected:
  void SetUp() override;

  // Starts webhook_receiver.py with `flags` (--fail-rate, --never-answer, ...).
  Receiver start_receiver(const std::string& name, std::vector<std::string> flags);
  // A notify.webhooks entry (YAML, under "  webhooks:") for the receiver, signed with the secret.
  std::string webhook(const Receiver& receiver) const;
  // The outbox as `events ls --json` shows it.
  boost::json::array deliveries();
};

}  // namespace devin_orch::testing
