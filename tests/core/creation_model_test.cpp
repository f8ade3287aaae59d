// Model test of the exactly-once promise: the creation machine driven against a fake server and
// a fake store through random faults and crashes at every step, over thousands of seeds.
#include "devin_orch/core/creation_machine.hpp"
#include "devin_orch/core/job.hpp"

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = CreationActionKind;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'000);

// The Devin org as far as one job can tell: sessions carrying the job's tag. Its list is not
// read-your-writes: a new session shows there only `list_lag` after its creation.
struct FakeServer {
  struct Session {
    std::string id;
    std::int64_t created_at_s;  // on the server's clock
    TimePoint listed_from;      // on ours
  };
  std::vector<Session> sessions;
  Duration skew{0};  // server clock minus ours; well inside the lookup margin
  Duration list_lag{0};
  int next_id = 1;

  std::string create(TimePoint now) {
    sessions.push_back(
        {"devin-" + std::to_string(next_id++), to_epoch_seconds(now + skew), now + list_lag});
    return sessions.back().id;
  }

  // A complete lookup: every page, filtered by created_after on the server's clock, of what
  // the list shows at `now`.
  std::vector<std::string> list(std::int64_t created_after, TimePoint now) const {
    std::vector<std::string> ids;
    for (const Session& s : sessions) {
      if (s.created_at_s >= created_after && now >= s.listed_from) ids.push_back(s.id);
    }
    return ids;
  }
  std::size_t listed(TimePoint now) const { return list(-1, now).size(); }
};

// The job's row in SQLite: only what was durably committed survives a crash.
struct FakeStore {
  JobState state = JobState::queued;
  std::int64_t attempts = 0;
  std::int64_t cut_short = 0;
  std::optional<std::int64_t> intent_at_ms;
  std::optional<std::string> session_id;
};

// How often the model reached the situations the protocol exists for, summed over seeds, so
// the test fails if it stops exercising them.
struct Coverage {
  int crashes = 0;
  int lost_creates = 0;        // the server created, and the answer never reached the machine
  int lagged_lookups = 0;      // a lookup found nothing while the list had yet to show one
  int adopted_by_lookup = 0;
  int recreated_after_proof = 0;
  int requeues = 0;
  int gave_up_exhausted = 0;
  int gave_up_rejected = 0;
  int committed = 0;
};

class Model {
 public:
  Model(std::uint64_t seed, Coverage& coverage)
      : dice_{seed * 0x9E3779B97F4A7C15ULL + 1}, machine_random_{seed}, coverage_{coverage} {
    policy_ = CreationPolicy{.max_attempts = 1 + static_cast<std::int64_t>(dice_.next() % 4),
                             .retry = {milliseconds{200}, milliseconds{5'000}, 2.0},
                             .settle_delay = milliseconds{2'000},
                             .settle_window = milliseconds{25'000},
                             .lookup_margin = milliseconds{600'000}};
    // A third of the runs watch the tag after the last attempt, as the daemon does: with the lag
    // inside the window it finds nothing, and a crash during it must not lose the job either.
    if (chance(0.3)) policy_.last_watch = milliseconds{30'000};
    // Half the runs with a list that lags behind creates, by up to 20 s (inside the window).
    if (chance(0.5)) server_.list_lag = milliseconds{static_cast<long long>(dice_.uniform() * 20'000)};
    server_.skew = milliseconds{static_cast<long long>(dice_.uniform() * 240'000) - 120'000};
    fault_rate_ = 0.05 + 0.4 * dice_.uniform();
    crash_rate_ = 0.02 + 0.15 * dice_.uniform();
  }

  // Empty when every property held; otherwise what broke, with the trace.
  std::string run() {
    boot();
    for (int step = 0; step < 5'000; ++step) {
      calm_ = step > 150;  // faults stop eventually, so every run must end
      now_ += milliseconds{static_cast<long long>(dice_.uniform() * 500)};
      if (finished_) return final_check();
      if (!calm_ && chance(crash_rate_)) {
        crash("before " + std::string{to_string(action_.kind)});
        continue;
      }
      if (std::string broken = perform(); !broken.empty()) return broken;
      if (server_.sessions.size() > 1) return fail("the server holds two sessions for the job");
    }
    return fail("the job never finished");
  }

 private:
  bool chance(double p) { return dice_.uniform() < p; }
  bool fault() { return !calm_ && chance(fault_rate_); }

  std::string fail(const std::string& what) const {
    std::ostringstream out;
    out << what << "\n  server sessions: " << server_.sessions.size()
        << ", store: " << to_string(store_.state) << " attempts=" << store_.attempts
        << "\n  trace:\n" << trace_.str();
    return out.str();
  }

  void boot() {
    machine_ = std::make_unique<CreationMachine>(
        policy_, CreationSnapshot{.attempts = store_.attempts, .cut_short = store_.cut_short,
                                  .intent_at_ms = store_.intent_at_ms},
        machine_random_);
    switch (store_.state) {
      case JobState::queued: feed(StartFresh{now_}, "StartFresh"); break;
      case JobState::creating: feed(ResumeAfterRestart{now_}, "ResumeAfterRestart"); break;
      default: finished_ = true; break;
    }
  }

  void crash(const std::string& where) {
    ++coverage_.crashes;
    trace_ << "    ** crash " << where << "\n";
    // Usually a quick restart; sometimes the host stays down for hours, far beyond the
    // lookup margin, which a lookup window anchored on the restart time would not survive.
    now_ += chance(0.2) ? milliseconds{static_cast<long long>(dice_.uniform() * 3 * 3'600'000)}
                        : seconds{5};
    boot();
  }

  void feed(const CreationInput& input, const std::string& what) {
    trace_ << "    <- " << what << "\n";
    action_ = machine_->resume(input);
    trace_ << "    -> " << action_ << "\n";
  }

  std::string perform() {
    const CreationAction a = action_;
    switch (a.kind) {
      case Kind::commit_intent: {
        if (a.attempt + a.cut_short != store_.attempts + store_.cut_short + 1) {
          return fail("commit_intent skipped a send");
        }
        if (a.cut_short > policy_.max_cut_short) return fail("more cut-short sends than allowed");
        if (a.attempt > policy_.max_attempts) return fail("more attempts than allowed");
        if (!a.intent_at_ms) return fail("commit_intent without an intent time");
        if (store_.intent_at_ms && *a.intent_at_ms != *store_.intent_at_ms) {
          return fail("the generation's first intent moved");
        }
        store_.state = JobState::creating;
        store_.attempts = a.attempt;
        store_.cut_short = a.cut_short;
        store_.intent_at_ms = a.intent_at_ms;
        if (!calm_ && chance(crash_rate_)) {
          crash("after committing the intent");
          return {};
        }
        feed(IntentCommitted{now_}, "IntentCommitted");
        return {};
      }
      case Kind::send_create: return send_create(a);
      case Kind::lookup: return lookup(a);
      case Kind::wait:
        now_ += a.delay;
        feed(WaitElapsed{now_}, "WaitElapsed");
        return {};
      case Kind::commit_session: {
        if (server_.sessions.empty() || server_.sessions.front().id != a.session_id) {
          return fail("commit_session for a session the server does not hold");
        }
        store_.state = JobState::running;
        store_.session_id = a.session_id;
        if (!calm_ && chance(crash_rate_)) {
          crash("after committing the session");
          return {};
        }
        feed(SessionCommitted{now_}, "SessionCommitted");
        return {};
      }
      case Kind::requeue:
        if (!a.pause_org) return fail("requeue without pausing the org");
        if (a.attempt != store_.attempts - 1) return fail("requeue did not uncount the attempt");
        ++coverage_.requeues;
        store_.state = JobState::queued;
        store_.attempts = a.attempt;
        // The org is paused for a while, then the dispatcher claims the job again.
        now_ += milliseconds{60'000 + static_cast<long long>(dice_.uniform() * 1'800'000)};
        boot();
        return {};
      case Kind::give_up:
        (a.reason.starts_with("no session after") ? coverage_.gave_up_exhausted
                                                  : coverage_.gave_up_rejected)++;
        store_.state = JobState::dead;
        finished_ = true;
        return {};
      case Kind::done:
        ++coverage_.committed;
        finished_ = true;
        return {};
    }
    return fail("unknown action");
  }

  std::string send_create(const CreationAction& a) {
    // Promise 1: the intent for this very attempt is durable.
    if (store_.state != JobState::creating || store_.attempts != a.attempt) {
      return fail("send_create before its intent was committed");
    }
    // Promise 2: nothing sent earlier may still be out there unaccounted for.
    if (unproven_) return fail("send_create after an ambiguous create without proof of absence");
    if (!server_.sessions.empty()) return fail("send_create while a session exists");

    if (!fault()) {
      const std::string id = server_.create(now_);
      if (chance(crash_rate_ / 2)) {  // calm or not: a crash right after a good answer is benign
        unproven_ = true;
        ++coverage_.lost_creates;
        crash("with a create answer in flight");
        return {};
      }
      feed(CreateAnswered{.outcome = {.cls = CallClass::ok, .http_status = 201},
                          .session_id = id, .now = now_},
           "CreateAnswered ok " + id);
      return {};
    }

    const auto answer = [&](CallClass cls, int status, bool billing, std::string what) {
      feed(CreateAnswered{.outcome = {.cls = cls, .http_status = status, .detail = what,
                                      .billing = billing},
                          .session_id = std::nullopt, .now = now_},
           "CreateAnswered " + what);
    };
    switch (dice_.next() % 12) {
      case 0: answer(CallClass::not_sent, 0, false, "connect refused"); break;
      case 1:  // created, the answer timed out
        server_.create(now_);
        unproven_ = true;
        ++coverage_.lost_creates;
        answer(CallClass::ambiguous, 0, false, "timeout after the server acted");
        break;
      case 2:
        unproven_ = true;
        answer(CallClass::ambiguous, 0, false, "timeout before the server acted");
        break;
      case 3:
        server_.create(now_);
        unproven_ = true;
        ++coverage_.lost_creates;
        answer(CallClass::ambiguous, 502, false, "502 after creating");
        break;
      case 4:
        unproven_ = true;
        answer(CallClass::ambiguous, 503, false, "503 without creating");
        break;
      case 5: {  // created, and a 2xx body we could not read
        server_.create(now_);
        unproven_ = true;
        ++coverage_.lost_creates;
        feed(CreateAnswered{.outcome = {.cls = CallClass::ok, .http_status = 200},
                            .session_id = std::nullopt, .now = now_},
             "CreateAnswered ok without id");
        break;
      }
      case 6:  // the process dies mid-request; the server may or may not have acted
        if (chance(0.5)) {
          server_.create(now_);
          ++coverage_.lost_creates;
        }
        unproven_ = true;
        crash("with a create on the wire");
        break;
      case 7: answer(CallClass::rate_limited, 429, false, "429"); break;
      case 8: answer(CallClass::rate_limited, 429, false, "429 concurrency cap"); break;
      case 9: answer(CallClass::unauthorized, 401, false, "401"); break;
      case 10: answer(CallClass::forbidden, 403, true, "403 billing"); break;
      default:
        // Rare: these end the job for good, which would cut most runs short.
        if (chance(0.2)) {
          answer(chance(0.5) ? CallClass::rejected : CallClass::forbidden, 422, false, "422");
        } else {
          answer(CallClass::not_sent, 0, false, "TLS handshake failed");
        }
        break;
    }
    return {};
  }

  std::string lookup(const CreationAction& a) {
    if (!a.created_after) return fail("lookup without created_after");
    if (fault()) {
      const auto failed = [&](CallClass cls, bool billing, std::string what) {
        feed(LookupAnswered{.outcome = {.cls = cls, .detail = what, .billing = billing},
                            .matches = {}, .now = now_},
             "LookupAnswered " + what);
      };
      switch (dice_.next() % 7) {
        case 0: failed(CallClass::rate_limited, false, "429"); break;
        case 1: failed(CallClass::ambiguous, false, "timeout"); break;
        case 2: failed(CallClass::not_sent, false, "connect refused"); break;
        case 3: failed(CallClass::unauthorized, false, "401"); break;
        case 4: failed(CallClass::forbidden, true, "403 billing"); break;
        case 5: failed(CallClass::ambiguous, false, "500"); break;
        default: crash("with a lookup in flight"); break;
      }
      return {};
    }
    std::vector<std::string> matches = server_.list(*a.created_after, now_);
    if (matches.size() != server_.listed(now_)) {
      return fail("created_after excluded a session of this generation");
    }
    if (matches.empty() && !server_.sessions.empty()) ++coverage_.lagged_lookups;
    if (matches.empty() && server_.sessions.empty()) {
      unproven_ = false;  // absence proven
      const bool exhausted = store_.attempts >= policy_.max_attempts;
      if (!exhausted) ++coverage_.recreated_after_proof;
    } else if (!matches.empty()) {
      ++coverage_.adopted_by_lookup;
    }
    std::string what = "LookupAnswered ok [";
    for (const auto& id : matches) what += id + " ";
    feed(LookupAnswered{.outcome = {.cls = CallClass::ok}, .matches = matches, .now = now_},
         what + "]");
    return {};
  }

  std::string final_check() const {
    if (store_.state == JobState::running) {
      if (server_.sessions.size() != 1 || server_.sessions.front().id != store_.session_id) {
        return fail("the committed session is not the one session the server holds");
      }
      return {};
    }
    if (store_.state == JobState::dead) {
      if (!server_.sessions.empty()) return fail("the job is dead but a session exists");
      return {};
    }
    return fail("the job ended neither running nor dead");
  }

  Random dice_;            // the world's choices
  Random machine_random_;  // the machine's jitter
  Coverage& coverage_;
  CreationPolicy policy_;
  FakeServer server_;
  FakeStore store_;
  std::unique_ptr<CreationMachine> machine_;
  CreationAction action_;
  TimePoint now_ = kT0;
  double fault_rate_ = 0;
  double crash_rate_ = 0;
  bool calm_ = false;
  bool finished_ = false;
  bool unproven_ = false;  // a create may have landed and no lookup has accounted for it since
  std::ostringstream trace_;
};

TEST(CreationModel, NeverTwoSessionsAndAlwaysCommittedOrDeadWithNone) {
  Coverage coverage;
  constexpr std::uint64_t kSeeds = 20'000;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    const std::string broken = Model{seed, coverage}.run();
    if (!broken.empty()) FAIL() << "seed " << seed << ": " << broken;
  }
  // The runs must have gone through the dangerous situations, not around them.
  EXPECT_GT(coverage.crashes, 8'000);
  EXPECT_GT(coverage.lost_creates, 1'000);
  EXPECT_GT(coverage.lagged_lookups, 500);
  EXPECT_GT(coverage.adopted_by_lookup, 2'000);
  EXPECT_GT(coverage.recreated_after_proof, 2'500);
  EXPECT_GT(coverage.requeues, 400);
  EXPECT_GT(coverage.gave_up_exhausted, 40);  // rare: a crash no longer uses an attempt up
  EXPECT_GT(coverage.gave_up_rejected, 40);
  EXPECT_GT(coverage.committed, 10'000);
  std::cout << "model coverage over " << kSeeds << " seeds: crashes=" << coverage.crashes
            << " lost_creates=" << coverage.lost_creates
            << " lagged_lookups=" << coverage.lagged_lookups
            << " adopted=" << coverage.adopted_by_lookup
            << " recreated=" << coverage.recreated_after_proof
            << " requeues=" << coverage.requeues
            << " gave_up_exhausted=" << coverage.gave_up_exhausted
            << " gave_up_rejected=" << coverage.gave_up_rejected
            << " committed=" << coverage.committed << "\n";
}

}  // namespace
}  // namespace devin_orch::core
