// Step-by-step tests of the creation machine: every path's exact action sequence, every
// CallClass for creates and lookups, and misfit inputs as broken invariants.
#include "devin_orch/core/creation_machine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <sstream>
#include <stdexcept>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::HasSubstr;
using Kind = CreationActionKind;

const TimePoint kT0 = from_epoch_ms(1'700'000'000'123);
constexpr std::int64_t kT0Ms = 1'700'000'000'123;
// created_after for a generation whose first intent is kT0: (kT0 - 600 s) in epoch seconds.
constexpr std::int64_t kLookupFrom = 1'699'999'400;

const CreationPolicy kPolicy{.max_attempts = 3,
                             .retry = {milliseconds{100}, milliseconds{1'000}, 2.0},
                             .settle_delay = milliseconds{2'000},
                             .settle_window = milliseconds{0},
                             .lookup_margin = milliseconds{600'000}};

CallOutcome outcome(CallClass cls, bool billing = false, std::string detail = "why") {
  return CallOutcome{.cls = cls, .http_status = 0, .detail = std::move(detail),
                     .billing = billing};
}

CreateAnswered created(std::string id, TimePoint now = kT0) {
  return CreateAnswered{.outcome = outcome(CallClass::ok), .session_id = std::move(id),
                        .now = now};
}

CreateAnswered create_failed(CallClass cls, bool billing = false, TimePoint now = kT0) {
  return CreateAnswered{.outcome = outcome(cls, billing), .session_id = std::nullopt, .now = now};
}

LookupAnswered found(std::vector<std::string> ids, TimePoint now = kT0) {
  return LookupAnswered{.outcome = outcome(CallClass::ok), .matches = std::move(ids), .now = now};
}

LookupAnswered lookup_failed(CallClass cls, bool billing = false, TimePoint now = kT0) {
  return LookupAnswered{.outcome = outcome(cls, billing), .matches = {}, .now = now};
}

CreationAction commit_intent(std::int64_t attempt, std::int64_t intent_at_ms = kT0Ms) {
  return CreationAction{.kind = Kind::commit_intent, .attempt = attempt,
                        .intent_at_ms = intent_at_ms};
}

CreationAction send_create(std::int64_t attempt, std::string reason = "") {
  return CreationAction{.kind = Kind::send_create, .attempt = attempt, .reason = std::move(reason)};
}

CreationAction lookup(std::int64_t created_after = kLookupFrom, std::string reason = "") {
  return CreationAction{.kind = Kind::lookup, .created_after = created_after,
                        .reason = std::move(reason)};
}

CreationAction commit_session(std::string id) {
  return CreationAction{.kind = Kind::commit_session, .session_id = std::move(id)};
}

CreationAction done() { return CreationAction{.kind = Kind::done}; }

class CreationMachineTest : public testing::Test {
 public:  // the misfit table's lambdas reach phases through these
  CreationMachine machine(CreationSnapshot snapshot = {}, CreationPolicy policy = kPolicy) {
    return CreationMachine{policy, snapshot, random_};
  }

  // Drives a fresh machine to the point where attempt 1's create is on the wire.
  CreationMachine sending() {
    CreationMachine m = machine();
    EXPECT_EQ(m.resume(StartFresh{kT0}), commit_intent(1));
    EXPECT_EQ(m.resume(IntentCommitted{kT0}), send_create(1));
    return m;
  }

  // Drives a machine to its first lookup after an ambiguous create.
  CreationMachine looking_up() {
    CreationMachine m = sending();
    const CreationAction wait = m.resume(create_failed(CallClass::ambiguous));
    EXPECT_EQ(wait.kind, Kind::wait);
    EXPECT_EQ(m.resume(WaitElapsed{kT0 + seconds{2}}), lookup());
    return m;
  }

  Random random_{7};
};

TEST_F(CreationMachineTest, HappyPathCommitsIntentSendsOnceAndCommitsTheSession) {
  CreationMachine m = machine();
  EXPECT_FALSE(m.finished());
  EXPECT_EQ(m.resume(StartFresh{kT0}), commit_intent(1));
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.resume(IntentCommitted{kT0}), send_create(1));
  EXPECT_EQ(m.resume(created("devin-1")), commit_session("devin-1"));
  EXPECT_FALSE(m.finished());
  EXPECT_EQ(m.resume(SessionCommitted{kT0}), done());
  EXPECT_TRUE(m.finished());
  EXPECT_EQ(m.attempts(), 1);
}

TEST_F(CreationMachineTest, StartFreshContinuesTheGenerationsCountAndKeepsItsFirstIntent) {
  CreationMachine m = machine({.attempts = 1, .intent_at_ms = kT0Ms - 5'000});
  EXPECT_EQ(m.resume(StartFresh{kT0}), commit_intent(2, kT0Ms - 5'000));
  EXPECT_EQ(m.resume(IntentCommitted{kT0}), send_create(2));
}

TEST_F(CreationMachineTest, StartFreshWithAttemptsExhaustedGivesUpWithoutSending) {
  CreationMachine m = machine({.attempts = 3, .intent_at_ms = kT0Ms});
  const CreationAction a = m.resume(StartFresh{kT0});
  EXPECT_EQ(a.kind, Kind::give_up);
  EXPECT_EQ(a.reason, "no session after 3 create attempts");
  EXPECT_FALSE(a.pause_org);
  EXPECT_TRUE(m.finished());
}

TEST_F(CreationMachineTest, NotSentResendsTheSameAttemptWithGrowingBackoff) {
  CreationMachine m = sending();
  long long ceiling = 100;
  for (int i = 0; i < 6; ++i) {
    const CreationAction wait = m.resume(create_failed(CallClass::not_sent));
    ASSERT_EQ(wait.kind, Kind::wait) << wait;
    EXPECT_GE(wait.delay.count(), 0);
    EXPECT_LE(wait.delay.count(), ceiling) << "failure " << i;
    EXPECT_THAT(wait.reason, HasSubstr("create not sent: why"));
    EXPECT_FALSE(wait.pause_org);
    // Nothing left the process: same attempt, not counted again, and no lookup needed.
    EXPECT_EQ(m.resume(WaitElapsed{kT0}), send_create(1));
    EXPECT_EQ(m.attempts(), 1);
    ceiling = std::min(ceiling * 2, 1'000LL);
  }
  EXPECT_EQ(m.resume(created("devin-1")), commit_session("devin-1"));
}

TEST_F(CreationMachineTest, AmbiguousCreateSettlesThenLooksUpAndAdoptsTheOldestMatch) {
  CreationMachine m = sending();
  const CreationAction wait = m.resume(create_failed(CallClass::ambiguous));
  EXPECT_EQ(wait.kind, Kind::wait);
  EXPECT_EQ(wait.delay, milliseconds{2'000});
  EXPECT_THAT(wait.reason, HasSubstr("create outcome unknown (why)"));
  EXPECT_EQ(m.resume(WaitElapsed{kT0 + seconds{2}}), lookup());
  EXPECT_EQ(m.resume(found({"devin-old", "devin-new"})), commit_session("devin-old"));
  EXPECT_EQ(m.resume(SessionCommitted{kT0}), done());
  EXPECT_EQ(m.attempts(), 1);
}

TEST_F(CreationMachineTest, ProvenAbsenceLeadsToANewCountedAttemptUnderTheSameIntent) {
  CreationMachine m = looking_up();
  const CreationAction wait = m.resume(found({}));
  EXPECT_EQ(wait.kind, Kind::wait);
  EXPECT_LE(wait.delay.count(), 100);  // retry 0: attempts - 1
  EXPECT_THAT(wait.reason, HasSubstr("no session found after attempt 1"));
  EXPECT_EQ(m.resume(WaitElapsed{kT0 + seconds{5}}), commit_intent(2, kT0Ms));
  EXPECT_EQ(m.resume(IntentCommitted{kT0 + seconds{5}}), send_create(2));
  CreationAction watched = commit_session("devin-2");
  watched.watch_duplicates = true;  // created again: a late-listed first one is looked for
  EXPECT_EQ(m.resume(created("devin-2")), watched);
}

TEST_F(CreationMachineTest, AmbiguousEveryTimeGivesUpOnlyAfterTheLastLookupProvesAbsence) {
  CreationMachine m = sending();
  for (std::int64_t attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(m.resume(create_failed(CallClass::ambiguous)).kind, Kind::wait);
    ASSERT_EQ(m.resume(WaitElapsed{kT0}), lookup());
    const CreationAction after = m.resume(found({}));
    if (attempt == 3) {
      EXPECT_EQ(after.kind, Kind::give_up) << after;
      EXPECT_EQ(after.reason, "no session after 3 create attempts");
      break;
    }
    ASSERT_EQ(after.kind, Kind::wait) << after;
    EXPECT_LE(after.delay.count(), 100 << (attempt - 1));
    ASSERT_EQ(m.resume(WaitElapsed{kT0}), commit_intent(attempt + 1));
    ASSERT_EQ(m.resume(IntentCommitted{kT0}), send_create(attempt + 1));
  }
  EXPECT_TRUE(m.finished());
  EXPECT_EQ(m.attempts(), 3);
}

TEST_F(CreationMachineTest, OkWithoutASessionIdIsTreatedAsAmbiguous) {
  CreationMachine m = sending();
  const CreationAction wait = m.resume(
      CreateAnswered{.outcome = outcome(CallClass::ok), .session_id = "", .now = kT0});
  EXPECT_EQ(wait.kind, Kind::wait);
  EXPECT_EQ(wait.delay, milliseconds{2'000});
  EXPECT_EQ(m.resume(WaitElapsed{kT0}), lookup());
}

TEST_F(CreationMachineTest, RateLimitedCreatesGoAgainAtOnceWithoutCountingAttempts) {
  CreationMachine m = sending();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(m.resume(create_failed(CallClass::rate_limited)),
              send_create(1, "rate limited: why"));
  }
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.resume(created("devin-1")), commit_session("devin-1"));
}

TEST_F(CreationMachineTest, UnauthorizedRequeuesUncountedAndPausesTheOrg) {
  CreationMachine m = machine({.attempts = 1, .intent_at_ms = kT0Ms});
  ASSERT_EQ(m.resume(StartFresh{kT0}), commit_intent(2));
  ASSERT_EQ(m.resume(IntentCommitted{kT0}), send_create(2));
  const CreationAction a = m.resume(create_failed(CallClass::unauthorized));
  EXPECT_EQ(a, (CreationAction{.kind = Kind::requeue, .attempt = 1,
                               .reason = "unauthorized: why", .pause_org = true}));
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_TRUE(m.finished());
}

TEST_F(CreationMachineTest, ResumeAfterRestartLooksUpAtOnceAndAdopts) {
  CreationMachine m = machine({.attempts = 2, .intent_at_ms = kT0Ms});
  EXPECT_EQ(m.resume(ResumeAfterRestart{kT0 + std::chrono::hours{1}}), lookup());
  EXPECT_EQ(m.resume(found({"devin-9"})), commit_session("devin-9"));
  EXPECT_EQ(m.resume(SessionCommitted{kT0}), done());
  EXPECT_EQ(m.attempts(), 2);
}

TEST_F(CreationMachineTest, ResumeAfterRestartWithProvenAbsenceRetriesTheCutShortAttempt) {
  CreationMachine m = machine({.attempts = 2, .intent_at_ms = kT0Ms});
  ASSERT_EQ(m.resume(ResumeAfterRestart{kT0}), lookup());
  const CreationAction wait = m.resume(found({}));
  ASSERT_EQ(wait.kind, Kind::wait);
  EXPECT_LE(wait.delay.count(), 100);
  CreationAction again = commit_intent(2);
  again.cut_short = 1;
  EXPECT_EQ(m.resume(WaitElapsed{kT0}), again);
}

TEST_F(CreationMachineTest, ResumeWithAttemptsExhaustedGivesUpOnlyAfterTheLookupAndOnlyIfAnswered) {
  // Exhausted by answered attempts before the restart, with the last one since answered
  // ambiguous (the crash came during its lookups): that one is taken as cut short, so one
  // more attempt goes; only then are attempts exhausted.
  CreationMachine m = machine({.attempts = 3, .intent_at_ms = kT0Ms});
  ASSERT_EQ(m.resume(ResumeAfterRestart{kT0}), lookup());
  ASSERT_EQ(m.resume(found({})).kind, Kind::wait);
  ASSERT_EQ(m.resume(WaitElapsed{kT0}).attempt, 3);
  m.resume(IntentCommitted{kT0});
  m.resume(create_failed(CallClass::ambiguous));
  m.resume(WaitElapsed{kT0});
  EXPECT_EQ(m.resume(found({})).kind, Kind::give_up);

  CreationMachine adopted = machine({.attempts = 3, .intent_at_ms = kT0Ms});
  ASSERT_EQ(adopted.resume(ResumeAfterRestart{kT0}), lookup());
  EXPECT_EQ(adopted.resume(found({"devin-3"})), commit_session("devin-3"));
}

TEST_F(CreationMachineTest, ResumeWithoutAnIntentAnchorsTheWindowOnceAtTheFirstLookup) {
  CreationMachine m = machine({.attempts = 1, .intent_at_ms = std::nullopt});
  ASSERT_EQ(m.resume(ResumeAfterRestart{kT0}), lookup());
  ASSERT_EQ(m.resume(lookup_failed(CallClass::ambiguous)).kind, Kind::wait);
  // An hour of failed lookups later the window has not slid forward.
  EXPECT_EQ(m.resume(WaitElapsed{kT0 + std::chrono::hours{1}}), lookup());
  ASSERT_EQ(m.resume(found({}, kT0 + std::chrono::hours{1})).kind, Kind::wait);
  CreationAction again = commit_intent(1, kT0Ms);
  again.cut_short = 1;  // the attempt the stopped process sent did not count
  EXPECT_EQ(m.resume(WaitElapsed{kT0 + std::chrono::hours{1}}), again);
}

TEST_F(CreationMachineTest, CreatedAfterRoundsDownForInstantsBeforeTheEpoch) {
  CreationMachine m = machine({.attempts = 1, .intent_at_ms = 500});
  // 500 ms - 600 s = -599.5 s: rounding toward zero would skip half a second.
  EXPECT_EQ(m.resume(ResumeAfterRestart{kT0}), lookup(-600));
}

// ---- every CallClass for the create ---------------------------------------------------------

struct CreateCase {
  CallClass cls;
  bool billing;
  Kind kind;
  std::int64_t attempt;  // for send_create / requeue
  bool pause_org;

  friend std::ostream& operator<<(std::ostream& out, const CreateCase& c) {
    return out << c.cls << (c.billing ? "+billing" : "") << " -> " << c.kind;
  }
};

class CreateOutcomeTable : public CreationMachineTest,
                           public testing::WithParamInterface<CreateCase> {};

TEST_P(CreateOutcomeTable, DecidesFromTheCreatesOutcome) {
  const CreateCase& c = GetParam();
  CreationMachine m = machine({.attempts = 1, .intent_at_ms = kT0Ms});
  ASSERT_EQ(m.resume(StartFresh{kT0}), commit_intent(2));
  ASSERT_EQ(m.resume(IntentCommitted{kT0}), send_create(2));
  const CreationAction a = m.resume(
      c.cls == CallClass::ok ? created("devin-x") : create_failed(c.cls, c.billing));
  EXPECT_EQ(a.kind, c.kind) << a;
  EXPECT_EQ(a.pause_org, c.pause_org) << a;
  if (c.kind == Kind::send_create || c.kind == Kind::requeue) {
    EXPECT_EQ(a.attempt, c.attempt);
  }
  if (c.kind == Kind::give_up) {
    EXPECT_THAT(a.reason, HasSubstr(std::string{to_string(c.cls)}));
    EXPECT_THAT(a.reason, HasSubstr("why"));
  }
  if (c.kind == Kind::requeue) {
    EXPECT_THAT(a.reason, HasSubstr("why"));
  }
  EXPECT_EQ(m.finished(), c.kind == Kind::give_up || c.kind == Kind::requeue);
}

INSTANTIATE_TEST_SUITE_P(
    EveryClass, CreateOutcomeTable,
    testing::Values(CreateCase{CallClass::ok, false, Kind::commit_session, 0, false},
                    CreateCase{CallClass::not_sent, false, Kind::wait, 0, false},
                    CreateCase{CallClass::ambiguous, false, Kind::wait, 0, false},
                    CreateCase{CallClass::rate_limited, false, Kind::send_create, 2, false},
                    CreateCase{CallClass::rate_limited, true, Kind::send_create, 2, false},
                    CreateCase{CallClass::unauthorized, false, Kind::requeue, 1, true},
                    CreateCase{CallClass::forbidden, true, Kind::requeue, 1, true},
                    CreateCase{CallClass::forbidden, false, Kind::give_up, 0, false},
                    CreateCase{CallClass::not_found, false, Kind::give_up, 0, false},
                    CreateCase{CallClass::rejected, false, Kind::give_up, 0, false}));

// ---- every CallClass for the lookup ---------------------------------------------------------

struct LookupCase {
  CallClass cls;
  bool billing;
  Kind kind;  // the immediate reaction
  bool pause_org;

  friend std::ostream& operator<<(std::ostream& out, const LookupCase& c) {
    return out << c.cls << (c.billing ? "+billing" : "") << " -> " << c.kind;
  }
};

class LookupFailureTable : public CreationMachineTest,
                           public testing::WithParamInterface<LookupCase> {};

// A failed lookup proves nothing, so however often it fails the machine keeps looking (never
// give_up, never requeue) and still adopts the session once a lookup finally works.
TEST_P(LookupFailureTable, NeverGivesUpWithoutProof) {
  const LookupCase& c = GetParam();
  CreationMachine m = looking_up();
  long long ceiling = 100;
  for (int i = 0; i < 30; ++i) {
    const CreationAction a = m.resume(lookup_failed(c.cls, c.billing));
    ASSERT_EQ(a.kind, c.kind) << a;
    EXPECT_EQ(a.pause_org, c.pause_org) << a;
    EXPECT_THAT(a.reason, HasSubstr("why"));
    if (a.kind == Kind::wait) {
      EXPECT_LE(a.delay.count(), ceiling);
      ceiling = std::min(ceiling * 2, 1'000LL);
      ASSERT_EQ(m.resume(WaitElapsed{kT0 + seconds{i}}), lookup());
    } else {
      ASSERT_EQ(a.created_after, kLookupFrom);
    }
    ASSERT_FALSE(m.finished());
  }
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.resume(found({"devin-1"})), commit_session("devin-1"));
}

INSTANTIATE_TEST_SUITE_P(
    EveryFailure, LookupFailureTable,
    testing::Values(LookupCase{CallClass::not_sent, false, Kind::wait, false},
                    LookupCase{CallClass::ambiguous, false, Kind::wait, false},
                    LookupCase{CallClass::rate_limited, false, Kind::lookup, false},
                    LookupCase{CallClass::unauthorized, false, Kind::wait, true},
                    LookupCase{CallClass::forbidden, true, Kind::wait, true},
                    LookupCase{CallClass::forbidden, false, Kind::wait, false},
                    LookupCase{CallClass::not_found, false, Kind::wait, false},
                    LookupCase{CallClass::rejected, false, Kind::wait, false}));

TEST_F(CreationMachineTest, LookupBackoffResetsAfterASuccessfulLookup) {
  CreationMachine m = looking_up();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(m.resume(lookup_failed(CallClass::ambiguous)).kind, Kind::wait);
    ASSERT_EQ(m.resume(WaitElapsed{kT0}), lookup());
  }
  ASSERT_EQ(m.resume(found({})).kind, Kind::wait);
  ASSERT_EQ(m.resume(WaitElapsed{kT0}), commit_intent(2));
  ASSERT_EQ(m.resume(IntentCommitted{kT0}), send_create(2));
  ASSERT_EQ(m.resume(create_failed(CallClass::ambiguous)).kind, Kind::wait);
  ASSERT_EQ(m.resume(WaitElapsed{kT0}), lookup());
  const CreationAction first_failure = m.resume(lookup_failed(CallClass::ambiguous));
  EXPECT_LE(first_failure.delay.count(), 100);
}

// ---- inputs that cannot happen --------------------------------------------------------------

struct MisfitCase {
  std::string name;
  std::function<CreationMachine(CreationMachineTest&)> reach;  // machine in some phase
  std::string phase;
  std::vector<int> allowed;  // CreationInput indices the phase accepts
};

CreationInput input_at(std::size_t index) {
  switch (index) {
    case 0: return StartFresh{kT0};
    case 1: return ResumeAfterRestart{kT0};
    case 2: return IntentCommitted{kT0};
    case 3: return created("devin-1");
    case 4: return found({});
    case 5: return WaitElapsed{kT0};
    default: return SessionCommitted{kT0};
  }
}

constexpr const char* kInputNames[] = {"StartFresh",     "ResumeAfterRestart", "IntentCommitted",
                                       "CreateAnswered", "LookupAnswered",     "WaitElapsed",
                                       "SessionCommitted"};

TEST_F(CreationMachineTest, InputsThatDoNotFitThePhaseAreBrokenInvariants) {
  using Self = CreationMachineTest;
  const std::vector<MisfitCase> cases{
      {"fresh", [](Self& t) { return t.machine(); }, "idle", {0, 1}},
      {"after commit_intent",
       [](Self& t) {
         CreationMachine m = t.machine();
         m.resume(StartFresh{kT0});
         return m;
       },
       "committing_intent", {2}},
      {"after send_create", [](Self& t) { return t.sending(); }, "sending", {3}},
      {"waiting to resend",
       [](Self& t) {
         CreationMachine m = t.sending();
         m.resume(create_failed(CallClass::not_sent));
         return m;
       },
       "waiting_to_resend", {5}},
      {"waiting to look up",
       [](Self& t) {
         CreationMachine m = t.sending();
         m.resume(create_failed(CallClass::ambiguous));
         return m;
       },
       "waiting_to_lookup", {5}},
      {"looking up", [](Self& t) { return t.looking_up(); }, "looking_up", {4}},
      {"waiting to recreate",
       [](Self& t) {
         CreationMachine m = t.looking_up();
         m.resume(found({}));
         return m;
       },
       "waiting_to_recreate", {5}},
      {"committing session",
       [](Self& t) {
         CreationMachine m = t.sending();
         m.resume(created("devin-1"));
         return m;
       },
       "committing_session", {6}},
      {"done",
       [](Self& t) {
         CreationMachine m = t.sending();
         m.resume(created("devin-1"));
         m.resume(SessionCommitted{kT0});
         return m;
       },
       "done", {}},
      {"gave up",
       [](Self& t) {
         CreationMachine m = t.sending();
         m.resume(create_failed(CallClass::rejected));
         return m;
       },
       "gave_up", {}},
      {"requeued",
       [](Self& t) {
         CreationMachine m = t.sending();
         m.resume(create_failed(CallClass::unauthorized));
         return m;
       },
       "requeued", {}},
  };
  for (const MisfitCase& c : cases) {
    for (std::size_t index = 0; index < std::size(kInputNames); ++index) {
      if (std::find(c.allowed.begin(), c.allowed.end(), static_cast<int>(index)) !=
          c.allowed.end()) {
        continue;
      }
      CreationMachine m = c.reach(*this);
      try {
        const CreationAction a = m.resume(input_at(index));
        ADD_FAILURE() << c.name << ": " << kInputNames[index] << " was accepted, gave " << a;
      } catch (const std::logic_error& e) {
        EXPECT_THAT(e.what(), HasSubstr(kInputNames[index])) << c.name;
        EXPECT_THAT(e.what(), HasSubstr("phase " + c.phase)) << c.name;
      }
    }
  }
}

// ---- printing -------------------------------------------------------------------------------

TEST(CreationActionPrinting, ShowsTheFieldsThatMatter) {
  const auto print = [](const CreationAction& a) {
    std::ostringstream out;
    out << a;
    return out.str();
  };
  EXPECT_EQ(print(commit_intent(2, 1234)), "commit_intent{attempt=2, intent_at_ms=1234}");
  EXPECT_EQ(print(send_create(1)), "send_create{attempt=1}");
  EXPECT_EQ(print(lookup(99)), "lookup{created_after=99}");
  EXPECT_EQ(print(CreationAction{.kind = Kind::wait, .delay = milliseconds{2000},
                                 .reason = "settle", .pause_org = true}),
            R"(wait{delay=2000ms, reason="settle", pause_org=true})");
  EXPECT_EQ(print(commit_session("devin-1")), R"(commit_session{session_id="devin-1"})");
  EXPECT_EQ(print(done()), "done{}");
  EXPECT_EQ(print(CreationAction{.kind = Kind::give_up, .reason = "no"}),
            R"(give_up{reason="no"})");
  std::ostringstream kind;
  kind << Kind::requeue;
  EXPECT_EQ(kind.str(), "requeue");
}

// ---- a list that shows new sessions late ------------------------------------------------

CreationPolicy lagging_policy() {
  CreationPolicy policy = kPolicy;
  policy.settle_window = seconds{30};
  return policy;
}

TEST_F(CreationMachineTest, AnEmptyLookupInsideTheSettleWindowLooksAgainLessOftenUntilItEnds) {
  CreationMachine m = machine({}, lagging_policy());
  ASSERT_EQ(m.resume(StartFresh{kT0}), commit_intent(1));
  ASSERT_EQ(m.resume(IntentCommitted{kT0}), send_create(1));
  auto action = m.resume(create_failed(CallClass::ambiguous));
  ASSERT_EQ(action.kind, Kind::wait);
  EXPECT_EQ(action.delay, seconds{2});
  TimePoint now = kT0 + action.delay;
  std::vector<Duration> waits;
  for (int look = 0; look < 10; ++look) {
    ASSERT_EQ(m.resume(WaitElapsed{now}).kind, Kind::lookup) << "look " << look;
    action = m.resume(found({}, now));
    if (action.kind != Kind::wait || action.reason.find("creating again") != std::string::npos) {
      break;
    }
    waits.push_back(action.delay);
    now += action.delay;
  }
  // 2 s, 4 s, 8 s, then what is left of the window: the last look begins as it ends.
  EXPECT_EQ(waits, (std::vector<Duration>{seconds{2}, seconds{4}, seconds{8}, seconds{14}}));
  EXPECT_EQ(now, kT0 + seconds{30});
  EXPECT_EQ(action.kind, Kind::wait);
  EXPECT_THAT(action.reason, HasSubstr("creating again"));
}

TEST_F(CreationMachineTest, ASessionTheListShowsLateIsAdoptedNotCreatedAgain) {
  CreationMachine m = machine({}, lagging_policy());
  m.resume(StartFresh{kT0});
  m.resume(IntentCommitted{kT0});
  const auto settle = m.resume(create_failed(CallClass::ambiguous));
  ASSERT_EQ(m.resume(WaitElapsed{kT0 + seconds{2}}).kind, Kind::lookup);
  const auto again = m.resume(found({}, kT0 + seconds{2}));
  ASSERT_EQ(again.kind, Kind::wait);
  ASSERT_EQ(m.resume(WaitElapsed{kT0 + seconds{4}}).kind, Kind::lookup);
  EXPECT_EQ(m.resume(found({"devin-late"}, kT0 + seconds{4})), commit_session("devin-late"));
  EXPECT_EQ(settle.delay, seconds{2});
}

TEST_F(CreationMachineTest, ARecreateAfterProvenAbsenceWatchesForADuplicate) {
  CreationMachine m = sending();
  m.resume(create_failed(CallClass::ambiguous));
  m.resume(WaitElapsed{kT0});
  ASSERT_EQ(m.resume(found({})).kind, Kind::wait);  // absence proven: create again
  ASSERT_EQ(m.resume(WaitElapsed{kT0}), commit_intent(2));
  m.resume(IntentCommitted{kT0});
  auto committed = m.resume(created("devin-2"));
  EXPECT_EQ(committed.kind, Kind::commit_session);
  EXPECT_TRUE(committed.watch_duplicates);
  // A first create that succeeds has nothing to watch for.
  CreationMachine first = sending();
  EXPECT_FALSE(first.resume(created("devin-1")).watch_duplicates);
}

TEST_F(CreationMachineTest, WithAttemptsUsedUpTheTagIsWatchedAWhileAndALateSessionIsAdopted) {
  // Every create was answered by a dropped connection and the list lags beyond the settle
  // window: the last lookup finds nothing, yet each attempt may have made a session.
  CreationPolicy policy = kPolicy;
  policy.max_attempts = 2;
  policy.last_watch = seconds{60};
  CreationMachine m = machine({}, policy);
  ASSERT_EQ(m.resume(StartFresh{kT0}), commit_intent(1));
  for (std::int64_t attempt = 1; attempt <= 2; ++attempt) {
    if (attempt > 1) {
      ASSERT_EQ(m.resume(WaitElapsed{kT0}), commit_intent(attempt));
    }
    ASSERT_EQ(m.resume(IntentCommitted{kT0}), send_create(attempt));
    ASSERT_EQ(m.resume(create_failed(CallClass::ambiguous)).kind, Kind::wait);
    ASSERT_EQ(m.resume(WaitElapsed{kT0}), lookup());
    if (attempt == 1) {
      ASSERT_EQ(m.resume(found({})).kind, Kind::wait);
    }
  }
  const CreationAction watch = m.resume(found({}, kT0));
  ASSERT_EQ(watch.kind, Kind::wait) << watch;
  EXPECT_EQ(watch.delay, milliseconds{2'000});
  EXPECT_THAT(watch.reason, HasSubstr("no session after 2 create attempts"));
  EXPECT_THAT(watch.reason, HasSubstr("watched"));
  EXPECT_FALSE(m.finished());
  // Looked at again, less often each time, until one shows.
  ASSERT_EQ(m.resume(WaitElapsed{kT0 + seconds{2}}), lookup());
  const CreationAction again = m.resume(found({}, kT0 + seconds{2}));
  ASSERT_EQ(again.kind, Kind::wait);
  EXPECT_EQ(again.delay, seconds{2});
  ASSERT_EQ(m.resume(WaitElapsed{kT0 + seconds{4}}), lookup());
  CreationAction adopt = commit_session("devin-first");
  adopt.watch_duplicates = true;  // the other attempt's session may show later still
  EXPECT_EQ(m.resume(found({"devin-first", "devin-second"}, kT0 + seconds{4})), adopt);
  EXPECT_EQ(m.resume(SessionCommitted{kT0 + seconds{4}}), done());
  EXPECT_EQ(m.attempts(), 2);
}

TEST_F(CreationMachineTest, WithAttemptsUsedUpTheJobEndsWhenTheWatchFindsNothing) {
  CreationPolicy policy = kPolicy;
  policy.max_attempts = 1;
  policy.last_watch = seconds{10};
  CreationMachine m = machine({}, policy);
  m.resume(StartFresh{kT0});
  m.resume(IntentCommitted{kT0});
  m.resume(create_failed(CallClass::ambiguous));
  ASSERT_EQ(m.resume(WaitElapsed{kT0}), lookup());
  CreationAction action = m.resume(found({}, kT0));
  TimePoint now = kT0;
  std::vector<Duration> waits;
  while (action.kind == Kind::wait) {
    waits.push_back(action.delay);
    now += action.delay;
    ASSERT_EQ(m.resume(WaitElapsed{now}), lookup());
    action = m.resume(found({}, now));
  }
  // 2 s, 2 s, 4 s, then what is left of the 10 s: the last look begins as the watch ends.
  EXPECT_EQ(waits, (std::vector<Duration>{seconds{2}, seconds{2}, seconds{4}, seconds{2}}));
  EXPECT_EQ(action.kind, Kind::give_up) << action;
  EXPECT_EQ(action.reason, "no session after 1 create attempts");
  EXPECT_TRUE(m.finished());
}

// ---- crashes do not burn attempts --------------------------------------------------------

TEST_F(CreationMachineTest, AnAttemptCutShortByARestartDoesNotCount) {
  // The last allowed attempt was in flight when the process died; the lookup finds nothing.
  CreationMachine m = machine({.attempts = 3, .cut_short = 0, .intent_at_ms = kT0Ms});
  ASSERT_EQ(m.resume(ResumeAfterRestart{kT0}), lookup());
  const auto wait = m.resume(found({}));
  ASSERT_EQ(wait.kind, Kind::wait) << wait;
  // The same attempt again, the cut-short send counted apart.
  auto intent = m.resume(WaitElapsed{kT0});
  EXPECT_EQ(intent.kind, Kind::commit_intent);
  EXPECT_EQ(intent.attempt, 3);
  EXPECT_EQ(intent.cut_short, 1);
  EXPECT_EQ(m.cut_short(), 1);
}

TEST_F(CreationMachineTest, TooManyCutShortSendsEndTheJob) {
  CreationPolicy policy = kPolicy;
  policy.max_cut_short = 2;
  CreationMachine m = machine({.attempts = 1, .cut_short = 2, .intent_at_ms = kT0Ms}, policy);
  m.resume(ResumeAfterRestart{kT0});
  const auto gave_up = m.resume(found({}));
  EXPECT_EQ(gave_up.kind, Kind::give_up);
  EXPECT_THAT(gave_up.reason, HasSubstr("cut short"));
  EXPECT_TRUE(m.finished());
}

TEST_F(CreationMachineTest, AnAdoptedSessionAfterARestartCountsNothingCutShort) {
  CreationMachine m = machine({.attempts = 2, .cut_short = 1, .intent_at_ms = kT0Ms});
  m.resume(ResumeAfterRestart{kT0});
  EXPECT_EQ(m.resume(found({"devin-9"})), commit_session("devin-9"));
  EXPECT_EQ(m.cut_short(), 1);
  EXPECT_EQ(m.attempts(), 2);
}

TEST_F(CreationMachineTest, AfterARestartAbsenceTakesTheWholeSettleWindow) {
  CreationMachine m = machine({.attempts = 1, .cut_short = 0, .intent_at_ms = kT0Ms},
                              lagging_policy());
  ASSERT_EQ(m.resume(ResumeAfterRestart{kT0}).kind, Kind::lookup);
  auto action = m.resume(found({}, kT0));
  ASSERT_EQ(action.kind, Kind::wait);
  EXPECT_THAT(action.reason, HasSubstr("look"));
  EXPECT_EQ(action.delay, seconds{2});
}

}  // namespace
}  // namespace devin_orch::core
