// Phase timelines of simulated sessions, computed lazily so idle sessions cost nothing.
#include "devin_orch/sim/lifecycle.hpp"

#include "devin_orch/sim/random.hpp"

#include <array>
#include <limits>

namespace devin_orch::sim {
namespace {

constexpr double kForever = std::numeric_limits<double>::infinity();

struct Segment {
  std::string_view status;
  std::optional<std::string_view> detail;
  double seconds;  // base duration; kForever for the final state
  bool running;    // accrues ACUs
};

// The longest timeline: new, creating, claimed, working, ending, final.
using Timeline = std::array<Segment, 6>;

std::size_t append_ending(Timeline& t, std::size_t n, const SessionRun& run, const Path& path) {
  if (path.ending == Ending::suspend && path.before_work) {
    t[n++] = {"suspended", std::string_view{path.suspend_detail}, kForever, false};
    return n;
  }
  t[n++] = {"running", "working", run.hold ? kForever : kWorkingSeconds, true};
  if (run.hold) return n;
  switch (path.ending) {
    case Ending::finished_then_inactivity:
      t[n++] = {"running", "finished", kEndingSeconds, true};
      t[n++] = {"suspended", "inactivity", kForever, false};
      break;
    case Ending::exit:
      t[n++] = {"running", "finished", kEndingSeconds, true};
      t[n++] = {"exit", std::nullopt, kForever, false};
      break;
    case Ending::waiting_then_inactivity:
      t[n++] = {"running", "waiting_for_user", kEndingSeconds, true};
      t[n++] = {"suspended", "inactivity", kForever, false};
      break;
    case Ending::error:
      t[n++] = {"error", std::nullopt, kForever, false};
      break;
    case Ending::suspend:
      t[n++] = {"suspended", std::string_view{path.suspend_detail}, kForever, false};
      break;
    case Ending::hold:
      t[n - 1].seconds = kForever;
      break;
  }
  return n;
}

}  // namespace

Path choose_path(std::uint64_t seed, std::string_view prompt) {
  if (prompt.find("[sim:hold]") != std::string_view::npos) return {Ending::hold, {}};
  if (prompt.find("[sim:exit]") != std::string_view::npos) return {Ending::exit, {}};
  if (prompt.find("[sim:finished]") != std::string_view::npos) {
    return {Ending::finished_then_inactivity, {}};
  }
  if (prompt.find("[sim:waiting]") != std::string_view::npos) {
    return {Ending::waiting_then_inactivity, {}};
  }
  if (prompt.find("[sim:error]") != std::string_view::npos) return {Ending::error, {}};
  constexpr std::string_view suspend_marker = "[sim:suspend=";
  if (const auto at = prompt.find(suspend_marker); at != std::string_view::npos) {
    const auto start = at + suspend_marker.size();
    const auto end = prompt.find(']', start);
    if (end != std::string_view::npos && end > start) {
      return {Ending::suspend, std::string{prompt.substr(start, end - start)}};
    }
  }
  const auto roll = mix(seed ^ fnv1a(prompt)) % 100;
  if (roll < 40) return {Ending::finished_then_inactivity, {}};
  if (roll < 70) return {Ending::exit, {}};
  if (roll < 85) return {Ending::waiting_then_inactivity, {}};
  if (roll < 95) return {Ending::error, {}};
  return {Ending::suspend, "out_of_credits"};
}

Phase phase_at(const SessionRun& run, const Path& path, double time_factor, TimeMs now) {
  if (run.kind == RunKind::pinned) {
    Phase phase{.status = run.pinned_status, .since = run.origin};
    if (run.pinned_detail) phase.detail = std::string_view{*run.pinned_detail};
    return phase;
  }
  Timeline timeline{};
  std::size_t n = 0;
  switch (run.kind) {
    case RunKind::initial:
      timeline[n++] = {"new", std::nullopt, kNewSeconds, false};
      if (run.creating) timeline[n++] = {"creating", std::nullopt, kCreatingSeconds, false};
      timeline[n++] = {"claimed", std::nullopt, kClaimedSeconds, false};
      break;
    case RunKind::resume:
      timeline[n++] = {"resuming", std::nullopt, kResumingSeconds, false};
      break;
    case RunKind::continue_working:
    case RunKind::pinned:
      break;
  }
  n = append_ending(timeline, n, run, path);

  Phase phase;
  double start = static_cast<double>(run.origin);
  const double at = static_cast<double>(now);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& segment = timeline[i];
    const double end = start + segment.seconds * 1000.0 * time_factor;
    if (segment.running && at > start) {
      const double elapsed_ms = (at < end ? at : end) - start;
      phase.acus += elapsed_ms / (1000.0 * time_factor) * kAcusPerRunningSecond;
    }
    if (segment.detail == "finished" && at >= start) phase.reached_finished = true;
    if (at < end || i + 1 == n) {
      phase.status = segment.status;
      phase.detail = segment.detail;
      phase.since = static_cast<TimeMs>(start);
      return phase;
    }
    start = end;
  }
  return phase;  // unreachable: the last segment always matches
}

bool is_active_status(std::string_view status) noexcept {
  return status != "exit" && status != "error" && status != "suspended";
}

}  // namespace devin_orch::sim
