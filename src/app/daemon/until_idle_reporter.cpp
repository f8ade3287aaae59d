// What a batch run logs while it waits (see the header).
#include "until_idle_reporter.hpp"

#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/app/logging.hpp"

#include <algorithm>
#include <chrono>
#include <map>

namespace devin_orch::app::detail {
namespace {

// A wait shorter than this is a 429's backoff the gate's own warnings cover; saying it would
// make the reasons flicker.
constexpr core::Duration kWorthSaying{1'000};

std::string describe_reasons(const core::UntilIdleReasons& reasons) {
  std::string text;
  const auto part = [&text](const std::string& more) {
    text += (text.empty() ? "" : "; ") + more;
  };
  if (reasons.scheduled) {
    const auto& scheduled = *reasons.scheduled;
    part(fmt::format("{} job(s) scheduled for later, the next ('{}') at {}", scheduled.count,
                     scheduled.next_key,
                     format_timestamp_ms(core::to_epoch_ms(scheduled.next_at))));
  }
  if (!reasons.paused.empty()) {
    std::string paused;
    for (const auto& pause : reasons.paused) paused += (paused.empty() ? "" : ", ") + pause;
    part("paused: " + paused);
  }
  if (reasons.notifications_pending > 0) {
    part(fmt::format("{} notification(s) not delivered yet (each retried until delivered or "
                     "dead-lettered at notify.max_age; `devin-orch events ls --pending`)",
                     reasons.notifications_pending));
  }
  for (const auto& wait : reasons.server_waits) {
    const auto until = format_timestamp_ms(core::to_epoch_ms(wait.until));
    part(wait.creates_only
             ? fmt::format("org {}: creates wait at the server's concurrency cap until {}",
                           wait.org_id, until)
             : fmt::format("org {}: the server asked for no request until {}", wait.org_id,
                           until));
  }
  return text;
}

std::string describe_counts(const std::map<core::JobState, std::int64_t>& counts) {
  std::string text;
  std::int64_t total = 0;
  for (const auto& [state, count] : counts) {
    total += count;
    if (count == 0) continue;
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", count, core::to_string(state));
  }
  return fmt::format("{} job(s){}{}", total, text.empty() ? "" : ": ", text);
}

}  // namespace

std::vector<std::string> describe_pauses(const OrgGates& gates) {
  std::vector<std::string> paused;
  const auto& stored = gates.stored_pauses();
  for (const auto& [org, reason] : stored) {
    paused.push_back((org == "*" ? std::string{"every organisation"} : org) + " (" + reason + ")");
  }
  for (const auto& [id, org] : gates.all()) {
    if (org->paused_reason && !stored.contains(id)) {
      paused.push_back(id + " (" + *org->paused_reason + ")");
    }
  }
  for (const auto& [org, user] : gates.claim_filter().paused_users) {
    paused.push_back(org + " jobs created as " + user);
  }
  std::ranges::sort(paused);
  paused.erase(std::unique(paused.begin(), paused.end()), paused.end());
  return paused;
}

UntilIdleReporter::UntilIdleReporter(Services& services, const OrgGates& gates,
                                     Notifier& notifier, core::Duration progress_every)
    : services_{services}, gates_{gates}, notifier_{notifier}, report_{progress_every} {}

void UntilIdleReporter::look() {
  const auto now = core::wall_now();
  const auto counts = services_.store.count_by_state();
  if (!counts) return;  // the store writer reports storage trouble; say nothing rather than guess
  const auto it = counts->find(core::JobState::queued);
  const std::int64_t queued = it == counts->end() ? 0 : it->second;

  core::UntilIdleReasons reasons;
  if (queued > 0) {
    reasons.scheduled = scheduled_starts(queued, now);
    reasons.paused = describe_pauses(gates_);
  }
  for (const auto& [id, org] : gates_.all()) {
    const auto& gate = org->admission.gate();
    if (gate.paused_until() - now >= kWorthSaying) {
      reasons.server_waits.push_back({.org_id = id, .until = gate.paused_until()});
    } else if (gate.creates_held(now)) {
      const auto until = gate.ready_at(core::RequestKind::create, now);
      if (until - now >= kWorthSaying) {
        reasons.server_waits.push_back({.org_id = id, .until = until, .creates_only = true});
      }
    }
  }
  // Notifications are the reason only once no job is in flight or ready to start (the queued
  // ones all wait for a time or a pause): a run that still has jobs to finish waits for those.
  const auto count = [&](core::JobState state) {
    const auto found = counts->find(state);
    return found == counts->end() ? std::int64_t{0} : found->second;
  };
  const std::int64_t undelivered = notifier_.undelivered().value_or(0);
  if (count(core::JobState::creating) + count(core::JobState::running) == 0 &&
      (queued == 0 || reasons.scheduled || !reasons.paused.empty())) {
    reasons.notifications_pending = undelivered;
  }

  const auto say = report_.observe(reasons, now);
  if (say.reasons) {
    log_event(spdlog::level::info, {.event = "until_idle_waiting"}, "until idle: waiting for {}",
              describe_reasons(reasons));
  }
  if (say.progress) {
    log_event(spdlog::level::info, {.event = "progress"}, "progress: {}{}",
              describe_counts(*counts),
              undelivered > 0 ? fmt::format("; {} notification(s) not delivered yet", undelivered)
                              : std::string{});
  }
}

// Only when no queued job is ready: then every queued job waits for its start time (ready ones
// go first, and while they do the schedule is not what the run waits for).
std::optional<core::ScheduledStarts> UntilIdleReporter::scheduled_starts(std::int64_t queued,
                                                                         TimePoint now) {
  const auto ready = services_.store.claimable(now, 1);
  if (!ready || !ready->empty()) return std::nullopt;
  if (scheduled_read_at_count_ == queued && scheduled_ && scheduled_->next_at > now) {
    return scheduled_;
  }
  const auto jobs = services_.store.in_state(core::JobState::queued);
  if (!jobs) return std::nullopt;
  std::optional<core::ScheduledStarts> found;
  for (const auto& job : *jobs) {
    const auto& not_before = job.definition.controls.not_before_ms;
    if (!not_before || core::from_epoch_ms(*not_before) <= now) continue;
    if (!found) found = core::ScheduledStarts{};
    ++found->count;
    const auto at = core::from_epoch_ms(*not_before);
    if (found->count == 1 || at < found->next_at) {
      found->next_at = at;
      found->next_key = job.definition.key;
    }
  }
  scheduled_ = found;
  scheduled_read_at_count_ = queued;
  return found;
}

}  // namespace devin_orch::app::detail
