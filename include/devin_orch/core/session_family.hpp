// Parent and child sessions (reference §12): which sessions belong to another session, and how
// a job's ACUs count its session's children. Pure functions; the poller and the CLI apply them.
#pragma once

#include "devin_orch/core/session.hpp"

#include <span>

namespace devin_orch::core {

// A session with parent_session_id set was spawned by another session (child_playbook_id or
// batch work) and carries its parent's tags, the job's creation tag included. It is never a
// duplicate of the job's session: duplicate detection (several sessions with one job's tag)
// must leave it alone. An empty parent id counts as none, as a tolerant reader does.
bool is_child_of_another(const Session& session) noexcept;

// How the API reports a parent's acus_consumed. The reference does not say whether it includes
// the children's; devin-sim reports each session's own (config jobs.parent_acus_include_children).
enum class ParentAcus { separate, include_children };

// A job's ACUs: its session's own figure, the sum of its children's, and the total reported.
struct JobAcus {
  double own = 0.0;       // the parent session's acus_consumed as the API gave it
  double children = 0.0;  // the sum of its children's acus_consumed
  double total = 0.0;     // what `show` and the metrics report

  bool operator==(const JobAcus&) const = default;
};

// The rule: `separate` adds the two (the children used ACUs the parent's figure does not
// hold). `include_children` never adds them: the parent's figure already counts its children,
// so the total is the larger of the two; the children's sum wins only when the parent's figure
// lags it (the two are read at different moments), and is then the better lower bound.
// Negative figures (an API bug) count as zero rather than making a job cheaper.
JobAcus job_acus(double own, double children, ParentAcus reporting) noexcept;

// The sum of the children's last known figures (negatives as zero).
double children_acus(std::span<const double> figures) noexcept;

}  // namespace devin_orch::core
