// json_text: the CLI's JSON numbers read like numbers (issue 24: `show --json` printed
// "acus_consumed":4E-1), and everything else is what Boost.JSON would write.
#include "devin_orch/app/formats/json_text.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <limits>

namespace devin_orch::app {
namespace {

namespace json = boost::json;

TEST(JsonText, DoublesAreOrdinaryDecimalsThatReadBackExactly) {
  EXPECT_EQ(json_text(json::value(0.4)), "0.4");
  EXPECT_EQ(json_text(json::value(2.5)), "2.5");
  EXPECT_EQ(json_text(json::value(12.0)), "12");
  EXPECT_EQ(json_text(json::value(-0.125)), "-0.125");
  EXPECT_EQ(json_text(json::value(0.1 + 0.2)), "0.30000000000000004");
  for (const double number : {0.4, 1e-7, 1e21, 123456.789, 5e-324}) {
    const auto text = json_text(json::value(number));
    EXPECT_EQ(text.find('E'), std::string::npos) << text;
    EXPECT_EQ(json::parse(text).to_number<double>(), number) << text;
  }
}

TEST(JsonText, ANumberJsonCannotHoldIsNull) {
  EXPECT_EQ(json_text(json::value(std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(json_text(json::value(std::numeric_limits<double>::quiet_NaN())), "null");
}

TEST(JsonText, EverythingElseIsBoostJsonsOwnText) {
  const json::value value = json::parse(
      R"({"key":"a\"b\\c\n\u0001é","n":-3,"big":18446744073709551615,"t":true,"z":null,)"
      R"("list":[1,"x",[],{}],"nested":{"acus":1.5}})");
  EXPECT_EQ(json_text(value),
            R"({"key":"a\"b\\c\n\u0001é","n":-3,"big":18446744073709551615,"t":true,"z":null,)"
            R"("list":[1,"x",[],{}],"nested":{"acus":1.5}})");
  EXPECT_EQ(json::parse(json_text(value)), value);
}

}  // namespace
}  // namespace devin_orch::app
