// The HTTP listener's only Beast translation unit: the accept loop with its connection cap, one
// coroutine per keep-alive connection with a deadline on every read and write (the pattern of
// status_server.cpp), and the translation between Beast's messages and HttpRequest/HttpResponse.
#include "devin_orch/server/http_listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <array>
#include <chrono>
#include <list>
#include <optional>
#include <string_view>

namespace devin_orch::server {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::uint32_t kHeaderLimit = 8 << 10;
// Out of file descriptors, every accept fails at once: pause rather than spin the loop.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds{100};
constexpr auto kDrainTimeout = std::chrono::milliseconds{1000};
constexpr std::size_t kDrainLimit = 64 << 10;
constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Read failures that deserve an answer before closing; timeouts, resets and a client that went
// away get none.
std::optional<http::status> status_for_read_error(const boost::system::error_code& ec) {
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return http::status::bad_request;
  }
  return std::nullopt;
}

std::string endpoint_text(const net::ip::address& address, std::uint16_t port) {
  const auto host = address.to_string();
  return (address.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

struct HttpListener::Impl {
  Impl(net::any_io_executor ex, HttpListenerOptions opts, HttpHandler on_request,
       HttpRejectFormatter reject_formatter)
      : executor{ex},
        options{std::move(opts)},
        handler{std::move(on_request)},
        on_reject{std::move(reject_formatter)},
        acceptor{ex},
        accept_retry{ex} {}

  net::any_io_executor executor;
  HttpListenerOptions options;
  HttpHandler handler;
  HttpRejectFormatter on_reject;
  tcp::acceptor acceptor;
  net::steady_timer accept_retry;
  // Owned here rather than by the coroutines so stop() can reach every open connection.
  using Connections = std::list<beast::tcp_stream>;
  Connections connections;
  std::uint16_t bound_port = 0;
  bool stopped = false;

  void stop() noexcept {
    if (stopped) return;
    stopped = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    try {
      accept_retry.cancel();
      // Completions are posted, never run inline, so the coroutines cannot erase from the list
      // while this loop walks it.
      for (auto& stream : connections) stream.close();
    } catch (...) {
      // Cancelling a timer only throws on broken invariants in Asio; nothing useful to do here.
    }
  }

  Response respond(const Request& request) {
    HttpRequest plain;
    plain.method = std::string{request.method_string()};
    plain.target = std::string{request.target()};
    for (const auto& field : request) {
      std::string name{field.name_string()};
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      plain.headers.emplace_back(std::move(name), std::string{field.value()});
    }
    plain.body = request.body();
    HttpResponse answer;
    try {
      answer = handler(plain);
    } catch (...) {
      answer = HttpResponse{500, std::string{kTextPlain}, {}, "internal error"};
    }
    Response response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    response.result(static_cast<unsigned>(answer.status));
    response.set(http::field::content_type, answer.content_type);
    for (const auto& [name, value] : answer.headers) response.insert(name, value);
    response.body() = std::move(answer.body);
    response.prepare_payload();
    if (request.method() == http::verb::head) response.body().clear();
    return response;
  }

  // Answers a request that cannot be served and leaves the connection half-closed. Closing with
  // unread request bytes would make the kernel send a reset that can destroy the answer before the
  // client reads it, so the rest of the request is drained briefly first (a lingering close).
  static net::awaitable<void> reject(Impl& self, beast::tcp_stream& stream, http::status status) {
    Response response{status, 11};
    response.keep_alive(false);
    const std::string_view reason = http::obsolete_reason(status);
    HttpResponse answer{static_cast<int>(status), std::string{kTextPlain}, {}, std::string{reason}};
    if (self.on_reject) {
      try {
        answer = self.on_reject(static_cast<int>(status), reason);
      } catch (...) {
        // Keep the plain answer: a formatter that fails must not cost the client its reply.
      }
    }
    response.set(http::field::content_type, answer.content_type);
    for (const auto& [name, value] : answer.headers) response.insert(name, value);
    response.body() = std::move(answer.body);
    response.prepare_payload();
    stream.expires_after(self.options.read_timeout);
    auto [write_ec, written] = co_await http::async_write(stream, response, use_tuple);
    if (write_ec || self.stopped) co_return;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::min<std::chrono::steady_clock::duration>(self.options.read_timeout,
                                                                       kDrainTimeout));
    std::array<char, 4096> sink;
    std::size_t drained = 0;
    while (drained < kDrainLimit && !self.stopped) {
      auto [read_ec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
      if (read_ec) break;
      drained += n;
    }
  }

  static net::awaitable<void> serve(std::shared_ptr<Impl> self, Connections::iterator it) {
    struct Release {
      Impl& impl;
      Connections::iterator it;
      ~Release() { impl.connections.erase(it); }  // destroys, and so closes, the stream
    } release{*self, it};
    beast::tcp_stream& stream = *it;
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(self->options.max_body_bytes);
      // A fresh deadline per request also bounds how long an idle keep-alive connection lingers,
      // and it covers the whole request, so trickling bytes (slowloris) does not extend it.
      stream.expires_after(self->options.read_timeout);
      auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (self->stopped) co_return;
      if (read_ec) {
        if (const auto status = status_for_read_error(read_ec)) {
          co_await reject(*self, stream, *status);
        }
        co_return;
      }
      Response response = self->respond(parser.get());
      stream.expires_after(self->options.read_timeout);
      auto [write_ec, written] = co_await http::async_write(stream, response, use_tuple);
      if (write_ec || self->stopped) co_return;
      if (!response.keep_alive()) {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }

  static net::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    while (!self->stopped) {
      auto [ec, socket] = co_await self->acceptor.async_accept(use_tuple);
      if (self->stopped) co_return;
      if (ec) {
        self->accept_retry.expires_after(kAcceptRetryDelay);
        co_await self->accept_retry.async_wait(use_tuple);
        continue;
      }
      if (self->connections.size() >= self->options.max_connections) {
        // Refusing outright keeps the slots for live clients instead of queueing behind idlers.
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      socket.set_option(tcp::no_delay{true}, ec);
      // Counted here, synchronously, so a burst of accepts cannot overshoot the cap.
      self->connections.emplace_back(std::move(socket));
      net::co_spawn(self->executor, serve(self, std::prev(self->connections.end())),
                    net::detached);
    }
  }
};

HttpListener::HttpListener(std::shared_ptr<Impl> impl) : impl_{std::move(impl)} {}

HttpListener::~HttpListener() { stop(); }

std::uint16_t HttpListener::port() const noexcept { return impl_->bound_port; }

void HttpListener::stop() noexcept { impl_->stop(); }

result<std::unique_ptr<HttpListener>> HttpListener::start(net::any_io_executor executor,
                                                          HttpListenerOptions options,
                                                          HttpHandler handler,
                                                          HttpRejectFormatter on_reject,
                                                          std::string* error) {
  const auto fail = [&](boost::system::error_code ec, std::string message) {
    if (error) *error = options.name + ": " + std::move(message);
    return result<std::unique_ptr<HttpListener>>{ec};
  };
  try {
    if (!handler) return fail(make_error_code(errc::invalid_config), "no request handler");
    if (options.max_connections == 0) {
      return fail(make_error_code(errc::invalid_config), "max_connections must be at least 1");
    }
    if (options.read_timeout <= core::Duration::zero()) {
      return fail(make_error_code(errc::invalid_config), "read_timeout must be positive");
    }
    boost::system::error_code ec;
    const auto address = net::ip::make_address(options.address, ec);
    if (ec) {
      return fail(make_error_code(errc::invalid_config),
                  "listen address '" + options.address + "' is not an IP address");
    }
    const tcp::endpoint endpoint{address, options.port};
    auto impl = std::make_shared<Impl>(executor, options, std::move(handler),
                                       std::move(on_reject));
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address{true}, ec);
    if (!ec) impl->acceptor.bind(endpoint, ec);
    if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) impl->bound_port = impl->acceptor.local_endpoint(ec).port();
    if (ec) {
      return fail(ec, "cannot listen on " + endpoint_text(address, endpoint.port()) + ": " +
                          ec.message());
    }
    net::co_spawn(impl->executor, Impl::accept_loop(impl), net::detached);
    return std::unique_ptr<HttpListener>{new HttpListener{std::move(impl)}};
  } catch (const std::exception& e) {
    return fail(make_error_code(errc::invalid_config), std::string{"cannot start: "} + e.what());
  }
}

std::string_view HttpRequest::header(std::string_view name) const noexcept {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

}  // namespace devin_orch::server
