// Duration parsing and formatting: the accepted grammar, every rejection, and round trips.
#include "devin_orch/app/formats/duration.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devin_orch::app {
namespace {

using namespace std::chrono_literals;

struct Accepted {
  std::string text;
  core::Duration expected;
};

class ParseAccepted : public ::testing::TestWithParam<Accepted> {};

TEST_P(ParseAccepted, GivesExactMilliseconds) {
  const auto parsed = parse_duration(GetParam().text);
  ASSERT_TRUE(parsed.has_value()) << GetParam().text;
  EXPECT_EQ(*parsed, GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseAccepted,
    ::testing::Values(Accepted{"250ms", 250ms}, Accepted{"10s", 10s}, Accepted{"5m", 5min},
                      Accepted{"1h", 1h}, Accepted{"1m30s", 90s},
                      Accepted{"1h2m3s500ms", 1h + 2min + 3s + 500ms}, Accepted{"0s", 0ms},
                      Accepted{"0ms", 0ms}, Accepted{"  10s\t", 10s}, Accepted{"\n2m\n", 2min},
                      Accepted{"1500ms", 1500ms}, Accepted{"90s", 90s}, Accepted{"1h500ms", 1h + 500ms},
                      Accepted{"876000h", 876000h}, Accepted{"007s", 7s}));

class ParseRejected : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseRejected, GivesNothing) {
  EXPECT_FALSE(parse_duration(GetParam()).has_value()) << "'" << GetParam() << "'";
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseRejected,
    ::testing::Values("", "   ", "10", "0", "-5s", "+5s", "1.5s", "10 s", "1m 30s", "s", "ms",
                      "10x", "10sec", "10S", "1d", "30s1m", "1s1s", "500ms1s", "1mm", "10s ms",
                      "1h-2m",
                      // Overflow and absurd sizes, at several magnitudes.
                      "9999999999999999999999ms", "99999999999999999999h", "900000h",
                      "878401h"));

struct Formatted {
  core::Duration duration;
  std::string expected;
};

class Format : public ::testing::TestWithParam<Formatted> {};

TEST_P(Format, GivesShortestExactForm) {
  EXPECT_EQ(format_duration(GetParam().duration), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Table, Format,
                         ::testing::Values(Formatted{0ms, "0s"}, Formatted{1ms, "1ms"},
                                           Formatted{1500ms, "1s500ms"}, Formatted{90s, "1m30s"},
                                           Formatted{60s, "1m"}, Formatted{3600s, "1h"},
                                           Formatted{1h + 2min + 3s + 500ms, "1h2m3s500ms"},
                                           Formatted{48h, "48h"}, Formatted{1h + 1ms, "1h1ms"},
                                           Formatted{-1500ms, "-1s500ms"}));

TEST(Duration, FormatThenParseRoundTrips) {
  for (const core::Duration d :
       {0ms, 1ms, 999ms, 1000ms, 59999ms, 3'600'001ms, 86'400'000ms, 123'456'789ms}) {
    const auto parsed = parse_duration(format_duration(d));
    ASSERT_TRUE(parsed.has_value()) << format_duration(d);
    EXPECT_EQ(*parsed, d);
  }
}

// Ages and retention are counted in days; without days the grammar is parse_duration's, large
// second counts included.
TEST(Age, TakesWholeDaysInFrontOfADuration) {
  EXPECT_EQ(parse_age("30d"), core::Duration{30 * 86'400'000LL});
  EXPECT_EQ(parse_age("1d12h"), 36h);
  EXPECT_EQ(parse_age("0d"), 0ms);
  EXPECT_EQ(parse_age("90s"), 90s);
  EXPECT_EQ(parse_age("100000s"), 100000s);
  EXPECT_EQ(parse_age("36600d"), core::Duration{36'600 * 86'400'000LL});
  for (const char* bad : {"", "d", "1.5d", "-1d", "36601d", "99999999999999999999d", "1d1d",
                          "1dx", "2h1d", "10"}) {
    EXPECT_FALSE(parse_age(bad).has_value()) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace devin_orch::app
