// The spending guard's arithmetic: UTC windows, what each job holds of them, admission per
// organisation and per concurrency key (spending_guard.hpp).
#include "devin_orch/core/spending_guard.hpp"

#include "devin_orch/core/concurrency_groups.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

namespace devin_orch::core {

namespace {

const std::vector<SpendingCharge>& no_charges() {
  static const std::vector<SpendingCharge> none;
  return none;
}

double finite_or_zero(double value) noexcept {
  return std::isfinite(value) && value > 0.0 ? value : 0.0;
}

}  // namespace

std::string_view to_string(SpendingWindow window) noexcept {
  return window == SpendingWindow::day ? "day" : "month";
}

WindowBounds window_at(SpendingWindow window, TimePoint now) noexcept {
  using namespace std::chrono;
  const sys_days day = floor<days>(now);
  if (window == SpendingWindow::day) {
    return {time_point_cast<Duration>(day), time_point_cast<Duration>(day + days{1})};
  }
  const year_month_day date{day};
  const year_month month = date.year() / date.month();
  const sys_days first{month / 1};
  const sys_days next{(month + months{1}) / 1};
  return {time_point_cast<Duration>(first), time_point_cast<Duration>(next)};
}

double held_acus(const SpendingCharge& charge, double reserve_without_limit) noexcept {
  const double consumed = finite_or_zero(charge.consumed);
  if (!charge.live) return consumed;
  const double reserved = finite_or_zero(charge.limit.value_or(reserve_without_limit));
  return std::max(consumed, reserved);
}

double committed_acus(const std::vector<SpendingCharge>& charges, WindowBounds bounds,
                      double reserve_without_limit) noexcept {
  double sum = 0.0;
  for (const auto& charge : charges) {
    if (charge.charged_at < bounds.start || charge.charged_at >= bounds.end) continue;
    sum += held_acus(charge, reserve_without_limit);
  }
  return sum;
}

SpendingVerdict admit(const SpendingBudget& budget, const std::vector<SpendingCharge>& charges,
                      std::optional<double> job_limit, TimePoint now) noexcept {
  const double reservation = finite_or_zero(job_limit.value_or(budget.reserve_without_limit));
  for (const auto window : {SpendingWindow::day, SpendingWindow::month}) {
    const auto& limit = window == SpendingWindow::day ? budget.per_day : budget.per_month;
    if (!limit) continue;
    const auto bounds = window_at(window, now);
    const double committed = committed_acus(charges, bounds, budget.reserve_without_limit);
    if (committed + reservation > *limit) {
      return {.allowed = false,
              .window = window,
              .committed = committed,
              .reservation = reservation,
              .budget = *limit,
              .resumes_at = bounds.end};
    }
  }
  return {.allowed = true, .reservation = reservation};
}

std::vector<std::int64_t> over_budget(const SpendingBudget& budget,
                                      const std::vector<SpendingCharge>& charges,
                                      TimePoint now) {
  std::vector<std::int64_t> ids;
  if (!budget.terminate_over_budget) return ids;
  for (const auto window : {SpendingWindow::day, SpendingWindow::month}) {
    const auto& limit = window == SpendingWindow::day ? budget.per_day : budget.per_month;
    if (!limit) continue;
    const auto bounds = window_at(window, now);
    double consumed = 0.0;
    for (const auto& charge : charges) {
      if (charge.charged_at >= bounds.start && charge.charged_at < bounds.end) {
        consumed += finite_or_zero(charge.consumed);
      }
    }
    if (consumed <= *limit) continue;
    for (const auto& charge : charges) {
      if (charge.live && charge.charged_at >= bounds.start && charge.charged_at < bounds.end &&
          std::find(ids.begin(), ids.end(), charge.job_id) == ids.end()) {
        ids.push_back(charge.job_id);
      }
    }
  }
  return ids;
}

std::optional<TimePoint> ledger_since(const SpendingBudget& budget, TimePoint now) noexcept {
  if (budget.per_month) return window_at(SpendingWindow::month, now).start;
  if (budget.per_day) return window_at(SpendingWindow::day, now).start;
  return std::nullopt;
}

const SpendingBudget& SpendingBudgets::for_org(std::string_view org) const noexcept {
  const auto found = organizations.find(org);
  return found == organizations.end() ? defaults : found->second;
}

const KeySpendingBudget* SpendingBudgets::for_key(std::string_view key) const noexcept {
  for (const auto& budget : keys) {
    if (concurrency_pattern_matches(budget.pattern, key)) return &budget;
  }
  return nullptr;
}

SpendingBudget SpendingBudgets::as_budget(const KeySpendingBudget& key) const noexcept {
  return {.per_day = key.per_day,
          .per_month = key.per_month,
          .reserve_without_limit = defaults.reserve_without_limit,
          .terminate_over_budget = defaults.terminate_over_budget};
}

bool SpendingBudgets::any() const noexcept {
  if (defaults.any()) return true;
  for (const auto& [org, budget] : organizations) {
    if (budget.any()) return true;
  }
  for (const auto& key : keys) {
    if (key.per_day || key.per_month) return true;
  }
  return false;
}

std::optional<TimePoint> ledger_since(const SpendingBudgets& budgets, TimePoint now) noexcept {
  bool day = budgets.defaults.per_day.has_value();
  bool month = budgets.defaults.per_month.has_value();
  for (const auto& [org, budget] : budgets.organizations) {
    day = day || budget.per_day.has_value();
    month = month || budget.per_month.has_value();
  }
  for (const auto& key : budgets.keys) {
    day = day || key.per_day.has_value();
    month = month || key.per_month.has_value();
  }
  if (month) return window_at(SpendingWindow::month, now).start;
  if (day) return window_at(SpendingWindow::day, now).start;
  return std::nullopt;
}

void SpendingLedger::reload(std::map<std::string, std::vector<SpendingCharge>, std::less<>> charges,
                            const std::function<bool(std::int64_t)>& still_starting) {
  charges_ = std::move(charges);
  by_key_.clear();
  std::set<std::int64_t> stored;
  for (const auto& [org, list] : charges_) {
    for (const auto& charge : list) {
      stored.insert(charge.job_id);
      if (charge.concurrency_key && budgets_.for_key(*charge.concurrency_key) != nullptr) {
        by_key_[*charge.concurrency_key].push_back(charge);
      }
    }
  }
  for (auto it = starting_.begin(); it != starting_.end();) {
    if (stored.contains(it->first) || !still_starting || !still_starting(it->first)) {
      it = starting_.erase(it);
      continue;
    }
    const auto& [org, charge] = it->second;
    charges_[org].push_back(charge);
    if (charge.concurrency_key && budgets_.for_key(*charge.concurrency_key) != nullptr) {
      by_key_[*charge.concurrency_key].push_back(charge);
    }
    ++it;
  }
}

SpendingVerdict SpendingLedger::admit(std::string_view org, const std::optional<std::string>& key,
                                      std::optional<double> job_limit, TimePoint now) const {
  const auto found = charges_.find(org);
  auto verdict = core::admit(budgets_.for_org(org),
                             found == charges_.end() ? no_charges() : found->second, job_limit,
                             now);
  if (!verdict.allowed || !key) return verdict;
  const auto* key_budget = budgets_.for_key(*key);
  if (key_budget == nullptr) return verdict;
  const auto of_key = by_key_.find(*key);
  verdict = core::admit(budgets_.as_budget(*key_budget),
                        of_key == by_key_.end() ? no_charges() : of_key->second, job_limit, now);
  if (!verdict.allowed) {
    verdict.scope = SpendingScope::concurrency_key;
    verdict.key = *key;
    verdict.pattern = key_budget->pattern;
  }
  return verdict;
}

void SpendingLedger::charge(std::string_view org, const std::optional<std::string>& key,
                            std::int64_t job_id, std::optional<double> job_limit, TimePoint now) {
  const SpendingCharge charge{.job_id = job_id,
                              .charged_at = now,
                              .consumed = 0.0,
                              .limit = job_limit,
                              .live = true,
                              .concurrency_key = key};
  auto found = charges_.find(org);
  if (found == charges_.end()) found = charges_.emplace(std::string{org}, std::vector<SpendingCharge>{}).first;
  found->second.push_back(charge);
  if (key && budgets_.for_key(*key) != nullptr) by_key_[*key].push_back(charge);
  starting_.insert_or_assign(job_id, std::pair{std::string{org}, charge});
}

double SpendingLedger::committed(std::string_view org, SpendingWindow window,
                                 TimePoint now) const {
  const auto found = charges_.find(org);
  if (found == charges_.end()) return 0.0;
  return committed_acus(found->second, window_at(window, now),
                        budgets_.defaults.reserve_without_limit);
}

double SpendingLedger::committed_by_key(std::string_view key, SpendingWindow window,
                                        TimePoint now) const {
  const auto found = by_key_.find(key);
  if (found == by_key_.end()) return 0.0;
  return committed_acus(found->second, window_at(window, now),
                        budgets_.defaults.reserve_without_limit);
}

std::vector<SpendingOverrun> SpendingLedger::over_budget(TimePoint now) const {
  std::vector<SpendingOverrun> overruns;
  if (!budgets_.defaults.terminate_over_budget) return overruns;
  const auto add = [&overruns](std::int64_t id, SpendingScope scope, const std::string& key) {
    const bool known = std::any_of(overruns.begin(), overruns.end(),
                                   [id](const SpendingOverrun& o) { return o.job_id == id; });
    if (!known) overruns.push_back({.job_id = id, .scope = scope, .key = key});
  };
  for (const auto& [org, charges] : charges_) {
    for (const auto id : core::over_budget(budgets_.for_org(org), charges, now)) {
      add(id, SpendingScope::organization, {});
    }
  }
  for (const auto& [key, charges] : by_key_) {
    const auto* key_budget = budgets_.for_key(key);
    if (key_budget == nullptr) continue;
    for (const auto id : core::over_budget(budgets_.as_budget(*key_budget), charges, now)) {
      add(id, SpendingScope::concurrency_key, key);
    }
  }
  return overruns;
}

}  // namespace devin_orch::core
