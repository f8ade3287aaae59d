// Internal to the store: which lease terms a fenced write must find unchanged, the same for
// every backend. Each backend reads the lease rows (and the orgs of the jobs a write touches)
// under its own lock; this only decides what to compare them with.
#pragma once

#include "devin_orch/store/types.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::store {

// What one fenced write is about: jobs (by id) and organisations. Neither: the queue as a whole
// (retention, the outbox).
struct FenceScope {
  std::vector<std::int64_t> job_ids;
  std::vector<std::string> orgs;
};

// One lease row a write needs: the row `lease` must have the fence's owner and `epoch`.
struct FenceTerm {
  std::string lease;
  std::int64_t epoch = 0;
};

// The terms to check, or the name of a lease the owner does not hold at all (then the write is
// refused without reading anything). `orgs` are the organisations the write touches, with the
// orgs of its jobs resolved (a job naming none counted as Fence::orgs->default_org).
struct FenceCheck {
  std::vector<FenceTerm> terms;
  std::optional<std::string> refused;
};

FenceCheck fence_terms(const Fence& fence, const std::set<std::string>& orgs);

// The scope of a write about these rows' jobs (IntentWrite, StatusUpdate, ...).
template <class Rows>
FenceScope jobs_scope(const Rows& rows) {
  FenceScope scope;
  for (const auto& row : rows) scope.job_ids.push_back(row.job_id);
  return scope;
}
inline FenceScope job_scope(std::int64_t job_id) { return FenceScope{.job_ids = {job_id}}; }
inline FenceScope org_scope(std::string_view org_id) {
  return FenceScope{.orgs = {std::string(org_id)}};
}

}  // namespace devin_orch::store
