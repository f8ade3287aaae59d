// Retention: drives core::RetentionSchedule with the runtime's timers and the store's
// prune_ended, and logs each pass that removed something.
#include "retention.hpp"

#include "devin_orch/app/formats/timestamp.hpp"

#include <spdlog/spdlog.h>

namespace devin_orch::app::detail {

awaitable<void> Retention::run() {
  if (!enabled()) co_return;
  core::RetentionSchedule schedule{
      core::RetentionPolicy{.ended_after = *services_.config.retention.ended_after}};
  auto action = schedule.resume(core::RetentionStart{});
  for (;;) {
    if (const auto* wait = std::get_if<core::RetentionWait>(&action)) {
      if (wait->pass_pruned && *wait->pass_pruned > 0) {
        spdlog::info("retention: pruned {} job(s) that ended before {} (outcomes kept)",
                     *wait->pass_pruned,
                     format_timestamp_ms(core::to_epoch_ms(wait->pass_cutoff)));
      }
      if (!co_await services_.runtime.sleep_for(wait->wait)) co_return;
      action = schedule.resume(core::RetentionDue{core::wall_now()});
      continue;
    }
    const auto& prune = std::get<core::RetentionPrune>(action);
    // A holder that cannot prove its lease writes nothing; the next pass tries again.
    if (!lease_.may_act()) {
      action = schedule.resume(core::RetentionFailed{});
      continue;
    }
    const auto pruned = services_.store.prune_ended(prune.cutoff, core::wall_now(), prune.limit);
    if (!pruned) {
      writer_.failed("pruning ended jobs (retention)", pruned.error());
      action = schedule.resume(core::RetentionFailed{});
    } else {
      writer_.succeeded();
      action = schedule.resume(core::RetentionPruned{*pruned});
    }
  }
}

}  // namespace devin_orch::app::detail
