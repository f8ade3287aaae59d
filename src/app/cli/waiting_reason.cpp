// waiting_reason (waiting_reason.hpp): the checks in the order the dispatch meets them, the
// hard stops (pauses) first, then time, then capacity.
#include "devin_orch/app/cli/waiting_reason.hpp"

#include "command.hpp"

#include "devin_orch/app/formats/timestamp.hpp"

#include <algorithm>

namespace devin_orch::app {

std::string_view to_string(WaitingReason::Code code) noexcept {
  using Code = WaitingReason::Code;
  switch (code) {
    case Code::all_paused: return "all_paused";
    case Code::org_paused: return "org_paused";
    case Code::user_paused: return "user_paused";
    case Code::scheduled: return "scheduled";
    case Code::org_held: return "org_held";
    case Code::acu_budget: return "acu_budget";
    case Code::concurrency_group: return "concurrency_group";
    case Code::max_active_sessions: return "max_active_sessions";
    case Code::max_concurrent_creates: return "max_concurrent_creates";
    case Code::no_daemon: return "no_daemon";
    case Code::ready: return "ready";
  }
  return "ready";
}

WaitingReason waiting_reason(const store::JobSummary& job, const QueueConditions& conditions) {
  using Code = WaitingReason::Code;
  const auto count = [](const std::map<std::string, int, std::less<>>& counts,
                        const std::string& org) {
    const auto found = counts.find(org);
    return found == counts.end() ? 0 : found->second;
  };
  if (const auto all = conditions.paused_orgs.find("*"); all != conditions.paused_orgs.end()) {
    return {Code::all_paused, std::nullopt, "all organisations paused: " + all->second};
  }
  if (const auto org = conditions.paused_orgs.find(job.org_id);
      org != conditions.paused_orgs.end()) {
    return {Code::org_paused, std::nullopt, "organisation paused: " + org->second};
  }
  if (job.create_as_user_id) {
    const auto user = std::find_if(
        conditions.paused_users.begin(), conditions.paused_users.end(),
        [&](const store::UserPause& pause) {
          return pause.org_id == job.org_id && pause.user_id == *job.create_as_user_id;
        });
    if (user != conditions.paused_users.end()) {
      return {Code::user_paused, std::nullopt,
              "user " + user->user_id + " paused: " + user->reason};
    }
  }
  if (job.not_before_ms && *job.not_before_ms > conditions.now_ms) {
    return {Code::scheduled, job.not_before_ms,
            "scheduled until " + format_timestamp_ms(*job.not_before_ms)};
  }
  const auto hold = std::find_if(
      conditions.holds.begin(), conditions.holds.end(), [&](const store::OrgHold& held) {
        return held.org_id == job.org_id && held.until_ms > conditions.now_ms;
      });
  if (hold != conditions.holds.end()) {
    std::string text = "organisation held by the server until " + format_timestamp_ms(hold->until_ms);
    if (!hold->reason.empty()) text += ": " + hold->reason;
    return {Code::org_held, hold->until_ms, std::move(text)};
  }
  if (conditions.spending.active()) {
    std::optional<double> limit;
    if (job.max_acu_limit) limit = static_cast<double>(*job.max_acu_limit);
    const auto verdict = conditions.spending.admit(job.org_id, job.concurrency_key, limit,
                                                   core::from_epoch_ms(conditions.now_ms));
    if (!verdict.allowed) {
      const bool day = verdict.window == core::SpendingWindow::day;
      const bool by_key = verdict.scope == core::SpendingScope::concurrency_key;
      const std::int64_t until = core::to_epoch_ms(verdict.resumes_at);
      return {Code::acu_budget, until,
              "waiting for the ACU budget" + (by_key ? " of key " + verdict.key : "") + ": " +
                  format_number(verdict.committed) + " of " + format_number(verdict.budget) +
                  " ACUs committed " + (day ? "today" : "this month") + ", the job reserves " +
                  format_number(verdict.reservation) + " (" +
                  spending_setting(verdict, conditions.spending.budgets(), job.org_id) +
                  ") until " + format_timestamp_ms(until)};
    }
  }
  if (const auto group = conditions.concurrency.admit(job.concurrency_key); !group.allowed) {
    // The group first: `ls` cuts the column at 60 characters.
    return {Code::concurrency_group, std::nullopt,
            core::describe(group) + " active, waiting for a place (concurrency: key '" +
                group.pattern + "')"};
  }
  if (const int sessions = count(conditions.sessions, job.org_id);
      sessions >= conditions.max_active_sessions) {
    return {Code::max_active_sessions, std::nullopt,
            "waiting for a free slot: " + std::to_string(sessions) +
                " sessions creating or running (create.max_active_sessions " +
                std::to_string(conditions.max_active_sessions) + ")"};
  }
  if (const int creating = count(conditions.creating, job.org_id);
      creating >= conditions.max_concurrent_creates) {
    return {Code::max_concurrent_creates, std::nullopt,
            "waiting for a create slot: " + std::to_string(creating) +
                " creates in flight (create.max_concurrent_creates " +
                std::to_string(conditions.max_concurrent_creates) + ")"};
  }
  if (!conditions.daemon_working) {
    return {Code::no_daemon, std::nullopt, "no daemon works the queue"};
  }
  return {Code::ready, std::nullopt, "ready: starts at the daemon's next dispatch"};
}

}  // namespace devin_orch::app
