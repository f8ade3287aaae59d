// Step tests for when due polls may ask the gate: giving way to waiting creates, not while a
// concurrency cap holds them, and waiting out a paused gate.
#include "devin_orch/core/poll_timing.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using std::chrono::seconds;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

PollTimingInput due_now() {
  return PollTimingInput{.next_due = kT0, .now = kT0, .others_ready_at = kT0,
                         .max_delay = seconds{60}};
}

TEST(PollTiming, NothingTrackedWaitsToBeWoken) {
  auto input = due_now();
  input.next_due.reset();
  EXPECT_EQ(next_poll(input).step, PollTimingStep::idle);
}

TEST(PollTiming, ADueSessionWithNobodyWaitingPollsNow) {
  EXPECT_EQ(next_poll(due_now()).step, PollTimingStep::poll_now);
}

TEST(PollTiming, ASessionNotDueYetWaitsForItsTime) {
  auto input = due_now();
  input.next_due = kT0 + seconds{5};
  const auto timing = next_poll(input);
  EXPECT_EQ(timing.step, PollTimingStep::wait_until);
  EXPECT_EQ(timing.until, kT0 + seconds{5});
}

TEST(PollTiming, WaitingCreatesGoFirstUntilTheSessionIsLateByTheCadenceCap) {
  auto input = due_now();
  input.creates_waiting = 3;
  auto timing = next_poll(input);
  EXPECT_EQ(timing.step, PollTimingStep::wait_until);
  EXPECT_EQ(timing.until, kT0 + seconds{60});
  input.now = kT0 + seconds{60};
  EXPECT_EQ(next_poll(input).step, PollTimingStep::poll_now);
}

TEST(PollTiming, CreatesHeldByAConcurrencyCapDoNotHoldPollsBack) {
  auto input = due_now();
  input.creates_waiting = 3;
  input.creates_held = true;
  EXPECT_EQ(next_poll(input).step, PollTimingStep::poll_now);
}

TEST(PollTiming, APausedGateIsWaitedOutBeforeTakingTheDueSessions) {
  auto input = due_now();
  input.others_ready_at = kT0 + seconds{7};
  const auto timing = next_poll(input);
  EXPECT_EQ(timing.step, PollTimingStep::wait_until);
  EXPECT_EQ(timing.until, kT0 + seconds{7});
}

}  // namespace
}  // namespace devin_orch::core
