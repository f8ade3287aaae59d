// Step tests for admission at the rate gate: arrival order per kind, heads only, slots, the
// lease, holds; and a 429 storm while creates and polls compete, driven with a simulated clock.
#include "devin_orch/core/gate_admission.hpp"
#include "devin_orch/core/poll_timing.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ElementsAre;
using testing::IsEmpty;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

RateGatePolicy policy(double rpm = 60.0, double burst = 2.0) {
  return RateGatePolicy{.requests_per_minute = rpm, .burst = burst, .batch_linger = Duration{0}};
}

CallOutcome answered(int status = 200) {
  return CallOutcome{.cls = status == 200 ? CallClass::ok : CallClass::ambiguous,
                     .http_status = status};
}

CallOutcome rate_limited(std::optional<Duration> retry_after, bool cap = false) {
  return CallOutcome{.cls = CallClass::rate_limited, .http_status = 429,
                     .retry_after = retry_after, .concurrency_cap = cap};
}

TEST(GateAdmission, AFirstRequestWithBudgetGoesAtOnce) {
  GateAdmission admission{policy(), 4, kT0};
  const auto arrival = admission.arrive(RequestKind::other, kT0, true);
  EXPECT_EQ(arrival.admission.step, AdmissionStep::go);
  EXPECT_EQ(admission.in_flight(), 1);
  EXPECT_EQ(admission.waiting(RequestKind::other), 0u);
  EXPECT_THAT(admission.take_wakeups(), IsEmpty());
}

TEST(GateAdmission, OnlyTheHeadWaitsForATokenAndTheNextIsWokenWhenItGoes) {
  GateAdmission admission{policy(60, 1), 4, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::create, kT0, true).admission.step, AdmissionStep::go);
  const auto first = admission.arrive(RequestKind::create, kT0, true);
  const auto second = admission.arrive(RequestKind::create, kT0, true);
  EXPECT_EQ(first.admission.step, AdmissionStep::wait_until);
  EXPECT_EQ(first.admission.until, kT0 + seconds{1});  // 60 rpm: one token a second
  EXPECT_EQ(second.admission.step, AdmissionStep::wait_turn);
  EXPECT_EQ(admission.waiting(RequestKind::create), 2u);

  // Woken early by nobody: the head asks again when its time comes and goes.
  EXPECT_EQ(admission.next(first.ticket, kT0 + seconds{1}, true).step, AdmissionStep::go);
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(second.ticket));
  const auto now_head = admission.next(second.ticket, kT0 + seconds{1}, true);
  EXPECT_EQ(now_head.step, AdmissionStep::wait_until);
  EXPECT_EQ(now_head.until, kT0 + seconds{2});
}

TEST(GateAdmission, KindsQueueApartAndTheOlderHeadTakesTheNextToken) {
  GateAdmission admission{policy(60, 1), 4, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::create, kT0, true).admission.step, AdmissionStep::go);
  const auto create = admission.arrive(RequestKind::create, kT0, true);
  const auto later_create = admission.arrive(RequestKind::create, kT0, true);
  const auto poll = admission.arrive(RequestKind::other, kT0, true);
  EXPECT_EQ(create.admission.step, AdmissionStep::wait_until);
  EXPECT_EQ(poll.admission.step, AdmissionStep::wait_until);  // head of its own queue
  EXPECT_THAT(admission.take_wakeups(), IsEmpty());
  // The poll asks first, but the create has been head longer: the poll gives way, and the
  // create is woken to take the token.
  EXPECT_EQ(admission.next(poll.ticket, kT0 + seconds{1}, true).step, AdmissionStep::wait_turn);
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(create.ticket));
  EXPECT_EQ(admission.next(create.ticket, kT0 + seconds{1}, true).step, AdmissionStep::go);
  // Its successor is a younger head than the poll, which is woken and goes next.
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(later_create.ticket, poll.ticket));
  EXPECT_EQ(admission.next(later_create.ticket, kT0 + seconds{1}, true).step,
            AdmissionStep::wait_until);
  EXPECT_EQ(admission.next(poll.ticket, kT0 + seconds{1}, true).step, AdmissionStep::wait_until);
  EXPECT_EQ(admission.next(later_create.ticket, kT0 + seconds{2}, true).step,
            AdmissionStep::wait_turn);
  EXPECT_EQ(admission.next(poll.ticket, kT0 + seconds{2}, true).step, AdmissionStep::go);
}

TEST(GateAdmission, AFullSetOfSlotsHoldsTheHeadUntilAnAnswerFreesOne) {
  Random random{1};
  GateAdmission admission{policy(600, 10), 2, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::other, kT0, true).admission.step, AdmissionStep::go);
  ASSERT_EQ(admission.arrive(RequestKind::other, kT0, true).admission.step, AdmissionStep::go);
  const auto third = admission.arrive(RequestKind::other, kT0, true);
  const auto create = admission.arrive(RequestKind::create, kT0, true);
  EXPECT_EQ(third.admission.step, AdmissionStep::wait_slot);
  EXPECT_EQ(create.admission.step, AdmissionStep::wait_slot);
  admission.finished(answered(), kT0 + milliseconds{50}, random);
  EXPECT_EQ(admission.in_flight(), 1);
  // Both heads are woken; the first to ask takes the slot, the other waits again.
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(create.ticket, third.ticket));
  EXPECT_EQ(admission.next(create.ticket, kT0 + milliseconds{50}, true).step, AdmissionStep::go);
  EXPECT_EQ(admission.next(third.ticket, kT0 + milliseconds{50}, true).step,
            AdmissionStep::wait_slot);
}

TEST(GateAdmission, NothingGoesWhileTheLeaseCannotBeProven) {
  GateAdmission admission{policy(), 4, kT0};
  const auto arrival = admission.arrive(RequestKind::create, kT0, false);
  EXPECT_EQ(arrival.admission.step, AdmissionStep::wait_lease);
  EXPECT_EQ(admission.in_flight(), 0);
  admission.lease_resumed();
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(arrival.ticket));
  EXPECT_EQ(admission.next(arrival.ticket, kT0, true).step, AdmissionStep::go);
}

TEST(GateAdmission, AHeadThatLeavesHandsItsPlaceOn) {
  GateAdmission admission{policy(60, 1), 4, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::create, kT0, true).admission.step, AdmissionStep::go);
  const auto first = admission.arrive(RequestKind::create, kT0, true);
  const auto second = admission.arrive(RequestKind::create, kT0, true);
  admission.leave(second.ticket);  // not the head: nobody to wake
  EXPECT_THAT(admission.take_wakeups(), IsEmpty());
  const auto third = admission.arrive(RequestKind::create, kT0, true);
  admission.leave(first.ticket);
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(third.ticket));
  EXPECT_EQ(admission.waiting(RequestKind::create), 1u);
}

TEST(GateAdmission, AConcurrencyCapHoldsCreatesOnlyUntilASessionEnds) {
  Random random{1};
  GateAdmission admission{policy(600, 10), 4, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::create, kT0, true).admission.step, AdmissionStep::go);
  admission.finished(rate_limited(std::nullopt, /*cap=*/true), kT0, random);
  const auto held = admission.arrive(RequestKind::create, kT0, true);
  ASSERT_EQ(held.admission.step, AdmissionStep::wait_until);
  EXPECT_GE(held.admission.until, kT0 + seconds{60});
  // Polls are not held: they are what sees a session end.
  EXPECT_EQ(admission.arrive(RequestKind::other, kT0, true).admission.step, AdmissionStep::go);
  admission.session_ended(kT0 + seconds{3});
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(held.ticket));
  EXPECT_EQ(admission.next(held.ticket, kT0 + seconds{3}, true).step, AdmissionStep::go);
}

CallOutcome unavailable(int status, Duration retry_after) {
  return CallOutcome{.cls = CallClass::ambiguous, .http_status = status,
                     .retry_after = retry_after};
}

// A 503 or 500 with Retry-After holds both kinds until the wait passes, like a 429, but leaves
// the rate alone: the server's overload says nothing about our share of its budget.
TEST(GateAdmission, AWaitAnnouncedByA5xxHoldsEveryKindUntilItPasses) {
  for (const int status : {503, 500}) {
    for (const auto kind : {RequestKind::create, RequestKind::other}) {
      Random random{1};
      GateAdmission admission{policy(600, 10), 4, kT0};
      ASSERT_EQ(admission.arrive(kind, kT0, true).admission.step, AdmissionStep::go);
      const double rate = admission.gate().rate_per_minute();
      admission.finished(unavailable(status, seconds{20}), kT0, random);
      EXPECT_EQ(admission.gate().rate_per_minute(), rate);
      const auto create = admission.arrive(RequestKind::create, kT0 + seconds{1}, true);
      const auto poll = admission.arrive(RequestKind::other, kT0 + seconds{1}, true);
      for (const auto& held : {create, poll}) {
        ASSERT_EQ(held.admission.step, AdmissionStep::wait_until) << status;
        EXPECT_EQ(held.admission.until, kT0 + seconds{20}) << status;
        // Nothing goes a moment before the end of the wait.
        EXPECT_NE(admission.next(held.ticket, kT0 + milliseconds{19'999}, true).step,
                  AdmissionStep::go);
      }
      // At its end one request goes (alone, as after a 429), the other follows at the rate.
      EXPECT_EQ(admission.next(create.ticket, kT0 + seconds{20}, true).step, AdmissionStep::go);
      const auto after = admission.next(poll.ticket, kT0 + seconds{20}, true);
      ASSERT_EQ(after.step, AdmissionStep::wait_until);
      EXPECT_GT(after.until, kT0 + seconds{20});
    }
  }
}

TEST(GateAdmission, AnAnswerWithoutAWaitOrA2xxHoldsNothing) {
  Random random{1};
  GateAdmission admission{policy(600, 10), 4, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::other, kT0, true).admission.step, AdmissionStep::go);
  admission.finished(answered(503), kT0, random);
  ASSERT_EQ(admission.arrive(RequestKind::other, kT0, true).admission.step, AdmissionStep::go);
  // A 2xx's Retry-After is not a wait: its body is the answer.
  admission.finished(CallOutcome{.cls = CallClass::ok, .http_status = 200,
                                 .retry_after = seconds{30}},
                     kT0, random);
  EXPECT_EQ(admission.arrive(RequestKind::create, kT0, true).admission.step, AdmissionStep::go);
}

// A hold read back from the store after a restart: every request waits for its end, and the
// head already asleep is woken to learn the later instant.
TEST(GateAdmission, AStoredHoldAppliedAtStartHoldsEveryRequest) {
  GateAdmission admission{policy(60, 1), 4, kT0};
  ASSERT_EQ(admission.arrive(RequestKind::create, kT0, true).admission.step, AdmissionStep::go);
  const auto head = admission.arrive(RequestKind::create, kT0, true);
  ASSERT_EQ(head.admission.step, AdmissionStep::wait_until);
  admission.hold(kT0, kT0 + seconds{15});
  EXPECT_THAT(admission.take_wakeups(), ElementsAre(head.ticket));
  const auto asked = admission.next(head.ticket, kT0, true);
  EXPECT_EQ(asked.step, AdmissionStep::wait_until);
  EXPECT_EQ(asked.until, kT0 + seconds{15});
  const auto poll = admission.arrive(RequestKind::other, kT0 + seconds{14}, true);
  EXPECT_EQ(poll.admission.step, AdmissionStep::wait_until);
  EXPECT_EQ(poll.admission.until, kT0 + seconds{15});
}

TEST(GateAdmission, AnAnswerWithoutAdmissionIsABrokenInvariant) {
  Random random{1};
  GateAdmission admission{policy(), 4, kT0};
  EXPECT_THROW(admission.finished(answered(), kT0, random), std::logic_error);
  EXPECT_THROW((GateAdmission{policy(), 0, kT0}), std::invalid_argument);
}

// ---- a 429 storm while creates and polls compete ----------------------------------------

// The daemon's loop, with its I/O replaced by a clock: waiters park until woken or until their
// time; requests take 200 ms; the server answers 429 (Retry-After 2 s) to its first `storm`
// requests. The poll side asks next_poll() before it joins the gate, as the daemon's poller.
struct Storm {
  GateAdmission admission{policy(120, 4), 3, kT0};
  Random random{7};
  TimePoint now = kT0;
  int storm = 6;
  int answered = 0;
  struct Waiting {
    RequestKind kind;
    Admission admission;
    int id;
  };
  std::map<GateAdmission::Ticket, Waiting> waiting;
  std::multimap<TimePoint, RequestKind> in_flight;  // answer time -> kind
  std::vector<std::pair<int, TimePoint>> creates_sent;
  std::vector<TimePoint> polls_sent;
  TimePoint paused_until = kT0;  // the latest pause a 429 announced
  int sent_inside_pause = 0;
  int max_in_flight_seen = 0;

  void admitted(RequestKind kind, int id) {
    if (now < paused_until) ++sent_inside_pause;
    in_flight.emplace(now + milliseconds{200}, kind);
    max_in_flight_seen = std::max(max_in_flight_seen, admission.in_flight());
    if (kind == RequestKind::create) {
      creates_sent.emplace_back(id, now);
    } else {
      polls_sent.push_back(now);
    }
  }
  void ask(GateAdmission::Ticket ticket) {
    auto& waiter = waiting.at(ticket);
    waiter.admission = admission.next(ticket, now, true);
    if (waiter.admission.step == AdmissionStep::go) {
      admitted(waiter.kind, waiter.id);
      waiting.erase(ticket);
    }
  }
  void arrive(RequestKind kind, int id) {
    const auto arrival = admission.arrive(kind, now, true);
    if (arrival.admission.step == AdmissionStep::go) {
      admitted(kind, id);
    } else {
      waiting.emplace(arrival.ticket, Waiting{kind, arrival.admission, id});
    }
  }
  void wake() {
    for (const auto ticket : admission.take_wakeups()) {
      if (waiting.contains(ticket)) ask(ticket);
    }
  }
};

TEST(GateAdmission, A429StormWhileCreatesAndPollsCompete) {
  Storm storm;
  const Duration max_delay = seconds{30};
  for (int id = 0; id < 60; ++id) storm.arrive(RequestKind::create, id);
  std::optional<TimePoint> poll_due = kT0 + seconds{1};  // a batch of sessions comes due
  bool poll_asked = false;
  TimePoint poll_asked_at{};
  for (int step = 0; step < 10'000 && (storm.creates_sent.size() < 60 || storm.polls_sent.empty());
       ++step) {
    // The next event: an answer, a waiter's time, the poll's time.
    std::optional<TimePoint> next;
    const auto consider = [&](TimePoint t) { next = next ? std::min(*next, t) : t; };
    if (!storm.in_flight.empty()) consider(storm.in_flight.begin()->first);
    for (const auto& [ticket, waiter] : storm.waiting) {
      if (waiter.admission.step == AdmissionStep::wait_until) consider(waiter.admission.until);
    }
    const auto timing = next_poll(PollTimingInput{
        .next_due = poll_asked ? std::nullopt : poll_due,
        .now = storm.now,
        .creates_waiting = storm.admission.waiting(RequestKind::create),
        .creates_held = storm.admission.gate().creates_held(storm.now),
        .others_ready_at = storm.admission.gate().ready_at(RequestKind::other, storm.now),
        .max_delay = max_delay});
    if (timing.step == PollTimingStep::poll_now) {
      poll_asked = true;
      poll_asked_at = storm.now;
      storm.arrive(RequestKind::other, -1);
      continue;
    }
    if (timing.step == PollTimingStep::wait_until) consider(timing.until);
    ASSERT_TRUE(next.has_value()) << "nothing left to happen at step " << step;
    storm.now = std::max(storm.now, *next);
    // Answers due now.
    while (!storm.in_flight.empty() && storm.in_flight.begin()->first <= storm.now) {
      storm.in_flight.erase(storm.in_flight.begin());
      if (storm.answered++ < storm.storm) {
        storm.paused_until = std::max(storm.paused_until, storm.now + seconds{2});
        storm.admission.finished(rate_limited(seconds{2}), storm.now, storm.random);
      } else {
        storm.admission.finished(answered(), storm.now, storm.random);
      }
      storm.wake();
    }
    // Waiters whose time came.
    std::vector<GateAdmission::Ticket> due;
    for (const auto& [ticket, waiter] : storm.waiting) {
      if (waiter.admission.step == AdmissionStep::wait_until && waiter.admission.until <= storm.now) {
        due.push_back(ticket);
      }
    }
    for (const auto ticket : due) {
      if (storm.waiting.contains(ticket)) storm.ask(ticket);
      storm.wake();
    }
  }
  ASSERT_EQ(storm.creates_sent.size(), 60u);
  ASSERT_EQ(storm.polls_sent.size(), 1u);
  // Nothing went inside a pause a 429 had announced, and the slots were never exceeded.
  EXPECT_EQ(storm.sent_inside_pause, 0);
  EXPECT_LE(storm.max_in_flight_seen, 3);
  // Creates went in arrival order.
  for (std::size_t i = 0; i < storm.creates_sent.size(); ++i) {
    EXPECT_EQ(storm.creates_sent[i].first, static_cast<int>(i));
  }
  // The poll gave way to the waiting creates, but only until its sessions were late by the
  // cadence's cap (and the gate had a token for it); then it asked the gate like any request,
  // and went before the last creates.
  EXPECT_GE(poll_asked_at, *poll_due + max_delay);
  EXPECT_LE(poll_asked_at, *poll_due + max_delay + seconds{5});
  EXPECT_LT(storm.polls_sent.front(), storm.creates_sent.back().second);
  // The storm lowered the gate's rate below the configured ceiling.
  EXPECT_LT(storm.admission.gate().rate_per_minute(), 120.0);
}

}  // namespace
}  // namespace devin_orch::core
