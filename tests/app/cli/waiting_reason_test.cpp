// waiting_reason: which condition explains a queued job when several hold, and which do not
// count (a lapsed hold, a past not_before, another organisation's or user's pause).
#include "devin_orch/app/cli/waiting_reason.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <utility>
#include <vector>

namespace devin_orch::app {
namespace {

using Code = WaitingReason::Code;

constexpr std::int64_t kNow = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

store::JobSummary queued_job() {
  return store::JobSummary{.key = "k",
                           .state = core::JobState::queued,
                           .org_id = "org-a",
                           .not_before_ms = kNow + 60'000,
                           .create_as_user_id = "bob",
                           .max_acu_limit = 3,
                           .concurrency_key = "repo:acme/backend"};
}

// repo:* allows 2 per key; repo:acme/backend has 2 active.
core::ConcurrencyGroups full_backend_group() {
  core::ConcurrencyGroups groups{{{"repo:*", 2}}};
  groups.reload({{"repo:acme/backend", 2}});
  return groups;
}

// Three live jobs of org-a reserving 3 ACUs each today.
SpendingCharges nine_acus_today() {
  SpendingCharges charges;
  for (std::int64_t id = 1; id <= 3; ++id) {
    charges["org-a"].push_back({.job_id = id, .charged_at = core::from_epoch_ms(kNow + 1'000),
                                .limit = 3.0, .live = true});
  }
  return charges;
}

core::SpendingLedger ledger(core::SpendingBudgets budgets, SpendingCharges charges) {
  core::SpendingLedger ledger{std::move(budgets)};
  ledger.reload(std::move(charges));
  return ledger;
}

// Everything that can hold org-a's job back, at once.
QueueConditions everything() {
  return QueueConditions{
      .now_ms = kNow,
      .paused_orgs = {{"*", "incident"}, {"org-a", "maintenance"}},
      .paused_users = {{.org_id = "org-a", .user_id = "bob", .reason = "quota"}},
      .holds = {{.org_id = "org-a", .until_ms = kNow + 5'000, .reason = "HTTP 503"}},
      .sessions = {{"org-a", 2}},
      .creating = {{"org-a", 1}},
      .max_active_sessions = 2,
      .max_concurrent_creates = 1,
      .spending = ledger({.defaults = {.per_day = 10.0}}, nine_acus_today()),
      .concurrency = full_backend_group(),
      .daemon_working = false,
  };
}

TEST(WaitingReason, TheFirstConditionThatHoldsIsTheAnswer) {
  auto conditions = everything();
  auto job = queued_job();
  // Remove the winner each time: the next one in the documented order answers.
  const std::vector<std::pair<Code, std::function<void()>>> steps{
      {Code::all_paused, [&] { conditions.paused_orgs.erase("*"); }},
      {Code::org_paused, [&] { conditions.paused_orgs.clear(); }},
      {Code::user_paused, [&] { conditions.paused_users.clear(); }},
      {Code::scheduled, [&] { job.not_before_ms.reset(); }},
      {Code::org_held, [&] { conditions.holds.clear(); }},
      {Code::acu_budget,
       [&] { conditions.spending = ledger({.defaults = {.per_day = 12.0}}, nine_acus_today()); }},
      {Code::concurrency_group, [&] { conditions.concurrency.reload({{"repo:acme/backend", 1}}); }},
      {Code::max_active_sessions, [&] { conditions.sessions["org-a"] = 1; }},
      {Code::max_concurrent_creates, [&] { conditions.creating.clear(); }},
      {Code::no_daemon, [&] { conditions.daemon_working = true; }},
  };
  for (const auto& [expected, remove] : steps) {
    EXPECT_EQ(waiting_reason(job, conditions).code, expected) << to_string(expected);
    remove();
  }
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
}

TEST(WaitingReason, AFullConcurrencyGroupNamesItsKeyAndCount) {
  const QueueConditions conditions{.now_ms = kNow,
                                   .max_active_sessions = 10,
                                   .max_concurrent_creates = 10,
                                   .concurrency = full_backend_group(),
                                   .daemon_working = true};
  auto job = queued_job();
  job.not_before_ms.reset();
  const auto reason = waiting_reason(job, conditions);
  EXPECT_EQ(reason.code, Code::concurrency_group);
  EXPECT_EQ(to_string(reason.code), "concurrency_group");
  EXPECT_EQ(reason.text,
            "concurrency:repo:acme/backend 2/2 active, waiting for a place (concurrency: key "
            "'repo:*')");
  // Another key of the same pattern has its own count; a job without a key is never held.
  job.concurrency_key = "repo:acme/web";
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
  job.concurrency_key.reset();
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
}

TEST(WaitingReason, TimesAreGivenAndOnlyFutureOnesCount) {
  QueueConditions conditions{.now_ms = kNow, .max_active_sessions = 5,
                             .max_concurrent_creates = 2, .daemon_working = true};
  auto job = queued_job();
  auto reason = waiting_reason(job, conditions);
  EXPECT_EQ(reason.code, Code::scheduled);
  EXPECT_EQ(reason.until_ms, kNow + 60'000);
  EXPECT_EQ(reason.text, "scheduled until 2026-01-01T00:01:00Z");

  job.not_before_ms = kNow;  // due now
  conditions.holds = {{.org_id = "org-a", .until_ms = kNow + 1'500, .reason = ""}};
  reason = waiting_reason(job, conditions);
  EXPECT_EQ(reason.code, Code::org_held);
  EXPECT_EQ(reason.until_ms, kNow + 1'500);
  EXPECT_EQ(reason.text, "organisation held by the server until 2026-01-01T00:00:01.500Z");

  conditions.holds.front().until_ms = kNow;  // lapsed
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
}

TEST(WaitingReason, TheBudgetSaysWhatIsCommittedAndWhenTheWindowRollsOver) {
  QueueConditions conditions{.now_ms = kNow + 5'000, .max_active_sessions = 5,
                             .max_concurrent_creates = 2,
                             .spending = ledger({.defaults = {.per_day = 10.0}}, nine_acus_today()),
                             .daemon_working = true};
  auto job = queued_job();
  job.not_before_ms.reset();
  auto reason = waiting_reason(job, conditions);
  EXPECT_EQ(reason.code, Code::acu_budget);
  EXPECT_EQ(reason.until_ms, kNow + 86'400'000);
  EXPECT_EQ(reason.text,
            "waiting for the ACU budget: 9 of 10 ACUs committed today, the job reserves 3 "
            "(spending.acus_per_day) until 2026-01-02T00:00:00Z");
  // A job small enough for what is left goes; another organisation's spending does not count.
  job.max_acu_limit = 1;
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
  job.max_acu_limit = 3;
  job.org_id = "org-b";
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
  // The next day, the same jobs no longer count.
  job.org_id = "org-a";
  conditions.now_ms = kNow + 86'400'000;
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
}

// A key budget (spending.concurrency_keys) counts the key's jobs in every organisation and is
// named with its pattern; an organisation's own budget is named as such.
TEST(WaitingReason, AKeyBudgetOrAnOrganisationsOwnBudgetIsNamed) {
  SpendingCharges charges;
  charges["org-b"].push_back({.job_id = 1, .charged_at = core::from_epoch_ms(kNow + 1'000),
                              .limit = 3.0, .live = true, .concurrency_key = "repo:acme/backend"});
  charges["org-c"].push_back({.job_id = 2, .charged_at = core::from_epoch_ms(kNow + 1'000),
                              .limit = 3.0, .live = true, .concurrency_key = "repo:acme/backend"});
  QueueConditions conditions{
      .now_ms = kNow + 5'000,
      .max_active_sessions = 5,
      .max_concurrent_creates = 2,
      .spending = ledger({.keys = {{.pattern = "repo:*", .per_day = 6.0}}}, charges),
      .daemon_working = true};
  auto job = queued_job();  // org-a, repo:acme/backend, 3 ACUs
  job.not_before_ms.reset();
  auto reason = waiting_reason(job, conditions);
  EXPECT_EQ(reason.code, Code::acu_budget);
  EXPECT_EQ(reason.until_ms, kNow + 86'400'000);
  EXPECT_EQ(reason.text,
            "waiting for the ACU budget of key repo:acme/backend: 6 of 6 ACUs committed today, "
            "the job reserves 3 (spending.concurrency_keys \"repo:*\" acus_per_day) until "
            "2026-01-02T00:00:00Z");
  job.concurrency_key = "repo:acme/web";
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready) << "another key, its own budget";
  job.concurrency_key.reset();
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);

  conditions.spending = ledger({.defaults = {.per_day = 20.0},
                                .organizations = {{"org-a", {.per_day = 10.0}}}},
                               nine_acus_today());
  EXPECT_EQ(waiting_reason(job, conditions).text,
            "waiting for the ACU budget: 9 of 10 ACUs committed today, the job reserves 3 "
            "(spending.organizations.org-a.acus_per_day) until 2026-01-02T00:00:00Z");
}

TEST(WaitingReason, OnlyTheJobsOwnOrganisationAndUserCount) {
  QueueConditions conditions{
      .now_ms = kNow,
      .paused_orgs = {{"org-b", "other"}},
      .paused_users = {{.org_id = "org-b", .user_id = "bob", .reason = "quota"},
                       {.org_id = "org-a", .user_id = "alice", .reason = "quota"}},
      .holds = {{.org_id = "org-b", .until_ms = kNow + 5'000}},
      .sessions = {{"org-b", 9}},
      .creating = {{"org-b", 9}},
      .max_active_sessions = 5,
      .max_concurrent_creates = 2,
      .daemon_working = true};
  auto job = queued_job();
  job.not_before_ms.reset();
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
  job.create_as_user_id.reset();
  EXPECT_EQ(waiting_reason(job, conditions).code, Code::ready);
}

}  // namespace
}  // namespace devin_orch::app
