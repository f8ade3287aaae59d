// The dashboard's transport over real loopback sockets: a request reaches the handler as plain
// data and its answer goes back as written; a handler that throws costs a 500, not the loop; a
// body over the limit is refused before the handler with the reject formatter's answer.
#include "devin_orch/server/http_listener.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace devin_orch::server {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Sends `request` on a fresh connection and reads until the server closes (or 10 s pass).
std::string exchange(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char chunk[4096];
    for (;;) {
      const auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      answer.append(chunk, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return answer;
}

class HttpListenerTest : public ::testing::Test {
 protected:
  void start(HttpHandler handler, HttpRejectFormatter reject = {}, std::size_t max_body = 1024) {
    std::string error;
    auto started = HttpListener::start(io_.get_executor(),
                                       {.name = "test", .port = 0, .max_body_bytes = max_body},
                                       std::move(handler), std::move(reject), &error);
    ASSERT_TRUE(started) << error;
    listener_ = std::move(*started);
    loop_ = std::async(std::launch::async, [this] { io_.run(); });
  }
  void TearDown() override {
    if (!loop_.valid()) return;
    net::post(io_, [this] { listener_->stop(); });
    if (loop_.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << "the event loop kept running after stop()";
      io_.stop();
      loop_.wait();
    }
  }
  std::uint16_t port() const { return listener_->port(); }

  net::io_context io_;
  std::unique_ptr<HttpListener> listener_;
  std::future<void> loop_;
};

TEST_F(HttpListenerTest, HandsTheRequestOverAsPlainDataAndWritesTheAnswer) {
  std::promise<HttpRequest> seen;
  start([&seen](const HttpRequest& request) {
    seen.set_value(request);
    HttpResponse response{201, "application/json", {{"X-Extra", "yes"}}, "{\"ok\":true}"};
    return response;
  });
  const auto answer = exchange(
      port(), "POST /api/v1/jobs?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n"
              "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
  const auto request = seen.get_future().get();
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/api/v1/jobs?x=1");
  EXPECT_EQ(request.header("authorization"), "Bearer t");  // names lower-cased
  EXPECT_EQ(request.header("missing"), "");
  EXPECT_EQ(request.body, "hello");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 201 Created\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(answer, HasSubstr("X-Extra: yes\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\n\r\n{\"ok\":true}"));
}

TEST_F(HttpListenerTest, AThrowingHandlerCostsOneRequestNotTheLoop) {
  std::atomic<int> calls{0};
  start([&calls](const HttpRequest&) -> HttpResponse {
    if (calls++ == 0) throw std::runtime_error("broken");
    return HttpResponse{200, "text/plain", {}, "fine"};
  });
  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  EXPECT_THAT(exchange(port(), get), HasSubstr("HTTP/1.1 500 "));
  EXPECT_THAT(exchange(port(), get), HasSubstr("\r\n\r\nfine"));
}

TEST_F(HttpListenerTest, ABodyOverTheLimitGetsTheRejectAnswerWithoutTheHandler) {
  std::atomic<int> calls{0};
  start([&calls](const HttpRequest&) {
          ++calls;
          return HttpResponse{};
        },
        [](int status, std::string_view reason) {
          return HttpResponse{status, "application/json", {},
                              "{\"error\":\"" + std::string{reason} + "\"}"};
        },
        16);
  const auto answer = exchange(
      port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 413 "));
  EXPECT_THAT(answer, HasSubstr("Content-Type: application/json"));
  EXPECT_THAT(answer, HasSubstr("{\"error\":\"Payload Too Large\"}"));
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpListenerStart, RefusesAnAddressThatIsNotAnIp) {
  net::io_context io;
  std::string error;
  const auto started = HttpListener::start(
      io.get_executor(), {.name = "dashboard", .address = "localhost"},
      [](const HttpRequest&) { return HttpResponse{}; }, {}, &error);
  EXPECT_FALSE(started);
  EXPECT_EQ(error, "dashboard: listen address 'localhost' is not an IP address");
}

}  // namespace
}  // namespace devin_orch::server
