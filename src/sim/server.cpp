// The simulator's only Beast/Asio translation unit: accept loop, per-connection coroutines
// (plain TCP or TLS), request timeouts, and the unanswered deliveries faults need.
#include "devin_orch/sim/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace devin_orch::sim {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto kIdleTimeout = std::chrono::seconds{120};    // keep-alive connections
constexpr auto kWriteTimeout = std::chrono::seconds{30};
constexpr auto kHandshakeTimeout = std::chrono::seconds{10};
// Room for an attachment upload (multipart) of the daemon's default 10 MiB limit; the
// reference states no limit of the API's own.
constexpr std::uint64_t kBodyLimit = 16 << 20;
// Beast's 8 KiB default is too small for a list with 200 session_ids (~9.4 KiB of query).
constexpr std::uint32_t kHeaderLimit = 64 << 10;

TimeMs wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

tcp::socket& raw_socket(beast::tcp_stream& stream) { return stream.socket(); }
tcp::socket& raw_socket(beast::ssl_stream<beast::tcp_stream>& stream) {
  return beast::get_lowest_layer(stream).socket();
}

// A TCP reset (linger 0) tells the client the connection died mid-request.
void abort_connection(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(net::socket_base::linger{true, 0}, ignored);
  socket.close(ignored);
}

void close_connection(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = net::ip::make_address(std::string{host}, ec);
  return !ec && address.is_loopback();
}

struct Server::Impl {
  Impl(World& w, ServerConfig c) : world{w}, config{std::move(c)}, acceptor{ioc} {
    if (!is_loopback_host(config.host)) {
      throw std::runtime_error("only loopback hosts may be served, not " + config.host);
    }
    const auto address = config.host == "localhost" ? net::ip::make_address("127.0.0.1")
                                                    : net::ip::make_address(config.host);
    const tcp::endpoint endpoint{address, config.port};
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address{true}, ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) bound_port = acceptor.local_endpoint(ec).port();
    if (ec) {
      throw std::runtime_error("cannot listen on " + config.host + ":" +
                               std::to_string(config.port) + ": " + ec.message());
    }
    if (!config.tls_cert_file.empty() || !config.tls_key_file.empty()) {
      tls.emplace(ssl::context::tls_server);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      tls->use_certificate_chain_file(config.tls_cert_file, ec);
      if (!ec) tls->use_private_key_file(config.tls_key_file, ssl::context::pem, ec);
      if (ec) throw std::runtime_error("cannot load TLS certificate/key: " + ec.message());
    }
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. EMFILE: keep serving the connections we have
      socket.set_option(tcp::no_delay{true}, ec);
      if (tls) {
        net::co_spawn(ioc, serve_tls(beast::tcp_stream{std::move(socket)}), net::detached);
      } else {
        net::co_spawn(ioc, serve(beast::tcp_stream{std::move(socket)}), net::detached);
      }
    }
  }

  net::awaitable<void> serve_tls(beast::tcp_stream tcp_stream) {
    beast::ssl_stream<beast::tcp_stream> stream{std::move(tcp_stream), *tls};
    beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (ec) co_return;
    co_await serve(std::move(stream));
  }

  template <class Stream>
  net::awaitable<void> serve(Stream stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      parser.header_limit(kHeaderLimit);
      beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
      auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (read_ec) {
        if (read_ec == http::error::body_limit) {
          co_await answer(stream, too_large(http::status::payload_too_large, "Request body too large"));
        } else if (read_ec == http::error::header_limit) {
          co_await answer(stream, too_large(http::status::request_header_fields_too_large,
                                            "Request header fields too large"));
        }
        co_return;  // closed, timed out or malformed: nothing sensible to answer
      }
      auto& request = parser.get();
      const auto started = std::chrono::steady_clock::now();
      const Request in{.method = request.method_string(),
                       .target = request.target(),
                       .authorization = request[http::field::authorization],
                       .body = request.body(),
                       .content_type = request[http::field::content_type]};
      Reply reply = world.handle(in, wall_clock_ms());
      log(request, reply, started);

      if (reply.delivery == Delivery::reset) {
        abort_connection(raw_socket(stream));
        co_return;
      }
      if (reply.delivery == Delivery::drop) {
        close_connection(raw_socket(stream));
        co_return;
      }
      if (reply.delay_ms > 0) {
        net::steady_timer timer{ioc, std::chrono::milliseconds{reply.delay_ms}};
        co_await timer.async_wait(use_tuple);
      }
      http::response<http::string_body> response{static_cast<http::status>(reply.status),
                                                 request.version()};
      response.set(http::field::server, "devin-sim");
      response.set(http::field::content_type, reply.content_type);
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.keep_alive(request.keep_alive());
      response.body() = std::move(reply.body);
      response.prepare_payload();
      if (!co_await answer(stream, std::move(response))) co_return;
    }
  }

  static http::response<http::string_body> too_large(http::status status, std::string_view detail) {
    http::response<http::string_body> response{status, 11};
    response.set(http::field::content_type, "application/json");
    response.body() = std::string{R"({"detail":")"} + std::string{detail} + "\"}";
    response.keep_alive(false);
    response.prepare_payload();
    return response;
  }

  // Returns whether the connection stays open for the next request.
  template <class Stream>
  net::awaitable<bool> answer(Stream& stream, http::response<http::string_body> response) {
    beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
    auto [ec, n] = co_await http::async_write(stream, response, use_tuple);
    if (ec) co_return false;
    if (response.keep_alive()) co_return true;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      // A client that closes first makes this fail with stream_truncated; nothing to do then.
      auto [shutdown_ec] = co_await stream.async_shutdown(use_tuple);
      (void)shutdown_ec;
    }
    co_return false;
  }

  void log(const http::request<http::string_body>& request, const Reply& reply,
           std::chrono::steady_clock::time_point started) const {
    if (!config.log_requests) return;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    const char* outcome = reply.delivery == Delivery::reset  ? "reset"
                          : reply.delivery == Delivery::drop ? "dropped"
                                                             : nullptr;
    const auto status = outcome ? std::string{outcome} : std::to_string(reply.status);
    std::fprintf(stderr, "devin-sim %.*s %.*s -> %s%s (%lld us)\n",
                 static_cast<int>(request.method_string().size()), request.method_string().data(),
                 static_cast<int>(request.target().size()), request.target().data(), status.c_str(),
                 reply.delay_ms > 0 ? " slow" : "", static_cast<long long>(us));
  }

  World& world;
  ServerConfig config;
  net::io_context ioc{1};
  tcp::acceptor acceptor;
  std::optional<ssl::context> tls;
  std::optional<net::signal_set> signals;
  unsigned short bound_port = 0;
};

Server::Server(World& world, ServerConfig config)
    : impl_{std::make_unique<Impl>(world, std::move(config))} {}

Server::~Server() = default;

unsigned short Server::port() const noexcept { return impl_->bound_port; }
bool Server::tls() const noexcept { return impl_->tls.has_value(); }

void Server::run() {
  auto& impl = *impl_;
  if (impl.config.handle_signals) {
    impl.signals.emplace(impl.ioc, SIGINT, SIGTERM);
    impl.signals->async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) stop();
    });
  }
  net::co_spawn(impl.ioc, impl.accept_loop(), net::detached);
  impl.ioc.run();
}

void Server::stop() {
  net::post(impl_->ioc, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    if (impl->signals) impl->signals->cancel(ignored);
    impl->ioc.stop();
  });
}

}  // namespace devin_orch::sim
