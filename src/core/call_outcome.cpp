// Retry classification of API calls, Retry-After parsing and short readable error details.
// Deliberately JSON-library-free: error bodies are often not JSON at all (proxies, HTML pages).
#include "devin_orch/core/call_outcome.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <utility>

namespace devin_orch::core {
namespace {

constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::size_t kMaxDetailBytes = 200;

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), to_lower);
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) noexcept {
  return haystack.find(needle) != std::string_view::npos;
}

// Control characters become spaces, runs of spaces collapse, and the result is cut to `limit`
// bytes without splitting a UTF-8 sequence: the text ends up in logs and the job's last_error.
std::string printable(std::string_view raw, std::size_t limit) {
  std::string out;
  out.reserve(std::min(raw.size(), limit));
  for (char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    const char mapped = (u < 0x20 || u == 0x7F) ? ' ' : c;
    if (mapped == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(mapped);
    if (out.size() >= limit) break;
  }
  if (out.size() >= limit) {
    // Drop a trailing partial UTF-8 sequence: continuation bytes and their lead byte.
    std::size_t end = out.size();
    std::size_t lead = end;
    while (lead > 0 && (static_cast<unsigned char>(out[lead - 1]) & 0xC0U) == 0x80U) --lead;
    if (lead > 0 && static_cast<unsigned char>(out[lead - 1]) >= 0xC0U) {
      const auto first = static_cast<unsigned char>(out[lead - 1]);
      const std::size_t need = first >= 0xF0U ? 4 : first >= 0xE0U ? 3 : 2;
      if (end - (lead - 1) < need) out.resize(lead - 1);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Reads a JSON string literal starting at body[pos] == '"'. Escapes are decoded loosely
// (\uXXXX becomes '?' unless ASCII): the result is for humans, not for round-tripping.
std::optional<std::string> read_json_string(std::string_view body, std::size_t pos) {
  if (pos >= body.size() || body[pos] != '"') return std::nullopt;
  std::string out;
  for (std::size_t i = pos + 1; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '"') return out;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= body.size()) return std::nullopt;
    switch (body[i]) {
      case 'n': case 'r': case 't': case 'b': case 'f': out.push_back(' '); break;
      case 'u': {
        unsigned code = 0;
        if (i + 4 >= body.size() ||
            std::from_chars(body.data() + i + 1, body.data() + i + 5, code, 16).ptr !=
                body.data() + i + 5) {
          return std::nullopt;
        }
        out.push_back(code >= 0x20 && code < 0x7F ? static_cast<char>(code) : '?');
        i += 4;
        break;
      }
      default: out.push_back(body[i]); break;  // \" \\ \/
    }
  }
  return std::nullopt;  // unterminated
}

// Position of the value of the first `"key":` in body, or npos.
std::size_t find_value(std::string_view body, std::string_view quoted_key, std::size_t from = 0) {
  for (std::size_t at = body.find(quoted_key, from); at != std::string_view::npos;
       at = body.find(quoted_key, at + 1)) {
    std::size_t i = at + quoted_key.size();
    while (i < body.size() && is_space(body[i])) ++i;
    if (i >= body.size() || body[i] != ':') continue;
    ++i;
    while (i < body.size() && is_space(body[i])) ++i;
    if (i < body.size()) return i;
  }
  return std::string_view::npos;
}

// The field a FastAPI validation error is about: its "loc" list (["body", "devin_mode"]) as
// "devin_mode", the leading "body"/"query" dropped; empty when there is none.
std::string fastapi_location(std::string_view body, std::size_t from, std::size_t until) {
  const std::size_t loc = find_value(body, "\"loc\"", from);
  if (loc == std::string_view::npos || loc > until || body[loc] != '[') return {};
  std::string out;
  for (std::size_t i = loc + 1; i < body.size() && body[i] != ']';) {
    if (body[i] == '"') {
      const auto part = read_json_string(body, i);
      if (!part) return {};
      if (!(out.empty() && (*part == "body" || *part == "query" || *part == "path"))) {
        out += (out.empty() ? "" : ".") + *part;
      }
      i = body.find('"', i + 1);
      while (i != std::string_view::npos && body[i - 1] == '\\') i = body.find('"', i + 1);
      if (i == std::string_view::npos) return {};
      ++i;
    } else if (std::isdigit(static_cast<unsigned char>(body[i])) != 0) {
      const std::size_t end = body.find_first_not_of("0123456789", i);
      out += (out.empty() ? "" : ".") + std::string{body.substr(i, end - i)};
      i = end;
    } else {
      ++i;
    }
  }
  return out;
}

// FastAPI puts the reason in {"detail": "..."}; validation errors (422) carry a list of
// {"loc": [...], "msg": "..."} objects instead, whose first message, with the field it is
// about, is the useful part.
std::optional<std::string> fastapi_detail(std::string_view body) {
  const std::size_t value = find_value(body, "\"detail\"");
  if (value == std::string_view::npos) return std::nullopt;
  if (body[value] == '"') return read_json_string(body, value);
  if (body[value] == '[' || body[value] == '{') {
    const std::size_t msg = find_value(body, "\"msg\"", value);
    if (msg != std::string_view::npos && body[msg] == '"') {
      auto text = read_json_string(body, msg);
      if (!text) return std::nullopt;
      // The loc of the same error object: before its msg, or after it within the object.
      const std::size_t object_start = body.rfind('{', msg);
      const std::size_t object_end = body.find('}', msg);
      const std::string field = fastapi_location(
          body, object_start == std::string_view::npos ? value : object_start,
          object_end == std::string_view::npos ? body.size() : object_end);
      if (!field.empty()) return field + ": " + *text;
      return text;
    }
  }
  return std::nullopt;
}

bool looks_like_html(std::string_view body) {
  const std::string head = lowercase(trim(body).substr(0, 256));
  return head.starts_with("<!doctype html") || head.starts_with("<html") ||
         (head.starts_with("<") && contains(head, "<html"));
}

std::string describe(int status, std::string_view body) {
  std::string prefix = "HTTP " + std::to_string(status);
  // A success body is data, not a reason; it can also be a large session list.
  if (status >= 200 && status < 300) return prefix;
  if (looks_like_html(body)) return prefix + " (HTML error page)";
  std::string text;
  if (auto detail = fastapi_detail(body)) text = printable(*detail, kMaxDetailBytes);
  if (text.empty()) text = printable(trim(body), kMaxDetailBytes);
  if (text.empty()) return prefix;
  return prefix + ": " + text;
}

bool mentions_concurrency_cap(std::string_view lower) {
  return contains(lower, "concurren") || contains(lower, "sessions running") ||
         contains(lower, "running sessions") || contains(lower, "at once");
}

bool mentions_billing(std::string_view lower) {
  for (std::string_view word : {"billing", "quota", "credit", "payment", "usage limit",
                                "usage_limit"}) {
    if (contains(lower, word)) return true;
  }
  return false;
}

// ---- HTTP-date (RFC 9110 section 5.6.7) --------------------------------------------------

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool is_leap(std::int64_t y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// A cursor over the header value; every expect_* consumes on success only.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_{text} {}

  bool done() const noexcept { return pos_ == text_.size(); }

  bool literal(std::string_view s) noexcept {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }

  std::optional<unsigned> digits(std::size_t count) noexcept {
    if (pos_ + count > text_.size()) return std::nullopt;
    unsigned value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const char c = text_[pos_ + i];
      if (!is_digit(c)) return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    pos_ += count;
    return value;
  }

  // Index into `names` of the name found here, consumed.
  template <std::size_t N>
  std::optional<unsigned> one_of(const std::array<std::string_view, N>& names) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) return static_cast<unsigned>(i);
    }
    return std::nullopt;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kShortDays{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
                                                     "Sun"};
// Longest first where one is a prefix of another is unnecessary: no full name prefixes another.
constexpr std::array<std::string_view, 7> kLongDays{"Monday", "Tuesday", "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};

struct CivilTime {
  std::int64_t year = 0;
  unsigned month = 0;  // 1..12
  unsigned day = 0;
  unsigned hour = 0, minute = 0, second = 0;
};

bool time_of_day(Scanner& in, CivilTime& t) {
  auto h = in.digits(2);
  if (!h || !in.literal(":")) return false;
  auto m = in.digits(2);
  if (!m || !in.literal(":")) return false;
  auto s = in.digits(2);
  if (!s) return false;
  t.hour = *h, t.minute = *m, t.second = *s;
  return true;
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<CivilTime> parse_imf_fixdate(std::string_view text) {
  Scanner in{text};
  CivilTime t;
  if (!in.one_of(kShortDays) || !in.literal(", ")) return std::nullopt;
  auto day = in.digits(2);
  if (!day || !in.literal(" ")) return std::nullopt;
  auto month = in.one_of(kMonths);
  if (!month || !in.literal(" ")) return std::nullopt;
  auto year = in.digits(4);
  if (!year || !in.literal(" ") || !time_of_day(in, t) || !in.literal(" GMT") || !in.done()) {
    return std::nullopt;
  }
  t.year = *year, t.month = *month + 1, t.day = *day;
  return t;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"; the two-digit year is resolved against `now_year`.
std::optional<CivilTime> parse_rfc850(std::string_view text, std::int64_t now_year) {
  Scanner in{text};
  CivilTime t;
  if (!in.one_of(kLongDays) || !in.literal(", ")) return std::nullopt;
  auto day = in.digits(2);
  if (!day || !in.literal("-")) return std::nullopt;
  auto month = in.one_of(kMonths);
  if (!month || !in.literal("-")) return std::nullopt;
  auto yy = in.digits(2);
  if (!yy || !in.literal(" ") || !time_of_day(in, t) || !in.literal(" GMT") || !in.done()) {
    return std::nullopt;
  }
  // RFC 9110: a two-digit year more than 50 years in the future means the past century.
  std::int64_t year = now_year - now_year % 100 + *yy;
  if (year > now_year + 50) year -= 100;
  t.year = year, t.month = *month + 1, t.day = *day;
  return t;
}

// "Sun Nov  6 08:49:37 1994"
std::optional<CivilTime> parse_asctime(std::string_view text) {
  Scanner in{text};
  CivilTime t;
  if (!in.one_of(kShortDays) || !in.literal(" ")) return std::nullopt;
  auto month = in.one_of(kMonths);
  if (!month || !in.literal(" ")) return std::nullopt;
  std::optional<unsigned> day = in.literal(" ") ? in.digits(1) : in.digits(2);
  if (!day || !in.literal(" ") || !time_of_day(in, t) || !in.literal(" ")) return std::nullopt;
  auto year = in.digits(4);
  if (!year || !in.done()) return std::nullopt;
  t.year = *year, t.month = *month + 1, t.day = *day;
  return t;
}

std::optional<std::int64_t> civil_to_epoch_ms(const CivilTime& t) {
  if (t.day < 1 || t.day > days_in_month(t.year, t.month)) return std::nullopt;
  // 60 seconds is a leap second; it names the same instant as :59 plus one second.
  if (t.hour > 23 || t.minute > 59 || t.second > 60) return std::nullopt;
  const std::int64_t days = days_from_civil(t.year, t.month, t.day);
  return ((days * 24 + t.hour) * 60 + t.minute) * 60'000 + std::int64_t{t.second} * 1000;
}

std::int64_t year_of(TimePoint now) {
  const std::int64_t ms = now.time_since_epoch().count();
  std::int64_t days = ms / kDayMs - (ms % kDayMs < 0 ? 1 : 0);
  // civil_from_days, year only.
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10 ? 1 : 0);
}

}  // namespace

std::string_view to_string(CallClass c) noexcept {
  switch (c) {
    case CallClass::ok: return "ok";
    case CallClass::not_sent: return "not_sent";
    case CallClass::ambiguous: return "ambiguous";
    case CallClass::rate_limited: return "rate_limited";
    case CallClass::unauthorized: return "unauthorized";
    case CallClass::forbidden: return "forbidden";
    case CallClass::not_found: return "not_found";
    case CallClass::rejected: return "rejected";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& out, CallClass c) { return out << to_string(c); }

CallOutcome classify_transport_failure(bool request_sent, std::string detail) {
  return CallOutcome{.cls = request_sent ? CallClass::ambiguous : CallClass::not_sent,
                     .http_status = 0,
                     .detail = std::move(detail)};
}

CallOutcome classify_response(const HttpAnswer& answer, TimePoint now) {
  CallOutcome out{.http_status = answer.status, .detail = describe(answer.status, answer.body)};
  const int s = answer.status;
  if (s >= 200 && s < 300) {
    out.cls = CallClass::ok;
  } else if (s == 429) {
    out.cls = CallClass::rate_limited;
  } else if (s == 401) {
    out.cls = CallClass::unauthorized;
  } else if (s == 403) {
    out.cls = CallClass::forbidden;
  } else if (s == 404) {
    out.cls = CallClass::not_found;
  } else if (s == 408) {
    // The server gave up reading, but a proxy may answer 408 after the origin got the request.
    out.cls = CallClass::ambiguous;
  } else if (s >= 400 && s < 500) {
    out.cls = CallClass::rejected;
  } else {
    out.cls = CallClass::ambiguous;  // 5xx, and statuses we never expect (1xx, 3xx, 0)
  }

  if (out.cls == CallClass::rate_limited || out.cls == CallClass::forbidden) {
    const std::string lower = lowercase(answer.body);
    out.billing = mentions_billing(lower);
    out.concurrency_cap = out.cls == CallClass::rate_limited && mentions_concurrency_cap(lower);
  }
  if (answer.retry_after_ms) out.retry_after = parse_retry_after_ms(*answer.retry_after_ms);
  if (!out.retry_after && answer.retry_after) {
    out.retry_after = parse_retry_after(*answer.retry_after, now);
  }
  return out;
}

std::optional<Duration> parse_retry_after(std::string_view value, TimePoint now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), is_digit)) {
    std::int64_t seconds = 0;
    for (char c : value) {
      seconds = seconds * 10 + (c - '0');
      if (seconds * 1000 > kDayMs) return std::nullopt;  // also stops overflow early
    }
    return Duration{seconds * 1000};
  }
  std::optional<CivilTime> civil = parse_imf_fixdate(value);
  if (!civil) civil = parse_rfc850(value, year_of(now));
  if (!civil) civil = parse_asctime(value);
  if (!civil) return std::nullopt;
  const std::optional<std::int64_t> at_ms = civil_to_epoch_ms(*civil);
  if (!at_ms) return std::nullopt;
  const std::int64_t delta = *at_ms - now.time_since_epoch().count();
  if (delta <= 0) return Duration{0};
  if (delta > kDayMs) return std::nullopt;
  return Duration{delta};
}

std::optional<Duration> parse_retry_after_ms(std::string_view value) {
  value = trim(value);
  // Only plain decimals: from_chars alone would also take "inf", "nan", "1e9" and "-5".
  const auto dots = std::count(value.begin(), value.end(), '.');
  const auto digits = std::count_if(value.begin(), value.end(), is_digit);
  if (digits == 0 || dots > 1 || static_cast<std::size_t>(digits + dots) != value.size()) {
    return std::nullopt;
  }
  double ms = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(ms)) {
    return std::nullopt;
  }
  if (ms > static_cast<double>(kDayMs)) return std::nullopt;
  // Rounded up: waiting a fraction of a millisecond too long is harmless, too short is not.
  return Duration{static_cast<Duration::rep>(std::ceil(ms))};
}

}  // namespace devin_orch::core
