// A Devin session as the daemon knows it: what the API reports and the store records. Plain
// values, so that the store depends on core, not on the API layer that produces them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::core {

struct PullRequest {
  std::string pr_url;
  std::optional<std::string> pr_state;

  bool operator==(const PullRequest&) const = default;
};

// Only session_id and status are required; everything else defaults, because a tolerant
// reader survives API drift. Unknown status and status_detail values are kept as they came.
struct Session {
  std::string session_id;
  std::string url;
  std::string status;
  std::optional<std::string> status_detail;
  std::vector<std::string> tags;
  std::string org_id;
  std::int64_t created_at = 0;  // epoch seconds
  std::int64_t updated_at = 0;
  double acus_consumed = 0.0;
  std::vector<PullRequest> pull_requests;
  std::optional<std::string> title;
  std::optional<std::string> structured_output;  // serialised JSON, if any
  bool is_archived = false;
  // Family (reference §12). Absent or null read as none; a child reports its own ACUs.
  std::optional<std::string> parent_session_id;
  std::vector<std::string> child_session_ids;

  bool operator==(const Session&) const = default;
};

}  // namespace devin_orch::core
