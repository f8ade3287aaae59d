// JobIntake: how jobs enter the queue: the producers' inserts (job files, `enqueue`, a fan-out's
// children). Shared by the daemon's and the operator's interfaces, and all a job loader needs.
// Pure virtual; never fenced by the daemon's lease, like a producer's own INSERT.
#pragma once

#include "devin_orch/store/error.hpp"
#include "devin_orch/store/types.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {

// Errors: a storage errc (with the backend's words in Error::detail), invalid_argument for a
// bad key. A failed call adds nothing.
class JobIntake {
 public:
  virtual ~JobIntake() = default;

  // `source` says where a definition came from ("file:jobs.yaml", "queue", "cli"). The key
  // must be 1..512 characters (invalid_argument otherwise). The spec is stored in its canonical
  // encoding and not validated here: one that does not decode is moved to `invalid` by the
  // daemon's claimable(), like a producer's raw insert. `parent_key` marks a fan-out child.
  // A key that exists keeps its job as it is (unchanged, or changed: reported, not applied),
  // except a job in state `invalid` given a different definition: that definition replaces
  // the stored one (org_id, priority, spec, controls and source), the job is queued again with
  // last_error and finished_at cleared, and its history gains a "mended" entry (state queued)
  // whose message is store::mend_message (mend.hpp). Durable once it returns.
  virtual StoreResult<AddResult> add_job(
      const core::JobDefinition& definition, std::string_view source, core::TimePoint now,
      const std::optional<std::string>& parent_key = std::nullopt) = 0;
  // Many definitions in one transaction (one durable commit for a whole job file); all or none.
  virtual StoreResult<std::vector<AddResult>> add_jobs(
      std::span<const core::JobDefinition> definitions, std::string_view source,
      core::TimePoint now) = 0;
  // Records a definition that could not be used, as state `invalid` with `reason`. A key that
  // already exists is left alone (returns unchanged).
  virtual StoreResult<AddResult> add_invalid(std::string_view key, std::string_view source,
                                             std::string_view reason, core::TimePoint now) = 0;
  // The job stored under `key`, if any, so a producer can say how its definition differs. A
  // record whose spec does not decode (e.g. `invalid`) has a default spec.
  virtual StoreResult<std::optional<core::JobRecord>> find(std::string_view key) = 0;
};

}  // namespace devin_orch::store
