// The simulator's v3 -> v1 status table (see the header for why each row is what it is).
#include "devin_orch/sim/v1_status.hpp"

namespace devin_orch::sim {

V1Status v1_status(std::string_view status, std::optional<std::string_view> detail) {
  std::string text{status};
  if (detail) text += ": " + std::string{*detail};
  std::string_view status_enum = "working";  // new, creating, claimed, running/working, ...
  if (status == "running" && detail == "waiting_for_user") {
    status_enum = "blocked";
  } else if (status == "running" && detail == "finished") {
    status_enum = "finished";
  } else if (status == "resuming") {
    status_enum = "resume_requested";
  } else if (status == "suspended" || status == "exit" || status == "error") {
    status_enum = "expired";
  }
  return V1Status{.status_enum = status_enum, .text = std::move(text)};
}

}  // namespace devin_orch::sim
