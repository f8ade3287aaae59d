// The status listener's routes: /metrics for Prometheus, /healthz and /readyz, served by the
// one HTTP listener (http_listener.cpp) that also carries the dashboard.
#include "devin_orch/server/status_server.hpp"

#include "devin_orch/server/http_listener.hpp"

#include <string_view>

namespace devin_orch::server {
namespace {

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kExposition = "text/plain; version=0.0.4; charset=utf-8";
// A scrape request is a request line and a few headers; anything bigger is not Prometheus.
constexpr std::size_t kBodyLimit = 8 << 10;

HttpResponse plain(int status, std::string body) {
  return HttpResponse{status, std::string{kTextPlain}, {}, std::move(body)};
}

}  // namespace

struct StatusServer::Impl {
  Impl(MetricsRegistry& metrics, std::function<Readiness()> is_ready,
       std::function<void()> refresh)
      : registry{metrics}, ready{std::move(is_ready)}, before_scrape{std::move(refresh)} {}

  MetricsRegistry& registry;
  std::function<Readiness()> ready;
  std::function<void()> before_scrape;
  std::unique_ptr<HttpListener> listener;

  HttpResponse respond(const HttpRequest& request) {
    const std::string_view target = request.target;
    const auto path = target.substr(0, target.find('?'));
    if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
      return plain(404, "not found");
    }
    if (request.method != "GET" && request.method != "HEAD") {
      auto answer = plain(405, "method not allowed");
      answer.headers.emplace_back("Allow", "GET, HEAD");
      return answer;
    }
    // Answering at all proves the event loop turns; nothing else to check.
    if (path == "/healthz") return plain(200, "ok");
    if (path == "/readyz") {
      const Readiness readiness = call_ready();
      std::string body = readiness.ready ? "ready" : "not ready";
      if (!readiness.ready && !readiness.detail.empty()) body += ": " + readiness.detail;
      return plain(readiness.ready ? 200 : 503, std::move(body));
    }
    return scrape();
  }

  Readiness call_ready() noexcept {
    if (!ready) return true;
    try {
      return ready();
    } catch (...) {
      return false;
    }
  }

  HttpResponse scrape() noexcept {
    try {
      if (before_scrape) before_scrape();
      return HttpResponse{200, std::string{kExposition}, {}, registry.render()};
    } catch (...) {
      return plain(500, "scrape failed");
    }
  }
};

StatusServer::StatusServer(std::shared_ptr<Impl> impl) : impl_{std::move(impl)} {}

StatusServer::~StatusServer() { stop(); }

std::uint16_t StatusServer::port() const noexcept { return impl_->listener->port(); }

void StatusServer::stop() noexcept { impl_->listener->stop(); }

result<std::unique_ptr<StatusServer>> StatusServer::start(boost::asio::any_io_executor executor,
                                                          StatusServerOptions options,
                                                          MetricsRegistry& registry,
                                                          std::function<Readiness()> ready,
                                                          std::function<void()> before_scrape,
                                                          std::string* error) {
  auto impl = std::make_shared<Impl>(registry, std::move(ready), std::move(before_scrape));
  auto listener = HttpListener::start(
      std::move(executor),
      HttpListenerOptions{.name = "status server",
                          .address = std::move(options.address),
                          .port = options.port,
                          .max_connections = options.max_connections,
                          .max_body_bytes = kBodyLimit,
                          .read_timeout = options.read_timeout},
      // The listener calls the handler only until stop(), which the server's destructor runs,
      // so the raw pointer never outlives the Impl.
      [state = impl.get()](const HttpRequest& request) { return state->respond(request); }, {},
      error);
  if (!listener) return listener.error();
  impl->listener = std::move(*listener);
  return std::unique_ptr<StatusServer>{new StatusServer{std::move(impl)}};
}

}  // namespace devin_orch::server
