// Tests of the Devin API calls against a loopback server: requests as the API expects them, and
// each response class turned into the right CallOutcome.
#include "devin_orch/api/devin_client.hpp"

#include "api/loopback_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace devin_orch::api {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using core::CallClass;

constexpr const char* session_json = R"({"session_id": "devin-1", "url": "https://app.devin.ai/sessions/devin-1",
  "status": "new", "status_detail": null, "tags": ["orch-k-g0"], "org_id": "org-1",
  "created_at": 1718000000, "updated_at": 1718000000, "acus_consumed": 0.0, "pull_requests": []})";

struct Fixture {
  explicit Fixture(LoopbackServer::Responder respond)
      : server{io, std::move(respond)},
        http{std::move(*HttpClient::create(
            io.get_executor(), {.base_url = server.url(), .bearer_token = "cog_test"}))} {}

  template <class T>
  T operator()(net::awaitable<T> call) {
    return run(io, std::move(call));
  }

  net::io_context io;
  LoopbackServer server;
  std::unique_ptr<HttpClient> http;
  DevinClient client{*http};
};

TEST(DevinClient, CreateSessionPostsTheSpecAndParsesTheSession) {
  Fixture f{[](const ReceivedRequest&) { return response(200, session_json); }};

  auto created = f(f.client.create_session("org-1", {.prompt = "Fix it", .tags = {"team"}},
                                           "orch-k-g0"));
  ASSERT_TRUE(created.outcome.ok()) << created.outcome.detail;
  ASSERT_TRUE(created.value);
  EXPECT_EQ(created.value->session_id, "devin-1");
  EXPECT_EQ(created.value->status, "new");
  EXPECT_EQ(created.outcome.http_status, 200);

  ASSERT_EQ(f.server.requests.size(), 1U);
  const ReceivedRequest& request = f.server.requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/v3/organizations/org-1/sessions");
  EXPECT_EQ(boost::json::parse(request.body),
            boost::json::parse(R"({"prompt": "Fix it", "tags": ["team", "orch-k-g0"]})"));
}

TEST(DevinClient, CreateUsesItsOwnTimeout) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          co_await read_request(socket, buffer);
                          co_await read_request(socket, buffer);
                        }};
  auto http = std::move(*HttpClient::create(
      io.get_executor(), {.base_url = server.url(), .request_timeout = 60'000ms}));
  DevinClient client{*http};

  auto created = run(io, client.create_session("org-1", {.prompt = "p"}, "tag", 100ms));
  EXPECT_EQ(created.outcome.cls, CallClass::ambiguous) << created.outcome.detail;
  EXPECT_FALSE(created.value);
}

TEST(DevinClient, SuccessWithGarbageBodyIsAmbiguous) {
  Fixture f{[](const ReceivedRequest&) { return response(200, "<html>oops</html>"); }};

  auto created = f(f.client.create_session("org-1", {.prompt = "p"}, "tag"));
  EXPECT_EQ(created.outcome.cls, CallClass::ambiguous);
  EXPECT_FALSE(created.value);
  EXPECT_TRUE(created.outcome.detail.starts_with("HTTP 200 with unparseable body: "))
      << created.outcome.detail;
}

TEST(DevinClient, SuccessWithWrongShapeIsAmbiguous) {
  Fixture f{[](const ReceivedRequest&) { return response(200, R"({"id": "devin-1"})"); }};
  auto got = f(f.client.get_session("org-1", "devin-1"));
  EXPECT_EQ(got.outcome.cls, CallClass::ambiguous);
  EXPECT_NE(got.outcome.detail.find("shape"), std::string::npos) << got.outcome.detail;
}

TEST(DevinClient, ServiceUnavailableIsAmbiguous) {
  Fixture f{[](const ReceivedRequest&) {
    return response(503, R"({"detail": "upstream overloaded"})");
  }};
  auto created = f(f.client.create_session("org-1", {.prompt = "p"}, "tag"));
  EXPECT_EQ(created.outcome.cls, CallClass::ambiguous);
  EXPECT_EQ(created.outcome.http_status, 503);
  EXPECT_FALSE(created.value);
}

TEST(DevinClient, TooManyRequestsCarriesRetryAfter) {
  Fixture f{[](const ReceivedRequest&) {
    return response(429, R"({"detail": "rate limit exceeded"})", {{"Retry-After", "3"}});
  }};
  auto created = f(f.client.create_session("org-1", {.prompt = "p"}, "tag"));
  EXPECT_EQ(created.outcome.cls, CallClass::rate_limited);
  EXPECT_EQ(created.outcome.http_status, 429);
  EXPECT_EQ(created.outcome.retry_after, std::chrono::milliseconds{3000});
}

TEST(DevinClient, ServiceUnavailableCarriesTheWaitItAskedFor) {
  Fixture f{[](const ReceivedRequest&) {
    return response(503, R"({"detail": "overloaded"})",
                    {{"Retry-After", "9"}, {"retry-after-ms", "8500"}});
  }};
  auto got = f(f.client.get_session("org-1", "devin-1"));
  EXPECT_EQ(got.outcome.cls, CallClass::ambiguous);
  EXPECT_EQ(got.outcome.requested_wait(), std::chrono::milliseconds{8500});
}

TEST(DevinClient, NotFoundIsClassified) {
  Fixture f{[](const ReceivedRequest&) {
    return response(404, R"({"detail": "Session not found"})");
  }};
  auto got = f(f.client.get_session("org-1", "devin-gone"));
  EXPECT_EQ(got.outcome.cls, CallClass::not_found);
  EXPECT_FALSE(got.value);
}

TEST(DevinClient, ConnectFailureIsNotSent) {
  net::io_context io;
  const unsigned short port = closed_port(io);
  auto http = std::move(*HttpClient::create(
      io.get_executor(), {.base_url = "http://127.0.0.1:" + std::to_string(port)}));
  DevinClient client{*http};

  auto created = run(io, client.create_session("org-1", {.prompt = "p"}, "tag"));
  EXPECT_EQ(created.outcome.cls, CallClass::not_sent);
  EXPECT_EQ(created.outcome.http_status, 0);
  EXPECT_FALSE(created.outcome.detail.empty());
}

TEST(DevinClient, ConnectionLostAfterCreateIsAmbiguous) {
  Fixture f{[](const ReceivedRequest&) { return std::string{}; }};
  auto created = f(f.client.create_session("org-1", {.prompt = "p"}, "tag"));
  EXPECT_EQ(created.outcome.cls, CallClass::ambiguous);
  EXPECT_EQ(f.server.requests.size(), 1U);
}

TEST(DevinClient, GetSessionEncodesTheIds) {
  Fixture f{[](const ReceivedRequest&) { return response(200, session_json); }};
  auto got = f(f.client.get_session("org 1", "devin-1"));
  ASSERT_TRUE(got.outcome.ok()) << got.outcome.detail;
  EXPECT_EQ(f.server.requests.at(0).method, "GET");
  EXPECT_EQ(f.server.requests.at(0).target, "/v3/organizations/org%201/sessions/devin-1");
}

TEST(DevinClient, ListSessionsSendsTheQueryAndParsesThePage) {
  Fixture f{[](const ReceivedRequest&) {
    return response(200, std::string{R"({"items": [)"} + session_json +
                             R"(], "end_cursor": null, "has_next_page": false})");
  }};
  auto page = f(f.client.list_sessions(
      "org-1", {.tags = {"orch-k-g0"}, .created_after = 1718000000, .first = 10}));
  ASSERT_TRUE(page.outcome.ok()) << page.outcome.detail;
  ASSERT_EQ(page.value->items.size(), 1U);
  EXPECT_EQ(page.value->items[0].session_id, "devin-1");
  EXPECT_EQ(f.server.requests.at(0).target,
            "/v3/organizations/org-1/sessions?tags=orch-k-g0&created_after=1718000000&first=10");
}

TEST(DevinClient, TerminateDeletesWithArchiveFlag) {
  Fixture f{[](const ReceivedRequest&) { return response(200, session_json); }};
  auto archived = f(f.client.terminate_session("org-1", "devin-1", true));
  auto kept = f(f.client.terminate_session("org-1", "devin-1", false));
  ASSERT_TRUE(archived.outcome.ok()) << archived.outcome.detail;
  ASSERT_TRUE(kept.outcome.ok()) << kept.outcome.detail;
  ASSERT_EQ(f.server.requests.size(), 2U);
  EXPECT_EQ(f.server.requests[0].method, "DELETE");
  EXPECT_EQ(f.server.requests[0].target, "/v3/organizations/org-1/sessions/devin-1?archive=true");
  EXPECT_EQ(f.server.requests[1].target,
            "/v3/organizations/org-1/sessions/devin-1?archive=false");
}

TEST(DevinClient, SendMessagePostsTheMessage) {
  Fixture f{[](const ReceivedRequest&) { return response(200, session_json); }};
  auto sent = f(f.client.send_message("org-1", "devin-1", "please \"continue\""));
  ASSERT_TRUE(sent.outcome.ok()) << sent.outcome.detail;
  const ReceivedRequest& request = f.server.requests.at(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/v3/organizations/org-1/sessions/devin-1/messages");
  EXPECT_EQ(boost::json::parse(request.body),
            boost::json::parse(R"({"message": "please \"continue\""})"));
}

TEST(DevinClient, GetSessionReadsTheFamily) {
  Fixture f{[](const ReceivedRequest&) {
    return response(200, R"({"session_id": "devin-p", "status": "running",
                             "parent_session_id": null,
                             "child_session_ids": ["devin-c1", "devin-c2"]})");
  }};
  auto got = f(f.client.get_session("org-1", "devin-p"));
  ASSERT_TRUE(got.outcome.ok()) << got.outcome.detail;
  EXPECT_EQ(got.value->child_session_ids, (std::vector<std::string>{"devin-c1", "devin-c2"}));
  EXPECT_EQ(got.value->parent_session_id, std::nullopt);
}

TEST(DevinClient, SelfReadsThePrincipal) {
  Fixture f{[](const ReceivedRequest&) {
    return response(200, R"({"principal_type": "service_user", "service_user_id": "svc-1",
                             "service_user_name": "orchestrator", "org_id": "org-1"})");
  }};
  auto self = f(f.client.self());
  ASSERT_TRUE(self.outcome.ok()) << self.outcome.detail;
  EXPECT_EQ(self.value->principal_type, "service_user");
  EXPECT_EQ(self.value->service_user_id, "svc-1");
  EXPECT_EQ(self.value->service_user_name, "orchestrator");
  EXPECT_EQ(self.value->org_id, "org-1");
  const ReceivedRequest& request = f.server.requests.at(0);
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/v3/self");
}

TEST(DevinClient, SelfOfAnEnterpriseKeyHasNoOrgAndABadKeyIsUnauthorized) {
  bool good = true;
  Fixture f{[&](const ReceivedRequest&) {
    return good ? response(200, R"({"principal_type": "service_user", "service_user_id": "s",
                                    "org_id": null})")
                : response(401, R"({"detail": "Invalid API key"})");
  }};
  auto self = f(f.client.self());
  ASSERT_TRUE(self.outcome.ok()) << self.outcome.detail;
  EXPECT_EQ(self.value->org_id, std::nullopt);
  good = false;
  self = f(f.client.self());
  EXPECT_EQ(self.outcome.cls, CallClass::unauthorized);
  EXPECT_EQ(self.outcome.detail, "HTTP 401: Invalid API key");
  EXPECT_FALSE(self.value);
}

TEST(DevinClient, ListOrganizationsPages) {
  Fixture f{[](const ReceivedRequest&) {
    return response(200, R"({"items": [{"org_id": "org-1", "name": "One"}],
                             "end_cursor": "c2", "has_next_page": true, "total": null})");
  }};
  auto page = f(f.client.list_organizations(50, std::string{"c1"}));
  ASSERT_TRUE(page.outcome.ok()) << page.outcome.detail;
  EXPECT_EQ(page.value->items.at(0).name, "One");
  EXPECT_EQ(page.value->end_cursor, "c2");
  EXPECT_EQ(f.server.requests.at(0).target, "/v3/enterprise/organizations?first=50&after=c1");
}

}  // namespace
}  // namespace devin_orch::api
