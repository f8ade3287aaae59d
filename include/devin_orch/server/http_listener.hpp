// A small HTTP/1.1 listener on the daemon's event loop that hands each request, as plain data,
// to a synchronous handler and writes back what it returns: the dashboard's transport. The
// handler is a pure function of the request (testable without sockets); Beast stays in the .cpp.
#pragma once

#include "devin_orch/core/error.hpp"
#include "devin_orch/core/time.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devin_orch::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // "/api/v1/jobs?state=queued", as sent (still percent-encoded)
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;

  // The first header named `name` (lower case), or empty.
  std::string_view header(std::string_view name) const noexcept;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type/-Length
  std::string body;
};

struct HttpListenerOptions {
  std::string name = "http";          // for error messages: "dashboard: cannot listen on ..."
  std::string address = "127.0.0.1";  // an IP literal (v4 or v6), not a host name
  std::uint16_t port = 0;             // 0: any free port
  std::size_t max_connections = 64;   // connections beyond this are closed right after accept
  std::size_t max_body_bytes = 1U << 20U;  // a bigger body gets 413 before the handler runs
  // Deadline for each request read (an idle keep-alive connection included) and each write.
  core::Duration read_timeout{10000};
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// The answer to a request refused before the handler saw it (413 body too large, 431 headers
// too large, 400 malformed); the connection is closed after it. Empty: a plain-text reason.
using HttpRejectFormatter = std::function<HttpResponse(int status, std::string_view reason)>;

// Request handling happens on `executor`, which must be single-threaded (the daemon's event
// loop): the handler is called only there, one request at a time. If it throws, the request
// gets 500 and the loop carries on. Call stop() there too, and destroy the listener before the
// io_context.
class HttpListener {
 public:
  // Binds and listens at once; failures come back as an error with a readable message in
  // `*error` when given, never as an exception.
  static result<std::unique_ptr<HttpListener>> start(boost::asio::any_io_executor executor,
                                                     HttpListenerOptions options,
                                                     HttpHandler handler,
                                                     HttpRejectFormatter on_reject = {},
                                                     std::string* error = nullptr);

  ~HttpListener();  // stop()s
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  std::uint16_t port() const noexcept;  // the real one when options.port was 0
  // Closes the acceptor and every connection. Idempotent; the handler is not called after it.
  void stop() noexcept;

 private:
  struct Impl;
  explicit HttpListener(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace devin_orch::server
