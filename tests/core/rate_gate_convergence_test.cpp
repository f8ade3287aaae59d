// Closed-loop tests of the rate gate against a simulated server token bucket: how fast it finds
// an unknown limit, how few 429s it draws once there, and how it follows a limit that moves.
#include "devin_orch/core/rate_gate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <queue>
#include <sstream>
#include <string>
#include <tuple>
#include <optional>
#include <cstdio>
#include <vector>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

// The server's limit as a token bucket (the usual shape of an API gateway's limiter): `burst`
// tokens, refilled continuously at the limit in force at the time.
class ServerBucket {
 public:
  ServerBucket(std::function<double(TimePoint)> rpm_at, double burst, bool sends_retry_after)
      : rpm_at_{std::move(rpm_at)}, burst_{burst}, tokens_{burst}, last_{kT0},
        sends_retry_after_{sends_retry_after} {}

  struct Answer {
    bool accepted;
    std::optional<Duration> retry_after;
  };

  Answer handle(TimePoint at) {
    const double per_ms = rpm_at_(at) / 60'000.0;
    tokens_ = std::min(burst_, tokens_ + static_cast<double>((at - last_).count()) * per_ms);
    last_ = at;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return {true, std::nullopt};
    }
    if (!sends_retry_after_) return {false, std::nullopt};
    // Whole seconds until a token, as the Retry-After header carries them.
    const double wait_s = std::ceil((1.0 - tokens_) / per_ms / 1'000.0);
    return {false, Duration{static_cast<Duration::rep>(wait_s * 1'000.0)}};
  }

 private:
  std::function<double(TimePoint)> rpm_at_;
  double burst_;
  double tokens_;
  TimePoint last_;
  bool sends_retry_after_;
};

struct Scenario {
  std::function<double(TimePoint)> server_rpm;
  double server_burst = 5;
  bool retry_after = true;
  RateGatePolicy policy{.requests_per_minute = 600};
  Duration latency{50};  // request to answer; the server sees the request half-way
  Duration length = minutes{10};
  std::uint64_t seed = 1;
};

// Per simulated second: what was sent then, and how it was answered.
struct Second {
  int sent = 0;
  int accepted = 0;
  int limited = 0;
};

struct SimRun {
  std::vector<Second> seconds;
  int sent_inside_pause = 0;  // sent while a Retry-After we had been told of was still running

  // Sums over [from, to) in minutes since the start.
  Second between(double from_min, double to_min) const {
    Second total;
    const auto first = static_cast<std::size_t>(from_min * 60);
    const auto last = std::min(seconds.size(), static_cast<std::size_t>(to_min * 60));
    for (std::size_t s = first; s < last; ++s) {
      total.sent += seconds[s].sent;
      total.accepted += seconds[s].accepted;
      total.limited += seconds[s].limited;
    }
    return total;
  }
};

// A client with an endless backlog, driven like the daemon drives the gate: try_acquire, and if
// refused sleep until batch_ready_at() or until an answer arrives, whichever is first.
SimRun simulate(const Scenario& scenario) {
  constexpr std::size_t kBacklog = 1'000;
  ServerBucket server{scenario.server_rpm, scenario.server_burst, scenario.retry_after};
  RateGate gate{scenario.policy, kT0};
  Random random{scenario.seed};
  SimRun run;
  run.seconds.resize(static_cast<std::size_t>(
      std::chrono::duration_cast<seconds>(scenario.length).count()));

  struct InFlight {
    TimePoint answered_at;
    std::size_t sent_second;
    ServerBucket::Answer answer;
    bool operator>(const InFlight& other) const { return answered_at > other.answered_at; }
  };
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> in_flight;
  TimePoint told_pause_until = kT0;
  const TimePoint end = kT0 + scenario.length;

  TimePoint now = kT0;
  while (now < end) {
    while (!in_flight.empty() && in_flight.top().answered_at <= now) {
      const InFlight done = in_flight.top();
      in_flight.pop();
      Second& bucket = run.seconds[done.sent_second];
      if (done.answer.accepted) {
        ++bucket.accepted;
        gate.on_success(done.answered_at);
      } else {
        ++bucket.limited;
        gate.on_rate_limited(done.answered_at, done.answer.retry_after, false, random);
        if (const auto told = done.answer.retry_after) {
          told_pause_until = std::max(told_pause_until, done.answered_at + *told);
        }
      }
    }
    if (gate.try_acquire(RequestKind::other, now)) {
      if (now < told_pause_until) ++run.sent_inside_pause;
      const auto second = static_cast<std::size_t>(
          std::chrono::duration_cast<seconds>(now - kT0).count());
      ++run.seconds[second].sent;
      const auto answer = server.handle(now + scenario.latency / 2);
      in_flight.push({now + scenario.latency, second, answer});
      continue;
    }
    TimePoint next = gate.batch_ready_at(RequestKind::other, kBacklog, now);
    if (!in_flight.empty()) next = std::min(next, in_flight.top().answered_at);
    EXPECT_GT(next, now);
    if (next <= now) break;
    now = next;
  }
  return run;
}

std::function<double(TimePoint)> constant(double rpm) {
  return [rpm](TimePoint) { return rpm; };
}

struct Figures {
  double throughput;  // accepted per minute over the server's limit
  double limited_share;
  std::string describe() const {
    std::ostringstream out;
    out << "throughput " << throughput * 100 << "% of the limit, 429s " << limited_share * 100
        << "% of requests";
    return out.str();
  }
};

// After the first minute, while the server's limit is `rpm` throughout [from, to).
Figures figures(const SimRun& run, double rpm, double from_min, double to_min) {
  const Second s = run.between(from_min, to_min);
  return {static_cast<double>(s.accepted) / (rpm * (to_min - from_min)),
          s.sent == 0 ? 1.0 : static_cast<double>(s.limited) / s.sent};
}

TEST(RateGateConvergence, FindsAFixedUnknownLimitWithFewRateLimits) {
  for (double ceiling : {600.0, 1'200.0}) {
    for (double rpm : {30.0, 60.0, 120.0, 300.0, 600.0}) {
      for (double burst : {1.0, 5.0, 10.0}) {
        // Twenty minutes, so that at 30 rpm 1 % is more than a handful of requests.
        const SimRun run = simulate({.server_rpm = constant(rpm),
                                  .server_burst = burst,
                                  .policy = {.requests_per_minute = ceiling},
                                  .length = minutes{20}});
        const Figures f = figures(run, rpm, 1, 20);
        const std::string where = "ceiling " + std::to_string(ceiling) + " limit " +
                                  std::to_string(rpm) + " burst " + std::to_string(burst) +
                                  ": " + f.describe();
        std::printf("[ figures  ] %s\n", where.c_str());
        EXPECT_LE(f.limited_share, 0.01) << where;
        EXPECT_GE(f.throughput, 0.95) << where;
        EXPECT_EQ(run.sent_inside_pause, 0) << where;
      }
    }
  }
}

TEST(RateGateConvergence, ALimitEqualToTheCeilingCostsNothing) {
  // The configured ceiling is right: the server never has to say no after the initial burst.
  const SimRun run = simulate({.server_rpm = constant(600), .server_burst = 5,
                            .policy = {.requests_per_minute = 600, .burst = 5}});
  const Figures f = figures(run, 600, 0, 10);
  EXPECT_EQ(run.between(0, 10).limited, 0) << f.describe();
  EXPECT_GE(f.throughput, 0.99) << f.describe();
}

TEST(RateGateConvergence, FollowsALimitThatDropsAndRisesAgain) {
  // 300 rpm, 120 rpm from minute 5, 300 rpm again from minute 12.
  const auto limit = [](TimePoint t) {
    const auto m = std::chrono::duration_cast<minutes>(t - kT0).count();
    return m >= 5 && m < 12 ? 120.0 : 300.0;
  };
  for (double burst : {1.0, 5.0, 10.0}) {
    const SimRun run = simulate({.server_rpm = limit, .server_burst = burst,
                              .policy = {.requests_per_minute = 600},
                              .length = minutes{20}});
    const std::string where = "burst " + std::to_string(burst);
    // Before the drop, and settled at the lower level within two minutes of it.
    EXPECT_GE(figures(run, 300, 1, 5).throughput, 0.95) << where;
    const Figures low = figures(run, 120, 7, 12);
    EXPECT_GE(low.throughput, 0.95) << where << " at 120: " << low.describe();
    EXPECT_LE(low.limited_share, 0.01) << where << " at 120: " << low.describe();
    // The descent itself costs a burst of 429s, but a bounded one.
    const Second descent = run.between(5, 7);
    EXPECT_LE(descent.limited, 40) << where;
    // Back up: additive probing past the old level finds the new one within five minutes.
    const Figures high = figures(run, 300, 16, 20);
    EXPECT_GE(high.throughput, 0.90) << where << " back at 300: " << high.describe();
    EXPECT_LE(high.limited_share, 0.01) << where << " back at 300: " << high.describe();
    EXPECT_EQ(run.sent_inside_pause, 0) << where;
    for (const auto& [from, to, rpm] : {std::tuple{1.0, 5.0, 300.0}, {5.0, 7.0, 120.0},
                                        {7.0, 12.0, 120.0}, {12.0, 14.0, 300.0},
                                        {14.0, 16.0, 300.0}, {16.0, 20.0, 300.0}}) {
      std::printf("[ figures  ] moving limit, %s, minutes %g-%g at %g rpm: %s\n", where.c_str(),
                  from, to, rpm, figures(run, rpm, from, to).describe().c_str());
    }
  }
}

TEST(RateGateConvergence, WithoutRetryAfterBacksOffAndStillSettles) {
  for (double rpm : {30.0, 120.0, 600.0}) {
    for (double burst : {1.0, 10.0}) {
      const SimRun run = simulate({.server_rpm = constant(rpm), .server_burst = burst,
                                .retry_after = false, .policy = {.requests_per_minute = 1'200},
                                .seed = 7});
      const Figures f = figures(run, rpm, 1, 10);
      const std::string where = "limit " + std::to_string(rpm) + " burst " +
                                std::to_string(burst) + ": " + f.describe();
      std::printf("[ figures  ] no Retry-After, %s\n", where.c_str());
      EXPECT_LE(f.limited_share, 0.02) << where;
      EXPECT_GE(f.throughput, 0.90) << where;
    }
  }
}

}  // namespace
}  // namespace devin_orch::core
