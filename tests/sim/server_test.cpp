// The real Beast server on a loopback port 0, driven by a plain blocking client: the wire
// contract (status lines, headers, unanswered connections) that the World tests cannot see.
#include "devin_orch/sim/server.hpp"

#include "support/http.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <thread>

namespace devin_orch::sim {
namespace {
namespace json = boost::json;
using devin_orch::testing::http_call;

const std::vector<std::pair<std::string, std::string>> kAuth = {{"Authorization", "Bearer cog_test"}};

class ServerTest : public ::testing::Test {
 protected:
  void start(WorldConfig config) {
    world_ = std::make_unique<World>(std::move(config));
    server_ = std::make_unique<Server>(*world_, ServerConfig{});
    thread_ = std::thread{[this] { server_->run(); }};
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return server_->port(); }
  json::value admin(const std::string& target) {
    const auto reply = http_call(port(), "GET", target);
    EXPECT_EQ(reply.status, 200);
    return json::parse(reply.body);
  }

  std::unique_ptr<World> world_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, CreateGetListRoundTrip) {
  start({.total_mode = TotalMode::always});
  EXPECT_GT(port(), 0);
  const auto created = http_call(port(), "POST", "/v3/organizations/org-demo/sessions",
                                 R"({"prompt":"hello","tags":["orch-1"]})", kAuth);
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_NE(created.headers.find("application/json"), std::string::npos);
  const auto id = std::string{json::parse(created.body).at("session_id").as_string()};

  const auto got = http_call(port(), "GET", "/v3/organizations/org-demo/sessions/" + id, {}, kAuth);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(json::parse(got.body).at("session_id"), json::value(id));

  const auto listed = http_call(port(), "GET", "/v3/organizations/org-demo/sessions?session_ids=" + id,
                                {}, kAuth);
  ASSERT_EQ(listed.status, 200);
  const auto page = json::parse(listed.body);
  EXPECT_EQ(page.at("items").at(0).at("session_id"), json::value(id));
  EXPECT_EQ(page.at("total"), 1);
}

TEST_F(ServerTest, ErrorStatusesOnTheWire) {
  start({});
  EXPECT_EQ(http_call(port(), "GET", "/v3/organizations/org-demo/sessions").status, 401);
  const auto unknown_org = http_call(port(), "GET", "/v3/organizations/org-zzz/sessions", {}, kAuth);
  EXPECT_EQ(unknown_org.status, 404);
  EXPECT_EQ(json::parse(unknown_org.body).at("detail"), "Organization not found");
  const auto invalid = http_call(port(), "POST", "/v3/organizations/org-demo/sessions", R"({"x":1})", kAuth);
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(json::parse(invalid.body).at("detail").at(0).at("type"), "missing");
  const auto wrong_method = http_call(port(), "PATCH", "/v3/self", {}, kAuth);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_NE(wrong_method.headers.find("Allow: GET"), std::string::npos);
}

TEST_F(ServerTest, AdminStatsCountWhatHappened) {
  start({});
  http_call(port(), "POST", "/v3/organizations/org-demo/sessions", R"({"prompt":"a","tags":["orch-7"]})", kAuth);
  http_call(port(), "POST", "/v3/organizations/org-demo/sessions", R"({"prompt":"a","tags":["orch-7"]})", kAuth);
  http_call(port(), "GET", "/v3/organizations/org-demo/sessions");
  const auto stats = admin("/_sim/stats");
  EXPECT_EQ(stats.at("requests_total"), 3);
  EXPECT_EQ(stats.at("sessions_created"), 2);
  EXPECT_EQ(stats.at("duplicate_tag_groups"), 1);
  EXPECT_EQ(stats.at("requests").at("POST /v3/organizations/{org_id}/sessions").at("200"), 2);
  EXPECT_EQ(stats.at("requests").at("GET /v3/organizations/{org_id}/sessions").at("401"), 1);
  EXPECT_EQ(admin("/_sim/sessions").at("items").as_array().size(), 2u);
}

TEST_F(ServerTest, DropAfterCreateClosesUnansweredButTheSessionExists) {
  start({.faults = {.drop_after_create = 1.0}});
  const auto reply = http_call(port(), "POST", "/v3/organizations/org-demo/sessions",
                               R"({"prompt":"lost reply","tags":["orch-9"]})", kAuth);
  EXPECT_EQ(reply.status, 0);
  const auto items = admin("/_sim/sessions").at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("tags").at(0), "orch-9");
  EXPECT_EQ(admin("/_sim/stats").at("faults").at("drop_after_create"), 1);
}

TEST_F(ServerTest, ResetClosesUnansweredAndProcessesNothing) {
  start({.faults = {.reset = 1.0}});
  const auto reply = http_call(port(), "POST", "/v3/organizations/org-demo/sessions",
                               R"({"prompt":"p"})", kAuth);
  EXPECT_EQ(reply.status, 0);
  EXPECT_TRUE(admin("/_sim/sessions").at("items").as_array().empty());
  EXPECT_EQ(admin("/_sim/stats").at("faults").at("reset"), 1);
}

TEST_F(ServerTest, BadGatewayIsHtml) {
  start({.faults = {.http_502_html = 1.0}});
  const auto reply = http_call(port(), "GET", "/v3/self", {}, kAuth);
  EXPECT_EQ(reply.status, 502);
  EXPECT_NE(reply.headers.find("text/html"), std::string::npos);
}

TEST_F(ServerTest, RateLimitedAnswerCarriesRetryAfter) {
  start({.rate_limit_rpm = 1, .rate_limit_burst = 1});
  EXPECT_EQ(http_call(port(), "GET", "/v3/self", {}, kAuth).status, 200);
  const auto limited = http_call(port(), "GET", "/v3/self", {}, kAuth);
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.headers.find("Retry-After: 60"), std::string::npos) << limited.headers;
}

TEST_F(ServerTest, ListWithTwoHundredSessionIdsFitsInTheRequestLine) {
  start({});
  std::string target = "/v3/organizations/org-demo/sessions?first=200";
  for (int i = 0; i < 200; ++i) target += "&session_ids=devin-" + std::string(32, 'a' + i % 6);
  ASSERT_GT(target.size(), 8192u);
  const auto reply = http_call(port(), "GET", target, {}, kAuth);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(admin("/_sim/stats").at("list_requests_with_session_ids"), 1);
}

// The list lag runs on the server's wall clock: absent from lists, present by id, then listed.
TEST_F(ServerTest, ListLagOnTheWallClock) {
  start({.total_mode = TotalMode::always, .list_lag_ms = 400});
  const auto created = http_call(port(), "POST", "/v3/organizations/org-demo/sessions",
                                 R"({"prompt":"p","tags":["orch-lag"]})", kAuth);
  ASSERT_EQ(created.status, 200) << created.body;
  const auto id = std::string{json::parse(created.body).at("session_id").as_string()};
  const auto listed = [&] {
    const auto page = http_call(port(), "GET", "/v3/organizations/org-demo/sessions?tags=orch-lag",
                                {}, kAuth);
    return json::parse(page.body).at("items").as_array().size();
  };
  EXPECT_EQ(listed(), 0U);
  EXPECT_EQ(http_call(port(), "GET", "/v3/organizations/org-demo/sessions/" + id, {}, kAuth).status,
            200);
  std::this_thread::sleep_for(std::chrono::milliseconds{450});
  EXPECT_EQ(listed(), 1U);
}

TEST_F(ServerTest, FaultAnswersCarryTheirWaitOnTheWire) {
  start({.faults = {.http_503 = 1}, .fault_retry_after_ms = 1500,
         .fault_retry_after_mode = RetryAfterMode::both});
  const auto reply = http_call(port(), "GET", "/v3/organizations/org-demo/sessions", {}, kAuth);
  EXPECT_EQ(reply.status, 503);
  EXPECT_NE(reply.headers.find("Retry-After: 2\r\n"), std::string::npos) << reply.headers;
  EXPECT_NE(reply.headers.find("retry-after-ms: 1500\r\n"), std::string::npos) << reply.headers;
  EXPECT_EQ(admin("/_sim/stats").at("retry_after_windows"), 1);
}

}  // namespace
}  // namespace devin_orch::sim
