// The exactly-once creation protocol. Every transition is a pure function of the phase, the
// counters and the input; the two promises it keeps are spelled out where they are enforced.
#include "devin_orch/core/creation_machine.hpp"

#include <algorithm>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <type_traits>

namespace devin_orch::core {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string_view input_name(const CreationInput& input) noexcept {
  constexpr std::string_view kNames[] = {"StartFresh",     "ResumeAfterRestart", "IntentCommitted",
                                         "CreateAnswered", "LookupAnswered",     "WaitElapsed",
                                         "SessionCommitted"};
  static_assert(std::size(kNames) == std::variant_size_v<CreationInput>);
  return kNames[input.index()];
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

CreationAction wait_for(Duration delay, std::string reason, bool pause_org = false) {
  return CreationAction{.kind = CreationActionKind::wait, .delay = delay,
                        .reason = std::move(reason), .pause_org = pause_org};
}

}  // namespace

std::string_view to_string(CreationActionKind kind) noexcept {
  switch (kind) {
    case CreationActionKind::commit_intent: return "commit_intent";
    case CreationActionKind::send_create: return "send_create";
    case CreationActionKind::lookup: return "lookup";
    case CreationActionKind::wait: return "wait";
    case CreationActionKind::commit_session: return "commit_session";
    case CreationActionKind::requeue: return "requeue";
    case CreationActionKind::give_up: return "give_up";
    case CreationActionKind::done: return "done";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& out, CreationActionKind kind) {
  return out << to_string(kind);
}

std::ostream& operator<<(std::ostream& out, const CreationAction& a) {
  out << a.kind << '{';
  const char* sep = "";
  const auto field = [&](std::string_view name) -> std::ostream& {
    out << sep << name << '=';
    sep = ", ";
    return out;
  };
  switch (a.kind) {
    case CreationActionKind::commit_intent:
      field("attempt") << a.attempt;
      if (a.cut_short != 0) field("cut_short") << a.cut_short;
      break;
    case CreationActionKind::send_create:
    case CreationActionKind::requeue:
      field("attempt") << a.attempt;
      break;
    case CreationActionKind::wait:
      field("delay") << a.delay.count() << "ms";
      break;
    case CreationActionKind::commit_session:
      field("session_id") << '"' << a.session_id << '"';
      if (a.watch_duplicates) field("watch_duplicates") << "true";
      break;
    default:
      break;
  }
  if (a.intent_at_ms) field("intent_at_ms") << *a.intent_at_ms;
  if (a.created_after) field("created_after") << *a.created_after;
  if (!a.reason.empty()) field("reason") << '"' << a.reason << '"';
  if (a.pause_org) field("pause_org") << "true";
  return out << '}';
}

CreationMachine::CreationMachine(CreationPolicy policy, CreationSnapshot snapshot, Random& random)
    : policy_{policy},
      random_{random},
      attempts_{snapshot.attempts},
      intent_at_ms_{snapshot.intent_at_ms},
      cut_short_{snapshot.cut_short} {}

bool CreationMachine::finished() const noexcept {
  return phase_ == Phase::done || phase_ == Phase::gave_up || phase_ == Phase::requeued;
}

CreationAction CreationMachine::resume(const CreationInput& input) {
  const auto misfit = [&]() -> CreationAction {
    // In Phase's declaration order.
    static constexpr std::string_view kPhases[] = {
        "idle",
        "committing_intent",
        "sending",
        "waiting_to_resend",
        "waiting_to_lookup",
        "looking_up",
        "waiting_to_recreate",
        "committing_session",
        "done",
        "gave_up",
        "requeued",
    };
    std::ostringstream message;
    message << "creation machine: input " << input_name(input) << " does not fit phase "
            << kPhases[static_cast<int>(phase_)];
    throw std::logic_error(message.str());
  };

  return std::visit(
      Overloaded{
          [&](const StartFresh& in) {
            if (phase_ != Phase::idle) return misfit();
            if (attempts_ >= policy_.max_attempts) {
              phase_ = Phase::gave_up;
              return CreationAction{
                  .kind = CreationActionKind::give_up, .attempt = attempts_,
                  .reason = "no session after " + std::to_string(attempts_) + " create attempts"};
            }
            return begin_attempt(in.now);
          },
          [&](const ResumeAfterRestart& in) {
            // The previous process may have sent the create: only a lookup can tell. The first
            // look goes at once (the restart itself took a while), but absence is proven only
            // by a look after the settle window, as after any ambiguous failure.
            if (phase_ != Phase::idle) return misfit();
            resumed_ = true;
            settle_until_ = in.now + policy_.settle_window;
            return start_lookup(in.now);
          },
          [&](const IntentCommitted&) {
            if (phase_ != Phase::committing_intent) return misfit();
            // Promise 1: a create is only ever sent for an attempt whose intent is durable.
            phase_ = Phase::sending;
            return CreationAction{.kind = CreationActionKind::send_create, .attempt = attempts_};
          },
          [&](const CreateAnswered& in) {
            if (phase_ != Phase::sending) return misfit();
            return on_create(in);
          },
          [&](const LookupAnswered& in) {
            if (phase_ != Phase::looking_up) return misfit();
            return on_lookup(in);
          },
          [&](const WaitElapsed& in) {
            if (phase_ != Phase::waiting_to_resend && phase_ != Phase::waiting_to_lookup &&
                phase_ != Phase::waiting_to_recreate) {
              return misfit();
            }
            return on_wait(in);
          },
          [&](const SessionCommitted&) {
            if (phase_ != Phase::committing_session) return misfit();
            phase_ = Phase::done;
            return CreationAction{.kind = CreationActionKind::done};
          },
      },
      input);
}

CreationAction CreationMachine::begin_attempt(TimePoint now) {
  ++attempts_;
  // The first intent of the generation bounds every later lookup, so it is never moved forward.
  if (!intent_at_ms_) intent_at_ms_ = to_epoch_ms(now);
  resend_failures_ = 0;
  lookup_failures_ = 0;
  phase_ = Phase::committing_intent;
  return CreationAction{.kind = CreationActionKind::commit_intent, .attempt = attempts_,
                        .intent_at_ms = intent_at_ms_, .cut_short = cut_short_};
}

CreationAction CreationMachine::start_lookup(TimePoint now) {
  phase_ = Phase::looking_up;
  lookup_started_ = now;
  // Without a recorded intent (a store from before intents were kept), the first lookup's time
  // stands in for it, so that repeated lookups keep one window instead of sliding forward.
  if (!intent_at_ms_) intent_at_ms_ = to_epoch_ms(now);
  const std::int64_t from_ms = *intent_at_ms_ - policy_.lookup_margin.count();
  return CreationAction{.kind = CreationActionKind::lookup,
                        .created_after = floor_div(from_ms, 1000)};
}

CreationAction CreationMachine::on_create(const CreateAnswered& answer) {
  const CallOutcome& outcome = answer.outcome;
  switch (outcome.cls) {
    case CallClass::ok:
      if (answer.session_id && !answer.session_id->empty()) {
        phase_ = Phase::committing_session;
        return CreationAction{.kind = CreationActionKind::commit_session,
                              .session_id = *answer.session_id,
                              .watch_duplicates = recreated_};
      }
      // A 2xx without an id may still have created a session: handled as ambiguous below.
      return settle(answer.now, "create answered without a session id; looking up by tag");

    case CallClass::not_sent:
      // Nothing left the process: the same attempt goes again, uncounted.
      phase_ = Phase::waiting_to_resend;
      return wait_for(full_jitter_delay(policy_.retry, resend_failures_++, random_),
                      "create not sent: " + outcome.detail);

    case CallClass::ambiguous:
      // Promise 2: after a create that may have landed, the next create waits for proof of
      // absence: a lookup that finds nothing, begun after the settle window.
      return settle(answer.now, "create outcome unknown (" + outcome.detail + "); looking up by tag");

    case CallClass::rate_limited:
      // A 429 created nothing and costs no attempt; the org's rate gate does the waiting.
      return CreationAction{.kind = CreationActionKind::send_create, .attempt = attempts_,
                            .reason = "rate limited: " + outcome.detail};

    case CallClass::unauthorized:
    case CallClass::forbidden:
      if (outcome.cls == CallClass::unauthorized || outcome.billing) {
        // The org cannot take work now, and this attempt provably did nothing: hand it back.
        phase_ = Phase::requeued;
        --attempts_;
        return CreationAction{.kind = CreationActionKind::requeue, .attempt = attempts_,
                              .reason = std::string{to_string(outcome.cls)} + ": " +
                                        outcome.detail,
                              .pause_org = true};
      }
      [[fallthrough]];
    case CallClass::not_found:
    case CallClass::rejected:
      phase_ = Phase::gave_up;
      return CreationAction{.kind = CreationActionKind::give_up, .attempt = attempts_,
                            .reason = "create refused (" + std::string{to_string(outcome.cls)} +
                                      "): " + outcome.detail};
  }
  throw std::logic_error("creation machine: unknown CallClass in CreateAnswered");
}

CreationAction CreationMachine::on_lookup(const LookupAnswered& answer) {
  const CallOutcome& outcome = answer.outcome;
  if (outcome.ok()) {
    lookup_failures_ = 0;
    if (!answer.matches.empty()) {
      // Adopt the oldest: should two ever exist, the one polled is the one most likely to have
      // made progress, and the daemon reports the other rather than guess.
      phase_ = Phase::committing_session;
      return CreationAction{.kind = CreationActionKind::commit_session,
                            .session_id = answer.matches.front(),
                            .watch_duplicates = recreated_};
    }
    if (lookup_started_ < settle_until_) {
      // Nothing yet, but the list may not show a new session for a while: look again, less
      // often each time, and once more when the window has passed.
      phase_ = Phase::waiting_to_lookup;
      const Duration backoff = policy_.settle_delay * (std::int64_t{1} << std::min(empty_looks_++, 20));
      const Duration left = std::max(Duration{0}, std::chrono::ceil<Duration>(settle_until_ - answer.now));
      return wait_for(std::min(backoff, left),
                      "no session found yet; the list may show it late, looking again");
    }
    return conclude_absence(answer.now);
  }

  // A failed lookup proves nothing either way, so it is never a reason to give up or requeue:
  // those could strand a session that exists. Keep asking.
  if (outcome.cls == CallClass::rate_limited) {
    CreationAction again = start_lookup(answer.now);
    again.reason = "rate limited: " + outcome.detail;
    return again;
  }
  phase_ = Phase::waiting_to_lookup;
  const bool org_blocked = outcome.cls == CallClass::unauthorized || outcome.billing;
  return wait_for(full_jitter_delay(policy_.retry, lookup_failures_++, random_),
                  "lookup failed (" + std::string{to_string(outcome.cls)} + "): " + outcome.detail,
                  org_blocked);
}

// After a create that may have landed: look up after settle_delay, and keep looking until a
// look that began after the settle window finds nothing.
CreationAction CreationMachine::settle(TimePoint now, std::string reason) {
  return settle_for(now, policy_.settle_window, std::move(reason));
}

CreationAction CreationMachine::settle_for(TimePoint now, Duration window, std::string reason) {
  phase_ = Phase::waiting_to_lookup;
  settle_until_ = now + window;
  empty_looks_ = 0;
  return wait_for(policy_.settle_delay, std::move(reason));
}

// Absence proven: every create sent so far created nothing.
CreationAction CreationMachine::conclude_absence(TimePoint now) {
  if (resumed_) {
    // The last attempt went out from a process that stopped before its answer: it does not
    // count, so a crash loop of the daemon cannot use up the job's attempts. It is counted as
    // cut short instead, and those are bounded too.
    resumed_ = false;
    if (attempts_ > 0) --attempts_;
    if (++cut_short_ > policy_.max_cut_short) {
      phase_ = Phase::gave_up;
      return CreationAction{
          .kind = CreationActionKind::give_up, .attempt = attempts_,
          .reason = std::to_string(cut_short_) +
                    " create requests were cut short by the daemon stopping before their "
                    "answer (create.max_cut_short); a job that makes the daemon crash ends here"};
    }
  }
  if (attempts_ >= policy_.max_attempts) {
    const std::string exhausted = "no session after " + std::to_string(attempts_) + " create attempts";
    // Every attempt here may have landed (absence is proven only as far as the list shows):
    // a job that ended now could leave paid sessions running that no one watches.
    if (!last_watching_ && policy_.last_watch > Duration{0}) {
      last_watching_ = true;
      return settle_for(now, policy_.last_watch,
                        exhausted + "; the list may show one of them late, so the tag is watched "
                                    "a while longer before the job ends");
    }
    phase_ = Phase::gave_up;
    return CreationAction{.kind = CreationActionKind::give_up, .attempt = attempts_,
                          .reason = exhausted};
  }
  phase_ = Phase::waiting_to_recreate;
  recreated_ = true;
  const int retry =
      attempts_ > 0 ? static_cast<int>(std::min<std::int64_t>(attempts_ - 1, 1'000)) : 0;
  return wait_for(full_jitter_delay(policy_.retry, retry, random_),
                  "no session found after attempt " + std::to_string(attempts_) +
                      "; creating again");
}

CreationAction CreationMachine::on_wait(const WaitElapsed& elapsed) {
  switch (phase_) {
    case Phase::waiting_to_resend:
      phase_ = Phase::sending;
      return CreationAction{.kind = CreationActionKind::send_create, .attempt = attempts_};
    case Phase::waiting_to_lookup:
      return start_lookup(elapsed.now);
    case Phase::waiting_to_recreate:
      return begin_attempt(elapsed.now);
    default:
      throw std::logic_error("creation machine: on_wait outside a waiting phase");
  }
}

}  // namespace devin_orch::core
