// A batch run's (`run --until-idle`) account of itself while it waits: why it cannot end yet
// (jobs scheduled for later, pauses, waits the server announced, notifications not delivered
// yet), logged when that changes, and
// a progress line of the jobs by state at a fixed period; core::UntilIdleReport decides when.
// Private to the app module.
#pragma once

#include "notifier.hpp"
#include "org_gates.hpp"
#include "parts.hpp"

#include "devin_orch/core/until_idle_report.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace devin_orch::app::detail {

// The pauses that keep queued jobs back, each described: "every organisation (REASON)",
// "ORG (REASON)", "ORG jobs created as USER"; sorted.
std::vector<std::string> describe_pauses(const OrgGates& gates);

class UntilIdleReporter {
 public:
  UntilIdleReporter(Services& services, const OrgGates& gates, Notifier& notifier,
                    core::Duration progress_every);

  // Looks at the queue and the gates (once a second is plenty) and logs what is due.
  void look();

 private:
  std::optional<core::ScheduledStarts> scheduled_starts(std::int64_t queued, TimePoint now);

  Services& services_;
  const OrgGates& gates_;
  Notifier& notifier_;
  core::UntilIdleReport report_;
  // The scheduled starts as last read, and the queued count then: read again only when that
  // count moved or the next start came, as it means reading every queued job.
  std::optional<core::ScheduledStarts> scheduled_;
  std::optional<std::int64_t> scheduled_read_at_count_;
};

}  // namespace devin_orch::app::detail
