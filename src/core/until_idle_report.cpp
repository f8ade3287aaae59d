// When a batch run says why it waits and how far it got (see the header).
#include "devin_orch/core/until_idle_report.hpp"

#include <algorithm>

namespace devin_orch::core {
namespace {

bool same_reasons(const UntilIdleReasons& a, const UntilIdleReasons& b) {
  const auto same_org = [](const ServerWait& x, const ServerWait& y) {
    return x.org_id == y.org_id && x.creates_only == y.creates_only;
  };
  return a.scheduled == b.scheduled && a.paused == b.paused &&
         std::ranges::equal(a.server_waits, b.server_waits, same_org) &&
         (a.notifications_pending > 0) == (b.notifications_pending > 0);
}

}  // namespace

UntilIdleReport::Say UntilIdleReport::observe(const UntilIdleReasons& reasons, TimePoint now) {
  Say say;
  say.reasons = !reasons.empty() && !same_reasons(reasons, said_);
  said_ = reasons;
  if (progress_every_ > Duration{0}) {
    if (!last_progress_) {
      last_progress_ = now;
    } else if (now - *last_progress_ >= progress_every_) {
      say.progress = true;
      last_progress_ = now;
    }
  }
  return say;
}

}  // namespace devin_orch::core
