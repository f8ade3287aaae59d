// The daemon's store writes that must not be dropped, and the report of every failed one.
#include "store_writer.hpp"

#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/error.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace devin_orch::app::detail {

void StoreWriter::write(std::string what, std::function<store::StoreResult<void>()> attempt) {
  if (pending_.empty()) {
    const auto done = attempt();
    if (done) {
      succeeded();
      return;
    }
    failed(what, done.error());
    if (!storage_may_recover(done.error())) return;
  }
  pending_.push_back(PendingWrite{std::move(what), std::move(attempt)});
  if (!retrying_) {
    retrying_ = true;
    services_.runtime.spawn(retry());
  }
}

// Retries the waiting writes in order, every half second while their cause lasts. A write whose
// failure cannot pass is dropped (reported); the order of the rest is kept. Stops with the
// daemon: what is still waiting is repaired by the next start (statuses are polled again, jobs
// left creating are looked up).
awaitable<void> StoreWriter::retry() {
  while (!pending_.empty()) {
    if (!co_await services_.runtime.sleep_for(std::chrono::milliseconds{500})) break;
    while (!pending_.empty()) {
      PendingWrite& head = pending_.front();
      const auto done = head.attempt();
      if (!done && storage_may_recover(done.error())) {
        failed(head.what, done.error());
        break;
      }
      if (done) {
        succeeded();
      } else {
        failed(head.what, done.error());
      }
      pending_.pop_front();
    }
  }
  if (!pending_.empty()) {
    spdlog::warn("stopping with {} store write(s) not done; the next start repairs them",
                 pending_.size());
  }
  retrying_ = false;
}

void StoreWriter::finish_job(const core::JobRecord& job, core::JobState state, std::string reason) {
  write("the end of job '" + job.definition.key + "' (" + std::string{core::to_string(state)} + ")",
        [this, id = job.id, state, reason = std::move(reason), now = core::wall_now()] {
          return services_.store.finish(id, state, reason, now);
        });
}

void StoreWriter::failed(std::string_view what, const store::Error& failure) {
  const boost::system::error_code& error = failure.code;
  const bool storage = storage_may_recover(error) || error == errc::storage_corrupt;
  services_.metrics.store_error(error);
  const auto now = SteadyClock::now();
  if (!storage) {
    log_event(spdlog::level::err, {.event = "store_error"}, "cannot record {}: {}{}", what,
              error.message(), failure.detail.empty() ? "" : " (" + failure.detail + ")");
    return;
  }
  // One line when the trouble starts or changes, then one a minute: a full disk would
  // otherwise log every retry of every write.
  if (!trouble_ || trouble_->error != error) {
    log_event(spdlog::level::err, {.event = "store_error"},
              "cannot record {}: {}; retrying until it goes through, and sending no create "
              "meanwhile",
              what, error.message());
    trouble_ = StorageTrouble{.error = error, .since = now, .last_logged = now};
  } else if (now - trouble_->last_logged >= std::chrono::minutes{1}) {
    log_event(spdlog::level::err, {.event = "store_error"},
              "still cannot write to the database ({}) after {} s; {} write(s) waiting",
              error.message(),
              std::chrono::duration_cast<std::chrono::seconds>(now - trouble_->since).count(),
              pending_.size());
    trouble_->last_logged = now;
  }
}

void StoreWriter::succeeded() {
  if (!trouble_) return;
  log_event(spdlog::level::info, {.event = "store_recovered"},
            "the database takes writes again after {:.1f} s ({})",
            std::chrono::duration<double>(SteadyClock::now() - trouble_->since).count(),
            trouble_->error.message());
  trouble_.reset();
}

std::optional<std::string> StoreWriter::trouble() const {
  if (!trouble_) return std::nullopt;
  return fmt::format(
      "cannot write to the database for {:.0f} s: {}",
      std::chrono::duration<double>(SteadyClock::now() - trouble_->since).count(),
      trouble_->error.message());
}

std::optional<std::string> StoreWriter::trouble_cause() const {
  if (!trouble_) return std::nullopt;
  return trouble_->error.message();
}

}  // namespace devin_orch::app::detail
