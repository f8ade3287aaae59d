// A job's ACU figures turned into counter increments (acu_tally.hpp).
#include "devin_orch/core/acu_tally.hpp"

#include <cmath>

namespace devin_orch::core {

AcuTally::AcuTally(ParentAcus reporting, bool reattached) noexcept
    : reporting_{reporting}, own_is_baseline_{reattached}, children_is_baseline_{reattached} {}

double AcuTally::own(double figure) noexcept {
  if (!std::isfinite(figure)) return 0.0;
  own_ = figure;
  const bool baseline = own_is_baseline_;
  own_is_baseline_ = false;
  return settle(baseline);
}

double AcuTally::children(double sum) noexcept {
  if (!std::isfinite(sum)) return 0.0;
  children_ = sum;
  const bool baseline = children_is_baseline_;
  children_is_baseline_ = false;
  return settle(baseline);
}

double AcuTally::settle(bool baseline) noexcept {
  const double total = job_acus(own_, children_, reporting_).total;
  if (total <= counted_) return 0.0;
  const double added = total - counted_;
  counted_ = total;
  return baseline ? 0.0 : added;
}

}  // namespace devin_orch::core
