// What a batch run (`run --until-idle`) says while it waits: a line when the reasons it cannot
// end yet change (jobs scheduled for later, pauses, waits the server announced, notifications
// not delivered yet), and a progress
// line at a fixed period. Pure: the daemon hands in what it sees and the time.
#pragma once

#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::core {

// Queued jobs that wait for their start time (not_before), and the earliest of them.
struct ScheduledStarts {
  std::int64_t count = 0;
  std::string next_key;
  TimePoint next_at{};
  bool operator==(const ScheduledStarts&) const = default;
};

// An organisation the server asked to wait (Retry-After, a 429's backoff), or whose creates
// wait at its concurrency cap.
struct ServerWait {
  std::string org_id;
  TimePoint until{};
  bool creates_only = false;  // the concurrency cap: polls go on
};

struct UntilIdleReasons {
  std::optional<ScheduledStarts> scheduled;
  // Pauses that keep queued jobs back, each described ("org-a (budget review)"), sorted.
  std::vector<std::string> paused;
  std::vector<ServerWait> server_waits;  // by org_id
  // Notifications not delivered yet (events to route, deliveries pending), when they are what
  // the run waits for: no job in flight or ready to start. 0: none, or not the reason.
  std::int64_t notifications_pending = 0;

  bool empty() const noexcept {
    return !scheduled && paused.empty() && server_waits.empty() && notifications_pending == 0;
  }
};

class UntilIdleReport {
 public:
  // `progress_every`: the period of the progress line; zero or less: none.
  explicit UntilIdleReport(Duration progress_every) noexcept : progress_every_{progress_every} {}

  struct Say {
    bool reasons = false;   // log the reasons: they appeared or changed
    bool progress = false;  // log the progress line
  };

  // What to log now. Reasons count as changed when a scheduled count, next job or start
  // time, a pause, or the set of organisations the server holds changes, or notifications
  // become what the run waits for; a hold growing longer (a 429 storm) and the notifications'
  // count going down (progress says that) are not changes worth a line. Reasons that went away say nothing, but
  // the same ones coming back are said again. The first progress line comes one period after
  // the first look.
  Say observe(const UntilIdleReasons& reasons, TimePoint now);

 private:
  Duration progress_every_;
  UntilIdleReasons said_;
  std::optional<TimePoint> last_progress_;
};

}  // namespace devin_orch::core
