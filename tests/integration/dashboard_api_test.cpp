// The dashboard's JSON API on a running daemon against devin-sim: a job enqueued over HTTP runs
// to finished; bad writes (bad JSON, unknown fields, an oversized body, a wrong or missing
// token) each get a clear 4xx JSON error and store nothing.
#include "daemon_fixture.hpp"

#include "support/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <regex>
#include <thread>

namespace devin_orch::testing {
namespace {

namespace json = boost::json;
constexpr const char* kToken = "dashboard-integration-token";

// Waits (up to 20 s) for the daemon to log its dashboard port; 0 if it never does.
int wait_for_dashboard_port(const std::string& log_path) {
  const std::regex pattern{R"(dashboard listening on http://127\.0\.0\.1:(\d+)/)"};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch match;
    const auto text = read_file(log_path);
    if (std::regex_search(text, match, pattern)) return std::stoi(match[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return 0;
}

// A POST announcing a 2 MiB job with the right token, of which only the start is sent: the
// listener answers from the headers alone (a full send could be cut off by the close that
// follows the answer). Returns the raw answer.
std::string announce_oversized_body(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return {};
  }
  const std::string request = "POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " +
                              std::string{kToken} + "\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(2U << 20U) + "\r\n\r\n{\"key\":\"k\",";
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[4096];
  for (;;) {
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

class DashboardApi : public DaemonFixture {
 protected:
  // `api_lines`: added to the api section (api.organizations).
  int start(bool with_token = true, const std::string& api_lines = "") {
    start_sim({"--time-factor", "0.005", "--seed", "27"});
    std::string extra = "dashboard:\n  enabled: true\n  port: 0\n";
    if (with_token) {
      write_file(dir_.file("token"), std::string{kToken} + "\n");
      EXPECT_EQ(::chmod(dir_.file("token").c_str(), 0600), 0);
      extra += "  token_file: token\n";
    }
    write_config(DaemonSettings{.extra = extra});
    if (!api_lines.empty()) {
      std::string config = read_file(dir_.file("config.yaml"));
      config.insert(config.find("  version: v3\n") + 14, api_lines);
      write_file(dir_.file("config.yaml"), config);
    }
    write_jobs("[]\n");
    daemon_ = spawn_service();
    const int port = wait_for_dashboard_port(dir_.file("daemon.log"));
    EXPECT_NE(port, 0) << read_file(dir_.file("daemon.log"));
    return port;
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait_for(std::chrono::seconds{20}), 0) << read_file(dir_.file("daemon.log"));
    }
  }
  static std::vector<std::pair<std::string, std::string>> bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
  }
  std::unique_ptr<Process> daemon_;
};

TEST_F(DashboardApi, AJobEnqueuedOverHttpRunsToFinished) {
  const int port = start();
  ASSERT_NE(port, 0);
  const auto added = http_call(port, "POST", "/api/v1/jobs",
                               R"({"key":"over-http","prompt":"ship it [sim:exit]","tags":["web"]})",
                               bearer(kToken));
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(json::parse(added.body), (json::value{{"key", "over-http"}, {"result", "added"}}));

  json::object job;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (std::chrono::steady_clock::now() < deadline) {
    const auto shown = http_call(port, "GET", "/api/v1/jobs/over-http");
    ASSERT_EQ(shown.status, 200) << shown.body;
    job = json::parse(shown.body).as_object();
    if (job.at("outcome").at("state") == "finished") break;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  EXPECT_EQ(job.at("outcome").at("state"), "finished") << json::serialize(job);
  EXPECT_EQ(job.at("outcome").at("source"), "http");
  EXPECT_EQ(job.at("definition").at("tags"), (json::array{"web"}));
  const auto listed = http_call(port, "GET", "/api/v1/jobs?state=finished&tag=web");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(json::parse(listed.body).as_array().size(), 1U);
  // The same definition again changes nothing; another one under the key is refused.
  EXPECT_EQ(http_call(port, "POST", "/api/v1/jobs",
                      R"({"key":"over-http","prompt":"ship it [sim:exit]","tags":["web"]})",
                      bearer(kToken)).status, 200);
  EXPECT_EQ(http_call(port, "POST", "/api/v1/jobs", R"({"key":"over-http","prompt":"other"})",
                      bearer(kToken)).status, 409);
  expect_consistent_with_sim(1);
}

TEST_F(DashboardApi, BadWritesGetAClearErrorAndStoreNothing) {
  const int port = start();
  ASSERT_NE(port, 0);
  const std::string good = R"({"key":"k","prompt":"p"})";
  const struct {
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    int status;
    std::string says;
  } cases[] = {
      {R"({"key":"k","prompt":)", bearer(kToken), 400, "not valid JSON"},
      {R"({"key":"k","prompt":"p","colour":"blue"})", bearer(kToken), 400, "colour"},
      {good, bearer("wrong-token"), 401, "wrong bearer token"},
      {good, {}, 401, "Authorization: Bearer"},
  };
  for (const auto& c : cases) {
    const auto reply = http_call(port, "POST", "/api/v1/jobs", c.body, c.headers);
    EXPECT_EQ(reply.status, c.status) << c.body.substr(0, 60) << ": " << reply.body;
    EXPECT_NE(reply.headers.find("application/json"), std::string::npos) << reply.headers;
    EXPECT_NE(reply.body.find(c.says), std::string::npos) << reply.body;
  }
  const auto oversized = announce_oversized_body(port);
  EXPECT_NE(oversized.find("HTTP/1.1 413"), std::string::npos) << oversized;
  EXPECT_NE(oversized.find("application/json"), std::string::npos) << oversized;
  EXPECT_NE(oversized.find("request body too large"), std::string::npos) << oversized;
  EXPECT_EQ(http_call(port, "POST", "/api/v1/jobs/k/cancel", "", bearer("wrong")).status, 401);
  const auto listed = http_call(port, "GET", "/api/v1/jobs");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body, "[]\n");
  EXPECT_TRUE(jobs_by_key().empty());
}

// A job is checked against its organisation's API (api.organizations, docs/api-v1.md): a
// v3-only field is refused for an organisation on v1 and accepted for the default one on v3.
TEST_F(DashboardApi, AJobIsCheckedAgainstItsOrganisationsApi) {
  write_file(dir_.file("legacy.key"), std::string{kV1ApiKey} + "\n");
  ASSERT_EQ(::chmod(dir_.file("legacy.key").c_str(), 0600), 0);
  const int port = start(true,
                         "  organizations:\n    org-legacy:\n      version: v1\n"
                         "      api_key_file: legacy.key\n");
  ASSERT_NE(port, 0);
  const auto refused = http_call(
      port, "POST", "/api/v1/jobs",
      R"({"key":"fast-legacy","org_id":"org-legacy","prompt":"p","devin_mode":"fast"})",
      bearer(kToken));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("devin_mode"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("api.version v1"), std::string::npos) << refused.body;
  const auto accepted =
      http_call(port, "POST", "/api/v1/jobs",
                R"({"key":"fast-demo","prompt":"p [sim:exit]","devin_mode":"fast"})",
                bearer(kToken));
  EXPECT_EQ(accepted.status, 201) << accepted.body;
  const auto jobs = jobs_by_key();
  EXPECT_EQ(jobs.size(), 1U);
  EXPECT_TRUE(jobs.contains("fast-demo"));
}

TEST_F(DashboardApi, WithoutATokenTheApiRefusesWrites) {
  const int port = start(false);
  ASSERT_NE(port, 0);
  const auto refused = http_call(port, "POST", "/api/v1/jobs", R"({"key":"k","prompt":"p"})",
                                 bearer(kToken));
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("no dashboard.token_file"), std::string::npos) << refused.body;
  EXPECT_EQ(http_call(port, "GET", "/api/v1/jobs").status, 200);
  EXPECT_TRUE(jobs_by_key().empty());
}

}  // namespace
}  // namespace devin_orch::testing
