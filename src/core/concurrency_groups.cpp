// Concurrency groups (concurrency_groups.hpp): key rules, pattern matching and the counting.
#include "devin_orch/core/concurrency_groups.hpp"

namespace devin_orch::core {
namespace {

bool key_character(char ch) noexcept {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
    return true;
  }
  switch (ch) {
    case '-': case '_': case '.': case ':': case '/': case '@': case '+': case '=': case '#':
      return true;
    default:
      return false;
  }
}

std::optional<std::string> text_problem(std::string_view text, bool star_allowed) {
  if (text.empty()) return "must not be empty";
  if (text.size() > concurrency_limits::max_key_bytes) {
    return "is " + std::to_string(text.size()) + " characters; the limit is " +
           std::to_string(concurrency_limits::max_key_bytes);
  }
  for (const char ch : text) {
    if (key_character(ch) || (star_allowed && ch == '*')) continue;
    std::string shown = (ch >= 0x21 && ch < 0x7f) ? "'" + std::string(1, ch) + "'"
                                                   : "byte " + std::to_string(
                                                         static_cast<unsigned char>(ch));
    return "must hold only letters, digits and - _ . : / @ + = #" +
           std::string(star_allowed ? " (and * as a wildcard)" : "") + ", got " + shown;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> concurrency_key_problem(std::string_view key) {
  return text_problem(key, false);
}

std::optional<std::string> concurrency_pattern_problem(std::string_view pattern) {
  return text_problem(pattern, true);
}

// Iterative glob matching with backtracking to the last `*`: linear in practice, no recursion.
bool concurrency_pattern_matches(std::string_view pattern, std::string_view key) noexcept {
  std::size_t p = 0;
  std::size_t k = 0;
  std::size_t star = std::string_view::npos;
  std::size_t star_k = 0;
  while (k < key.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_k = k;
    } else if (p < pattern.size() && pattern[p] == key[k]) {
      ++p;
      ++k;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      k = ++star_k;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string describe(const GroupVerdict& verdict) {
  if (!verdict.key) return {};
  return "concurrency:" + *verdict.key + " " + std::to_string(verdict.active) + "/" +
         std::to_string(verdict.max_active);
}

const ConcurrencyLimit* ConcurrencyGroups::limit_for(std::string_view key) const noexcept {
  for (const auto& limit : limits_) {
    if (concurrency_pattern_matches(limit.pattern, key)) return &limit;
  }
  return nullptr;
}

void ConcurrencyGroups::reload(std::map<std::string, int, std::less<>> active_by_key) {
  active_ = std::move(active_by_key);
}

int ConcurrencyGroups::active(std::string_view key) const noexcept {
  const auto found = active_.find(key);
  return found == active_.end() ? 0 : found->second;
}

GroupVerdict ConcurrencyGroups::admit(const std::optional<std::string>& key) const {
  if (!key) return {};
  const ConcurrencyLimit* limit = limit_for(*key);
  if (limit == nullptr) return {};
  const int now_active = active(*key);
  return GroupVerdict{.allowed = now_active < limit->max_active,
                      .key = *key,
                      .pattern = limit->pattern,
                      .active = now_active,
                      .max_active = limit->max_active};
}

void ConcurrencyGroups::started(const std::optional<std::string>& key) {
  if (!key || limit_for(*key) == nullptr) return;
  ++active_[*key];
}

std::vector<GroupVerdict> admit_in_order(const ConcurrencyGroups& groups,
                                         const std::vector<std::optional<std::string>>& keys) {
  ConcurrencyGroups running = groups;
  std::vector<GroupVerdict> verdicts;
  verdicts.reserve(keys.size());
  for (const auto& key : keys) {
    verdicts.push_back(running.admit(key));
    if (verdicts.back().allowed) running.started(key);
  }
  return verdicts;
}

}  // namespace devin_orch::core
