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
  // Durable once it returns.
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
};

}  // namespace devin_orch::store
