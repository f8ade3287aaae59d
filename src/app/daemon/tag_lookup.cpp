// Lists every page of an organisation's sessions carrying one tag.
#include "tag_lookup.hpp"

#include <algorithm>
#include <tuple>

namespace devin_orch::app::detail {

constexpr std::size_t kMaxLookupPages = 1000;

awaitable<std::optional<TagLookup>> lookup_by_tag(Services& services, OrgGates& gates, Org& org,
                                                  const std::string& tag,
                                                  std::int64_t created_after) {
  TagLookup result;
  api::ListSessionsQuery query{.tags = {tag}, .created_after = created_after, .first = 200};
  for (std::size_t page = 0; page < kMaxLookupPages; ++page) {
    auto gated = co_await gates.call(org, core::RequestKind::other, ApiOperation::lookup, [&] {
      return services.client_for(org.org_id).list_sessions(org.org_id, query);
    });
    if (!gated) co_return std::nullopt;
    auto& answer = *gated;
    if (!answer.outcome.ok()) {
      result.outcome = answer.outcome;
      result.matches.clear();
      co_return result;
    }
    for (auto& session : answer.value->items) {
      // Never trust the filter alone: a server that ignored it must not make us adopt.
      if (std::find(session.tags.begin(), session.tags.end(), tag) != session.tags.end()) {
        result.matches.push_back(std::move(session));
      }
    }
    if (!answer.value->has_next_page || !answer.value->end_cursor) {
      std::sort(result.matches.begin(), result.matches.end(),
                [](const api::Session& a, const api::Session& b) {
                  return std::tie(a.session_id, a.created_at) <
                         std::tie(b.session_id, b.created_at);
                });
      // Offset paging (v1) shows a session twice when a newer one shifts the pages between two
      // requests; one session seen twice is not a duplicate.
      result.matches.erase(std::unique(result.matches.begin(), result.matches.end(),
                                       [](const api::Session& a, const api::Session& b) {
                                         return a.session_id == b.session_id;
                                       }),
                           result.matches.end());
      std::sort(result.matches.begin(), result.matches.end(),
                [](const api::Session& a, const api::Session& b) {
                  return std::tie(a.created_at, a.session_id) <
                         std::tie(b.created_at, b.session_id);
                });
      result.outcome = answer.outcome;
      co_return result;
    }
    query.after = answer.value->end_cursor;
  }
  result.outcome = core::CallOutcome{.cls = core::CallClass::ambiguous,
                                     .detail = "lookup exceeded the page limit"};
  co_return result;
}

}  // namespace devin_orch::app::detail
