// Tests for the delivery retry schedule and OutboxPlan, step by step.
#include "devin_orch/core/outbox_delivery.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

TEST(AfterFailure, BacksOffWithinHalfToFullCeilingUpToTheCap) {
  const DeliveryPolicy policy{.initial = seconds{1}, .max = seconds{60}, .max_age = seconds{86400}};
  Random random{7};
  const long long ceilings[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
  for (int failures = 1; failures <= 9; ++failures) {
    long long lo = 1LL << 60, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      const auto next = after_failure(policy, failures, kT0, kT0, random);
      ASSERT_FALSE(next.dead);
      const long long delay = (next.retry_at - kT0).count();
      lo = std::min(lo, delay);
      hi = std::max(hi, delay);
    }
    const long long ceiling = ceilings[failures - 1];
    EXPECT_GE(lo, ceiling / 2) << failures;
    EXPECT_LE(hi, ceiling) << failures;
    EXPECT_LT(lo, ceiling * 55 / 100) << failures;  // jitter spreads over the whole range
    EXPECT_GT(hi, ceiling * 95 / 100) << failures;
  }
}

TEST(AfterFailure, LastAttemptAtTheMaximumAgeThenDead) {
  const DeliveryPolicy policy{.initial = seconds{1}, .max = seconds{300}, .max_age = seconds{600}};
  Random random{1};
  const TimePoint near_end = kT0 + seconds{590};
  const auto last = after_failure(policy, 12, kT0, near_end, random);
  ASSERT_FALSE(last.dead);
  EXPECT_EQ(last.retry_at, kT0 + seconds{600});
  EXPECT_TRUE(after_failure(policy, 13, kT0, kT0 + seconds{600}, random).dead);
  EXPECT_TRUE(after_failure(policy, 1, kT0, kT0 + seconds{601}, random).dead);
}

OutboxPlan::Item item(std::int64_t seq, std::string sink, std::string key, TimePoint due = kT0) {
  return OutboxPlan::Item{.seq = seq, .sink = std::move(sink), .order_key = std::move(key), .due = due};
}

std::vector<std::int64_t> seqs(const std::vector<OutboxPlan::Item>& items) {
  std::vector<std::int64_t> out;
  for (const auto& i : items) out.push_back(i.seq);
  return out;
}

TEST(OutboxPlan, OneEventPerJobAndReceiverAtATimeInOrder) {
  OutboxPlan plan{10, 100};
  EXPECT_TRUE(plan.add(item(1, "A", "job-1")));
  EXPECT_TRUE(plan.add(item(3, "A", "job-1")));
  EXPECT_TRUE(plan.add(item(2, "A", "job-2")));
  EXPECT_FALSE(plan.add(item(1, "A", "job-1")));  // known already
  EXPECT_EQ(plan.size(), 3U);
  EXPECT_EQ(seqs(plan.take_ready(kT0)), (std::vector<std::int64_t>{1, 2}));
  EXPECT_TRUE(plan.take_ready(kT0).empty());  // job-1's next waits for its first
  plan.delivered(1, "A");
  EXPECT_EQ(seqs(plan.take_ready(kT0)), (std::vector<std::int64_t>{3}));
  plan.delivered(3, "A");
  plan.delivered(2, "A");
  EXPECT_EQ(plan.size(), 0U);
  EXPECT_EQ(plan.in_flight(), 0U);
  EXPECT_FALSE(plan.next_due());
}

TEST(OutboxPlan, AFailureHoldsBackItsLaneOnlyUntilTheRetry) {
  OutboxPlan plan{10, 100};
  plan.add(item(1, "A", "job-1"));
  plan.add(item(2, "A", "job-1"));
  plan.add(item(1, "B", "job-1"));
  plan.add(item(2, "B", "job-1"));
  EXPECT_EQ(plan.take_ready(kT0).size(), 2U);  // seq 1 to A and to B
  plan.failed(1, "A", kT0 + seconds{5});
  plan.delivered(1, "B");
  // B moves on; A's lane waits for its retry of seq 1, and seq 2 stays behind it.
  const auto ready = plan.take_ready(kT0 + seconds{1});
  ASSERT_EQ(ready.size(), 1U);
  EXPECT_EQ(ready[0].sink, "B");
  EXPECT_EQ(ready[0].seq, 2);
  EXPECT_EQ(plan.next_due(), kT0 + seconds{5});
  const auto retry = plan.take_ready(kT0 + seconds{5});
  ASSERT_EQ(retry.size(), 1U);
  EXPECT_EQ(retry[0].seq, 1);
  EXPECT_EQ(retry[0].failures, 1);
  plan.dropped(1, "A");  // dead-lettered: the lane moves on
  EXPECT_EQ(seqs(plan.take_ready(kT0 + seconds{5})), (std::vector<std::int64_t>{2}));
}

TEST(OutboxPlan, ASlowReceiverUsesOnlyItsOwnSlots) {
  OutboxPlan plan{2, 5};
  for (int job = 0; job < 6; ++job) {
    plan.add(item(job + 1, "slow", "job-" + std::to_string(job)));
    plan.add(item(job + 1, "fast", "job-" + std::to_string(job)));
  }
  const auto first = plan.take_ready(kT0);
  ASSERT_EQ(first.size(), 4U);  // two per receiver
  EXPECT_EQ(plan.in_flight("slow"), 2U);
  EXPECT_EQ(plan.in_flight("fast"), 2U);
  // The slow one never answers; the fast one keeps getting its events.
  for (const auto& taken : first) {
    if (taken.sink == "fast") plan.delivered(taken.seq, "fast");
  }
  int fast_delivered = 2;
  for (int round = 0; round < 10; ++round) {
    for (const auto& taken : plan.take_ready(kT0)) {
      ASSERT_EQ(taken.sink, "fast");
      plan.delivered(taken.seq, "fast");
      ++fast_delivered;
    }
  }
  EXPECT_EQ(fast_delivered, 6);
  EXPECT_EQ(plan.in_flight("slow"), 2U);
}

TEST(OutboxPlan, TheOverallLimitHoldsAcrossReceivers) {
  OutboxPlan plan{10, 3};
  for (int i = 1; i <= 4; ++i) {
    plan.add(item(i, "A", "a" + std::to_string(i)));
    plan.add(item(i, "B", "b" + std::to_string(i)));
  }
  EXPECT_EQ(plan.take_ready(kT0).size(), 3U);
  EXPECT_TRUE(plan.take_ready(kT0).empty());
}

TEST(OutboxPlan, NotDueUntilItsTimeAndForgetKeepsWhatIsInFlight) {
  OutboxPlan plan{10, 10};
  plan.add(item(1, "A", "j1", kT0 + seconds{3}));
  plan.add(item(2, "A", "j2"));
  EXPECT_EQ(seqs(plan.take_ready(kT0)), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(plan.next_due(), kT0 + seconds{3});
  plan.forget_waiting();
  EXPECT_EQ(plan.size(), 1U);  // seq 2 is in flight and stays
  EXPECT_FALSE(plan.next_due());
  EXPECT_TRUE(plan.add(item(1, "A", "j1")));  // read again from the store
  plan.delivered(2, "A");
  EXPECT_EQ(seqs(plan.take_ready(kT0)), (std::vector<std::int64_t>{1}));
}

}  // namespace
}  // namespace devin_orch::core
