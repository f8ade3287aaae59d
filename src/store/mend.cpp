// The short diff a mended job's history records: stored text against the new definition's
// canonical encoding, member by member, so it names what changed even when the old one never
// decoded.
#include "devin_orch/store/mend.hpp"

#include "devin_orch/store/spec_codec.hpp"

#include <boost/json.hpp>

#include <set>

namespace devin_orch::store {
namespace json = boost::json;
namespace {

// The members of two JSON objects whose values differ (present in one only included), by name;
// `whole` alone when the stored text is not an object.
void object_differences(std::string_view stored, std::string_view offered, std::string_view whole,
                        std::vector<std::string>& out) {
  const auto parse = [](std::string_view text) -> std::optional<json::object> {
    if (text.empty()) return json::object{};
    boost::system::error_code ec;
    json::parse_options options;
    options.max_depth = 64;
    json::value value = json::parse(text, ec, {}, options);
    if (ec || !value.is_object()) return std::nullopt;
    return std::move(value.as_object());
  };
  const auto old_members = parse(stored);
  const auto new_members = parse(offered);
  if (!old_members || !new_members) {
    out.emplace_back(whole);
    return;
  }
  std::set<std::string> names;
  for (const auto& member : *old_members) names.emplace(member.key());
  for (const auto& member : *new_members) names.emplace(member.key());
  for (const auto& name : names) {
    const json::value* before = old_members->if_contains(name);
    const json::value* after = new_members->if_contains(name);
    if (before == nullptr || after == nullptr || *before != *after) out.push_back(name);
  }
}

}  // namespace

std::vector<std::string> stored_differences(const StoredDefinition& stored,
                                            const core::JobDefinition& offered) {
  std::vector<std::string> fields;
  const auto& controls = offered.controls;
  if (stored.org_id != offered.org_id) fields.emplace_back("org_id");
  if (stored.priority != offered.priority) fields.emplace_back("priority");
  object_differences(stored.spec, encode_spec(offered.spec), "spec", fields);
  if (stored.not_before_ms != controls.not_before_ms) fields.emplace_back("not_before");
  if (stored.deadline_ms != controls.deadline_ms) fields.emplace_back("deadline");
  if (stored.max_attempts != controls.max_attempts) fields.emplace_back("max_attempts");
  object_differences(stored.controls, encode_controls(controls), "controls", fields);
  return fields;
}

std::string mend_message(std::string_view source, const StoredDefinition& stored,
                         const core::JobDefinition& offered) {
  const auto fields = stored_differences(stored, offered);
  std::string message = "definition replaced by " + std::string{source} + ": ";
  // The backend found them different; equal JSON values in other text (spacing, say) remain.
  if (fields.empty()) return message + "its stored text differs";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) message += ", ";
    message += fields[i];
  }
  return message + (fields.size() == 1 ? " differs" : " differ");
}

}  // namespace devin_orch::store
