// RFC 3339 timestamps in job files.
#include "devin_orch/app/formats/timestamp.hpp"

#include <gtest/gtest.h>

namespace devin_orch::app {
namespace {

TEST(Timestamp, ParsesUtcOffsetsAndFractions) {
  EXPECT_EQ(parse_timestamp_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24T09:30:00Z"), 1795512600000);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24T10:30:00+01:00"), 1795512600000);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24T04:00:00-05:30"), 1795512600000);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24 09:30:00.25Z"), 1795512600250);
  EXPECT_EQ(parse_timestamp_ms("2024-02-29T00:00:00Z"), 1709164800000);
}

TEST(Timestamp, RefusesAmbiguousOrImpossibleInstants) {
  for (const char* bad : {"2026-11-24T09:30:00", "2026-11-24", "2026-13-01T00:00:00Z",
                          "2025-02-29T00:00:00Z", "2026-11-24T24:00:00Z", "tomorrow",
                          "2026-11-24T09:30:00Zjunk", "2026-11-24T09:30:00+1:00", ""}) {
    EXPECT_FALSE(parse_timestamp_ms(bad).has_value()) << bad;
  }
}

TEST(Timestamp, FormatsAsUtcAndRoundTrips) {
  EXPECT_EQ(format_timestamp_ms(1795512600000), "2026-11-24T09:30:00Z");
  EXPECT_EQ(format_timestamp_ms(1795512600250), "2026-11-24T09:30:00.250Z");
  for (const std::int64_t ms : {0LL, 951782400000LL, 4102444799999LL}) {
    EXPECT_EQ(parse_timestamp_ms(format_timestamp_ms(ms)), ms) << ms;
  }
}

}  // namespace
}  // namespace devin_orch::app
