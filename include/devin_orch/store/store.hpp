// The store as a whole: one object that serves every audience (the outbox too), and the factory that opens
// it. Callers keep only the interface they need (QueueStore& and ChangeFeed& in the daemon,
// OperatorStore& in the CLI, JobIntake& in the job loaders), so no backend type reaches them.
#pragma once

#include "devin_orch/store/change_feed.hpp"
#include "devin_orch/store/error.hpp"
#include "devin_orch/store/job_intake.hpp"
#include "devin_orch/store/operator_store.hpp"
#include "devin_orch/store/outbox_store.hpp"
#include "devin_orch/store/queue_store.hpp"
#include "devin_orch/store/types.hpp"

#include <memory>

namespace devin_orch::store {

class Store : public QueueStore, public OperatorStore, public ChangeFeed, public OutboxStore {
 public:
  // The calls both audiences have, declared once more so that calling one on a Store is not
  // ambiguous. Their contracts are QueueStore's and OperatorStore's.
  StoreResult<std::optional<core::JobRecord>> find(std::string_view key) override = 0;
  StoreResult<std::map<core::JobState, std::int64_t>> count_by_state() override = 0;
  StoreResult<std::optional<core::LeaseHolder>> read_lease(std::string_view name) override = 0;
  StoreResult<std::vector<NamedLease>> list_leases(std::string_view prefix) override = 0;
  StoreResult<void> pause_org(std::string_view org_id, std::string_view reason,
                              std::string_view source, core::TimePoint now) override = 0;
  StoreResult<std::map<std::string, std::string>> paused_orgs() override = 0;
  StoreResult<std::vector<UserPause>> paused_users() override = 0;
  StoreResult<std::vector<OrgHold>> org_holds(core::TimePoint now) override = 0;
  StoreResult<std::vector<SpendingRow>> spending_since(core::TimePoint since) override = 0;

  JobIntake& intake() noexcept { return *this; }
  QueueStore& queue() noexcept { return *this; }
  OperatorStore& operators() noexcept { return *this; }
  ChangeFeed& changes() noexcept { return *this; }
  OutboxStore& outbox() noexcept { return *this; }
};

// Opens (creating if needed) and migrates the database `options` names. Errors: invalid_argument
// for unusable options, a storage errc when the database cannot be opened or migrated; the
// detail says why in the backend's words. Logs nothing: the caller reports.
StoreResult<std::unique_ptr<Store>> open_store(const StoreOptions& options);

}  // namespace devin_orch::store
