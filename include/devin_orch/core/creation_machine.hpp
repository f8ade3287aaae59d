// The exactly-once creation protocol for one job, as a sans-I/O state machine.
//
// The v3 create call has no idempotency key, so the machine never sends a create unless the
// job's intent is durably committed first, and after any failure that might have created a
// session it proves absence (a complete lookup by the job's tag) before sending again.
// The caller maps each action to I/O and feeds the result back through resume().
#pragma once

#include "devin_orch/core/backoff.hpp"
#include "devin_orch/core/call_outcome.hpp"
#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace devin_orch::core {

struct CreationPolicy {
  std::int64_t max_attempts = 5;   // answered create requests per generation before `dead`
  BackoffPolicy retry{};           // between re-sends, lookups and re-creates
  Duration settle_delay{2'000};    // after an ambiguous failure, before the first lookup
  // How long after an ambiguous failure (or a restart) lookups keep looking before a lookup
  // that finds nothing proves absence: the list is not read-your-writes and may show a new
  // session late. Lookups in between back off from settle_delay, doubling.
  Duration settle_window{30'000};
  Duration lookup_margin{600'000}; // created_after = first intent - margin (clock skew)
  // Once the last attempt's absence is proven, a list that lags longer than the settle window
  // may still show one of the attempts' sessions: the tag is looked at for this much longer
  // before the job ends `dead`, and a session found is adopted (0: end at once).
  Duration last_watch{0};
  // Create requests whose answer no process saw (cut short by a crash) do not count as
  // attempts; this many of them end the job instead, so a job that crashes the daemon cannot
  // keep crashing it.
  std::int64_t max_cut_short = 10;
};

enum class CreationActionKind {
  commit_intent,   // persist state=creating, attempts=`attempt`, cut-short sends=`cut_short`
                   // (+ intent time) before sending
  send_create,     // POST the session, through the org's rate gate
  lookup,          // list the org's sessions with the job's tag, created after `created_after`,
                   // following every page; report all matches
  wait,            // sleep `delay`, then resume(WaitElapsed)
  commit_session,  // persist `session_id` with state=running in one transaction
  requeue,         // provably nothing created; the org cannot take work now: back to queued
                   // with attempts=`attempt`, and pause the org (reason says why)
  give_up,         // job ends `dead` with `reason`
  done,            // session committed; polling takes over
};

std::string_view to_string(CreationActionKind kind) noexcept;

struct CreationAction {
  CreationActionKind kind = CreationActionKind::done;
  std::int64_t attempt = 0;                  // commit_intent, send_create, requeue
  Duration delay{0};                         // wait
  std::optional<std::int64_t> created_after; // lookup: epoch seconds
  std::optional<std::int64_t> intent_at_ms;  // commit_intent: first intent of the generation
  std::string session_id;                    // commit_session
  std::int64_t cut_short = 0;                // commit_intent: sends no answer was seen for
  // commit_session: a create was sent again after one that may have landed, and the list may
  // show that one late: keep checking the job's tag for a second session for a while.
  bool watch_duplicates = false;
  std::string reason;                        // give_up, requeue; also why a wait/resend/re-lookup
  bool pause_org = false;                    // requeue/give_up/wait: stop dispatch for the org

  bool operator==(const CreationAction&) const = default;
};

// Readable one-line form, e.g. `wait{delay=2000ms, reason="..."}`, for logs and test failures.
std::ostream& operator<<(std::ostream& out, const CreationAction& action);
std::ostream& operator<<(std::ostream& out, CreationActionKind kind);

// Inputs.
struct StartFresh { TimePoint now; };           // a queued job was claimed
struct ResumeAfterRestart { TimePoint now; };   // a job found in `creating` at start-up
struct IntentCommitted { TimePoint now; };
struct CreateAnswered {
  CallOutcome outcome;
  std::optional<std::string> session_id;  // set when outcome is ok
  TimePoint now;
};
struct LookupAnswered {
  CallOutcome outcome;
  std::vector<std::string> matches;  // session ids carrying the tag, oldest first
  TimePoint now;
};
struct WaitElapsed { TimePoint now; };
struct SessionCommitted { TimePoint now; };

using CreationInput = std::variant<StartFresh, ResumeAfterRestart, IntentCommitted,
                                   CreateAnswered, LookupAnswered, WaitElapsed, SessionCommitted>;

// What the store knows about the job when the machine is built.
struct CreationSnapshot {
  std::int64_t attempts = 0;                 // create requests already counted
  std::int64_t cut_short = 0;                // create requests no process saw answered
  std::optional<std::int64_t> intent_at_ms;  // first intent of this generation, if any
};

class CreationMachine {
 public:
  CreationMachine(CreationPolicy policy, CreationSnapshot snapshot, Random& random);

  // Throws std::logic_error when `input` cannot happen in the current phase (a caller bug).
  CreationAction resume(const CreationInput& input);

  std::int64_t attempts() const noexcept { return attempts_; }
  std::int64_t cut_short() const noexcept { return cut_short_; }
  bool finished() const noexcept;

 private:
  enum class Phase {
    idle, committing_intent, sending, waiting_to_resend, waiting_to_lookup, looking_up,
    waiting_to_recreate, committing_session, done, gave_up, requeued,
  };

  CreationAction begin_attempt(TimePoint now);
  CreationAction start_lookup(TimePoint now);
  CreationAction on_create(const CreateAnswered& answer);
  CreationAction on_lookup(const LookupAnswered& answer);
  CreationAction on_wait(const WaitElapsed& elapsed);
  CreationAction conclude_absence(TimePoint now);
  CreationAction settle(TimePoint now, std::string reason);
  CreationAction settle_for(TimePoint now, Duration window, std::string reason);

  CreationPolicy policy_;
  Random& random_;
  Phase phase_ = Phase::idle;
  std::int64_t attempts_ = 0;
  std::optional<std::int64_t> intent_at_ms_;
  int resend_failures_ = 0;  // consecutive not-sent failures, for backoff
  int lookup_failures_ = 0;  // consecutive failed lookups, for backoff
  std::int64_t cut_short_ = 0;
  TimePoint settle_until_{};     // a lookup started before this cannot prove absence
  TimePoint lookup_started_{};
  int empty_looks_ = 0;          // lookups that found nothing within the settle window
  bool resumed_ = false;         // the last attempt was sent by a process that is gone
  bool recreated_ = false;       // a create went again after one that may have landed
  bool last_watching_ = false;   // attempts are used up; looking for a late-listed session
};

}  // namespace devin_orch::core
