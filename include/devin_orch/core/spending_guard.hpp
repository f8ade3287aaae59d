// The spending guard, sans I/O: ACU budgets per organisation and per concurrency key, per UTC
// day and month, and whether one more session may be created within them. The daemon feeds it
// the jobs the store charges to the windows (spending_since) and asks before each create.
#pragma once

#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

// A job's part of its organisation's spending. A job is charged to the window of its first
// create intent (of its generation): a create commits up to the job's max_acu_limit there, and
// what the session consumes later, even past midnight, stays charged to that window.
struct SpendingCharge {
  std::int64_t job_id = 0;
  TimePoint charged_at{};        // the job's first create intent
  double consumed = 0.0;         // ACUs recorded so far (core::job_acus' total)
  std::optional<double> limit;   // the job's max_acu_limit; none: the budget's default reserve
  bool live = false;             // creating or running: may still consume up to its limit
  std::optional<std::string> concurrency_key;  // the job's: a key budget charges it too
};

// Budgets of one organisation (or of one concurrency key); an absent one does not limit.
struct SpendingBudget {
  std::optional<double> per_day;
  std::optional<double> per_month;
  // What a job that names no max_acu_limit is taken to reserve while live.
  double reserve_without_limit = 10.0;
  // Live sessions charged to a window whose consumed ACUs (not reservations) passed its budget
  // are terminated.
  bool terminate_over_budget = false;

  bool any() const noexcept { return per_day.has_value() || per_month.has_value(); }
};

enum class SpendingWindow { day, month };
std::string_view to_string(SpendingWindow window) noexcept;  // "day", "month"

struct WindowBounds {
  TimePoint start{};
  TimePoint end{};  // exclusive: the next window's start
};
// The UTC day or calendar month holding `now`.
WindowBounds window_at(SpendingWindow window, TimePoint now) noexcept;

// What a job holds of a window's budget: a live one the larger of its consumption and its
// reservation (its limit, or `reserve_without_limit`), an ended one what it consumed.
double held_acus(const SpendingCharge& charge, double reserve_without_limit) noexcept;
// The ACUs the charges commit in `bounds` (charged_at inside it).
double committed_acus(const std::vector<SpendingCharge>& charges, WindowBounds bounds,
                      double reserve_without_limit) noexcept;

// Whose budget a verdict or an overrun is about.
enum class SpendingScope { organization, concurrency_key };

// A budget of concurrency keys: each distinct key `pattern` matches (exact, or a glob with `*`:
// core::concurrency_pattern_matches) has its own, counted over that key's jobs in every
// organisation.
struct KeySpendingBudget {
  std::string pattern;
  std::optional<double> per_day;
  std::optional<double> per_month;

  bool operator==(const KeySpendingBudget&) const = default;
};

// Every budget of the spending section.
struct SpendingBudgets {
  // Every organisation's budget but those listed below; its reserve_without_limit and
  // terminate_over_budget hold for every scope.
  SpendingBudget defaults;
  // Organisations with their own budgets (complete: the configuration's overrides resolved).
  std::map<std::string, SpendingBudget, std::less<>> organizations;
  // In order: the first pattern a key matches sets its budget.
  std::vector<KeySpendingBudget> keys;

  const SpendingBudget& for_org(std::string_view org) const noexcept;
  // The first key budget whose pattern matches `key`; none: the key has no budget.
  const KeySpendingBudget* for_key(std::string_view key) const noexcept;
  // A key budget's windows, with the defaults' reserve and termination.
  SpendingBudget as_budget(const KeySpendingBudget& key) const noexcept;
  bool any() const noexcept;
};

struct SpendingVerdict {
  bool allowed = true;
  // When held: whose budget, the organisation's or the job's concurrency key's (then `key`,
  // and the `pattern` whose budget it is).
  SpendingScope scope = SpendingScope::organization;
  std::string key;
  std::string pattern;
  // When held: the window whose budget one more create would pass (the day's first), its
  // figures, and when it rolls over.
  SpendingWindow window = SpendingWindow::day;
  double committed = 0.0;    // ACUs committed in the window already
  double reservation = 0.0;  // what the new job would add
  double budget = 0.0;
  TimePoint resumes_at{};    // the window's end
};

// Whether a job whose max_acu_limit is `job_limit` may be created at `now`: committed + its
// reservation must not pass any budget of its organisation.
SpendingVerdict admit(const SpendingBudget& budget, const std::vector<SpendingCharge>& charges,
                      std::optional<double> job_limit, TimePoint now) noexcept;

// The jobs to terminate under terminate_over_budget: live ones charged to a window whose
// consumed ACUs passed its budget. Empty without the option.
std::vector<std::int64_t> over_budget(const SpendingBudget& budget,
                                      const std::vector<SpendingCharge>& charges,
                                      TimePoint now);

// Since when the store must report charges for `budget` at `now`: the month's start with a
// monthly budget, else the day's; nullopt without budgets.
std::optional<TimePoint> ledger_since(const SpendingBudget& budget, TimePoint now) noexcept;
// The same over every budget: the month's start when any scope has a monthly budget.
std::optional<TimePoint> ledger_since(const SpendingBudgets& budgets, TimePoint now) noexcept;

// A live job to terminate under terminate_over_budget, and the scope whose budget it passed.
struct SpendingOverrun {
  std::int64_t job_id = 0;
  SpendingScope scope = SpendingScope::organization;
  std::string key;  // concurrency_key scope: the key

  bool operator==(const SpendingOverrun&) const = default;
};

// Every organisation's and every budgeted key's charges, as last read from the store plus the
// creates started since: each dispatch asks it, and a create it lets go is charged at once so
// that the next job of the same dispatch sees it.
class SpendingLedger {
 public:
  SpendingLedger() = default;  // no budgets: never holds anything
  explicit SpendingLedger(SpendingBudgets budgets) : budgets_{std::move(budgets)} {}

  const SpendingBudgets& budgets() const noexcept { return budgets_; }
  bool active() const noexcept { return budgets_.any(); }

  // The store's charges since ledger_since(now), by organisation; replaces everything known.
  // Those of a key with a budget are counted for the key too. A create charged here that the
  // store does not show yet (its intent is not committed: an upload or the gate comes first)
  // keeps its reservation while `still_starting(job_id)` says so.
  void reload(std::map<std::string, std::vector<SpendingCharge>, std::less<>> charges,
              const std::function<bool(std::int64_t)>& still_starting = {});
  // Whether a job of `org` with `key` may be created at `now`: its organisation's budget, then
  // its key's (when a pattern matches it), must both allow it.
  SpendingVerdict admit(std::string_view org, const std::optional<std::string>& key,
                        std::optional<double> job_limit, TimePoint now) const;
  // A create of job `job_id` starts now: it holds its reservation until the next reload.
  void charge(std::string_view org, const std::optional<std::string>& key, std::int64_t job_id,
              std::optional<double> job_limit, TimePoint now);
  // ACUs committed in the window at `now` by the organisation; by the key.
  double committed(std::string_view org, SpendingWindow window, TimePoint now) const;
  double committed_by_key(std::string_view key, SpendingWindow window, TimePoint now) const;
  // The live jobs to terminate under terminate_over_budget, organisations' overruns first.
  std::vector<SpendingOverrun> over_budget(TimePoint now) const;
  const std::map<std::string, std::vector<SpendingCharge>, std::less<>>& charges() const {
    return charges_;
  }
  const std::map<std::string, std::vector<SpendingCharge>, std::less<>>& charges_by_key() const {
    return by_key_;
  }

 private:
  SpendingBudgets budgets_;
  std::map<std::string, std::vector<SpendingCharge>, std::less<>> charges_;  // by organisation
  std::map<std::string, std::vector<SpendingCharge>, std::less<>> by_key_;   // budgeted keys
  // Creates charged by charge() that no reload has found in the store yet, with their org.
  std::map<std::int64_t, std::pair<std::string, SpendingCharge>> starting_;
};

}  // namespace devin_orch::core
