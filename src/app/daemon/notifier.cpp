// Routing outbox events to receivers and delivering them: the loop, the POSTs, the signature,
// the Slack rendering, and each attempt's outcome written back.
#include "notifier.hpp"

#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/webhook_signature.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace devin_orch::app::detail {
namespace {

namespace json = boost::json;

// Pending deliveries read per receiver at a time: enough to keep its slots busy for a while,
// few enough that a receiver with a backlog of thousands costs little memory.
constexpr std::size_t kPerSinkLoad = 256;
constexpr std::size_t kRouteBatch = 500;
// The store is read again this often even without a change of ours: an operator's retry.
constexpr auto kReloadEvery = std::chrono::seconds{5};
constexpr std::size_t kMaxAnswerBytes = 64U << 10U;

std::string sink_of(const core::NotifyTarget& target) {
  return std::string(target.format == core::NotifyTarget::Format::slack ? "slack " : "webhook ") +
         target.url;
}

// scheme://host[:port] and the rest (path and query) of a receiver's URL.
struct SplitUrl {
  std::string origin;
  std::string target;
};

std::optional<SplitUrl> split_url(const std::string& text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return std::nullopt;
  const boost::urls::url_view url = *parsed;
  SplitUrl out;
  out.origin = std::string(url.scheme()) + "://" + std::string(url.encoded_host_and_port());
  out.target = std::string(url.encoded_path());
  if (out.target.empty()) out.target = "/";
  if (url.has_query()) out.target += "?" + std::string(url.encoded_query());
  return out;
}

// A line a human reads in a Slack channel: what happened, to which job, and where to look.
std::string slack_text(const std::string& body) {
  boost::system::error_code ec;
  const json::value event = json::parse(body, ec);
  if (ec || !event.is_object()) return body;
  const auto text_of = [](const json::value* value) -> std::string {
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string{};
  };
  const json::object& root = event.as_object();
  const std::string type = text_of(root.if_contains("type"));
  std::string line = "devin-orch: " + type;
  if (const auto* org = root.if_contains("org"); org != nullptr && org->is_object()) {
    line += " " + text_of(org->as_object().if_contains("id"));
    if (const auto reason = text_of(org->as_object().if_contains("reason")); !reason.empty()) {
      line += " (" + reason + ")";
    }
    return line;
  }
  if (const auto* job = root.if_contains("job"); job != nullptr && job->is_object()) {
    const json::object& j = job->as_object();
    line += " `" + text_of(j.if_contains("key")) + "`";
    if (const auto status = text_of(j.if_contains("status")); !status.empty()) {
      line += " status " + status;
    }
    if (const auto detail = text_of(j.if_contains("detail")); !detail.empty()) {
      line += ": " + detail;
    }
    if (const auto* prs = j.if_contains("pull_requests"); prs != nullptr && prs->is_array()) {
      for (const auto& pr : prs->as_array()) {
        if (pr.is_object()) line += "\n" + text_of(pr.as_object().if_contains("url"));
      }
    }
    if (const auto url = text_of(j.if_contains("session_url")); !url.empty()) {
      line += "\n<" + url + "|session>";
    }
  }
  return line;
}

}  // namespace

Notifier::Notifier(Services& services, StoreWriter& writer, store::OutboxStore& outbox,
                   std::function<bool()> may_send)
    : services_{services},
      writer_{writer},
      outbox_{outbox},
      may_send_{std::move(may_send)},
      wakeup_{services.runtime},
      plan_{static_cast<std::size_t>(services.config.notify.max_in_flight_per_receiver),
            static_cast<std::size_t>(services.config.notify.max_in_flight)},
      policy_{.initial = services.config.notify.retry_initial,
              .max = services.config.notify.retry_max,
              .max_age = services.config.notify.max_age} {
  // A receiver's secret that cannot be read is said at start, not only at its first event.
  for (const auto& target : services.config.notify.webhooks) {
    std::string error;
    if (!resolve_webhook_secret(target, &error)) {
      log_event(spdlog::level::err, {.event = "notify_secret_unreadable"},
                "notify.webhooks {}: {}; its deliveries fail until this is fixed", target.url,
                error);
    }
  }
}

Notifier::~Notifier() = default;

awaitable<void> Notifier::run() {
  if (running_) co_return;
  running_ = true;
  const core::Duration interval = services_.config.notify.check_interval;
  for (;;) {
    const TimePoint now = core::wall_now();
    if (may_send_()) {
      route_new_events(now);
      if (reload_ || (more_in_store_ && plan_.size() < kPerSinkLoad / 2) ||
          SteadyClock::now() - last_load_ >= kReloadEvery) {
        load_pending();
      }
      launch_ready(now);
    }
    core::Duration wait = interval;
    if (const auto due = plan_.next_due()) {
      wait = std::clamp(*due - core::wall_now(), core::Duration{0}, interval);
    }
    if (!co_await wakeup_.wait_for(wait)) break;
  }
  running_ = false;
}

void Notifier::route_new_events(TimePoint now) {
  const auto events = outbox_.unrouted_events(kRouteBatch);
  if (!events) {
    writer_.failed("read the notification outbox", events.error());
    return;
  }
  const auto& config = services_.config.notify;
  for (const auto& event : *events) {
    std::vector<store::DeliveryRoute> routes;
    const auto add = [&](const core::NotifyTarget& target) {
      if (!core::wants(target, event.type, event.tags)) return;
      std::string sink = sink_of(target);
      const bool known = std::any_of(routes.begin(), routes.end(),
                                     [&](const auto& route) { return route.sink == sink; });
      if (!known) routes.push_back({.sink = std::move(sink), .target = target});
    };
    for (const auto& target : config.webhooks) add(target);
    for (const auto& target : config.slack) add(target);
    for (const auto& target : event.job_targets) add(target);
    const auto routed = outbox_.route_event(event.seq, routes, now);
    if (!routed) {
      writer_.failed("route notification " + event.id, routed.error());
      return;  // in order: the next events wait for this one
    }
    writer_.succeeded();
    if (!routes.empty()) reload_ = true;
  }
}

void Notifier::load_pending() {
  const auto pending = outbox_.pending_deliveries(kPerSinkLoad);
  last_load_ = SteadyClock::now();
  if (!pending) {
    writer_.failed("read pending notifications", pending.error());
    return;
  }
  reload_ = false;
  std::map<std::string, std::size_t> per_sink;
  for (const auto& delivery : *pending) {
    ++per_sink[delivery.sink];
    const auto added = plan_.add(core::OutboxPlan::Item{
        .seq = delivery.seq,
        .sink = delivery.sink,
        .order_key = delivery.job_key ? "job:" + *delivery.job_key : "org:" + delivery.org_id,
        .due = core::from_epoch_ms(delivery.next_attempt_at_ms),
        .failures = static_cast<int>(delivery.attempts)});
    if (added) known_.emplace(std::make_pair(delivery.seq, delivery.sink), delivery);
  }
  more_in_store_ = std::any_of(per_sink.begin(), per_sink.end(),
                               [](const auto& entry) { return entry.second >= kPerSinkLoad; });
  refresh_gauges();
}

void Notifier::launch_ready(TimePoint now) {
  for (auto& item : plan_.take_ready(now)) {
    const auto found = known_.find(std::make_pair(item.seq, item.sink));
    if (found == known_.end()) {  // cannot happen: every added item is known
      plan_.dropped(item.seq, item.sink);
      continue;
    }
    services_.runtime.spawn(deliver(found->second));
  }
}

api::HttpClient* Notifier::client_for(const std::string& origin, std::string& error) {
  if (const auto found = clients_.find(origin); found != clients_.end()) return found->second.get();
  const auto& config = services_.config;
  api::HttpClientOptions options{
      .base_url = origin,
      .bearer_token = {},  // the Devin key never leaves for a receiver
      .ca_file = config.api.ca_file,
      .connect_timeout = config.notify.connect_timeout,
      .request_timeout = config.notify.request_timeout,
      .max_body_bytes = kMaxAnswerBytes,
      .max_idle_connections =
          static_cast<std::size_t>(config.notify.max_in_flight_per_receiver),
      .user_agent = "devin-orch-notify"};
  auto client = api::HttpClient::create(services_.runtime.io().get_executor(), std::move(options),
                                        &error);
  if (!client) {
    if (error.empty()) error = client.error().message();
    return nullptr;
  }
  return clients_.emplace(origin, std::move(*client)).first->second.get();
}

awaitable<void> Notifier::deliver(store::Delivery delivery) {
  const auto& target = delivery.target;
  std::string failure;
  std::string body = delivery.body;
  api::HttpRequest request{.method = api::Method::post};
  request.headers.emplace_back("Devin-Orch-Event-Id", delivery.event_id);
  request.headers.emplace_back("Devin-Orch-Event-Type", std::string(core::to_string(delivery.type)));
  if (target.format == core::NotifyTarget::Format::slack) {
    body = json::serialize(json::object{{"text", slack_text(delivery.body)}});
  } else if (auto secret = resolve_webhook_secret(target, &failure)) {
    request.headers.emplace_back(std::string(core::kSignatureHeader),
                                 core::signature_header(*secret, core::to_epoch_seconds(core::wall_now()),
                                                        body));
  }
  api::HttpClient* client = nullptr;
  if (failure.empty()) {
    if (const auto split = split_url(target.url)) {
      client = client_for(split->origin, failure);
      request.target = split->target;
    } else {
      failure = "the URL cannot be parsed";
    }
  }
  int status = 0;
  if (client != nullptr) {
    request.body = std::move(body);
    const auto sent_at = SteadyClock::now();
    const api::HttpResult answer = co_await client->send(std::move(request));
    services_.metrics.notification_request(
        std::chrono::duration<double>(SteadyClock::now() - sent_at).count());
    if (answer.ec) {
      failure = answer.detail.empty() ? answer.ec.message() : answer.detail;
    } else {
      status = answer.response.status;
      if (status < 200 || status > 299) failure = "HTTP " + std::to_string(status);
    }
  }
  const TimePoint now = core::wall_now();
  store::DeliveryAttempt attempt{.seq = delivery.seq,
                                 .sink = delivery.sink,
                                 .attempts = delivery.attempts + 1};
  if (failure.empty()) {
    attempt.state = store::DeliveryState::delivered;
  } else {
    attempt.error = failure;
    const auto next = core::after_failure(policy_, static_cast<int>(attempt.attempts),
                                          core::from_epoch_ms(delivery.age_from_ms), now,
                                          services_.random);
    attempt.state = next.dead ? store::DeliveryState::dead : store::DeliveryState::pending;
    attempt.next_attempt_at_ms = core::to_epoch_ms(next.retry_at);
  }
  record(delivery, std::move(attempt), now);
  wakeup_.notify();  // a lane may have moved on, a slot is free
}

void Notifier::record(const store::Delivery& delivery, store::DeliveryAttempt attempt,
                      TimePoint now) {
  const auto key = std::make_pair(delivery.seq, delivery.sink);
  const auto written = outbox_.record_attempt(attempt, now);
  using Outcome = DaemonMetrics::NotificationOutcome;
  services_.metrics.notification_attempt(
      attempt.state == store::DeliveryState::delivered ? Outcome::delivered
      : attempt.state == store::DeliveryState::dead    ? Outcome::dead
                                                       : Outcome::failed);
  if (!written) {
    // Not recorded: the store still has it pending. Sent again (in order) rather than lost.
    writer_.failed("record a notification attempt", written.error());
    plan_.failed(delivery.seq, delivery.sink, now + core::Duration{1'000});
    return;
  }
  writer_.succeeded();
  const std::string job_key = delivery.job_key.value_or(std::string{});
  const LogFields fields{.key = job_key, .org_id = delivery.org_id, .event_id = delivery.event_id};
  const auto with_event = [&fields](std::string_view event) {
    LogFields named = fields;
    named.event = event;
    return named;
  };
  if (attempt.state == store::DeliveryState::pending) {
    log_event(spdlog::level::warn, with_event("notification_failed"),
              "notification {} ({}) to {}: {}; attempt {} failed, next in {} ms",
              delivery.event_id, core::to_string(delivery.type), delivery.target.url,
              attempt.error.value_or(""), attempt.attempts,
              attempt.next_attempt_at_ms - core::to_epoch_ms(now));
    plan_.failed(delivery.seq, delivery.sink, core::from_epoch_ms(attempt.next_attempt_at_ms));
    auto& known = known_.at(key);
    known.attempts = attempt.attempts;
    known.last_error = attempt.error;
    return;
  }
  if (attempt.state == store::DeliveryState::dead) {
    log_event(spdlog::level::err, with_event("notification_dead"),
              "notification {} ({}) to {} dead-lettered after {} attempt(s): {}; "
              "`devin-orch events retry {}` sends it again",
              delivery.event_id, core::to_string(delivery.type), delivery.target.url,
              attempt.attempts, attempt.error.value_or(""), delivery.event_id);
    plan_.dropped(delivery.seq, delivery.sink);
  } else {
    log_event(spdlog::level::debug, with_event("notification_delivered"),
              "notification {} ({}) delivered to {}", delivery.event_id,
              core::to_string(delivery.type), delivery.target.url);
    plan_.delivered(delivery.seq, delivery.sink);
  }
  known_.erase(key);
  refresh_gauges();
}

void Notifier::refresh_gauges() {
  const auto counts = outbox_.outbox_counts();
  if (!counts) return;
  services_.metrics.notifications_dead(static_cast<double>(counts->dead));
  services_.metrics.notifications_pending(static_cast<double>(counts->pending + counts->unrouted));
}

std::optional<std::int64_t> Notifier::undelivered() {
  const auto counts = outbox_.outbox_counts();
  if (!counts) return std::nullopt;
  return counts->unrouted + counts->pending;
}

bool Notifier::settled() {
  if (plan_.in_flight() > 0) return false;
  const auto counts = outbox_.outbox_counts();
  return counts && counts->unrouted == 0 && counts->pending == 0;
}

}  // namespace devin_orch::app::detail
