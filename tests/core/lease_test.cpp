// Step tests of LeaseMachine: taking the lease, renewing it, pausing when it cannot be proven,
// resuming with the same epoch, and abandoning the queue when another process took it.
#include "devin_orch/core/lease.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using Step = LeaseAction::Step;
using Change = LeaseAction::Change;

MonotonicTime at(std::int64_t ms) { return MonotonicTime{Duration{ms}}; }

const LeasePolicy kPolicy{.ttl = Duration{15'000},
                          .renew_every = Duration{5'000},
                          .standby_poll = Duration{1'000},
                          .retry = Duration{500},
                          .guard = Duration{3'000}};

// A machine that took the lease with epoch 7 at t=0.
LeaseMachine owner_at_zero() {
  LeaseMachine machine{kPolicy};
  machine.resume(LeaseStart{at(0)});
  machine.resume(LeaseGranted{.epoch = 7, .sent_at = at(0), .now = at(10)});
  return machine;
}

TEST(LeaseMachine, StartsByAskingForTheLease) {
  LeaseMachine machine{kPolicy};
  EXPECT_EQ(machine.resume(LeaseStart{at(0)}).step, Step::acquire);
  EXPECT_EQ(machine.role(), LeaseRole::standby);
  EXPECT_FALSE(machine.may_act(at(0)));
}

TEST(LeaseMachine, AGrantTakesOverAndSleepsUntilTheRenewal) {
  LeaseMachine machine{kPolicy};
  machine.resume(LeaseStart{at(0)});
  const auto action = machine.resume(LeaseGranted{.epoch = 7, .sent_at = at(100), .now = at(120)});
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_EQ(action.change, Change::took_over);
  EXPECT_EQ(action.epoch, 7);
  EXPECT_EQ(action.wake_at, at(5'100));
  EXPECT_EQ(machine.role(), LeaseRole::owner);
  // Valid from the moment the request left, minus the guard.
  EXPECT_TRUE(machine.may_act(at(12'099)));
  EXPECT_FALSE(machine.may_act(at(12'100)));
}

TEST(LeaseMachine, AStandbyPollsWhileAnotherHoldsIt) {
  LeaseMachine machine{kPolicy};
  machine.resume(LeaseStart{at(0)});
  const LeaseHolder other{.owner = "host-b:42:ab", .epoch = 3, .expires_at_ms = 99};
  auto action = machine.resume(LeaseHeldElsewhere{other, at(5)});
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_EQ(action.change, Change::none);
  EXPECT_EQ(action.wake_at, at(1'005));
  EXPECT_EQ(machine.resume(LeaseTimer{at(1'005)}).step, Step::acquire);
  EXPECT_FALSE(machine.may_act(at(1'005)));
}

TEST(LeaseMachine, RenewalExtendsTheProof) {
  auto machine = owner_at_zero();
  EXPECT_EQ(machine.resume(LeaseTimer{at(5'000)}).step, Step::renew);
  const auto action = machine.resume(LeaseGranted{.epoch = 7, .sent_at = at(5'000), .now = at(5'020)});
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_EQ(action.change, Change::none);
  EXPECT_EQ(action.wake_at, at(10'000));
  EXPECT_TRUE(machine.may_act(at(16'999)));
  EXPECT_FALSE(machine.may_act(at(17'000)));
}

TEST(LeaseMachine, AnEarlyTimerDoesNotRenewBeforeItsTime) {
  auto machine = owner_at_zero();
  const auto action = machine.resume(LeaseTimer{at(2'000)});
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_EQ(action.wake_at, at(5'000));
}

TEST(LeaseMachine, FailedRenewalsRetryAndPauseWhenTheProofRunsOut) {
  auto machine = owner_at_zero();
  machine.resume(LeaseTimer{at(5'000)});
  auto action = machine.resume(LeaseStoreFailed{"disk full", at(5'010)});
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_EQ(action.wake_at, at(5'510));
  EXPECT_TRUE(machine.may_act(at(5'510)));
  // Every retry fails until the proof from t=0 runs out at 12 s.
  MonotonicTime now = at(5'510);
  for (;;) {
    action = machine.resume(LeaseTimer{now});
    if (action.change == Change::paused) break;
    ASSERT_EQ(action.step, Step::renew);
    action = machine.resume(LeaseStoreFailed{"disk full", now});
    ASSERT_EQ(action.change, Change::none);
    ASSERT_LE(action.wake_at, at(12'000));
    now = action.wake_at;
  }
  EXPECT_GE(now, at(12'000));
  EXPECT_EQ(machine.role(), LeaseRole::owner_unproven);
  EXPECT_FALSE(machine.may_act(now));
  EXPECT_EQ(action.step, Step::renew);
}

TEST(LeaseMachine, ARenewalWithTheSameEpochAfterAPauseResumes) {
  auto machine = owner_at_zero();
  // The process stalled (SIGSTOP, a VM pause): its timer fires 20 s late.
  auto action = machine.resume(LeaseTimer{at(25'000)});
  EXPECT_EQ(action.change, Change::paused);
  EXPECT_EQ(action.step, Step::renew);
  EXPECT_FALSE(machine.may_act(at(25'000)));
  // Nobody took the queue meanwhile: the row still has our epoch, so nothing was written by
  // anyone else and the in-memory state is still true.
  action = machine.resume(LeaseGranted{.epoch = 7, .sent_at = at(25'000), .now = at(25'005)});
  EXPECT_EQ(action.change, Change::resumed);
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_TRUE(machine.may_act(at(25'005)));
  EXPECT_EQ(machine.role(), LeaseRole::owner);
}

TEST(LeaseMachine, AStaleOwnerAbandonsTheQueueWhenItsRenewalIsRefused) {
  auto machine = owner_at_zero();
  machine.resume(LeaseTimer{at(25'000)});
  const LeaseHolder successor{.owner = "host-b:9:cd", .epoch = 8, .expires_at_ms = 1};
  const auto action = machine.resume(LeaseSuperseded{successor, at(25'003)});
  EXPECT_EQ(action.step, Step::abandon);
  EXPECT_EQ(action.epoch, 7);
  EXPECT_NE(action.reason.find("host-b:9:cd"), std::string::npos);
  EXPECT_EQ(machine.role(), LeaseRole::standby);
  EXPECT_FALSE(machine.may_act(at(25'003)));
}

TEST(LeaseMachine, ARefusedWriteMakesTheOwnerAskAtOnce) {
  auto machine = owner_at_zero();
  EXPECT_EQ(machine.resume(LeaseDoubted{at(1'000)}).step, Step::renew);
  const LeaseHolder successor{.owner = "b", .epoch = 8, .expires_at_ms = 1};
  EXPECT_EQ(machine.resume(LeaseSuperseded{successor, at(1'002)}).step, Step::abandon);
  // A standby has nothing to doubt: it just looks again.
  EXPECT_EQ(machine.resume(LeaseDoubted{at(1'003)}).step, Step::sleep);
}

TEST(LeaseMachine, AnOwnerThatFindsTheLeaseTakenAbandons) {
  auto machine = owner_at_zero();
  const LeaseHolder successor{.owner = "b", .epoch = 8, .expires_at_ms = 1};
  EXPECT_EQ(machine.resume(LeaseHeldElsewhere{successor, at(6'000)}).step, Step::abandon);
}

TEST(LeaseMachine, AGrantWithAnotherEpochMeansSomeoneHeldItInBetween) {
  auto machine = owner_at_zero();
  machine.resume(LeaseTimer{at(30'000)});
  const auto action = machine.resume(LeaseGranted{.epoch = 9, .sent_at = at(30'000), .now = at(30'001)});
  EXPECT_EQ(action.step, Step::abandon);
  EXPECT_FALSE(machine.may_act(at(30'001)));
}

TEST(LeaseMachine, AGrantAnsweredTooLateProvesNothing) {
  LeaseMachine machine{kPolicy};
  machine.resume(LeaseStart{at(0)});
  // The answer arrives 13 s after the request left (a stall between the two).
  const auto action = machine.resume(LeaseGranted{.epoch = 4, .sent_at = at(0), .now = at(13'000)});
  EXPECT_EQ(action.change, Change::took_over);
  EXPECT_EQ(action.step, Step::renew);
  EXPECT_EQ(machine.role(), LeaseRole::owner_unproven);
  EXPECT_FALSE(machine.may_act(at(13'000)));
  const auto renewed = machine.resume(LeaseGranted{.epoch = 4, .sent_at = at(13'000), .now = at(13'002)});
  EXPECT_EQ(renewed.change, Change::resumed);
  EXPECT_TRUE(machine.may_act(at(13'002)));
}

TEST(LeaseMachine, AStandbyRetriesAfterAStoreFailure) {
  LeaseMachine machine{kPolicy};
  machine.resume(LeaseStart{at(0)});
  const auto action = machine.resume(LeaseStoreFailed{"database is locked", at(1)});
  EXPECT_EQ(action.step, Step::sleep);
  EXPECT_EQ(action.wake_at, at(501));
  EXPECT_EQ(machine.resume(LeaseTimer{at(501)}).step, Step::acquire);
}

}  // namespace
}  // namespace devin_orch::core
