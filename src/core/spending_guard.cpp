// The spending guard's arithmetic: UTC windows, what each job holds of them, admission
// (spending_guard.hpp).
#include "devin_orch/core/spending_guard.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

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

void SpendingLedger::reload(std::map<std::string, std::vector<SpendingCharge>, std::less<>> charges) {
  charges_ = std::move(charges);
}

SpendingVerdict SpendingLedger::admit(std::string_view org, std::optional<double> job_limit,
                                      TimePoint now) const {
  const auto found = charges_.find(org);
  return core::admit(budget_, found == charges_.end() ? no_charges() : found->second, job_limit,
                     now);
}

void SpendingLedger::charge(std::string_view org, std::int64_t job_id,
                            std::optional<double> job_limit, TimePoint now) {
  auto found = charges_.find(org);
  if (found == charges_.end()) found = charges_.emplace(std::string{org}, std::vector<SpendingCharge>{}).first;
  found->second.push_back(
      {.job_id = job_id, .charged_at = now, .consumed = 0.0, .limit = job_limit, .live = true});
}

double SpendingLedger::committed(std::string_view org, SpendingWindow window,
                                 TimePoint now) const {
  const auto found = charges_.find(org);
  if (found == charges_.end()) return 0.0;
  return committed_acus(found->second, window_at(window, now), budget_.reserve_without_limit);
}

}  // namespace devin_orch::core
