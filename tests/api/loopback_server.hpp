// A scriptable HTTP/1.1 server on 127.0.0.1 for the client tests, written with plain Asio (no
// Beast) so the client's parsing is checked against an independent implementation.
#pragma once

#include "devin_orch/api/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace devin_orch::api::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int connection = -1;

  std::optional<std::string> header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::nullopt : std::optional{it->second};
  }
};

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Reads one request (Content-Length bodies only: that is all the client sends). nullopt when
// the peer closed or sent something that is not a request.
template <class Stream>
net::awaitable<std::optional<ReceivedRequest>> read_request(Stream& socket, std::string& buffer) {
  auto [ec, n] = co_await net::async_read_until(socket, net::dynamic_buffer(buffer), "\r\n\r\n",
                                                use_tuple);
  if (ec) co_return std::nullopt;
  const std::string head = buffer.substr(0, n);
  buffer.erase(0, n);

  ReceivedRequest request;
  std::size_t line_end = head.find("\r\n");
  const std::string start = head.substr(0, line_end);
  const std::size_t sp1 = start.find(' ');
  const std::size_t sp2 = start.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) co_return std::nullopt;
  request.method = start.substr(0, sp1);
  request.target = start.substr(sp1 + 1, sp2 - sp1 - 1);
  for (std::size_t pos = line_end + 2; pos < head.size();) {
    const std::size_t end = head.find("\r\n", pos);
    const std::string line = head.substr(pos, end - pos);
    pos = end + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    request.headers[lower(line.substr(0, colon))] = value;
  }
  const std::size_t length = std::stoul(request.header("content-length").value_or("0"));
  if (buffer.size() < length) {
    auto [body_ec, m] = co_await net::async_read(socket, net::dynamic_buffer(buffer),
                                                 net::transfer_exactly(length - buffer.size()),
                                                 use_tuple);
    if (body_ec) co_return std::nullopt;
  }
  request.body = buffer.substr(0, length);
  buffer.erase(0, length);
  co_return request;
}

inline std::string reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

inline std::string response(int status, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return out;
}

// Writes synchronously so nothing else on the io_context runs between this and the caller's
// next step (e.g. closing the socket right after a keep-alive answer).
template <class Stream>
void write_now(Stream& socket, const std::string& bytes) {
  boost::system::error_code ec;
  net::write(socket, net::buffer(bytes), ec);
}

class LoopbackServer {
 public:
  // Runs once per accepted connection; `index` counts connections from 0.
  using Handler = std::function<net::awaitable<void>(tcp::socket socket, int index)>;
  using Responder = std::function<std::string(const ReceivedRequest&)>;

  LoopbackServer(net::io_context& io, Handler handler)
      : acceptor_{io, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}},
        handler_{std::move(handler)} {
    net::co_spawn(io, accept_loop(), net::detached);
  }

  // A keep-alive server answering every request with `respond(request)`.
  LoopbackServer(net::io_context& io, Responder respond)
      : LoopbackServer(io, Handler{}) {
    handler_ = [this, respond = std::move(respond)](tcp::socket socket,
                                                    int index) -> net::awaitable<void> {
      std::string buffer;
      for (;;) {
        auto request = co_await read_request(socket, buffer);
        if (!request) co_return;
        const std::string answer = respond(record(*request, index));
        if (answer.empty()) co_return;  // drop the connection without answering
        write_now(socket, answer);
      }
    };
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int accepted() const { return accepted_; }

  const ReceivedRequest& record(ReceivedRequest request, int connection) {
    request.connection = connection;
    requests.push_back(std::move(request));
    return requests.back();
  }

  std::vector<ReceivedRequest> requests;

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      const int index = accepted_++;
      net::co_spawn(acceptor_.get_executor(), handler_(std::move(socket), index),
                    net::detached);
    }
  }

  tcp::acceptor acceptor_;
  Handler handler_;
  int accepted_ = 0;
};

// Runs `task` on `io` (together with any server on it) and returns its result. The 10 s cap
// only turns a hang into a failure; tests finish in milliseconds.
template <class T>
T run(net::io_context& io, net::awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  net::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) out = std::move(value);
    io.stop();
  });
  io.restart();
  io.run_for(std::chrono::seconds(10));
  if (error) std::rethrow_exception(error);
  if (!out) throw std::runtime_error("test task did not finish within 10 s");
  return std::move(*out);
}

// A loopback port with nothing listening: bound, read back, then closed.
inline unsigned short closed_port(net::io_context& io) {
  tcp::acceptor acceptor{io, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
  const unsigned short port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

// An https:// client for `host` on a loopback test server's port, with a short connect timeout.
inline std::unique_ptr<HttpClient> make_https_client(net::io_context& io, const std::string& host,
                                                     unsigned short port, std::string token,
                                                     HttpClientOptions options) {
  options.base_url = "https://" + host + ":" + std::to_string(port);
  options.bearer_token = std::move(token);
  options.connect_timeout = std::chrono::milliseconds{2000};
  std::string why;
  auto created = HttpClient::create(io.get_executor(), std::move(options), &why);
  if (!created) throw std::runtime_error(why);
  return std::move(*created);
}

// GET /v3/self, run to completion on `io`.
inline HttpResult get_self(net::io_context& io, HttpClient& http) {
  // A named request: g++ 12 double-destroys a braced temporary inside a co_await operand.
  return run(io, [](HttpClient& h) -> net::awaitable<HttpResult> {
    HttpRequest request{.target = "/v3/self"};
    co_return co_await h.send(std::move(request));
  }(http));
}

}  // namespace devin_orch::api::testing
