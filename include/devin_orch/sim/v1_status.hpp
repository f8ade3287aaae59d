// How the simulated lifecycle reads through the legacy v1 API (reference §3 "v1 status"): the
// `status_enum` and free-text `status` a v1 session detail shows for a v3 status/detail.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::sim {

struct V1Status {
  std::string_view status_enum;  // one of the values §3 lists
  std::string text;              // the free-text `status`
};

// The reference gives v1's values but not which v3 state each corresponds to; this is the
// simulator's reading (docs/simulator.md, "The v1 API"). Every stopped session (suspended, exit,
// error) is `expired`, since v1's enum has no word for failure or billing stops; the free text
// keeps the v3 words ("error", "suspended: out_of_credits").
V1Status v1_status(std::string_view status, std::optional<std::string_view> detail);

}  // namespace devin_orch::sim
