// Which session a job keeps when its tag lookup finds more than one, sans I/O. A create sent
// again after one that may have landed can make a second session when the list showed the first
// one too late; the daemon checks the tag for a while after such a re-create and ends the extra.
#pragma once

#include "devin_orch/core/session.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::core {

struct DuplicateVerdict {
  std::string keep;                    // the session the job follows
  std::vector<std::string> terminate;  // every other session of the job's own
};

// `matches`: every session the lookup by the job's tag found. Children of a session carry its
// tags but are not duplicates (they have a parent), and archived sessions are ones already
// ended as duplicates; both are left out. The oldest remaining session is kept (it has worked
// longest) unless `keep_current` (the job already ended with `current`: its outcome stands, and
// every other session found is ended, even while the list does not show `current` yet).
// nullopt when there is nothing to end.
std::optional<DuplicateVerdict> judge_duplicates(std::string_view current,
                                                 std::span<const Session> matches,
                                                 bool keep_current = false);

}  // namespace devin_orch::core
