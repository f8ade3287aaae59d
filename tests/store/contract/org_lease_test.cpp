// Contract: leases per organisation. Two connections play two daemons that split the
// organisations; each one's writes are fenced by the lease of the organisation they touch, so a
// daemon can never write for an organisation it does not hold, while its other organisations'
// writes go on.
#include "contract.hpp"

#include "devin_orch/core/org_spread.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace devin_orch::store::contract {
namespace {

using core::JobState;

constexpr core::Duration kTtl{15'000};

class OrgLeaseContract : public StoreContract {
 protected:
  void SetUp() override {
    StoreContract::SetUp();
    if (HasFatalFailure()) return;  // no database: the failure says why
    a_ = connect();
    b_ = connect();
    ASSERT_TRUE(a_ && b_);
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    StoreContract::TearDown();
  }

  std::int64_t add(const std::string& key, std::optional<std::string> org) {
    core::JobDefinition definition{.key = key, .org_id = std::move(org)};
    definition.spec.prompt = "do " + key;
    EXPECT_TRUE(a_->add_job(definition, "test", at(1)));
    return a_->find(key).value()->id;
  }

  // `store` takes org `org`'s lease as `owner`; returns the epoch.
  std::int64_t take(Store& store, const std::string& org, const std::string& owner,
                    std::int64_t now_ms) {
    const auto answer = store.acquire_lease(core::org_lease_name(org), owner, kTtl, at(now_ms));
    EXPECT_TRUE(answer && answer->granted);
    return answer ? answer->holder.epoch : 0;
  }

  // A fence by organisation; the default org is "o1".
  static Fence fence(const std::string& owner, std::map<std::string, std::int64_t> epochs) {
    Fence fence{.owner = owner, .orgs = OrgTerms{.default_org = "o1", .epochs = epochs}};
    if (const auto it = epochs.find("o1"); it != epochs.end()) {
      fence.name = core::org_lease_name("o1");
      fence.epoch = it->second;
    }
    return fence;
  }

  std::unique_ptr<Store> a_;
  std::unique_ptr<Store> b_;
};

TEST_P(OrgLeaseContract, EachDaemonWritesOnlyForTheOrgsItHolds) {
  const std::int64_t one = add("job-o1", "o1");
  const std::int64_t plain = add("job-default", std::nullopt);  // o1's: the default org
  const std::int64_t two = add("job-o2", "o2");
  std::vector<std::string> refused_a;
  std::vector<std::string> refused_b;
  a_->set_fence(fence("a", {{"o1", take(*a_, "o1", "a", 1'000)}}),
                [&refused_a](const std::string& lease) { refused_a.push_back(lease); });
  b_->set_fence(fence("b", {{"o2", take(*b_, "o2", "b", 1'000)}}),
                [&refused_b](const std::string& lease) { refused_b.push_back(lease); });

  EXPECT_TRUE(commit_intent(*a_, one, 1, "t1", 1'000, at(1'100)));
  EXPECT_TRUE(commit_intent(*a_, plain, 1, "t0", 1'000, at(1'100)));
  EXPECT_EQ(commit_intent(*a_, two, 1, "t2", 1'000, at(1'100)).error(), errc::lease_lost);
  EXPECT_EQ(refused_a, std::vector<std::string>{"org:o2"});
  EXPECT_TRUE(commit_intent(*b_, two, 1, "t2", 1'000, at(1'200)));
  EXPECT_EQ(b_->note_error(one, "not mine", at(1'200)).error(), errc::lease_lost);
  EXPECT_EQ(b_->finish(plain, JobState::dead, "not mine", at(1'200)).error(), errc::lease_lost);
  EXPECT_EQ(refused_b, (std::vector<std::string>{"org:o1", "org:o1"}));

  EXPECT_EQ(a_->find("job-o2").value()->attempts, 1);  // b's claim, not a's
  EXPECT_FALSE(a_->find("job-o1").value()->last_error);
  EXPECT_EQ(a_->find("job-default").value()->state, JobState::creating);
}

TEST_P(OrgLeaseContract, ABatchTouchingAnOrgNotHeldWritesNothing) {
  const std::int64_t one = add("job-o1", "o1");
  const std::int64_t two = add("job-o2", "o2");
  // Running, driven by a connection without a fence (as the previous owner did).
  for (const std::int64_t id : {one, two}) {
    ASSERT_TRUE(commit_intent(queue(), id, 1, "t" + std::to_string(id), 1'000, at(1'000)));
    ASSERT_TRUE(commit_session(queue(), id, session("s" + std::to_string(id), "running"),
                               false, at(1'000)));
  }
  a_->set_fence(fence("a", {{"o1", take(*a_, "o1", "a", 1'000)}}));
  const std::vector<StatusUpdate> updates{
      {.job_id = one, .session = session("s" + std::to_string(one), "blocked", "waiting_for_user")},
      {.job_id = two, .session = session("s" + std::to_string(two), "blocked", "waiting_for_user")}};
  EXPECT_EQ(a_->record_statuses(updates, at(2'000)).error(), errc::lease_lost);
  EXPECT_EQ(a_->find("job-o1").value()->status, "running");
  // Its own org's part alone goes through.
  EXPECT_TRUE(a_->record_statuses(std::span{updates}.first(1), at(2'000)));
  EXPECT_EQ(a_->find("job-o1").value()->status, "blocked");
  EXPECT_EQ(a_->find("job-o2").value()->status, "running");
}

TEST_P(OrgLeaseContract, AnOrgWhoseLeaseLapsedAndMovedIsLostTheOthersGoOn) {
  const std::int64_t one = add("job-o1", "o1");
  const std::int64_t two = add("job-o2", "o2");
  const std::int64_t e1 = take(*a_, "o1", "a", 1'000);
  const std::int64_t e2 = take(*a_, "o2", "a", 1'000);
  a_->set_fence(fence("a", {{"o1", e1}, {"o2", e2}}));
  // a stops renewing o2 (it cannot reach the database for it, say); b takes it after the lapse.
  ASSERT_TRUE(a_->renew_lease(core::org_lease_name("o1"), "a", e1, kTtl, at(16'000))->granted);
  EXPECT_FALSE(b_->acquire_lease(core::org_lease_name("o1"), "b", kTtl, at(17'000))->granted);
  const std::int64_t b2 = take(*b_, "o2", "b", 17'000);
  EXPECT_EQ(b2, e2 + 1);
  b_->set_fence(fence("b", {{"o2", b2}}));

  EXPECT_EQ(a_->note_error(two, "stale", at(17'100)).error(), errc::lease_lost);
  EXPECT_TRUE(a_->note_error(one, "mine", at(17'100)));
  EXPECT_TRUE(b_->note_error(two, "now mine", at(17'200)));
  EXPECT_EQ(a_->find("job-o2").value()->last_error, "now mine");
}

TEST_P(OrgLeaseContract, PausesAndHoldsAreFencedByTheirOrgsLease) {
  a_->set_fence(fence("a", {{"o1", take(*a_, "o1", "a", 1'000)}}));
  EXPECT_EQ(a_->pause_org("o2", "402", "daemon", at(2'000)).error(), errc::lease_lost);
  EXPECT_EQ(a_->hold_org("o2", at(60'000), "429", at(2'000)).error(), errc::lease_lost);
  EXPECT_EQ(a_->pause_user("o2", "u", "limit", at(2'000)).error(), errc::lease_lost);
  EXPECT_TRUE(a_->paused_orgs().value().empty());
  EXPECT_TRUE(a_->pause_org("o1", "402", "daemon", at(2'000)));
  EXPECT_TRUE(a_->hold_org("o1", at(60'000), "429", at(2'000)));
  EXPECT_EQ(a_->paused_orgs().value().size(), 1u);
}

// Retention and the outbox concern no one organisation: the default org's holder does them.
TEST_P(OrgLeaseContract, WritesAboutNoOrgNeedTheDefaultOrgsLease) {
  b_->set_fence(fence("b", {{"o2", take(*b_, "o2", "b", 1'000)}}));
  EXPECT_EQ(b_->prune_ended(at(2'000), at(2'000), 10).error(), errc::lease_lost);
  a_->set_fence(fence("a", {{"o1", take(*a_, "o1", "a", 1'000)}}));
  EXPECT_TRUE(a_->prune_ended(at(2'000), at(2'000), 10));
}

// A job's uploaded attachment is recorded by the holder of the job's organisation, whoever holds
// the default org: fenced by the default org instead, a daemon holding only other organisations
// failed every record and uploaded the file again at each dispatch.
TEST_P(OrgLeaseContract, AnAttachmentUrlIsFencedByItsJobsOrg) {
  const std::int64_t one = add("job-o1", "o1");
  const std::int64_t two = add("job-o2", "o2");
  b_->set_fence(fence("b", {{"o2", take(*b_, "o2", "b", 1'000)}}));
  EXPECT_TRUE(b_->record_attachment_url(two, "notes.txt", "https://files/two", at(2'000)));
  EXPECT_EQ(b_->record_attachment_url(one, "notes.txt", "https://files/one", at(2'000)).error(),
            errc::lease_lost);
  EXPECT_EQ(a_->attachment_urls(two).value().at("notes.txt"), "https://files/two");
  EXPECT_TRUE(a_->attachment_urls(one).value().empty());
}

TEST_P(OrgLeaseContract, AWriteForJobsThatAreGoneNeedsNoLease) {
  a_->set_fence(fence("a", {{"o2", take(*a_, "o2", "a", 1'000)}}));
  const std::vector<StatusUpdate> updates{{.job_id = 424242, .session = session("s", "finished")}};
  EXPECT_TRUE(a_->record_statuses(updates, at(2'000)));
}

TEST_P(OrgLeaseContract, ClaimsSeeOnlyTheOrgsHeld) {
  add("job-o1", "o1");
  add("job-default", std::nullopt);
  add("job-o2", "o2");
  add("job-o3", "o3");
  const auto keys = [](const std::vector<core::JobRecord>& jobs) {
    std::vector<std::string> out;
    for (const auto& job : jobs) out.push_back(job.definition.key);
    return out;
  };
  ClaimFilter only_o1{.default_org = "o1", .only_orgs = std::vector<std::string>{"o1"}};
  EXPECT_EQ(keys(a_->claimable(at(2'000), 10, only_o1).value()),
            (std::vector<std::string>{"job-o1", "job-default"}));
  ClaimFilter o2_and_o3{.default_org = "o1",
                        .only_orgs = std::vector<std::string>{"o2", "o3"}};
  EXPECT_EQ(keys(a_->claimable(at(2'000), 10, o2_and_o3).value()),
            (std::vector<std::string>{"job-o2", "job-o3"}));
  // With pauses beside it: both filters apply.
  o2_and_o3.paused_orgs = {"o3"};
  EXPECT_EQ(keys(a_->claimable(at(2'000), 10, o2_and_o3).value()),
            (std::vector<std::string>{"job-o2"}));
  o2_and_o3.paused_users = {{"o2", "nobody"}};
  EXPECT_EQ(keys(a_->claimable(at(2'000), 10, o2_and_o3).value()),
            (std::vector<std::string>{"job-o2"}));
  EXPECT_EQ(a_->oldest_startable_since_ms(at(2'000), o2_and_o3).value(), 1);
  ClaimFilter none{.default_org = "o1", .only_orgs = std::vector<std::string>{}};
  EXPECT_TRUE(a_->claimable(at(2'000), 10, none).value().empty());
  EXPECT_FALSE(a_->oldest_startable_since_ms(at(2'000), none).value());
}

TEST_P(OrgLeaseContract, LeasesAreListedByPrefixAndOrgsWithWorkByName) {
  take(*a_, "o2", "a", 1'000);
  take(*b_, "o1", "b", 2'000);
  ASSERT_TRUE(a_->acquire_lease(core::daemon_registry_name("a"), "a", kTtl, at(1'000)));
  ASSERT_TRUE(a_->acquire_lease("queue", "a", kTtl, at(1'000)));
  const auto orgs = operators().list_leases("org:").value();
  ASSERT_EQ(orgs.size(), 2u);
  EXPECT_EQ(orgs[0], (NamedLease{.name = "org:o1",
                                 .holder = {.owner = "b", .epoch = 1, .expires_at_ms = 17'000}}));
  EXPECT_EQ(orgs[1].name, "org:o2");
  EXPECT_EQ(orgs[1].holder.owner, "a");
  const auto daemons = queue().list_leases("daemon:").value();
  ASSERT_EQ(daemons.size(), 1u);
  EXPECT_EQ(daemons[0].holder.owner, "a");
  // A prefix is text, not a pattern.
  EXPECT_TRUE(queue().list_leases("org_").value().empty());
  EXPECT_TRUE(queue().list_leases("%").value().empty());

  EXPECT_TRUE(queue().orgs_with_work("o1").value().empty());
  add("job-o3", "o3");
  add("job-default", std::nullopt);
  const std::int64_t ended = add("job-o2", "o2");
  ASSERT_TRUE(queue().finish(ended, JobState::cancelled, "", at(3'000)));
  EXPECT_EQ(queue().orgs_with_work("o1").value(), (std::vector<std::string>{"o1", "o3"}));
}

}  // namespace

DEVIN_ORCH_STORE_CONTRACT(OrgLeaseContract);

}  // namespace devin_orch::store::contract
