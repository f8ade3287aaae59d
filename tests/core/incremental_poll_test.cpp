// Tests for incremental polls: when a batch may ask with updated_after and with which value,
// how marks move, and a model of a server (inclusive or exclusive updated_after, sub-second
// changes, answers overtaking one another) in which no change may ever go unseen.
#include "devin_orch/core/incremental_poll.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace devin_orch::core {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = from_epoch_ms(1'800'000'000'000);

TEST(IncrementalPoll, AsksOneSecondBeforeTheOldestMark) {
  const IncrementalPoll sync{{.full_every = 5min}};
  const std::vector<SyncMark> marks{sync.seen_whole(1'000, kT0), sync.seen_whole(990, kT0),
                                    sync.seen_whole(1'005, kT0)};
  EXPECT_EQ(sync.updated_after(marks, kT0 + 10s), 989);
}

TEST(IncrementalPoll, PollsInFullWhenAMarkIsUnknownOrDueOrNothingIsAsked) {
  const IncrementalPoll sync{{.full_every = 5min}};
  const std::vector<SyncMark> unknown{sync.seen_whole(1'000, kT0), SyncMark{}};
  EXPECT_EQ(sync.updated_after(unknown, kT0), std::nullopt);
  const std::vector<SyncMark> due{sync.seen_whole(1'000, kT0), sync.seen_whole(1'000, kT0 - 1min)};
  EXPECT_EQ(sync.updated_after(due, kT0 + 4min), std::nullopt);
  EXPECT_EQ(sync.updated_after(std::vector<SyncMark>{}, kT0), std::nullopt);
  // An answer without timestamps (0) proves nothing about the server's clock.
  const std::vector<SyncMark> undated{sync.seen_whole(0, kT0),
                                      sync.polled(SyncMark{}, 0, /*full=*/true, kT0)};
  EXPECT_EQ(sync.updated_after(std::span{undated}.first(1), kT0), std::nullopt);
  EXPECT_EQ(sync.updated_after(std::span{undated}.last(1), kT0), std::nullopt);
}

TEST(IncrementalPoll, ZeroFullEveryMeansEveryPollIsFull) {
  const IncrementalPoll sync{{.full_every = 0s}};
  EXPECT_FALSE(sync.enabled());
  const std::vector<SyncMark> marks{sync.seen_whole(1'000, kT0)};
  EXPECT_EQ(sync.updated_after(marks, kT0), std::nullopt);
}

TEST(IncrementalPoll, OnlyAFullPollPutsTheNextFullOneOff) {
  const IncrementalPoll sync{{.full_every = 5min}};
  const auto mark = sync.seen_whole(1'000, kT0);
  const auto incremental = sync.polled(mark, 1'060, /*full=*/false, kT0 + 1min);
  EXPECT_EQ(incremental.known_until, 1'060);
  EXPECT_EQ(incremental.full_due, kT0 + 5min);
  const auto full = sync.polled(incremental, 1'120, /*full=*/true, kT0 + 2min);
  EXPECT_EQ(full.known_until, 1'120);
  EXPECT_EQ(full.full_due, kT0 + 7min);
  // Proof of an older time never takes back what is known.
  EXPECT_EQ(sync.polled(full, 900, false, kT0 + 3min).known_until, 1'120);
}

TEST(IncrementalPoll, TurningOffIsForGoodAndReportedOnce) {
  IncrementalPoll sync{{.full_every = 5min}};
  const std::vector<SyncMark> marks{sync.seen_whole(1'000, kT0)};
  ASSERT_EQ(sync.updated_after(marks, kT0), 999);
  EXPECT_TRUE(sync.turn_off());
  EXPECT_FALSE(sync.turn_off());
  EXPECT_EQ(sync.updated_after(marks, kT0), std::nullopt);
}

TEST(IncrementalPoll, ServerTimeIsTheNewestSeen) {
  IncrementalPoll sync{{}};
  EXPECT_EQ(sync.server_time(), -1);
  sync.saw_server_time(1'000);
  sync.saw_server_time(990);
  EXPECT_EQ(sync.server_time(), 1'000);
}

TEST(IncrementalPoll, AChangeDatedBeforeWhatWasKnownGivesTheServerAway) {
  const IncrementalPoll sync{{}};
  const auto mark = sync.seen_whole(1'000, kT0);
  EXPECT_TRUE(IncrementalPoll::change_is_dated(mark, 1'000));
  EXPECT_TRUE(IncrementalPoll::change_is_dated(mark, 1'001));
  EXPECT_FALSE(IncrementalPoll::change_is_dated(mark, 999));
}

// A server whose sessions change status at random instants (milliseconds) and stamp
// updated_at in whole seconds, answering after a random delay; the daemon's side driven the
// way the daemon drives it. After every answer, each session of the batch must look to the
// daemon as it was on the server when the answer was made.
struct ModelServer {
  bool inclusive = true;  // updated_after keeps updated_at >= it (else: >)
  std::vector<std::vector<std::int64_t>> changes;  // per session, ascending ms

  int status(std::size_t session, std::int64_t at_ms) const {
    const auto& c = changes[session];
    return static_cast<int>(std::upper_bound(c.begin(), c.end(), at_ms) - c.begin());
  }
  std::int64_t updated_at(std::size_t session, std::int64_t at_ms) const {
    const auto& c = changes[session];
    const auto it = std::upper_bound(c.begin(), c.end(), at_ms);
    return *std::prev(it) / 1000;  // changes[s][0] is the creation
  }
  bool listed(std::size_t session, std::int64_t at_ms, std::optional<std::int64_t> after) const {
    if (!after) return true;
    const auto stamp = updated_at(session, at_ms);
    return inclusive ? stamp >= *after : stamp > *after;
  }
};

struct InFlight {
  std::vector<std::size_t> batch;
  std::optional<std::int64_t> after;
  std::int64_t known_at_send;
  std::int64_t answered_ms;  // the server's snapshot
};

int run_model(bool inclusive, std::uint32_t seed) {
  std::mt19937 random{seed};
  constexpr std::size_t kSessions = 40;
  constexpr std::int64_t kStartMs = 1'800'000'000'000;
  ModelServer server{.inclusive = inclusive};
  for (std::size_t s = 0; s < kSessions; ++s) {
    std::vector<std::int64_t> c{kStartMs + static_cast<std::int64_t>(random() % 5'000)};
    for (int n = 0; n < 6; ++n) c.push_back(c.back() + 1 + random() % 20'000);
    server.changes.push_back(c);
  }
  IncrementalPoll sync{{.full_every = 60s}};
  std::vector<SyncMark> marks(kSessions);
  std::vector<int> seen(kSessions, 0);
  std::vector<bool> busy(kSessions, false);
  // Each session starts as its creation answer showed it.
  for (std::size_t s = 0; s < kSessions; ++s) {
    const auto created = server.changes[s][0];
    sync.saw_server_time(created / 1000);
    marks[s] = sync.seen_whole(created / 1000, from_epoch_ms(created));
  }
  std::vector<InFlight> flights;
  std::int64_t clock = kStartMs + 5'000;
  int incremental = 0;
  for (int step = 0; step < 400; ++step) {
    clock += random() % 700;
    if (random() % 2 == 0) {  // send a batch of idle sessions
      std::vector<std::size_t> batch;
      std::vector<SyncMark> batch_marks;
      for (std::size_t s = 0; s < kSessions; ++s) {
        if (!busy[s] && random() % 3 == 0) {
          batch.push_back(s);
          batch_marks.push_back(marks[s]);
          busy[s] = true;
        }
      }
      if (batch.empty()) continue;
      const auto after = sync.updated_after(batch_marks, from_epoch_ms(clock));
      if (after) ++incremental;
      flights.push_back({batch, after, sync.server_time(),
                         clock + static_cast<std::int64_t>(random() % 2'500)});
    } else if (!flights.empty()) {  // any answer may arrive first
      const auto pick = random() % flights.size();
      const InFlight flight = flights[pick];
      flights.erase(flights.begin() + static_cast<std::ptrdiff_t>(pick));
      clock = std::max(clock, flight.answered_ms);
      std::int64_t proven_until = flight.known_at_send;
      std::vector<bool> returned(flight.batch.size(), false);
      for (std::size_t i = 0; i < flight.batch.size(); ++i) {
        const auto s = flight.batch[i];
        if (!server.listed(s, flight.answered_ms, flight.after)) continue;
        returned[i] = true;
        proven_until = std::max(proven_until, server.updated_at(s, flight.answered_ms));
      }
      sync.saw_server_time(proven_until);
      for (std::size_t i = 0; i < flight.batch.size(); ++i) {
        const auto s = flight.batch[i];
        if (returned[i]) {
          const int now_status = server.status(s, flight.answered_ms);
          if (now_status != seen[s]) {
            EXPECT_TRUE(IncrementalPoll::change_is_dated(
                marks[s], server.updated_at(s, flight.answered_ms)));
          }
          seen[s] = now_status;
        }
        EXPECT_EQ(seen[s], server.status(s, flight.answered_ms))
            << "session " << s << " changed unseen (seed " << seed << ")";
        marks[s] = sync.polled(marks[s], proven_until, !flight.after, from_epoch_ms(clock));
        busy[s] = false;
      }
    }
  }
  return incremental;
}

TEST(IncrementalPoll, NoChangeGoesUnseenWhateverTheServerReadsUpdatedAfterAs) {
  int incremental = 0;
  for (std::uint32_t seed = 1; seed <= 50; ++seed) {
    incremental += run_model(/*inclusive=*/true, seed);
    incremental += run_model(/*inclusive=*/false, seed);
  }
  EXPECT_GT(incremental, 1'000);  // the model did exercise incremental polls
}

}  // namespace
}  // namespace devin_orch::core
