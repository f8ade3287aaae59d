// Parent and child sessions: the duplicate exemption and the ACU rule (session_family.hpp).
#include "devin_orch/core/session_family.hpp"

#include <algorithm>

namespace devin_orch::core {

bool is_child_of_another(const Session& session) noexcept {
  return session.parent_session_id.has_value() && !session.parent_session_id->empty();
}

JobAcus job_acus(double own, double children, ParentAcus reporting) noexcept {
  own = std::max(own, 0.0);
  children = std::max(children, 0.0);
  const double total =
      reporting == ParentAcus::separate ? own + children : std::max(own, children);
  return JobAcus{.own = own, .children = children, .total = total};
}

double children_acus(std::span<const double> figures) noexcept {
  double sum = 0.0;
  for (const double figure : figures) sum += std::max(figure, 0.0);
  return sum;
}

}  // namespace devin_orch::core
