// Tests of the status listener over real loopback sockets: routes, methods, keep-alive, limits,
// timeouts, start-up errors and shutdown. The server's loop runs on its own thread; the client is
// plain blocking POSIX sockets so the test needs no Beast.
#include "devin_orch/server/status_server.hpp"

#include "server/exposition_validator.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <optional>
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
using ::testing::IsEmpty;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// One blocking client connection. Every receive gives up after 10 s so a broken server fails the
// test instead of hanging it.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval timeout{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads one response; for a HEAD request the body is not read (there is none to read).
  std::optional<Reply> read_reply(bool head = false) {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    Reply reply;
    const std::string head_text = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    if (head_text.size() < 12) return std::nullopt;
    reply.status = std::stoi(head_text.substr(9, 3));
    std::size_t pos = head_text.find("\r\n");
    while (pos != std::string::npos) {
      const auto next = head_text.find("\r\n", pos + 2);
      const auto line = head_text.substr(pos + 2, next == std::string::npos ? std::string::npos
                                                                            : next - pos - 2);
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      pos = next;
    }
    if (head) return reply;
    const auto length_header = reply.headers.find("content-length");
    if (length_header == reply.headers.end()) return std::nullopt;  // we always send one
    const auto length = std::stoul(length_header->second);
    while (buffer_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  std::optional<Reply> request(std::string_view method, std::string_view target,
                               std::string_view extra_headers = {}) {
    std::string text = std::string{method} + " " + std::string{target} +
                       " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string{extra_headers} + "\r\n";
    if (!send(text)) return std::nullopt;
    return read_reply(method == "HEAD");
  }

  // True once the server has closed (FIN or reset) with nothing left unread; false on timeout.
  bool closed_by_peer() {
    for (;;) {
      char byte[512];
      const auto n = ::recv(fd_, byte, sizeof byte, 0);
      if (n == 0) return buffer_.empty();
      if (n < 0) return errno == ECONNRESET;
      buffer_.append(byte, static_cast<std::size_t>(n));
    }
  }

 private:
  bool fill() {
    char chunk[65536];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

class StatusServerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (loop_.valid() && !stop_and_wait()) {
      ADD_FAILURE() << "the event loop kept running after stop()";
      io_.stop();
      loop_.wait();
    }
  }

  void start(StatusServerOptions options = {}) {
    options.port = 0;
    std::string error;
    auto started = StatusServer::start(
        io_.get_executor(), options, registry_, [this] { return ready_.load(); },
        [this] {
          ++scrapes_;
          if (fail_scrape_) throw std::runtime_error("database gone");
          registry_.gauge("devin_orch_scrapes", "Scrapes seen.").set(scrapes_);
        },
        &error);
    ASSERT_TRUE(started) << error;
    server_ = std::move(*started);
    ASSERT_NE(server_->port(), 0);
    loop_ = std::async(std::launch::async, [this] { io_.run(); });
  }

  // A server whose /readyz answers `ready` and whose scrapes need no refresh.
  void start_with_readiness(std::function<Readiness()> ready) {
    std::string error;
    auto started = StatusServer::start(io_.get_executor(), {.port = 0}, registry_,
                                       std::move(ready), {}, &error);
    ASSERT_TRUE(started) << error;
    server_ = std::move(*started);
    loop_ = std::async(std::launch::async, [this] { io_.run(); });
  }

  // Runs `f` on the loop thread, where the registry lives, and returns its result.
  template <class F>
  auto on_loop(F f) {
    std::packaged_task<decltype(f())()> task{std::move(f)};
    auto result = task.get_future();
    net::post(io_, [&task] { task(); });
    return result.get();
  }

  bool stop_and_wait() {
    net::post(io_, [this] { server_->stop(); });
    return loop_.wait_for(10s) == std::future_status::ready;
  }

  std::uint16_t port() const { return server_->port(); }

  net::io_context io_;
  MetricsRegistry registry_;
  std::atomic<bool> ready_{false};
  std::atomic<int> scrapes_{0};
  std::atomic<bool> fail_scrape_{false};
  std::unique_ptr<StatusServer> server_;
  std::future<void> loop_;
};

TEST_F(StatusServerTest, MetricsServesTheRegistryRefreshedJustBefore) {
  registry_.counter("devin_orch_sessions_created_total", "Sessions created.").inc(3);
  registry_.histogram("devin_orch_queue_wait_seconds", "Queue wait.", default_duration_buckets())
      .observe(42);
  start();
  Client client{port()};
  const auto reply = client.request("GET", "/metrics");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(scrapes_, 1);
  EXPECT_THAT(reply->body, HasSubstr("\ndevin_orch_scrapes 1\n"));
  EXPECT_THAT(reply->body, HasSubstr("\ndevin_orch_sessions_created_total 3\n"));
  EXPECT_EQ(reply->body, on_loop([this] { return registry_.render(); }));
  EXPECT_THAT(testing::exposition_problems(reply->body), IsEmpty()) << reply->body;

  const auto again = client.request("GET", "/metrics?debug=1");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_THAT(again->body, HasSubstr("\ndevin_orch_scrapes 2\n"));
}

TEST_F(StatusServerTest, HealthzAnswersOk) {
  start();
  Client client{port()};
  const auto reply = client.request("GET", "/healthz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "ok");
  EXPECT_EQ(scrapes_, 0);
}

TEST_F(StatusServerTest, ReadyzFollowsTheCallback) {
  start();
  Client client{port()};
  auto reply = client.request("GET", "/readyz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->body, "not ready");
  ready_ = true;
  reply = client.request("GET", "/readyz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "ready");
  ready_ = false;
  reply = client.request("GET", "/readyz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
}

TEST_F(StatusServerTest, UnknownPathsAre404AndOtherMethods405) {
  start();
  Client client{port()};
  auto reply = client.request("GET", "/");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 404);
  reply = client.request("GET", "/metrics/extra");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 404);
  // The body must be consumed as this request's, or the next request on the connection breaks.
  ASSERT_TRUE(client.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405);
  EXPECT_EQ(reply->headers.at("allow"), "GET, HEAD");
  reply = client.request("DELETE", "/readyz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405);
  reply = client.request("PUT", "/nowhere");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 404);
  EXPECT_EQ(scrapes_, 0);
}

TEST_F(StatusServerTest, HeadSendsTheLengthButNoBody) {
  start();
  Client client{port()};
  const auto get = client.request("GET", "/healthz");
  ASSERT_TRUE(get);
  const auto head = client.request("HEAD", "/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.at("content-length"), std::to_string(get->body.size()));
  // Had HEAD carried a body, it would now be read as the start of this response.
  const auto after = client.request("GET", "/readyz");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 503);
  EXPECT_EQ(after->body, "not ready");
}

TEST_F(StatusServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  Client client{port()};
  // Pipelined: both requests are in flight before the first answer is read.
  ASSERT_TRUE(client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto first = client.read_reply();
  const auto second = client.read_reply();
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->body, "ok");
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(scrapes_, 1);
  const auto third = client.request("GET", "/healthz");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 200);
}

TEST_F(StatusServerTest, ConnectionCloseAndHttp10EndTheConnection) {
  start();
  Client client{port()};
  const auto reply = client.request("GET", "/healthz", "Connection: close\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(client.closed_by_peer());

  Client old{port()};
  ASSERT_TRUE(old.send("GET /healthz HTTP/1.0\r\n\r\n"));
  const auto old_reply = old.read_reply();
  ASSERT_TRUE(old_reply);
  EXPECT_EQ(old_reply->body, "ok");
  EXPECT_TRUE(old.closed_by_peer());
}

TEST_F(StatusServerTest, SlowlorisIsDisconnectedAfterTheReadTimeout) {
  start({.read_timeout = core::Duration{200}});
  Client client{port()};
  const auto began = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  ASSERT_TRUE(client.send("X-Slow: 1\r\n"));
  EXPECT_TRUE(client.closed_by_peer());
  const auto waited = std::chrono::steady_clock::now() - began;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(scrapes_, 0);
}

TEST_F(StatusServerTest, IdleKeepAliveConnectionIsClosedAfterTheReadTimeout) {
  start({.read_timeout = core::Duration{200}});
  Client client{port()};
  const auto reply = client.request("GET", "/healthz");
  ASSERT_TRUE(reply);
  const auto began = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
}

TEST_F(StatusServerTest, OversizedRequestsAreRefused) {
  start();
  Client big_header{port()};
  ASSERT_TRUE(big_header.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                              std::string(16 << 10, 'a') + "\r\n\r\n"));
  auto reply = big_header.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 431);
  EXPECT_TRUE(big_header.closed_by_peer());

  Client big_body{port()};
  ASSERT_TRUE(big_body.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                            std::string(100000, 'b')));
  reply = big_body.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);

  Client garbage{port()};
  ASSERT_TRUE(garbage.send("NOT HTTP AT ALL\r\n\r\n"));
  reply = garbage.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
  EXPECT_EQ(scrapes_, 0);
}

TEST_F(StatusServerTest, ConnectionsBeyondTheCapAreClosedAndSlotsAreReused) {
  start({.max_connections = 1});
  Client first{port()};
  ASSERT_TRUE(first.request("GET", "/healthz"));  // accepted and holding the only slot
  Client second{port()};
  ASSERT_TRUE(second.connected());  // the kernel completes the handshake; the server then closes
  EXPECT_TRUE(second.closed_by_peer());

  const auto last = first.request("GET", "/healthz", "Connection: close\r\n");
  ASSERT_TRUE(last);
  ASSERT_TRUE(first.closed_by_peer());
  Client third{port()};
  const auto reply = third.request("GET", "/healthz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
}

TEST_F(StatusServerTest, ThrowingCallbacksAnswerErrorsAndTheLoopCarriesOn) {
  start();
  fail_scrape_ = true;
  Client client{port()};
  auto reply = client.request("GET", "/metrics");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 500);
  reply = client.request("GET", "/healthz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  fail_scrape_ = false;
  reply = client.request("GET", "/metrics");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
}

TEST_F(StatusServerTest, ReadyzIsNotReadyWhenTheCallbackThrows) {
  start_with_readiness([]() -> Readiness { throw std::runtime_error("no database"); });
  Client client{port()};
  const auto reply = client.request("GET", "/readyz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  // An empty before_scrape is allowed.
  const auto metrics = client.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
}

// A standby says whom it waits for, so an operator reading /readyz knows why it is not ready.
TEST_F(StatusServerTest, ReadyzExplainsWhyItIsNotReady) {
  start_with_readiness([] { return Readiness{false, "standby: the queue is held by host-a:12"}; });
  Client client{port()};
  const auto reply = client.request("GET", "/readyz");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->body, "not ready: standby: the queue is held by host-a:12");
}

TEST_F(StatusServerTest, StopClosesEverythingAndLetsTheLoopFinish) {
  start();
  Client idle{port()};
  ASSERT_TRUE(idle.request("GET", "/healthz"));
  Client half{port()};
  ASSERT_TRUE(half.send("GET /metr"));
  ASSERT_TRUE(stop_and_wait()) << "io_context::run() did not return after stop()";
  EXPECT_TRUE(idle.closed_by_peer());
  EXPECT_TRUE(half.closed_by_peer());
  Client late{port()};
  EXPECT_FALSE(late.connected());
  server_->stop();  // idempotent
}

TEST(StatusServerStart, BadAddressesAndBadOptionsAreErrorsNotExceptions) {
  net::io_context io;
  MetricsRegistry registry;
  for (const char* address : {"localhost", "999.1.1.1", "", "127.0.0.1:80"}) {
    // An exception escaping start() would fail the test on its own.
    std::string error;
    const auto started = StatusServer::start(io.get_executor(), {.address = address, .port = 0},
                                             registry, [] { return true; }, {}, &error);
    ASSERT_FALSE(started) << address;
    EXPECT_EQ(started.error(), make_error_code(errc::invalid_config));
    EXPECT_THAT(error, HasSubstr("is not an IP address")) << address;
  }
  std::string error;
  auto started = StatusServer::start(io.get_executor(), {.port = 0, .max_connections = 0},
                                     registry, {}, {}, &error);
  EXPECT_FALSE(started);
  EXPECT_THAT(error, HasSubstr("max_connections"));
  started = StatusServer::start(io.get_executor(), {.port = 0, .read_timeout = core::Duration{0}},
                                registry, {}, {}, &error);
  EXPECT_FALSE(started);
  EXPECT_THAT(error, HasSubstr("read_timeout"));
  // Without an error string the failure still comes back.
  EXPECT_FALSE(StatusServer::start(io.get_executor(), {.address = "nope"}, registry, {}));
}

TEST(StatusServerStart, PortInUseIsAReadableError) {
  net::io_context io;
  MetricsRegistry registry;
  auto first = StatusServer::start(io.get_executor(), {.port = 0}, registry, {});
  ASSERT_TRUE(first);
  const auto taken = (*first)->port();
  std::string error;
  const auto second =
      StatusServer::start(io.get_executor(), {.port = taken}, registry, {}, {}, &error);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), boost::system::errc::address_in_use);
  EXPECT_THAT(error, HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(taken)));
  EXPECT_THAT(error, HasSubstr("in use"));
  (*first)->stop();
  io.run();  // nothing left to do once stopped
}

TEST(StatusServerStart, PortZeroReportsTheRealPortAndStopWithoutRunIsClean) {
  net::io_context io;
  MetricsRegistry registry;
  auto server = StatusServer::start(io.get_executor(), {.port = 0}, registry, {});
  ASSERT_TRUE(server);
  EXPECT_NE((*server)->port(), 0);
  Client client{(*server)->port()};
  EXPECT_TRUE(client.connected());  // listening before the loop even runs
}

}  // namespace
}  // namespace devin_orch::server
