// Why a queued job has not started, in the terms of the daemon's dispatch (dispatcher.cpp and
// org_gates.cpp decide; this explains): a pause of every organisation, of the job's or of its
// user, a not_before still ahead, a wait the server announced for the organisation, the
// organisation's or its concurrency key's ACU budget (spending), a full concurrency group (concurrency:), its limits (create.max_active_sessions,
// create.max_concurrent_creates), or no daemon working the queue. Pure: `ls` reads the database and prints the answer.
#pragma once

#include "devin_orch/app/spending.hpp"
#include "devin_orch/core/concurrency_groups.hpp"
#include "devin_orch/core/spending_guard.hpp"
#include "devin_orch/store/types.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

// What the database says of the queue at `now_ms`.
struct QueueConditions {
  std::int64_t now_ms = 0;
  std::map<std::string, std::string, std::less<>> paused_orgs;  // org ("*": all) -> reason
  std::vector<store::UserPause> paused_users;
  std::vector<store::OrgHold> holds;                       // those still in force
  std::map<std::string, int, std::less<>> sessions;        // per org: jobs creating or running
  std::map<std::string, int, std::less<>> creating;        // per org: jobs creating
  int max_active_sessions = 0;
  int max_concurrent_creates = 0;
  // spending.*'s budgets with the jobs charged since core::ledger_since; no budget: never held
  // for it.
  core::SpendingLedger spending;
  // The config's `concurrency:` with the jobs creating or running per limited key.
  core::ConcurrencyGroups concurrency;
  bool daemon_working = false;  // a daemon holds the queue's lease
};

struct WaitingReason {
  // In the order they are checked: the first that applies is the answer.
  enum class Code {
    all_paused,              // `pause --all`
    org_paused,              // the job's organisation (by an operator or the daemon)
    user_paused,             // the job's create_as_user_id ran out of quota
    scheduled,               // not_before is ahead
    org_held,                // the server asked for a wait (Retry-After on a 429, a 503, ...)
    acu_budget,              // its max_acu_limit would pass its organisation's or key's ACU budget
    concurrency_group,       // its concurrency_key's group has max_active jobs active
    max_active_sessions,     // the organisation has that many sessions creating or running
    max_concurrent_creates,  // the organisation has that many creates in flight
    no_daemon,               // no daemon holds the queue's lease
    ready,                   // nothing holds it back: it starts at the next dispatch
  };
  Code code = Code::ready;
  std::optional<std::int64_t> until_ms;  // scheduled, org_held, acu_budget (the window's end)
  std::string text;                      // one line, e.g. "scheduled until 2026-01-02T09:00:00Z"
};

std::string_view to_string(WaitingReason::Code code) noexcept;  // "all_paused", ...

// For a job in state queued (any other state has no such reason).
WaitingReason waiting_reason(const store::JobSummary& job, const QueueConditions& conditions);

}  // namespace devin_orch::app
