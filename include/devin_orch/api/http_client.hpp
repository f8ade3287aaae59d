// An HTTP/1.1 client for one API origin (http:// on loopback, or https:// with verification),
// with per-phase timeouts, an overall deadline, size caps and keep-alive reuse. It reports
// whether any byte of the request was written, which decides whether a failure is ambiguous.
#pragma once

#include "devin_orch/core/error.hpp"
#include "devin_orch/core/time.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace devin_orch::api {

struct HttpClientOptions {
  std::string base_url;                  // e.g. https://api.devin.ai or http://127.0.0.1:8080
  std::string bearer_token;              // sent as `Authorization: Bearer ...` (none if empty); never logged
  std::optional<std::string> ca_file;    // extra CA bundle; system store used otherwise
  core::Duration connect_timeout{10'000};  // resolve + TCP connect + TLS handshake
  core::Duration request_timeout{30'000};  // write + read of one request (overall deadline)
  std::size_t max_body_bytes = 8U << 20U;
  std::size_t max_header_bytes = 64U << 10U;
  std::size_t max_idle_connections = 16;
  std::string user_agent = "devin-orch";
  bool allow_insecure_tls_for_tests = false;  // disables verification; loudly logged
};

enum class Method { get, post, put, delete_ };

struct HttpRequest {
  Method method = Method::get;
  std::string target;                  // path and query
  std::string body;                    // JSON when non-empty, unless content_type says else
  std::string content_type;            // empty: application/json
  core::Duration timeout{0};           // 0: options.request_timeout
  // Extra header fields (a webhook's signature, say); names and values the caller made safe.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::optional<std::string> retry_after;
  std::optional<std::string> retry_after_ms;
  std::optional<std::string> content_type;
};

struct HttpResult {
  boost::system::error_code ec;  // errc::resolve_failed ... errc::malformed_http, or cancelled
  bool request_sent = false;     // any byte of the request was written
  std::string detail;            // why, when ec is set: readable, never contains the token
  HttpResponse response;         // valid when !ec
  core::Duration latency{0};
};

// Use one client from one thread or strand; it must outlive every send() it started.
class HttpClient {
 public:
  // Validates the URL: https://, or http:// only for a loopback host. Errors say why.
  static result<std::unique_ptr<HttpClient>> create(boost::asio::any_io_executor executor,
                                                    HttpClientOptions options,
                                                    std::string* error = nullptr);
  ~HttpClient();

  boost::asio::awaitable<HttpResult> send(HttpRequest request);

  // Closes idle connections; in-flight requests finish or hit their deadline.
  void close_idle();

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace devin_orch::api
