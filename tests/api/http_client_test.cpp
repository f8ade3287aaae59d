// Tests of the HTTP client against scripted loopback servers: reuse, chunking, every failure
// class and whether the request counts as sent, size caps, stale keep-alive handling.
#include "devin_orch/api/http_client.hpp"

#include "api/loopback_server.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace devin_orch::api {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using Results = std::vector<HttpResult>;

constexpr const char* token = "cog_secret_token_123";

std::unique_ptr<HttpClient> make_client(net::io_context& io, std::string base_url,
                                        HttpClientOptions options = {}) {
  options.base_url = std::move(base_url);
  options.bearer_token = token;
  std::string why;
  auto client = HttpClient::create(io.get_executor(), std::move(options), &why);
  if (!client) throw std::runtime_error("create failed: " + why);
  return std::move(*client);
}

// Sends the requests one after another and collects the results.
net::awaitable<Results> send_all(HttpClient& client, std::vector<HttpRequest> requests) {
  Results results;
  for (HttpRequest& request : requests) results.push_back(co_await client.send(request));
  co_return results;
}

HttpResult send_one(net::io_context& io, HttpClient& client, HttpRequest request) {
  return run(io, send_all(client, {std::move(request)})).at(0);
}

errc code_of(const HttpResult& r) { return static_cast<errc>(r.ec.value()); }

std::string json_ok(const ReceivedRequest& request) {
  return response(200, R"({"echo":")" + request.target + R"("})",
                  {{"Content-Type", "application/json"}});
}

TEST(HttpClientCreate, AcceptsHttpsAndLoopbackHttp) {
  net::io_context io;
  for (const char* url : {"https://api.devin.ai", "https://api.acme.devinenterprise.com:8443/x/",
                          "http://127.0.0.1:8080", "http://127.1.2.3", "http://localhost:9",
                          "http://LOCALHOST", "http://[::1]:8080/prefix"}) {
    std::string why;
    auto client = HttpClient::create(io.get_executor(), {.base_url = url}, &why);
    EXPECT_TRUE(client) << url << ": " << why;
  }
}

TEST(HttpClientCreate, RejectsPlainHttpToNonLoopbackAndOtherBadUrls) {
  net::io_context io;
  const auto rejection = [&](const char* url) {
    std::string why;
    auto client = HttpClient::create(io.get_executor(), {.base_url = url}, &why);
    EXPECT_FALSE(client) << url;
    if (!client) {
      EXPECT_EQ(client.error(), make_error_code(errc::invalid_config));
    }
    return why;
  };
  EXPECT_EQ(rejection("http://api.devin.ai"), "plain http:// is only allowed for loopback hosts");
  EXPECT_EQ(rejection("http://10.0.0.1:8080"), "plain http:// is only allowed for loopback hosts");
  EXPECT_EQ(rejection("http://[::2]"), "plain http:// is only allowed for loopback hosts");
  EXPECT_EQ(rejection("http://localhost.evil.com"),
            "plain http:// is only allowed for loopback hosts");
  EXPECT_NE(rejection("ftp://api.devin.ai"), "");
  EXPECT_NE(rejection("api.devin.ai"), "");
  EXPECT_NE(rejection("https://user:pw@api.devin.ai"), "");
  EXPECT_NE(rejection("https://api.devin.ai/?x=1"), "");
  EXPECT_NE(rejection("https:///nohost"), "");
  EXPECT_NE(rejection(""), "");
}

TEST(HttpClientCreate, RejectsHeaderInjectionThroughTheTokenWithoutEchoingIt) {
  net::io_context io;
  std::string why;
  auto client = HttpClient::create(
      io.get_executor(),
      {.base_url = "https://api.devin.ai", .bearer_token = "cog_x\r\nX-Evil: 1"}, &why);
  EXPECT_FALSE(client);
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(why.find("cog_x"), std::string::npos) << why;
}

TEST(HttpClientCreate, UnreadableCaFileIsAStartupError) {
  net::io_context io;
  std::string why;
  auto client = HttpClient::create(
      io.get_executor(), {.base_url = "https://api.devin.ai", .ca_file = "/nonexistent/ca.pem"},
      &why);
  EXPECT_FALSE(client);
  EXPECT_NE(why.find("/nonexistent/ca.pem"), std::string::npos) << why;
}

TEST(HttpClient, GetAndPostReuseOneKeepAliveConnection) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{json_ok}};
  auto client = make_client(io, server.url());

  const Results results = run(io, send_all(*client, {
      {.method = Method::get, .target = "/v3/a?x=1"},
      {.method = Method::post, .target = "/v3/b", .body = R"({"prompt":"p"})"},
      {.method = Method::delete_, .target = "/v3/c?archive=true"},
  }));

  ASSERT_EQ(results.size(), 3U);
  for (const HttpResult& r : results) {
    ASSERT_FALSE(r.ec) << r.detail;
    EXPECT_TRUE(r.request_sent);
    EXPECT_EQ(r.response.status, 200);
    EXPECT_EQ(r.response.content_type, "application/json");
  }
  EXPECT_EQ(results[1].response.body, R"({"echo":"/v3/b"})");
  EXPECT_EQ(server.accepted(), 1);
  ASSERT_EQ(server.requests.size(), 3U);
  EXPECT_EQ(server.requests[0].method, "GET");
  EXPECT_EQ(server.requests[0].target, "/v3/a?x=1");
  EXPECT_EQ(server.requests[1].method, "POST");
  EXPECT_EQ(server.requests[1].body, R"({"prompt":"p"})");
  EXPECT_EQ(server.requests[2].method, "DELETE");
}

TEST(HttpClient, SendsTheExpectedHeadersAndNoAcceptEncoding) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{json_ok}};
  auto client = make_client(io, server.url(), {.user_agent = "devin-orch/test"});

  run(io, send_all(*client, {{.method = Method::get, .target = "/g"},
                             {.method = Method::post, .target = "/p", .body = "{}"}}));

  ASSERT_EQ(server.requests.size(), 2U);
  const ReceivedRequest& get = server.requests[0];
  EXPECT_EQ(get.header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(get.header("authorization"), std::string{"Bearer "} + token);
  EXPECT_EQ(get.header("accept"), "application/json");
  EXPECT_EQ(get.header("user-agent"), "devin-orch/test");
  EXPECT_EQ(get.header("accept-encoding"), std::nullopt);
  EXPECT_EQ(get.header("content-type"), std::nullopt);
  const ReceivedRequest& post = server.requests[1];
  EXPECT_EQ(post.header("content-type"), "application/json");
  EXPECT_EQ(post.header("content-length"), "2");
  EXPECT_EQ(post.header("accept-encoding"), std::nullopt);
}

// A webhook's client: no token, so no Authorization header at all (the Devin key never goes
// to a receiver), and the request's own header fields (its signature).
TEST(HttpClient, WithoutATokenSendsNoAuthorizationAndSendsTheRequestsHeaders) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{json_ok}};
  std::string why;
  auto client = HttpClient::create(io.get_executor(), {.base_url = server.url()}, &why);
  ASSERT_TRUE(client) << why;
  HttpRequest request{.method = Method::post, .target = "/hook", .body = "{}"};
  request.headers = {{"Devin-Orch-Signature", "t=1,v1=ab"}, {"Devin-Orch-Event-Id", "evt_1"}};
  run(io, send_all(**client, {request}));
  ASSERT_EQ(server.requests.size(), 1U);
  EXPECT_EQ(server.requests[0].header("authorization"), std::nullopt);
  EXPECT_EQ(server.requests[0].header("devin-orch-signature"), "t=1,v1=ab");
  EXPECT_EQ(server.requests[0].header("devin-orch-event-id"), "evt_1");
}

TEST(HttpClient, BaseUrlPathIsAPrefixOfEveryTarget) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{json_ok}};
  auto client = make_client(io, server.url() + "/gateway/devin/");

  const HttpResult r = send_one(io, *client, {.target = "/v3/organizations/o/sessions"});
  ASSERT_FALSE(r.ec) << r.detail;
  ASSERT_EQ(server.requests.size(), 1U);
  EXPECT_EQ(server.requests[0].target, "/gateway/devin/v3/organizations/o/sessions");
}

TEST(HttpClient, ConnectionCloseResponsesAreNotReused) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          if (co_await read_request(socket, buffer)) {
                            write_now(socket, response(200, "{}", {{"Connection", "close"}}));
                          }
                        }};
  auto client = make_client(io, server.url());

  const Results results =
      run(io, send_all(*client, {{.target = "/one"}, {.target = "/two"}}));
  EXPECT_FALSE(results[0].ec) << results[0].detail;
  EXPECT_FALSE(results[1].ec) << results[1].detail;
  EXPECT_EQ(server.accepted(), 2);
}

TEST(HttpClient, ChunkedResponseIsReassembled) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          if (!co_await read_request(socket, buffer)) co_return;
                          write_now(socket,
                                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                    "Content-Type: application/json\r\n\r\n");
                          write_now(socket, "5\r\n{\"a\":\r\n");
                          write_now(socket, "a\r\n \"chunked\"\r\n");
                          write_now(socket, "1\r\n}\r\n0\r\n\r\n");
                        }};
  auto client = make_client(io, server.url());

  const HttpResult r = send_one(io, *client, {.target = "/chunks"});
  ASSERT_FALSE(r.ec) << r.detail;
  EXPECT_EQ(r.response.body, R"({"a": "chunked"})");
}

TEST(HttpClient, ServerClosingWithoutAnswerIsConnectionLostAfterSend) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest&) {
                          return std::string{};  // read the request, then hang up
                        }}};
  auto client = make_client(io, server.url());

  const HttpResult r = send_one(io, *client, {.method = Method::post, .target = "/p", .body = "{}"});
  EXPECT_EQ(code_of(r), errc::connection_lost) << r.detail;
  EXPECT_TRUE(r.request_sent);
  EXPECT_EQ(server.accepted(), 1);  // a fresh connection is never replayed
  EXPECT_EQ(r.detail.find(token), std::string::npos);
}

TEST(HttpClient, ServerThatNeverAnswersTimesOutAfterSend) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          co_await read_request(socket, buffer);
                          co_await read_request(socket, buffer);  // until the client gives up
                        }};
  auto client = make_client(io, server.url(), {.request_timeout = 150ms});

  const HttpResult r = send_one(io, *client, {.target = "/slow"});
  EXPECT_EQ(code_of(r), errc::timeout) << r.detail;
  EXPECT_TRUE(r.request_sent);
  EXPECT_GE(r.latency, 150ms);
  EXPECT_LT(r.latency, 5000ms);
}

TEST(HttpClient, ServerThatTricklesBytesIsCutOffByTheOverallDeadline) {
  // Every byte arrives well within any per-read timeout; only a deadline on the whole request
  // stops a slowloris server from holding the client forever.
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          co_await read_request(socket, buffer);
                          const std::string response =
                              "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" +
                              std::string(100000, 'x');
                          net::steady_timer timer{socket.get_executor()};
                          for (const char byte : response) {
                            auto [ec, n] = co_await net::async_write(
                                socket, net::buffer(&byte, 1), net::as_tuple(net::use_awaitable));
                            if (ec) co_return;
                            timer.expires_after(20ms);
                            co_await timer.async_wait(net::as_tuple(net::use_awaitable));
                          }
                        }};
  auto client = make_client(io, server.url(), {.request_timeout = 300ms});

  const HttpResult r = send_one(io, *client, {.target = "/trickle"});
  EXPECT_EQ(code_of(r), errc::timeout) << r.detail;
  EXPECT_TRUE(r.request_sent);
  EXPECT_GE(r.latency, 300ms);
  EXPECT_LT(r.latency, 3000ms);
}

TEST(HttpClient, PerRequestTimeoutOverridesTheDefault) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          co_await read_request(socket, buffer);
                          co_await read_request(socket, buffer);
                        }};
  auto client = make_client(io, server.url(), {.request_timeout = 60'000ms});

  const HttpResult r = send_one(io, *client, {.target = "/slow", .timeout = 100ms});
  EXPECT_EQ(code_of(r), errc::timeout) << r.detail;
  EXPECT_LT(r.latency, 5000ms);
}

TEST(HttpClient, ConnectionRefusedIsNotSent) {
  net::io_context io;
  const unsigned short port = closed_port(io);
  auto client = make_client(io, "http://127.0.0.1:" + std::to_string(port));

  const HttpResult r = send_one(io, *client, {.method = Method::post, .target = "/p", .body = "{}"});
  EXPECT_EQ(code_of(r), errc::connect_failed) << r.detail;
  EXPECT_FALSE(r.request_sent);
  EXPECT_NE(r.detail.find(std::to_string(port)), std::string::npos) << r.detail;
}

TEST(HttpClient, OversizedBodyIsRejected) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest&) {
                          return response(200, std::string(4096, 'x'));
                        }}};
  auto client = make_client(io, server.url(), {.max_body_bytes = 1024});

  const HttpResult r = send_one(io, *client, {.target = "/big"});
  EXPECT_EQ(code_of(r), errc::response_too_large) << r.detail;
  EXPECT_TRUE(r.request_sent);
}

TEST(HttpClient, OversizedChunkedBodyIsRejected) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          if (!co_await read_request(socket, buffer)) co_return;
                          write_now(socket, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                          for (int i = 0; i < 8; ++i) {
                            write_now(socket, "200\r\n" + std::string(512, 'y') + "\r\n");
                          }
                          write_now(socket, "0\r\n\r\n");
                        }};
  auto client = make_client(io, server.url(), {.max_body_bytes = 2048});

  const HttpResult r = send_one(io, *client, {.target = "/big"});
  EXPECT_EQ(code_of(r), errc::response_too_large) << r.detail;
}

TEST(HttpClient, OversizedHeaderIsRejected) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest&) {
                          return response(200, "{}", {{"X-Padding", std::string(8192, 'p')}});
                        }}};
  auto client = make_client(io, server.url(), {.max_header_bytes = 1024});

  const HttpResult r = send_one(io, *client, {.target = "/h"});
  EXPECT_EQ(code_of(r), errc::response_too_large) << r.detail;
}

TEST(HttpClient, EncodedBodyIsRejectedWithAClearReason) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest&) {
                          return response(200, "\x1f\x8b\x08\x00", {{"Content-Encoding", "gzip"}});
                        }}};
  auto client = make_client(io, server.url());

  const HttpResult r = send_one(io, *client, {.target = "/gz"});
  EXPECT_EQ(code_of(r), errc::malformed_http);
  EXPECT_NE(r.detail.find("gzip"), std::string::npos) << r.detail;
}

TEST(HttpClient, IdentityEncodingIsAccepted) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest&) {
                          return response(200, "{}", {{"Content-Encoding", "Identity"}});
                        }}};
  auto client = make_client(io, server.url());
  const HttpResult r = send_one(io, *client, {.target = "/id"});
  EXPECT_FALSE(r.ec) << r.detail;
}

TEST(HttpClient, GarbageInsteadOfHttpIsMalformed) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest&) {
                          return std::string{"SSH-2.0-OpenSSH_9.2\r\n\r\n"};
                        }}};
  auto client = make_client(io, server.url());
  const HttpResult r = send_one(io, *client, {.target = "/"});
  EXPECT_EQ(code_of(r), errc::malformed_http) << r.detail;
  EXPECT_TRUE(r.request_sent);
}

TEST(HttpClient, RateLimitHeadersAreExtractedAndRedirectsNotFollowed) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{[](const ReceivedRequest& request) {
                          if (request.target == "/moved") {
                            return response(302, "", {{"Location", "https://elsewhere.example/"}});
                          }
                          return response(429, R"({"detail":"slow down"})",
                                          {{"Retry-After", "3"},
                                           {"retry-after-ms", "2500"},
                                           {"Content-Type", "application/json"}});
                        }}};
  auto client = make_client(io, server.url());

  const Results results = run(io, send_all(*client, {{.target = "/limited"}, {.target = "/moved"}}));
  ASSERT_FALSE(results[0].ec) << results[0].detail;
  EXPECT_EQ(results[0].response.status, 429);
  EXPECT_EQ(results[0].response.retry_after, "3");
  EXPECT_EQ(results[0].response.retry_after_ms, "2500");
  EXPECT_EQ(results[0].response.content_type, "application/json");
  EXPECT_EQ(results[0].response.body, R"({"detail":"slow down"})");
  ASSERT_FALSE(results[1].ec) << results[1].detail;
  EXPECT_EQ(results[1].response.status, 302);
  EXPECT_EQ(results[1].response.retry_after, std::nullopt);
  EXPECT_EQ(server.requests.size(), 2U);
}

// Answers the first request on connection 0 with keep-alive, then hangs up on the next one
// without answering, as a server does when its idle timeout fires just as a request arrives.
LoopbackServer::Handler drops_second_request(std::vector<ReceivedRequest>& log) {
  return [&log](tcp::socket socket, int index) -> net::awaitable<void> {
    std::string buffer;
    for (int n = 0;; ++n) {
      auto request = co_await read_request(socket, buffer);
      if (!request) co_return;
      request->connection = index;
      log.push_back(*request);
      if (index == 0 && n == 1) co_return;
      write_now(socket, json_ok(*request));
    }
  };
}

TEST(HttpClient, StaleKeepAliveGetIsRetriedOnceOnAFreshConnection) {
  net::io_context io;
  std::vector<ReceivedRequest> log;
  LoopbackServer server{io, drops_second_request(log)};
  auto client = make_client(io, server.url());

  const Results results = run(io, send_all(*client, {{.target = "/first"}, {.target = "/second"}}));
  ASSERT_FALSE(results[0].ec) << results[0].detail;
  ASSERT_FALSE(results[1].ec) << results[1].detail;
  EXPECT_EQ(results[1].response.body, R"({"echo":"/second"})");
  EXPECT_EQ(server.accepted(), 2);
  ASSERT_EQ(log.size(), 3U);
  EXPECT_EQ(log[1].target, "/second");
  EXPECT_EQ(log[1].connection, 0);
  EXPECT_EQ(log[2].target, "/second");
  EXPECT_EQ(log[2].connection, 1);
}

TEST(HttpClient, StaleKeepAlivePostIsNeverReplayed) {
  net::io_context io;
  std::vector<ReceivedRequest> log;
  LoopbackServer server{io, drops_second_request(log)};
  auto client = make_client(io, server.url());

  const Results results = run(io, send_all(*client, {
      {.target = "/first"},
      {.method = Method::post, .target = "/create", .body = "{}"},
  }));
  ASSERT_FALSE(results[0].ec) << results[0].detail;
  EXPECT_EQ(code_of(results[1]), errc::connection_lost) << results[1].detail;
  EXPECT_TRUE(results[1].request_sent);
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(log.size(), 2U);
}

TEST(HttpClient, IdleConnectionClosedByTheServerIsNotUsedForAPost) {
  net::io_context io;
  std::vector<ReceivedRequest> log;
  LoopbackServer server{io, [&log](tcp::socket socket, int index) -> net::awaitable<void> {
                          std::string buffer;
                          auto request = co_await read_request(socket, buffer);
                          if (!request) co_return;
                          request->connection = index;
                          log.push_back(*request);
                          // Keep-alive promised, then closed at once: an idle timeout.
                          write_now(socket, json_ok(*request));
                          socket.close();
                        }};
  auto client = make_client(io, server.url());

  const Results results = run(io, send_all(*client, {
      {.target = "/first"},
      {.method = Method::post, .target = "/create", .body = "{}"},
  }));
  ASSERT_FALSE(results[0].ec) << results[0].detail;
  ASSERT_FALSE(results[1].ec) << results[1].detail;
  EXPECT_EQ(server.accepted(), 2);
  ASSERT_EQ(log.size(), 2U);
  EXPECT_EQ(log[1].method, "POST");
  EXPECT_EQ(log[1].connection, 1);
}

TEST(HttpClient, NoPoolingWhenMaxIdleIsZero) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{json_ok}};
  auto client = make_client(io, server.url(), {.max_idle_connections = 0});
  const Results results = run(io, send_all(*client, {{.target = "/a"}, {.target = "/b"}}));
  EXPECT_FALSE(results[1].ec) << results[1].detail;
  EXPECT_EQ(server.accepted(), 2);
}

TEST(HttpClient, CloseIdleDropsPooledConnections) {
  net::io_context io;
  LoopbackServer server{io, LoopbackServer::Responder{json_ok}};
  auto client = make_client(io, server.url());
  EXPECT_FALSE(send_one(io, *client, {.target = "/a"}).ec);
  client->close_idle();
  EXPECT_FALSE(send_one(io, *client, {.target = "/b"}).ec);
  EXPECT_EQ(server.accepted(), 2);
}

TEST(HttpClient, HttpsUsesTlsAndFailsTheHandshakeAgainstAPlainServer) {
  net::io_context io;
  std::string first_bytes;
  LoopbackServer server{io, [&first_bytes](tcp::socket socket, int) -> net::awaitable<void> {
                          first_bytes.resize(5);
                          auto [ec, n] = co_await socket.async_read_some(
                              net::buffer(first_bytes), use_tuple);
                          first_bytes.resize(ec ? 0 : n);
                          write_now(socket, response(400, "plain HTTP server"));
                        }};
  auto client =
      make_client(io, "https://127.0.0.1:" + std::to_string(server.port()), {.connect_timeout = 2000ms});

  const HttpResult r = send_one(io, *client, {.method = Method::post, .target = "/p", .body = "{}"});
  EXPECT_EQ(code_of(r), errc::tls_handshake_failed) << r.detail;
  EXPECT_FALSE(r.request_sent);
  // 0x16 0x03: a TLS handshake record, i.e. a ClientHello rather than an HTTP request line.
  ASSERT_GE(first_bytes.size(), 2U);
  EXPECT_EQ(first_bytes[0], '\x16');
  EXPECT_EQ(first_bytes[1], '\x03');
}

TEST(HttpClient, TlsHandshakeThatNeverCompletesHitsTheConnectTimeout) {
  net::io_context io;
  LoopbackServer server{io, [](tcp::socket socket, int) -> net::awaitable<void> {
                          std::string buffer;
                          co_await read_request(socket, buffer);  // never a full request
                        }};
  auto client = make_client(io, "https://127.0.0.1:" + std::to_string(server.port()),
                            {.connect_timeout = 150ms});

  const HttpResult r = send_one(io, *client, {.target = "/g"});
  EXPECT_EQ(code_of(r), errc::tls_handshake_failed) << r.detail;
  EXPECT_NE(r.detail.find("timed out"), std::string::npos) << r.detail;
  EXPECT_FALSE(r.request_sent);
  EXPECT_GE(r.latency, 150ms);
}

}  // namespace
}  // namespace devin_orch::api
