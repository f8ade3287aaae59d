// Parsing and formatting of human-written durations ("1m30s"). Units must appear largest first
// and at most once each, so "30s1m" or "1s1s" (almost certainly typos) are rejected.
#include "devin_orch/app/formats/duration.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace devin_orch::app {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t milliseconds;
};

// Largest first: the order in which units must appear.
constexpr std::array<Unit, 4> kUnits{{
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

// About a hundred years: far beyond any sensible setting, far below int64 overflow.
constexpr std::int64_t kMaxMilliseconds = 100LL * 366 * 24 * 3'600'000;

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// Index into kUnits of the unit at the start of `text`, and its length.
std::optional<std::size_t> match_unit(std::string_view text) noexcept {
  if (text.starts_with("ms")) return 3;
  if (text.starts_with("h")) return 0;
  if (text.starts_with("m")) return 1;
  if (text.starts_with("s")) return 2;
  return std::nullopt;
}

}  // namespace

std::optional<core::Duration> parse_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t next_allowed_unit = 0;
  while (!text.empty()) {
    std::int64_t amount = 0;
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      amount = amount * 10 + (text[digits] - '0');
      if (amount > kMaxMilliseconds) return std::nullopt;
      ++digits;
    }
    if (digits == 0) return std::nullopt;  // sign, fraction, stray letter
    text.remove_prefix(digits);
    const auto unit = match_unit(text);
    if (!unit || *unit < next_allowed_unit) return std::nullopt;
    text.remove_prefix(kUnits[*unit].suffix.size());
    if (amount > (kMaxMilliseconds - total) / kUnits[*unit].milliseconds) return std::nullopt;
    total += amount * kUnits[*unit].milliseconds;
    next_allowed_unit = *unit + 1;
  }
  return core::Duration{total};
}

std::optional<core::Duration> parse_age(std::string_view text) {
  constexpr std::int64_t kMaxDays = 36'600;
  std::size_t digits = 0;
  std::int64_t days = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    days = std::min(days * 10 + (text[digits] - '0'), kMaxDays + 1);  // no overflow
    ++digits;
  }
  if (digits == 0 || digits == text.size() || text[digits] != 'd') return parse_duration(text);
  if (days > kMaxDays) return std::nullopt;
  const core::Duration whole{days * 86'400'000};
  const auto rest = text.substr(digits + 1);
  if (rest.empty()) return whole;
  const auto more = parse_duration(rest);
  if (!more) return std::nullopt;
  return whole + *more;
}

std::string format_duration(core::Duration duration) {
  std::int64_t remaining = duration.count();
  if (remaining == 0) return "0s";
  std::string out;
  if (remaining < 0) {
    out = "-";
    // Negating INT64_MIN overflows; no configured duration gets near it, so clamp.
    remaining = remaining == INT64_MIN ? INT64_MAX : -remaining;
  }
  for (const Unit& unit : kUnits) {
    const std::int64_t amount = remaining / unit.milliseconds;
    if (amount == 0) continue;
    out += std::to_string(amount);
    out += unit.suffix;
    remaining -= amount * unit.milliseconds;
  }
  return out;
}

}  // namespace devin_orch::app
