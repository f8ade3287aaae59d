// Notification tests' fixture (see the header).
#include "notify_fixture.hpp"

#include <sys/stat.h>

#include <sstream>
#include <thread>

namespace devin_orch::testing {

namespace json = boost::json;
using namespace std::chrono_literals;

std::vector<json::object> Receiver::entries() const {
  std::vector<json::object> out;
  std::istringstream lines{read_file(log_path)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) out.push_back(json::parse(line).as_object());
  }
  return out;
}

void NotifyFixture::SetUp() {
  write_file(dir_.file("webhook.secret"), std::string{kWebhookSecret} + "\n");
  ::chmod(dir_.file("webhook.secret").c_str(), 0600);
}

Receiver NotifyFixture::start_receiver(const std::string& name, std::vector<std::string> flags) {
  Receiver receiver;
  receiver.log_path = dir_.file(name + ".jsonl");
  const std::string port_file = dir_.file(name + ".port");
  ProcessOptions options;
  options.args = {"/usr/bin/python3",
                  std::string{DEVIN_ORCH_SOURCE_DIR} + "/tests/integration/webhook_receiver.py",
                  "--port-file", port_file, "--log", receiver.log_path,
                  "--secret-file", dir_.file("webhook.secret")};
  options.args.insert(options.args.end(), flags.begin(), flags.end());
  options.stderr_path = dir_.file(name + ".err");
  receiver.process = std::make_unique<Process>(options);
  for (int i = 0; i < 200 && receiver.port == 0; ++i) {
    std::this_thread::sleep_for(50ms);
    const std::string text = read_file(port_file);
    if (!text.empty()) receiver.port = std::stoi(text);
  }
  EXPECT_NE(receiver.port, 0) << read_file(dir_.file(name + ".err"));
  return receiver;
}

std::string NotifyFixture::webhook(const Receiver& receiver) const {
  return "    - url: " + receiver.url() + "\n      secret_file: " + dir_.file("webhook.secret") +
         "\n";
}

json::array NotifyFixture::deliveries() {
  const auto result = run_command(
      daemon_options({"events", "ls", "--config", dir_.file("config.yaml"), "--json"}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return json::parse(result.out).as_array();
}

}  // namespace devin_orch::testing
