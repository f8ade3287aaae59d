// The daemon's delivery of notifications: reads the outbox the store's transitions fill, routes
// each new event to the receivers that want it (the configured webhooks and Slack hooks, and
// the job's own `notify:`), and POSTs the deliveries core::OutboxPlan picks, with their own
// HTTP clients (never the Devin API's rate gate), bounded concurrency and per-request timeouts,
// so a slow or dead receiver holds up nothing but its own deliveries. Private to the app module.
#pragma once

#include "parts.hpp"
#include "store_writer.hpp"

#include "devin_orch/api/http_client.hpp"
#include "devin_orch/core/outbox_delivery.hpp"
#include "devin_orch/store/outbox_store.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace devin_orch::app::detail {

class Notifier {
 public:
  // `may_send`: whether this process may act for the queue now (its lease is proven).
  Notifier(Services& services, StoreWriter& writer, store::OutboxStore& outbox,
           std::function<bool()> may_send);
  ~Notifier();

  // The delivery loop; ends when the runtime stops. Started once this process owns the queue.
  awaitable<void> run();
  // Something was written that may have made an event (a job ended): look at once.
  void wake() { wakeup_.notify(); }
  // Every event is routed and every delivery delivered or dead-lettered, as the store says
  // now, and nothing is in flight: what `run --until-idle` waits for.
  bool settled();
  // Events not routed yet plus deliveries pending, as the store says now; nullopt when it
  // cannot say. What a batch run names while it waits for them.
  std::optional<std::int64_t> undelivered();

 private:
  void route_new_events(TimePoint now);
  void load_pending();
  void launch_ready(TimePoint now);
  awaitable<void> deliver(store::Delivery delivery);
  api::HttpClient* client_for(const std::string& origin, std::string& error);
  void record(const store::Delivery& delivery, store::DeliveryAttempt attempt, TimePoint now);
  void refresh_gauges();

  Services& services_;
  StoreWriter& writer_;
  store::OutboxStore& outbox_;
  std::function<bool()> may_send_;
  Wakeup wakeup_;
  core::OutboxPlan plan_;
  core::DeliveryPolicy policy_;
  // The deliveries the plan knows, by (seq, sink): what a POST needs beyond the plan's item.
  std::map<std::pair<std::int64_t, std::string>, store::Delivery> known_;
  std::map<std::string, std::unique_ptr<api::HttpClient>> clients_;  // by origin
  bool reload_ = true;
  bool more_in_store_ = false;  // the last load hit the per-receiver limit
  SteadyClock::time_point last_load_{};
  bool running_ = false;
};

}  // namespace devin_orch::app::detail
