// Tests of the metrics registry: exact rendering, escaping, number formats, validation and
// conflicts at registration, and the whole exposition checked against the format's rules.
#include "devin_orch/server/metrics.hpp"

#include "server/exposition_validator.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace devin_orch::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::exposition_problems;

TEST(MetricsRender, EmptyRegistryRendersNothing) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.render(), "");
}

TEST(MetricsRender, CounterWithoutLabels) {
  MetricsRegistry registry;
  auto& created = registry.counter("devin_orch_sessions_created_total", "Sessions created.");
  created.inc();
  created.inc(2);
  EXPECT_EQ(created.value(), 3);
  EXPECT_EQ(registry.render(),
            "# HELP devin_orch_sessions_created_total Sessions created.\n"
            "# TYPE devin_orch_sessions_created_total counter\n"
            "devin_orch_sessions_created_total 3\n");
}

TEST(MetricsRender, GaugeSeriesShareOneBlockSortedByLabelValue) {
  MetricsRegistry registry;
  registry.gauge("devin_orch_jobs", "Jobs by state.", {{"state", "queued"}}).set(4);
  registry.gauge("devin_orch_jobs", "Jobs by state.", {{"state", "failed"}}).set(0);
  auto& polling = registry.gauge("devin_orch_jobs", "Jobs by state.", {{"state", "polling"}});
  polling.inc(3);
  polling.dec();
  registry.gauge("devin_orch_active_sessions", "Sessions not yet terminal.").set(-1.5);
  EXPECT_EQ(registry.render(),
            "# HELP devin_orch_active_sessions Sessions not yet terminal.\n"
            "# TYPE devin_orch_active_sessions gauge\n"
            "devin_orch_active_sessions -1.5\n"
            "# HELP devin_orch_jobs Jobs by state.\n"
            "# TYPE devin_orch_jobs gauge\n"
            "devin_orch_jobs{state=\"failed\"} 0\n"
            "devin_orch_jobs{state=\"polling\"} 2\n"
            "devin_orch_jobs{state=\"queued\"} 4\n");
}

TEST(MetricsRender, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  auto& latency = registry.histogram("devin_orch_api_request_duration_seconds",
                                     "Devin API latency.", {0.5, 1, 10});
  for (const double v : {0.25, 0.5, 1.0, 5.0, 100.0}) latency.observe(v);
  EXPECT_EQ(latency.count(), 5u);
  EXPECT_EQ(latency.sum(), 106.75);
  EXPECT_THAT(latency.bucket_counts(), ElementsAre(2, 1, 1, 1));
  EXPECT_EQ(registry.render(),
            "# HELP devin_orch_api_request_duration_seconds Devin API latency.\n"
            "# TYPE devin_orch_api_request_duration_seconds histogram\n"
            "devin_orch_api_request_duration_seconds_bucket{le=\"0.5\"} 2\n"
            "devin_orch_api_request_duration_seconds_bucket{le=\"1\"} 3\n"
            "devin_orch_api_request_duration_seconds_bucket{le=\"10\"} 4\n"
            "devin_orch_api_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"
            "devin_orch_api_request_duration_seconds_sum 106.75\n"
            "devin_orch_api_request_duration_seconds_count 5\n");
}

TEST(MetricsRender, HistogramLabelsComeBeforeLe) {
  MetricsRegistry registry;
  registry.histogram("rpc_seconds", "h", {1}, {{"endpoint", "create"}}).observe(2);
  EXPECT_EQ(registry.render(),
            "# HELP rpc_seconds h\n"
            "# TYPE rpc_seconds histogram\n"
            "rpc_seconds_bucket{endpoint=\"create\",le=\"1\"} 0\n"
            "rpc_seconds_bucket{endpoint=\"create\",le=\"+Inf\"} 1\n"
            "rpc_seconds_sum{endpoint=\"create\"} 2\n"
            "rpc_seconds_count{endpoint=\"create\"} 1\n");
}

TEST(MetricsRender, UnobservedHistogramRendersZeroes) {
  MetricsRegistry registry;
  registry.histogram("wait_seconds", "h", {});
  EXPECT_EQ(registry.render(),
            "# HELP wait_seconds h\n"
            "# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"+Inf\"} 0\n"
            "wait_seconds_sum 0\n"
            "wait_seconds_count 0\n");
}

TEST(MetricsRender, LabelValuesEscapeBackslashQuoteAndNewline) {
  MetricsRegistry registry;
  registry.gauge("g", "h", {{"path", "C:\\dir \"x\"\nnext"}}).set(1);
  EXPECT_EQ(registry.render(),
            "# HELP g h\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
}

TEST(MetricsRender, HelpEscapesBackslashAndNewlineButNotQuotes) {
  MetricsRegistry registry;
  registry.gauge("g", "a \"b\" c\\d\ne", {}).set(1);
  EXPECT_EQ(registry.render(),
            "# HELP g a \"b\" c\\\\d\\ne\n"
            "# TYPE g gauge\n"
            "g 1\n");
}

TEST(MetricsRender, NumbersArePrintedTheWayPrometheusParsesThem) {
  const auto rendered = [](double v) {
    MetricsRegistry registry;
    registry.gauge("g", "h").set(v);
    const auto text = registry.render();
    const auto last_space = text.rfind(' ');
    return text.substr(last_space + 1, text.size() - last_space - 2);
  };
  EXPECT_EQ(rendered(0), "0");
  EXPECT_EQ(rendered(-0.0), "0");
  EXPECT_EQ(rendered(42), "42");
  EXPECT_EQ(rendered(-7), "-7");
  EXPECT_EQ(rendered(1234567890123), "1234567890123");
  EXPECT_EQ(rendered(0.1), "0.1");
  EXPECT_EQ(rendered(1234.5), "1234.5");
  EXPECT_EQ(rendered(1e20), "1e+20");
  EXPECT_EQ(rendered(2.5e-7), "2.5e-07");
  EXPECT_EQ(rendered(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(rendered(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(rendered(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsRegistryTest, SameNameAndLabelsReturnTheSameMetricWhateverTheLabelOrder) {
  MetricsRegistry registry;
  auto& a = registry.counter("calls_total", "h", {{"method", "get"}, {"code", "200"}});
  auto& b = registry.counter("calls_total", "other help", {{"code", "200"}, {"method", "get"}});
  EXPECT_EQ(&a, &b);
  a.inc();
  b.inc();
  EXPECT_EQ(registry.render(),
            "# HELP calls_total h\n"
            "# TYPE calls_total counter\n"
            "calls_total{method=\"get\",code=\"200\"} 2\n");
}

TEST(MetricsRegistryTest, ReferencesSurviveManyLaterRegistrations) {
  MetricsRegistry registry;
  auto& first = registry.counter("first_total", "h", {{"k", "v"}});
  auto& gauge = registry.gauge("g", "h", {{"k", "0"}});
  for (int i = 0; i < 1000; ++i) {
    registry.counter("c" + std::to_string(i) + "_total", "h");
    registry.gauge("g", "h", {{"k", std::to_string(i + 1)}});
  }
  first.inc(5);
  gauge.set(9);
  const auto text = registry.render();
  EXPECT_NE(text.find("\nfirst_total{k=\"v\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("\ng{k=\"0\"} 9\n"), std::string::npos);
}

TEST(MetricsRegistryTest, InvalidMetricNamesThrowInvalidArgument) {
  MetricsRegistry registry;
  for (const char* name : {"", "1abc", "a-b", "a b", "caf\xc3\xa9", "a{b}"}) {
    EXPECT_THROW(registry.gauge(name, "h"), std::invalid_argument) << name;
  }
  EXPECT_NO_THROW(registry.gauge("_private", "h"));
  EXPECT_NO_THROW(registry.gauge("job:rate:5m", "h"));
  EXPECT_NO_THROW(registry.gauge("A1_b2", "h"));
}

TEST(MetricsRegistryTest, CounterNamesMustEndInTotal) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.counter("devin_orch_sessions_created", "h"), std::invalid_argument);
  EXPECT_THROW(registry.counter("total", "h"), std::invalid_argument);
  EXPECT_NO_THROW(registry.counter("devin_orch_sessions_created_total", "h"));
}

TEST(MetricsRegistryTest, InvalidLabelNamesThrowInvalidArgument) {
  MetricsRegistry registry;
  for (const char* label : {"", "__reserved", "a:b", "1a", "a-b"}) {
    EXPECT_THROW(registry.gauge("g", "h", {{label, "v"}}), std::invalid_argument) << label;
  }
  EXPECT_THROW(registry.gauge("g", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "h", {1}, {{"le", "1"}}), std::invalid_argument);
  EXPECT_NO_THROW(registry.gauge("other", "h", {{"le", "fine on a gauge"}, {"_x", ""}}));
}

TEST(MetricsRegistryTest, FailedRegistrationsLeaveNoFamilyBehind) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.gauge("g", "h", {{"__x", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "h", {2, 1}), std::invalid_argument);
  EXPECT_EQ(registry.render(), "");
  // Had a family been left behind, these would now conflict with it.
  EXPECT_NO_THROW(registry.gauge("g", "h", {{"x", "v"}}));
  EXPECT_NO_THROW(registry.histogram("h_seconds", "h", {1, 2}));
}

TEST(MetricsRegistryTest, ReusingANameWithAnotherTypeIsALogicError) {
  MetricsRegistry registry;
  registry.gauge("x_total", "h");
  EXPECT_THROW(registry.counter("x_total", "h"), std::logic_error);
  EXPECT_THROW(registry.histogram("x_total", "h", {1}), std::logic_error);
  registry.histogram("lat_seconds", "h", {1});
  EXPECT_THROW(registry.gauge("lat_seconds", "h"), std::logic_error);
}

TEST(MetricsRegistryTest, ReusingANameWithOtherLabelNamesIsALogicError) {
  MetricsRegistry registry;
  registry.gauge("jobs", "h", {{"state", "queued"}});
  EXPECT_THROW(registry.gauge("jobs", "h"), std::logic_error);
  EXPECT_THROW(registry.gauge("jobs", "h", {{"phase", "queued"}}), std::logic_error);
  EXPECT_THROW(registry.gauge("jobs", "h", {{"state", "queued"}, {"org", "o"}}), std::logic_error);
  EXPECT_NO_THROW(registry.gauge("jobs", "h", {{"state", "failed"}}));
}

TEST(MetricsRegistryTest, ReusingAHistogramNameWithOtherBucketsIsALogicError) {
  MetricsRegistry registry;
  registry.histogram("wait_seconds", "h", {1, 2}, {{"org", "a"}});
  EXPECT_THROW(registry.histogram("wait_seconds", "h", {1, 3}, {{"org", "b"}}), std::logic_error);
  EXPECT_NO_THROW(registry.histogram("wait_seconds", "h", {1, 2}, {{"org", "b"}}));
}

TEST(MetricsRegistryTest, NamesCollidingWithHistogramSamplesAreALogicError) {
  MetricsRegistry registry;
  registry.histogram("lat_seconds", "h", {1});
  EXPECT_THROW(registry.gauge("lat_seconds_count", "h"), std::logic_error);
  EXPECT_THROW(registry.gauge("lat_seconds_bucket", "h"), std::logic_error);
  registry.gauge("size_sum", "h");
  EXPECT_THROW(registry.histogram("size", "h", {1}), std::logic_error);
}

TEST(CounterTest, RefusesToGoDown) {
  Counter counter;
  counter.inc(2);
  EXPECT_THROW(counter.inc(-1), std::invalid_argument);
  EXPECT_THROW(counter.inc(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  counter.inc(0);
  EXPECT_EQ(counter.value(), 2);
}

TEST(HistogramTest, BoundsMustBeFiniteAndStrictlyIncreasing) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
  EXPECT_THROW(Histogram({-std::numeric_limits<double>::infinity(), 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({std::numeric_limits<double>::infinity(), 1}), std::invalid_argument);
  const Histogram with_inf({1, 2, std::numeric_limits<double>::infinity()});
  EXPECT_THAT(with_inf.upper_bounds(), ElementsAre(1, 2));
  EXPECT_EQ(with_inf.bucket_counts().size(), 3u);
}

TEST(HistogramTest, NaNIsIgnoredAndInfinitiesLandInTheOuterBuckets) {
  Histogram histogram({0, 1});
  histogram.observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(histogram.count(), 0u);
  histogram.observe(-std::numeric_limits<double>::infinity());
  histogram.observe(std::numeric_limits<double>::infinity());
  EXPECT_THAT(histogram.bucket_counts(), ElementsAre(1, 0, 1));
  EXPECT_EQ(histogram.count(), 2u);
}

TEST(DefaultBuckets, CoverTheDocumentedRangesAndAreValid) {
  const auto latency = default_latency_buckets();
  ASSERT_FALSE(latency.empty());
  EXPECT_EQ(latency.front(), 0.005);
  EXPECT_EQ(latency.back(), 60);
  EXPECT_NO_THROW(Histogram{latency});
  const auto duration = default_duration_buckets();
  ASSERT_FALSE(duration.empty());
  EXPECT_EQ(duration.front(), 1);
  EXPECT_EQ(duration.back(), 86400);
  EXPECT_NO_THROW(Histogram{duration});
}

TEST(DefaultBuckets, ToSecondsConvertsMilliseconds) {
  EXPECT_EQ(to_seconds(core::Duration{1500}), 1.5);
  EXPECT_EQ(to_seconds(core::Duration{0}), 0);
}

// The daemon's whole exposition, with every kind and awkward values, obeys the format.
TEST(Exposition, RealisticRegistryPassesTheValidator) {
  MetricsRegistry registry;
  for (const char* state : {"queued", "creating", "polling", "succeeded", "failed"}) {
    registry.gauge("devin_orch_jobs", "Jobs by state.", {{"state", state}}).set(3);
  }
  registry.gauge("devin_orch_oldest_queued_job_age_seconds", "Age.").set(12.25);
  registry.gauge("devin_orch_paused_orgs", "Paused.").set(0);
  registry.gauge("devin_orch_weird", "Odd \"values\".", {{"v", "a\\b\"c\nd,e}f"}})
      .set(std::numeric_limits<double>::quiet_NaN());
  registry.counter("devin_orch_api_requests_total", "Requests.",
                   {{"endpoint", "create"}, {"outcome", "ok"}})
      .inc(7);
  registry.counter("devin_orch_api_requests_total", "Requests.",
                   {{"endpoint", "poll"}, {"outcome", "rate_limited"}})
      .inc(1e20);
  auto& latency = registry.histogram("devin_orch_api_request_duration_seconds", "Latency.",
                                     default_latency_buckets(), {{"endpoint", "create"}});
  for (int i = 0; i < 100; ++i) latency.observe(i * 0.013);
  registry.histogram("devin_orch_api_request_duration_seconds", "Latency.",
                     default_latency_buckets(), {{"endpoint", "poll"}});
  auto& duration = registry.histogram("devin_orch_session_duration_seconds", "Duration.",
                                      default_duration_buckets());
  duration.observe(90000);
  duration.observe(0.5);
  const auto text = registry.render();
  EXPECT_THAT(exposition_problems(text), IsEmpty()) << text;
}

// The validator itself must catch what it is there to catch, or the test above proves nothing.
TEST(Exposition, ValidatorRejectsBrokenTexts) {
  const char* help = "# HELP m h\n";
  EXPECT_THAT(exposition_problems("m 1\n"), Not(IsEmpty()));  // no HELP/TYPE
  EXPECT_THAT(exposition_problems(std::string{help} + "m 1\n"), Not(IsEmpty()));  // no TYPE
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m gauge\nm 1"), Not(IsEmpty()));
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m gauge\nm one\n"), Not(IsEmpty()));
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m gauge\nm{a=\"x} 1\n"),
              Not(IsEmpty()));
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m gauge\nm{a=\"\\t\"} 1\n"),
              Not(IsEmpty()));
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m gauge\nn 1\n"), Not(IsEmpty()));
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m gauge\nm 1\n" + help +
                                  "# TYPE m gauge\n"),
              Not(IsEmpty()));
  EXPECT_THAT(exposition_problems(std::string{help} + "# TYPE m counter\nm -1\n"),
              Not(IsEmpty()));
  const std::string histogram_head = "# HELP h h\n# TYPE h histogram\n";
  const std::string tail = "h_sum 1\nh_count 2\n";
  EXPECT_THAT(exposition_problems(histogram_head +
                                  "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 2\n" + tail),
              IsEmpty());
  EXPECT_THAT(exposition_problems(histogram_head +
                                  "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n" + tail),
              Not(IsEmpty()));  // not cumulative
  EXPECT_THAT(exposition_problems(histogram_head + "h_bucket{le=\"1\"} 2\n" + tail),
              Not(IsEmpty()));  // no +Inf
  EXPECT_THAT(exposition_problems(histogram_head +
                                  "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n" + tail),
              Not(IsEmpty()));  // +Inf != _count
  EXPECT_THAT(exposition_problems(histogram_head +
                                  "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n"),
              Not(IsEmpty()));  // no _count
}

}  // namespace
}  // namespace devin_orch::server
