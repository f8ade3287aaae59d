// The lookup of an organisation's sessions by a job's creation tag, every page, through the
// org's gate: what proves absence after an ambiguous create, and finds duplicates after a
// re-create. Private to the app module.
#pragma once

#include "org_gates.hpp"
#include "parts.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::app::detail {

struct TagLookup {
  core::CallOutcome outcome;
  std::vector<api::Session> matches;  // oldest first; only sessions that do carry the tag
};

// nullopt when the daemon stops at the gate. Only a complete walk (outcome ok) proves absence.
awaitable<std::optional<TagLookup>> lookup_by_tag(Services& services, OrgGates& gates, Org& org,
                                                  const std::string& tag,
                                                  std::int64_t created_after);

}  // namespace devin_orch::app::detail
