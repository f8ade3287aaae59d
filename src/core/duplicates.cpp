// Which session a job keeps when its tag is carried by more than one.
#include "devin_orch/core/duplicates.hpp"

#include "devin_orch/core/session_family.hpp"

#include <algorithm>
#include <tuple>

namespace devin_orch::core {

std::optional<DuplicateVerdict> judge_duplicates(std::string_view current,
                                                 std::span<const Session> matches,
                                                 bool keep_current) {
  std::vector<const Session*> own;
  for (const auto& session : matches) {
    if (is_child_of_another(session) || session.is_archived) continue;
    if (std::ranges::any_of(own, [&](const Session* s) { return s->session_id == session.session_id; })) {
      continue;
    }
    own.push_back(&session);
  }
  const bool current_listed =
      std::ranges::any_of(own, [&](const Session* s) { return s->session_id == current; });
  // A job that ended keeps its outcome even if the list does not show its session yet.
  if (own.size() < 2 && !(keep_current && !current_listed && !own.empty())) return std::nullopt;
  std::ranges::sort(own, [](const Session* a, const Session* b) {
    return std::tie(a->created_at, a->session_id) < std::tie(b->created_at, b->session_id);
  });
  DuplicateVerdict verdict{.keep = keep_current ? std::string{current} : own.front()->session_id,
                           .terminate = {}};
  for (const Session* session : own) {
    if (session->session_id != verdict.keep) verdict.terminate.push_back(session->session_id);
  }
  return verdict;
}

}  // namespace devin_orch::core
