// The daemon's retention part: prunes ended jobs older than retention.ended_after, a small batch
// per transaction, on a slow timer that obeys the runtime's shutdown signal. What to prune and
// when is core::RetentionSchedule's; this part only sleeps and calls the store.
#pragma once

#include "parts.hpp"
#include "org_leases.hpp"
#include "store_writer.hpp"

#include "devin_orch/core/retention.hpp"

namespace devin_orch::app::detail {

class Retention {
 public:
  Retention(Services& services, StoreWriter& writer, OrgLeases& lease) noexcept
      : services_{services}, writer_{writer}, lease_{lease} {}

  // Whether the configuration asks for retention at all (retention.ended_after set).
  bool enabled() const noexcept { return services_.config.retention.ended_after.has_value(); }

  // Runs until the runtime stops; spawned once this process works the queue.
  awaitable<void> run();

 private:
  Services& services_;
  StoreWriter& writer_;
  OrgLeases& lease_;
};

}  // namespace devin_orch::app::detail
