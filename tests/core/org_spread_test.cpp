// Step tests of OrgSpread: the fair share of organisations over the live daemons, taking free
// and lapsed leases, handing over extras when a daemon joins, taking a dead daemon's orgs once
// their leases lapse, and orphans taken beyond the share.
#include "devin_orch/core/org_spread.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using Orgs = std::vector<std::string>;

MonotonicTime at(std::int64_t ms) { return MonotonicTime{Duration{ms}}; }

const SpreadPolicy kPolicy{.look_every = Duration{1'000}, .orphan_grace = Duration{5'000}};

LeaseHolder held_by(std::string owner, std::int64_t epoch, std::int64_t expires_at_ms) {
  return LeaseHolder{.owner = std::move(owner), .epoch = epoch, .expires_at_ms = expires_at_ms};
}

TEST(OrgSpread, AloneItTakesEveryOrgWithWork) {
  OrgSpread spread{"a", kPolicy};
  const auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000,
                                             .live_daemons = {"a"}, .orgs = {"o1", "o2", "o3"}});
  EXPECT_EQ(plan.take, (Orgs{"o1", "o2", "o3"}));
  EXPECT_TRUE(plan.hand_over.empty());
  EXPECT_EQ(plan.fair_share, 3u);
  EXPECT_EQ(plan.next_look, at(1'000));
}

TEST(OrgSpread, ASecondDaemonTakesOnlyItsShareOfTheFreeOrgs) {
  OrgSpread spread{"b", kPolicy};
  const auto plan = spread.resume(SpreadLook{
      .now = at(0), .store_now_ms = 1'000, .live_daemons = {"a", "b"},
      .orgs = {"o1", "o2", "o3", "o4"},
      .leases = {{"o1", held_by("a", 1, 9'000)}, {"o2", held_by("a", 1, 9'000)}}});
  EXPECT_EQ(plan.fair_share, 2u);
  EXPECT_EQ(plan.take, (Orgs{"o3", "o4"}));
}

TEST(OrgSpread, AnUnexpiredLeaseOfAnotherDaemonIsOnlyProbedAndOnlyBelowTheShare) {
  OrgSpread spread{"b", kPolicy};
  auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000,
                                       .live_daemons = {"a", "b"}, .orgs = {"o1"},
                                       .leases = {{"o1", held_by("a", 4, 1'001)}}});
  EXPECT_TRUE(plan.take.empty());
  EXPECT_EQ(plan.probe, (Orgs{"o1"}));  // the store grants it only if a provably died
  EXPECT_TRUE(plan.hand_over.empty());
  // At its share (one of two orgs), b asks for nothing of a's.
  plan = spread.resume(SpreadLook{.now = at(1'000), .store_now_ms = 2'000,
                                  .live_daemons = {"a", "b"}, .orgs = {"o1", "o2"},
                                  .leases = {{"o1", held_by("a", 4, 9'000)},
                                             {"o2", held_by("b", 1, 9'000)}},
                                  .held = {"o2"}});
  EXPECT_TRUE(plan.take.empty());
  EXPECT_TRUE(plan.probe.empty());
}

TEST(OrgSpread, WhenADaemonJoinsTheHolderHandsOverWhatIsBeyondItsShare) {
  OrgSpread spread{"a", kPolicy};
  const std::map<std::string, LeaseHolder> mine{{"o1", held_by("a", 1, 9'000)},
                                                {"o2", held_by("a", 1, 9'000)},
                                                {"o3", held_by("a", 1, 9'000)}};
  // Alone: keeps all three.
  auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000, .live_daemons = {"a"},
                                       .orgs = {"o1", "o2", "o3"}, .leases = mine,
                                       .held = {"o1", "o2", "o3"}});
  EXPECT_TRUE(plan.take.empty());
  EXPECT_TRUE(plan.hand_over.empty());
  // b registered: the share is two, the last org by name goes.
  plan = spread.resume(SpreadLook{.now = at(1'000), .store_now_ms = 2'000,
                                  .live_daemons = {"a", "b"}, .orgs = {"o1", "o2", "o3"},
                                  .leases = mine, .held = {"o1", "o2", "o3"}});
  EXPECT_EQ(plan.fair_share, 2u);
  EXPECT_EQ(plan.hand_over, (Orgs{"o3"}));
  EXPECT_TRUE(plan.take.empty());
}

TEST(OrgSpread, AnIdleOrgIsHandedOverFirstABusyOneIsDrained) {
  OrgSpread spread{"a", kPolicy};
  const SpreadLook look{
      .now = at(0), .store_now_ms = 1'000, .live_daemons = {"a", "b", "c"},
      .orgs = {"o1", "o2", "o3"},
      .leases = {{"o1", held_by("a", 1, 9'000)}, {"o2", held_by("a", 1, 9'000)},
                 {"o3", held_by("a", 1, 9'000)}},
      .held = {"o1", "o2", "o3"}, .busy = {"o3", "o2"}};
  auto plan = spread.resume(look);
  EXPECT_EQ(plan.fair_share, 1u);
  // o3 and o2 have creates in flight: o1 goes now; of the busy two, o3 (last by name) drains
  // and o2 stays.
  EXPECT_EQ(plan.hand_over, (Orgs{"o1"}));
  EXPECT_EQ(plan.drain, (Orgs{"o3"}));
  // o1 gone, o3 drained (idle now): o3 goes.
  SpreadLook later = look;
  later.now = at(1'000);
  later.held = {"o2", "o3"};
  later.busy = {"o2"};
  plan = spread.resume(later);
  EXPECT_EQ(plan.hand_over, (Orgs{"o3"}));
  EXPECT_TRUE(plan.drain.empty());
}

TEST(OrgSpread, AnOrgWithNoWorkLeftIsHandedOver) {
  OrgSpread spread{"a", kPolicy};
  const auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000,
                                             .live_daemons = {"a"}, .orgs = {"o1"},
                                             .leases = {{"o1", held_by("a", 1, 9'000)},
                                                        {"gone", held_by("a", 2, 9'000)}},
                                             .held = {"o1", "gone"}});
  EXPECT_EQ(plan.hand_over, (Orgs{"gone"}));
}

TEST(OrgSpread, ADeadDaemonsOrgsAreTakenOnceTheirLeasesLapse) {
  OrgSpread spread{"b", kPolicy};
  const std::map<std::string, LeaseHolder> leases{{"o1", held_by("a", 3, 16'000)},
                                                  {"o2", held_by("b", 1, 30'000)}};
  // a was killed at store time 1 s: its registry row is still live, its lease too.
  auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000,
                                       .live_daemons = {"a", "b"}, .orgs = {"o1", "o2"},
                                       .leases = leases, .held = {"o2"}});
  EXPECT_TRUE(plan.take.empty());
  // Its registry row lapsed (share 2 now), its org lease not yet: nothing to take.
  plan = spread.resume(SpreadLook{.now = at(14'000), .store_now_ms = 15'000,
                                  .live_daemons = {"b"}, .orgs = {"o1", "o2"}, .leases = leases,
                                  .held = {"o2"}});
  EXPECT_EQ(plan.fair_share, 2u);
  EXPECT_TRUE(plan.take.empty());
  // The lease lapsed: taken at once.
  plan = spread.resume(SpreadLook{.now = at(15'000), .store_now_ms = 16'000,
                                  .live_daemons = {"b"}, .orgs = {"o1", "o2"}, .leases = leases,
                                  .held = {"o2"}});
  EXPECT_EQ(plan.take, (Orgs{"o1"}));
}

TEST(OrgSpread, AFreeOrgBeyondTheShareIsTakenAfterTheOrphanGrace) {
  OrgSpread spread{"b", kPolicy};
  // The registry still counts a (it cannot reach its org leases, or died a moment ago): b is at
  // its share of one, and o1 lies free.
  const SpreadLook look{.now = at(0), .store_now_ms = 1'000, .live_daemons = {"a", "b"},
                        .orgs = {"o1", "o2"},
                        .leases = {{"o1", held_by("a", 3, 500)}, {"o2", held_by("b", 1, 9'000)}},
                        .held = {"o2"}};
  EXPECT_TRUE(spread.resume(look).take.empty());
  SpreadLook later = look;
  later.now = at(4'999);
  EXPECT_TRUE(spread.resume(later).take.empty());
  later.now = at(5'000);
  EXPECT_EQ(spread.resume(later).take, (Orgs{"o1"}));
}

TEST(OrgSpread, TheOrphanClockRestartsWhenSomeoneTakesTheOrg) {
  OrgSpread spread{"b", kPolicy};
  SpreadLook look{.now = at(0), .store_now_ms = 1'000, .live_daemons = {"a", "b"},
                  .orgs = {"o1", "o2"}, .leases = {{"o1", held_by("a", 3, 500)}},
                  .held = {"o2"}};
  spread.resume(look);
  look.now = at(3'000);
  look.leases["o1"] = held_by("a", 4, 20'000);  // a came back and took it
  EXPECT_TRUE(spread.resume(look).take.empty());
  look.now = at(4'000);
  look.leases["o1"] = held_by("a", 4, 500);  // and lost it again
  look.store_now_ms = 1'000;
  EXPECT_TRUE(spread.resume(look).take.empty());
  look.now = at(8'999);
  EXPECT_TRUE(spread.resume(look).take.empty());
  look.now = at(9'000);
  EXPECT_EQ(spread.resume(look).take, (Orgs{"o1"}));
}

TEST(OrgSpread, ItsOwnUnprovenRowCountsAsFreeSoItAsksAgain) {
  OrgSpread spread{"a", kPolicy};
  const auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000,
                                             .live_daemons = {"a"}, .orgs = {"o1"},
                                             .leases = {{"o1", held_by("a", 2, 9'000)}}});
  EXPECT_EQ(plan.take, (Orgs{"o1"}));
}

TEST(OrgSpread, NothingIsHandedOverWhileItStillTakes) {
  OrgSpread spread{"a", kPolicy};
  // Holds o1 and o9 (o9 has no work), o2 is free: take o2 first, hand over o9 at a later look.
  const auto plan = spread.resume(SpreadLook{.now = at(0), .store_now_ms = 1'000,
                                             .live_daemons = {"a"}, .orgs = {"o1", "o2"},
                                             .held = {"o1", "o9"}});
  EXPECT_EQ(plan.take, (Orgs{"o2"}));
  EXPECT_TRUE(plan.hand_over.empty());
}

TEST(OrgSpread, TwoDaemonsConvergeToOneOrgEachAndStayThere) {
  // Both daemons' plans applied to one shared lease table, look after look.
  OrgSpread a{"a", kPolicy};
  OrgSpread b{"b", kPolicy};
  std::map<std::string, LeaseHolder> leases;
  std::set<std::string> held_a;
  std::set<std::string> held_b;
  const Orgs orgs{"o1", "o2"};
  auto apply = [&](const SpreadPlan& plan, const std::string& self, std::set<std::string>& held,
                   std::int64_t store_now) {
    for (const auto& org : plan.take) {
      auto& row = leases[org];
      if (row.epoch != 0 && row.expires_at_ms > store_now && row.owner != self) continue;
      row = held_by(self, row.epoch + 1, store_now + 15'000);
      held.insert(org);
    }
    for (const auto& org : plan.hand_over) {
      leases[org].expires_at_ms = store_now;
      held.erase(org);
    }
  };
  // a starts alone and takes both.
  apply(a.resume({.now = at(0), .store_now_ms = 0, .live_daemons = {"a"}, .orgs = orgs,
                  .leases = leases, .held = held_a}),
        "a", held_a, 0);
  EXPECT_EQ(held_a.size(), 2u);
  for (std::int64_t t = 1'000; t <= 6'000; t += 1'000) {
    apply(b.resume({.now = at(t), .store_now_ms = t, .live_daemons = {"a", "b"}, .orgs = orgs,
                    .leases = leases, .held = held_b}),
          "b", held_b, t);
    apply(a.resume({.now = at(t), .store_now_ms = t, .live_daemons = {"a", "b"}, .orgs = orgs,
                    .leases = leases, .held = held_a}),
          "a", held_a, t);
  }
  EXPECT_EQ(held_a, (std::set<std::string>{"o1"}));
  EXPECT_EQ(held_b, (std::set<std::string>{"o2"}));
}

}  // namespace
}  // namespace devin_orch::core
