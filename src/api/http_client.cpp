// The HTTP(S) transport: origin validation, TLS setup, the keep-alive pool, per-phase deadlines,
// size caps, and the mapping of every Asio/Beast/OpenSSL failure onto errc. All Beast and TLS
// code of the daemon lives in this one translation unit because it is expensive to compile.
#include "devin_orch/api/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>
#include <mutex>
#include <utility>
#include <variant>
#include <vector>

namespace devin_orch::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
using SteadyPoint = std::chrono::steady_clock::time_point;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;

struct Origin {
  bool tls = false;
  std::string host;         // for resolving, SNI and certificate checks (IPv6 without brackets)
  bool host_is_ip = false;
  std::string port;
  std::string host_header;  // host[:port] as written in the base URL
  std::string path_prefix;  // base URL path without a trailing '/'
};

// Beast reads max(512, free capacity) bytes at a time: without room a 100 KB list page took
// 200 reads. Reserved per exchange and released when the connection goes idle, so a pool of
// idle connections holds no buffers.
constexpr std::size_t kReadChunk = 4096;

struct Connection {
  template <class Stream, class... Args>
  explicit Connection(std::in_place_type_t<Stream> type, Args&&... args)
      : stream{type, std::forward<Args>(args)...} {}

  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                      stream);
  }

  std::variant<PlainStream, TlsStream> stream;
  beast::flat_buffer buffer;
};

struct Failure {
  errc code = errc::ok;
  std::string detail;

  explicit operator bool() const noexcept { return code != errc::ok; }
};

// What one write+read on one connection produced.
struct Exchange {
  Failure failure;
  bool request_sent = false;
  // The server may simply have closed an idle keep-alive connection: nothing of a response
  // arrived and the connection died, so the request cannot have been answered on it.
  bool looks_like_stale_connection = false;
  bool reusable = false;
  HttpResponse response;
};

bool is_cancellation(const error_code& ec) { return ec == net::error::operation_aborted; }

bool is_connection_drop(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::connection_aborted || ec == net::error::broken_pipe ||
         ec == net::error::not_connected || ec == ssl::error::stream_truncated;
}

Failure read_failure(const error_code& ec) {
  if (ec == beast::error::timeout) {
    return {errc::timeout, "no complete response before the request deadline"};
  }
  if (is_cancellation(ec)) return {errc::cancelled, "request cancelled"};
  if (ec == http::error::body_limit) {
    return {errc::response_too_large, "response body exceeds the configured limit"};
  }
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return {errc::response_too_large, "response header exceeds the configured limit"};
  }
  if (is_connection_drop(ec)) return {errc::connection_lost, "connection lost: " + ec.message()};
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return {errc::malformed_http, "malformed HTTP response: " + ec.message()};
  }
  return {errc::connection_lost, "connection error: " + ec.message()};
}

Failure write_failure(const error_code& ec) {
  if (ec == beast::error::timeout) {
    return {errc::timeout, "request could not be written before the deadline"};
  }
  if (is_cancellation(ec)) return {errc::cancelled, "request cancelled"};
  return {errc::connection_lost, "connection lost while sending: " + ec.message()};
}

http::verb verb_of(Method method) {
  switch (method) {
    case Method::get: return http::verb::get;
    case Method::post: return http::verb::post;
    case Method::put: return http::verb::put;
    case Method::delete_: return http::verb::delete_;
  }
  return http::verb::get;
}

std::optional<std::string> header(const http::fields& fields, std::string_view name) {
  const auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  return std::string{it->value()};
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// We never send Accept-Encoding, so an encoded body is a server or proxy bug; handing its bytes
// to the JSON reader would only produce a confusing parse error.
std::optional<std::string> unsupported_encoding(const http::fields& fields) {
  for (const auto& field : fields) {
    if (field.name() != http::field::content_encoding) continue;
    const std::string_view value = trim(field.value());
    if (!value.empty() && !iequals_ascii(value, "identity")) return std::string{value};
  }
  return std::nullopt;
}

// A pooled connection whose peer already closed (or sent something unsolicited) would fail
// the next request after it was written; noticing it now keeps a POST unambiguous.
bool idle_connection_is_dead(Connection& connection) {
  auto& socket = connection.tcp().socket();
  if (!socket.is_open()) return true;
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

template <class Stream>
net::awaitable<Exchange> exchange(Stream& stream, beast::flat_buffer& buffer,
                                  const Request& request, SteadyPoint deadline,
                                  const HttpClientOptions& options) {
  Exchange out;
  auto& tcp = beast::get_lowest_layer(stream);

  tcp.expires_at(deadline);
  out.request_sent = true;  // from here on bytes may be on the wire
  auto [write_ec, written] = co_await http::async_write(stream, request, use_tuple);
  (void)written;
  if (write_ec) {
    out.failure = write_failure(write_ec);
    out.looks_like_stale_connection = is_connection_drop(write_ec);
    co_return out;
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  if (buffer.capacity() < kReadChunk) buffer.reserve(kReadChunk);
  tcp.expires_at(deadline);
  auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
  (void)read;
  if (read_ec) {
    out.failure = read_failure(read_ec);
    out.looks_like_stale_connection =
        is_connection_drop(read_ec) && !parser.got_some() && buffer.size() == 0;
    co_return out;
  }
  tcp.expires_never();

  auto response = parser.release();
  if (auto encoding = unsupported_encoding(response.base())) {
    out.failure = {errc::malformed_http, "response uses Content-Encoding '" + *encoding +
                                             "', which this client does not decode"};
    co_return out;
  }
  out.response.status = static_cast<int>(response.result_int());
  out.response.retry_after = header(response.base(), "Retry-After");
  out.response.retry_after_ms = header(response.base(), "retry-after-ms");
  out.response.content_type = header(response.base(), "Content-Type");
  out.reusable = response.keep_alive() && buffer.size() == 0;
  out.response.body = std::move(response.body());
  co_return out;
}

struct Resolution {
  Failure failure;
  tcp::resolver::results_type endpoints;
};

bool is_loopback(const boost::urls::url_view& url) {
  switch (url.host_type()) {
    case boost::urls::host_type::ipv4: return url.host_ipv4_address().to_bytes()[0] == 127;
    case boost::urls::host_type::ipv6: return url.host_ipv6_address().is_loopback();
    case boost::urls::host_type::name: return iequals_ascii(url.host(), "localhost");
    default: return false;
  }
}

result<Origin> parse_origin(std::string_view base_url, std::string& why) {
  const auto invalid = make_error_code(errc::invalid_config);
  auto parsed = boost::urls::parse_uri(base_url);
  if (!parsed) {
    why = "base_url is not a valid absolute URL: " + parsed.error().message();
    return invalid;
  }
  const boost::urls::url_view url = *parsed;
  Origin origin;
  if (url.scheme_id() == boost::urls::scheme::https) {
    origin.tls = true;
  } else if (url.scheme_id() != boost::urls::scheme::http) {
    why = "base_url must use https:// (or http:// for a loopback host)";
    return invalid;
  }
  if (!url.has_authority() || url.encoded_host().empty()) {
    why = "base_url has no host";
    return invalid;
  }
  if (url.has_userinfo()) {
    why = "base_url must not carry credentials; use the bearer token setting";
    return invalid;
  }
  if (url.has_query() || url.has_fragment()) {
    why = "base_url must not have a query or fragment";
    return invalid;
  }
  if (!origin.tls && !is_loopback(url)) {
    why = "plain http:// is only allowed for loopback hosts";
    return invalid;
  }
  if (url.has_port()) {
    if (url.port_number() == 0) {
      why = "base_url has an invalid port";
      return invalid;
    }
    origin.port = std::to_string(url.port_number());
  } else {
    origin.port = origin.tls ? "443" : "80";
  }
  origin.host = url.host_address();
  origin.host_is_ip = url.host_type() == boost::urls::host_type::ipv4 ||
                      url.host_type() == boost::urls::host_type::ipv6;
  origin.host_header = url.encoded_host_and_port();
  origin.path_prefix = url.encoded_path();
  while (!origin.path_prefix.empty() && origin.path_prefix.back() == '/') {
    origin.path_prefix.pop_back();
  }
  return origin;
}

}  // namespace

struct HttpClient::Impl {
  net::any_io_executor executor;
  HttpClientOptions options;
  Origin origin;
  std::optional<ssl::context> tls;

  std::mutex idle_mutex;
  std::vector<std::unique_ptr<Connection>> idle;

  std::unique_ptr<Connection> take_idle() {
    std::lock_guard lock{idle_mutex};
    while (!idle.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle.back());
      idle.pop_back();
      if (!idle_connection_is_dead(*connection)) return connection;
    }
    return nullptr;
  }

  void give_back(std::unique_ptr<Connection> connection) {
    if (connection->buffer.size() == 0) connection->buffer.shrink_to_fit();
    std::lock_guard lock{idle_mutex};
    if (idle.size() < options.max_idle_connections) idle.push_back(std::move(connection));
  }

  // getaddrinfo cannot be interrupted, so the lookup runs detached and we stop waiting for it
  // at the deadline; its late result is dropped.
  net::awaitable<Resolution> resolve(SteadyPoint deadline) {
    struct Shared {
      explicit Shared(const net::any_io_executor& ex) : resolver{ex}, done{ex} {}
      tcp::resolver resolver;
      net::steady_timer done;
      bool finished = false;
      error_code ec;
      tcp::resolver::results_type endpoints;
    };
    auto shared = std::make_shared<Shared>(executor);
    shared->done.expires_at(deadline);
    const auto flags = origin.host_is_ip ? tcp::resolver::numeric_host : tcp::resolver::flags{};
    net::co_spawn(
        executor,
        [shared, host = origin.host, port = origin.port, flags]() -> net::awaitable<void> {
          auto [ec, endpoints] =
              co_await shared->resolver.async_resolve(host, port, flags, use_tuple);
          shared->ec = ec;
          shared->endpoints = std::move(endpoints);
          shared->finished = true;
          shared->done.cancel();
        },
        net::detached);

    auto [wait_ec] = co_await shared->done.async_wait(use_tuple);
    Resolution out;
    if (shared->finished) {
      if (shared->ec) {
        out.failure = {errc::resolve_failed,
                       "cannot resolve " + origin.host + ": " + shared->ec.message()};
      } else {
        out.endpoints = std::move(shared->endpoints);
      }
    } else if (is_cancellation(wait_ec)) {
      shared->resolver.cancel();
      out.failure = {errc::cancelled, "request cancelled"};
    } else {
      shared->resolver.cancel();
      out.failure = {errc::resolve_failed, "resolving " + origin.host + " timed out"};
    }
    co_return out;
  }

  net::awaitable<Failure> open(std::unique_ptr<Connection>& out) {
    const SteadyPoint deadline = std::chrono::steady_clock::now() + options.connect_timeout;
    Resolution resolution = co_await resolve(deadline);
    if (resolution.failure) co_return resolution.failure;

    auto connection = tls ? std::make_unique<Connection>(std::in_place_type<TlsStream>,
                                                         executor, *tls)
                          : std::make_unique<Connection>(std::in_place_type<PlainStream>,
                                                         executor);
    auto& tcp = connection->tcp();
    tcp.expires_at(deadline);
    auto [connect_ec, endpoint] = co_await tcp.async_connect(resolution.endpoints, use_tuple);
    (void)endpoint;
    if (connect_ec) {
      if (is_cancellation(connect_ec)) co_return Failure{errc::cancelled, "request cancelled"};
      const std::string reason =
          connect_ec == beast::error::timeout ? std::string{"timed out"} : connect_ec.message();
      co_return Failure{errc::connect_failed, "cannot connect to " + origin.host_header + ": " +
                                                  reason};
    }
    tcp.socket().set_option(tcp::no_delay{true});

    if (auto* stream = std::get_if<TlsStream>(&connection->stream)) {
      // SNI carries host names only (RFC 6066); certificates are checked against IPs too.
      if (!origin.host_is_ip &&
          SSL_set_tlsext_host_name(stream->native_handle(), origin.host.c_str()) != 1) {
        co_return Failure{errc::tls_handshake_failed, "cannot set TLS server name"};
      }
      if (!options.allow_insecure_tls_for_tests) {
        stream->set_verify_callback(ssl::host_name_verification{origin.host});
      }
      tcp.expires_at(deadline);
      auto [handshake_ec] = co_await stream->async_handshake(ssl::stream_base::client, use_tuple);
      if (handshake_ec) {
        if (is_cancellation(handshake_ec)) {
          co_return Failure{errc::cancelled, "request cancelled"};
        }
        std::string reason = handshake_ec == beast::error::timeout ? std::string{"timed out"}
                                                                   : handshake_ec.message();
        // "certificate verify failed" alone does not say why; OpenSSL knows (expired, unknown
        // issuer, hostname mismatch...).
        if (const long verify = SSL_get_verify_result(stream->native_handle());
            verify == X509_V_ERR_UNSPECIFIED && !options.allow_insecure_tls_for_tests) {
          // The chain was fine but our host_name_verification callback said no.
          reason += " (the certificate is not valid for host " + origin.host + ")";
        } else if (verify != X509_V_OK) {
          reason += " (" + std::string{X509_verify_cert_error_string(verify)} + ")";
        }
        co_return Failure{errc::tls_handshake_failed,
                          "TLS handshake with " + origin.host_header + " failed: " + reason};
      }
    }
    tcp.expires_never();
    out = std::move(connection);
    co_return Failure{};
  }

  Request build(const HttpRequest& request) const {
    Request message{verb_of(request.method), origin.path_prefix + request.target, 11};
    message.set(http::field::host, origin.host_header);
    message.set(http::field::user_agent, options.user_agent);
    if (!options.bearer_token.empty()) {
      message.set(http::field::authorization, "Bearer " + options.bearer_token);
    }
    message.set(http::field::accept, "application/json");
    for (const auto& [name, value] : request.headers) message.set(name, value);
    if (!request.body.empty()) {
      message.set(http::field::content_type, request.content_type.empty()
                                                 ? std::string{"application/json"}
                                                 : request.content_type);
      message.body() = request.body;
    }
    message.keep_alive(true);
    message.prepare_payload();
    return message;
  }

  net::awaitable<HttpResult> send(HttpRequest request) {
    const auto started = std::chrono::steady_clock::now();
    const Request message = build(request);
    const core::Duration timeout =
        request.timeout.count() > 0 ? request.timeout : options.request_timeout;

    HttpResult result;
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> connection = take_idle();
      const bool reused = connection != nullptr;
      if (!reused) {
        if (Failure failure = co_await open(connection)) {
          result.ec = failure.code;
          result.detail = std::move(failure.detail);
          break;
        }
      }
      const SteadyPoint deadline = std::chrono::steady_clock::now() + timeout;
      Exchange exchanged = co_await std::visit(
          [&](auto& stream) {
            return exchange(stream, connection->buffer, message, deadline, options);
          },
          connection->stream);
      result.request_sent = result.request_sent || exchanged.request_sent;

      if (!exchanged.failure) {
        result.ec = {};
        result.detail.clear();
        result.response = std::move(exchanged.response);
        if (exchanged.reusable) give_back(std::move(connection));
        break;
      }
      result.ec = exchanged.failure.code;
      result.detail = std::move(exchanged.failure.detail);
      // Only a GET is replayed: a POST may have been acted on even though no answer came.
      const bool replay = reused && attempt == 0 && request.method == Method::get &&
                          exchanged.looks_like_stale_connection;
      if (!replay) break;
    }
    result.latency = std::chrono::duration_cast<core::Duration>(
        std::chrono::steady_clock::now() - started);
    co_return result;
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_{std::move(impl)} {}
HttpClient::~HttpClient() = default;

result<std::unique_ptr<HttpClient>> HttpClient::create(net::any_io_executor executor,
                                                       HttpClientOptions options,
                                                       std::string* error) {
  std::string why;
  const auto fail = [&]() -> result<std::unique_ptr<HttpClient>> {
    if (error != nullptr) *error = why;
    return make_error_code(errc::invalid_config);
  };
  auto origin = parse_origin(options.base_url, why);
  if (!origin) return fail();
  // A CR or LF here would let configuration inject headers; the value itself is never echoed.
  const auto has_control = [](std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
    });
  };
  if (has_control(options.bearer_token) || has_control(options.user_agent)) {
    why = "bearer token or user agent contains control characters";
    return fail();
  }
  if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0) {
    why = "connect and request timeouts must be positive";
    return fail();
  }

  auto impl = std::make_unique<Impl>();
  impl->executor = std::move(executor);
  impl->origin = std::move(*origin);
  if (impl->origin.tls) {
    auto& context = impl->tls.emplace(ssl::context::tls_client);
    if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1) {
      why = "cannot require TLS 1.2";
      return fail();
    }
    // An idle TLS connection would otherwise keep OpenSSL's read and write buffers (~34 KB
    // each); a pool of them is most of a daemon's heap.
    SSL_CTX_set_mode(context.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    error_code ec;
    context.set_default_verify_paths(ec);
    if (ec) {
      why = "cannot load the system CA store: " + ec.message();
      return fail();
    }
    if (options.ca_file) {
      context.load_verify_file(*options.ca_file, ec);
      if (ec) {
        why = "cannot load ca_file " + *options.ca_file + ": " + ec.message();
        return fail();
      }
    }
    context.set_verify_mode(options.allow_insecure_tls_for_tests ? ssl::verify_none
                                                                 : ssl::verify_peer);
  }
  impl->options = std::move(options);
  return std::unique_ptr<HttpClient>{new HttpClient{std::move(impl)}};
}

net::awaitable<HttpResult> HttpClient::send(HttpRequest request) {
  co_return co_await impl_->send(std::move(request));
}

void HttpClient::close_idle() {
  std::lock_guard lock{impl_->idle_mutex};
  impl_->idle.clear();
}

}  // namespace devin_orch::api
