// The JSON texts of a jobs row's columns (job_row.hpp), shared by the backends.
#include "job_row.hpp"

#include <boost/json.hpp>

namespace devin_orch::store {
namespace json = boost::json;

std::optional<std::string> text_or_null(std::string_view text) {
  if (text.empty()) return std::nullopt;
  return std::string(text);
}

std::string serialise_pull_requests(const std::vector<core::PullRequest>& pull_requests) {
  json::array array;
  for (const auto& pr : pull_requests) {
    json::object item;
    item["pr_url"] = pr.pr_url;
    if (pr.pr_state) item["pr_state"] = *pr.pr_state;
    array.push_back(std::move(item));
  }
  return json::serialize(array);
}

std::optional<std::vector<core::PullRequest>> parse_pull_requests(std::string_view text) {
  json::error_code ec;
  const json::value value = json::parse(text, ec);
  if (ec || !value.is_array()) return std::nullopt;
  std::vector<core::PullRequest> out;
  for (const auto& element : value.get_array()) {
    const auto* item = element.if_object();
    if (item == nullptr) return std::nullopt;
    const auto* url = item->if_contains("pr_url");
    if (url == nullptr || !url->is_string()) return std::nullopt;
    core::PullRequest pr{.pr_url = std::string(url->get_string())};
    if (const auto* state = item->if_contains("pr_state"); state != nullptr && state->is_string()) {
      pr.pr_state = std::string(state->get_string());
    }
    out.push_back(std::move(pr));
  }
  return out;
}

std::optional<std::string> serialise_ids(const std::vector<std::string>& ids) {
  if (ids.empty()) return std::nullopt;
  json::array array;
  for (const auto& id : ids) array.emplace_back(id);
  return json::serialize(array);
}

std::optional<std::vector<std::string>> parse_ids(std::string_view text) {
  json::error_code ec;
  const json::value value = json::parse(text, ec);
  if (ec || !value.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& element : value.get_array()) {
    if (!element.is_string()) return std::nullopt;
    out.emplace_back(element.get_string());
  }
  return out;
}

std::string canonical_spec(const std::string& stored) {
  auto spec = decode_spec(stored);
  return spec ? encode_spec(*spec) : stored;
}

}  // namespace devin_orch::store
