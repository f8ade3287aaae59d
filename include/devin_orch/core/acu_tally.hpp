// How much of a job's ACUs a running counter has yet to count: the job's figures (its session's
// own acus_consumed and its children's sum, both cumulative, read by different polls) turned into
// increments that never go down and never count an ACU twice. Pure; the poller keeps one per job.
#pragma once

#include "devin_orch/core/session_family.hpp"

namespace devin_orch::core {

class AcuTally {
 public:
  // `reattached`: the session was tracked by an earlier process, which counted what it had used
  // up to its last poll. The first reading of each figure is then a baseline, not consumption:
  // what was used between that process's last poll and this one's first is not counted, so a
  // restart may miss a little but never counts anything twice (a counter restarting at 0 is what
  // Prometheus expects; one that jumps by a job's whole history is not).
  AcuTally(ParentAcus reporting, bool reattached) noexcept;

  // A poll read the session's own figure, or its children's sum (core::children_acus). Each
  // answers the ACUs to add to the counter now: finite and never negative. A figure that falls
  // (a server's correction) adds nothing until the total passes what was already counted; a
  // non-finite figure is ignored.
  double own(double figure) noexcept;
  double children(double sum) noexcept;

  // What has been counted so far, baselines included.
  double counted() const noexcept { return counted_; }

 private:
  double settle(bool baseline) noexcept;

  ParentAcus reporting_;
  double own_ = 0.0;
  double children_ = 0.0;
  double counted_ = 0.0;
  bool own_is_baseline_;
  bool children_is_baseline_;
};

}  // namespace devin_orch::core
