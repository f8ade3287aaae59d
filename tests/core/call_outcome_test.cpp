// Tests for retry classification, readable details and Retry-After parsing.
#include "devin_orch/core/call_outcome.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace devin_orch::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// 1994-11-06 08:49:37 UTC, the RFC's example instant.
const TimePoint kRfcExample = from_epoch_ms(784'111'777'000);

CallOutcome answer(int status, std::string_view body = "",
                   std::optional<std::string_view> retry_after = std::nullopt,
                   std::optional<std::string_view> retry_after_ms = std::nullopt) {
  return classify_response(HttpAnswer{.status = status, .body = body,
                                      .retry_after = retry_after,
                                      .retry_after_ms = retry_after_ms},
                           kRfcExample);
}

TEST(ClassifyTransportFailure, SendingDecidesBetweenSafeAndAmbiguous) {
  const CallOutcome before = classify_transport_failure(false, "connect: refused");
  EXPECT_EQ(before.cls, CallClass::not_sent);
  EXPECT_EQ(before.http_status, 0);
  EXPECT_EQ(before.detail, "connect: refused");
  EXPECT_FALSE(before.ok());

  const CallOutcome after = classify_transport_failure(true, "read: timed out");
  EXPECT_EQ(after.cls, CallClass::ambiguous);
  EXPECT_EQ(after.detail, "read: timed out");
}

struct StatusCase {
  int status;
  CallClass cls;

  friend std::ostream& operator<<(std::ostream& out, const StatusCase& c) {
    return out << c.status << " -> " << c.cls;
  }
};

class ClassifyStatus : public testing::TestWithParam<StatusCase> {};

TEST_P(ClassifyStatus, MapsStatusToClass) {
  const CallOutcome out = answer(GetParam().status, R"({"detail":"x"})");
  EXPECT_EQ(out.cls, GetParam().cls) << "HTTP " << GetParam().status;
  EXPECT_EQ(out.http_status, GetParam().status);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ClassifyStatus,
    testing::Values(StatusCase{200, CallClass::ok}, StatusCase{201, CallClass::ok},
                    StatusCase{204, CallClass::ok}, StatusCase{299, CallClass::ok},
                    StatusCase{429, CallClass::rate_limited},
                    StatusCase{401, CallClass::unauthorized},
                    StatusCase{403, CallClass::forbidden}, StatusCase{404, CallClass::not_found},
                    StatusCase{408, CallClass::ambiguous}, StatusCase{400, CallClass::rejected},
                    StatusCase{409, CallClass::rejected}, StatusCase{422, CallClass::rejected},
                    StatusCase{499, CallClass::rejected}, StatusCase{500, CallClass::ambiguous},
                    StatusCase{502, CallClass::ambiguous}, StatusCase{503, CallClass::ambiguous},
                    StatusCase{504, CallClass::ambiguous}, StatusCase{599, CallClass::ambiguous},
                    StatusCase{100, CallClass::ambiguous}, StatusCase{301, CallClass::ambiguous},
                    StatusCase{0, CallClass::ambiguous}, StatusCase{600, CallClass::ambiguous}));

TEST(ClassifyResponse, DetailQuotesFastApiDetailWithTheStatus) {
  EXPECT_EQ(answer(503, R"({"detail": "Service Unavailable"})").detail,
            "HTTP 503: Service Unavailable");
  EXPECT_EQ(answer(400, R"({ "other": 1, "detail" :"bad \"platform\"\nuse a\/b" })").detail,
            R"(HTTP 400: bad "platform" use a/b)");
  EXPECT_EQ(answer(400, R"({"detail":"caf\u00e9 \u0041"})").detail, "HTTP 400: caf? A");
}

TEST(ClassifyResponse, SuccessBodiesAreNotQuotedAsReasons) {
  EXPECT_EQ(answer(200, R"({"session_id":"devin-1","status_detail":"working"})").detail,
            "HTTP 200");
}

TEST(ClassifyResponse, ValidationErrorsReportTheFirstMessageWithItsField) {
  const std::string body =
      R"({"detail":[{"loc":["body","prompt"],"msg":"field required","type":"missing"},)"
      R"({"loc":["body"],"msg":"second","type":"x"}]})";
  EXPECT_EQ(answer(422, body).detail, "HTTP 422: prompt: field required");
  // The field of the same error, wherever loc stands in it; none when it names only the body.
  EXPECT_EQ(answer(422, R"({"detail":[{"msg":"bad","loc":["body","knowledge_ids",2]}]})").detail,
            "HTTP 422: knowledge_ids.2: bad");
  EXPECT_EQ(answer(422, R"({"detail":[{"loc":["body"],"msg":"not an object"}]})").detail,
            "HTTP 422: not an object");
  EXPECT_EQ(answer(422, R"({"detail":[{"msg":"no loc"}]})").detail, "HTTP 422: no loc");
}

TEST(ClassifyResponse, HtmlPagesAreNotQuoted) {
  EXPECT_EQ(answer(502, "<html><head><title>502 Bad Gateway</title></head></html>").detail,
            "HTTP 502 (HTML error page)");
  EXPECT_EQ(answer(503, "\n  <!DOCTYPE html>\n<html lang=en>...").detail,
            "HTTP 503 (HTML error page)");
}

TEST(ClassifyResponse, OtherBodiesAreCutAndCleaned) {
  EXPECT_EQ(answer(500, "").detail, "HTTP 500");
  EXPECT_EQ(answer(500, "  \r\n ").detail, "HTTP 500");
  EXPECT_EQ(answer(500, "upstream\r\n\tconnect error\x01").detail,
            "HTTP 500: upstream connect error");
  EXPECT_EQ(answer(500, R"({"detail": 42})").detail, R"(HTTP 500: {"detail": 42})");

  const std::string long_body(5'000, 'x');
  const std::string detail = answer(500, long_body).detail;
  EXPECT_EQ(detail, "HTTP 500: " + std::string(200, 'x'));

  // A cut never leaves half of a UTF-8 sequence behind.
  const std::string accents = std::string(199, 'a') + "\xC3\xA9" + "tail";
  EXPECT_EQ(answer(500, accents).detail, "HTTP 500: " + std::string(199, 'a'));
}

TEST(ClassifyResponse, ConcurrencyCapIsRecognisedOnlyOn429) {
  const char* cap =
      R"({"detail":"You have 5 SWE-2 sessions running, the most your plan allows at once."})";
  EXPECT_TRUE(answer(429, cap).concurrency_cap);
  EXPECT_TRUE(answer(429, R"({"detail":"Concurrent session limit reached"})").concurrency_cap);
  EXPECT_FALSE(answer(429, R"({"detail":"Rate limit exceeded"})").concurrency_cap);
  EXPECT_FALSE(answer(429, "").concurrency_cap);
  EXPECT_FALSE(answer(403, cap).concurrency_cap);
  EXPECT_FALSE(answer(500, cap).concurrency_cap);
}

TEST(ClassifyResponse, BillingIsRecognisedOn403And429) {
  const char* quota = R"({"detail":"Your organization has a billing error. Error: out_of_quota"})";
  const CallOutcome billing = answer(403, quota);
  EXPECT_EQ(billing.cls, CallClass::forbidden);
  EXPECT_TRUE(billing.billing);
  for (const char* body :
       {R"({"detail":"Insufficient credits"})", R"({"detail":"payment required"})",
        R"({"detail":"Org usage limit exceeded"})", R"({"detail":"QUOTA exhausted"})"}) {
    EXPECT_TRUE(answer(403, body).billing) << body;
  }
  EXPECT_FALSE(answer(403, R"({"detail":"Missing permission ManageOrgSessions"})").billing);
  EXPECT_TRUE(answer(429, quota).billing);
  EXPECT_FALSE(answer(400, quota).billing);
}

TEST(ClassifyResponse, RetryAfterMsIsPreferredAndInvalidValuesFallBack) {
  EXPECT_EQ(answer(429, "", "7", "1500").retry_after, milliseconds{1500});
  EXPECT_EQ(answer(429, "", "7", "soon").retry_after, seconds{7});
  EXPECT_EQ(answer(429, "", "7").retry_after, seconds{7});
  EXPECT_EQ(answer(429, "", "Sun, 06 Nov 1994 08:50:37 GMT").retry_after, seconds{60});
  EXPECT_EQ(answer(429, "", "-3").retry_after, std::nullopt);
  EXPECT_EQ(answer(429, "").retry_after, std::nullopt);
  EXPECT_EQ(answer(503, "", "30").retry_after, seconds{30});
}

// Reference §6: honour Retry-After whenever present. Every error status yields the wait.
TEST(RequestedWait, AnyErrorStatusCarryingAWaitYieldsIt) {
  for (int status : {500, 502, 503, 504, 429, 403, 409, 400, 408}) {
    EXPECT_EQ(answer(status, "", "12").requested_wait(), seconds{12}) << status;
    EXPECT_EQ(answer(status, "", std::nullopt, "250").requested_wait(), milliseconds{250})
        << status;
    EXPECT_EQ(answer(status, "", "Sun, 06 Nov 1994 08:50:37 GMT").requested_wait(), seconds{60})
        << status;
    EXPECT_EQ(answer(status, "").requested_wait(), std::nullopt) << status;
  }
  // The seconds and the milliseconds headers together: the precise one, as the SDKs do.
  EXPECT_EQ(answer(503, "", "2", "1500").requested_wait(), milliseconds{1500});
  // A wait the parser refuses (absurd or malformed) holds nothing.
  EXPECT_EQ(answer(503, "", "999999999").requested_wait(), std::nullopt);
  EXPECT_EQ(answer(500, "", "soon").requested_wait(), std::nullopt);
}

TEST(RequestedWait, NeverOnSuccessOrWithoutAnAnswer) {
  EXPECT_EQ(answer(200, "{}", "30").requested_wait(), std::nullopt);
  EXPECT_EQ(answer(204, "", std::nullopt, "30").requested_wait(), std::nullopt);
  // A 2xx whose body then failed to parse is downgraded to ambiguous by the caller; the header
  // on it still asked for nothing.
  CallOutcome downgraded = answer(200, "not json", "30");
  downgraded.cls = CallClass::ambiguous;
  EXPECT_EQ(downgraded.requested_wait(), std::nullopt);
  EXPECT_EQ(classify_transport_failure(true, "reset").requested_wait(), std::nullopt);
}

TEST(ParseRetryAfter, DeltaSeconds) {
  EXPECT_EQ(parse_retry_after("120", kRfcExample), seconds{120});
  EXPECT_EQ(parse_retry_after("  7 \t", kRfcExample), seconds{7});
  EXPECT_EQ(parse_retry_after("0", kRfcExample), seconds{0});
  EXPECT_EQ(parse_retry_after("0086400", kRfcExample), seconds{86'400});
  for (std::string_view bad : {"86401", "-1", "+5", "1.5", "1e3", "", "   ", "abc", "12 s",
                               "99999999999999999999999999"}) {
    EXPECT_EQ(parse_retry_after(bad, kRfcExample), std::nullopt) << bad;
  }
}

TEST(ParseRetryAfter, AllThreeHttpDateFormsNameTheSameInstant) {
  const TimePoint now = kRfcExample - seconds{37};
  for (std::string_view date : {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                "Sun Nov  6 08:49:37 1994", " Sun, 06 Nov 1994 08:49:37 GMT "}) {
    EXPECT_EQ(parse_retry_after(date, now), seconds{37}) << date;
  }
}

TEST(ParseRetryAfter, DatesUseCivilArithmetic) {
  EXPECT_EQ(parse_retry_after("Thu, 01 Jan 1970 00:00:05 GMT", from_epoch_ms(0)), seconds{5});
  // Leap days: 1996 and 2000 have one, 1900 does not.
  EXPECT_EQ(parse_retry_after("Thu, 29 Feb 1996 00:00:10 GMT", from_epoch_ms(825'552'000'000)),
            seconds{10});
  EXPECT_EQ(parse_retry_after("Tue, 29 Feb 2000 12:00:00 GMT",
                              from_epoch_ms(951'825'600'000) - milliseconds{1}),
            milliseconds{1});
  EXPECT_EQ(parse_retry_after("Thu, 29 Feb 1900 12:00:00 GMT", kRfcExample), std::nullopt);
  EXPECT_EQ(parse_retry_after("Sat, 31 Jun 2025 12:00:00 GMT", kRfcExample), std::nullopt);
  // A leap second is accepted as the next instant.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:60 GMT", kRfcExample), seconds{23});
}

TEST(ParseRetryAfter, PastDatesMeanNowAndFarDatesAreRefused) {
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:36 GMT", kRfcExample), seconds{0});
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kRfcExample), seconds{0});
  EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", kRfcExample), seconds{86'400});
  EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:38 GMT", kRfcExample), std::nullopt);
}

TEST(ParseRetryAfter, TwoDigitYearsResolveToTheNearestPlausibleCentury) {
  const TimePoint mid_2025 = from_epoch_ms(1'748'736'000'000);  // 2025-06-01 00:00:00
  EXPECT_EQ(parse_retry_after("Sunday, 01-Jun-25 00:01:00 GMT", mid_2025), seconds{60});
  // 2094 is more than 50 years ahead, so "94" is 1994: in the past.
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", mid_2025), seconds{0});
}

TEST(ParseRetryAfter, MalformedDatesAreRefused) {
  for (std::string_view bad : {
           "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 06 Nov 1994 08:49:37",
           "Sun, 6 Nov 1994 08:49:37 GMT",
           "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
           "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT junk",
           "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
           "Sun Nov  6 08:49:37 94", "sun, 06 nov 1994 08:49:37 gmt"}) {
    EXPECT_EQ(parse_retry_after(bad, kRfcExample - seconds{1}), std::nullopt) << bad;
  }
}

TEST(ParseRetryAfterMs, AcceptsPlainNonNegativeDecimalsUpToADay) {
  EXPECT_EQ(parse_retry_after_ms("1500"), milliseconds{1500});
  EXPECT_EQ(parse_retry_after_ms(" 250 "), milliseconds{250});
  EXPECT_EQ(parse_retry_after_ms("0"), milliseconds{0});
  EXPECT_EQ(parse_retry_after_ms("1.5"), milliseconds{2});  // rounded up, never early
  EXPECT_EQ(parse_retry_after_ms("0.25"), milliseconds{1});
  EXPECT_EQ(parse_retry_after_ms("86400000"), milliseconds{86'400'000});
  for (std::string_view bad : {"86400001", "-5", "+5", "1e3", "inf", "nan", "", " ", ".",
                               "1.2.3", "0x10", "12ms"}) {
    EXPECT_EQ(parse_retry_after_ms(bad), std::nullopt) << bad;
  }
}

TEST(CallClassNames, AreStable) {
  EXPECT_EQ(to_string(CallClass::ok), "ok");
  EXPECT_EQ(to_string(CallClass::not_sent), "not_sent");
  EXPECT_EQ(to_string(CallClass::ambiguous), "ambiguous");
  EXPECT_EQ(to_string(CallClass::rate_limited), "rate_limited");
  EXPECT_EQ(to_string(CallClass::unauthorized), "unauthorized");
  EXPECT_EQ(to_string(CallClass::forbidden), "forbidden");
  EXPECT_EQ(to_string(CallClass::not_found), "not_found");
  EXPECT_EQ(to_string(CallClass::rejected), "rejected");
}

}  // namespace
}  // namespace devin_orch::core
