// The daemon's metrics registry: counters, gauges and histograms rendered in the Prometheus text
// exposition format 0.0.4. Pure and single-threaded: touch it only from the event-loop thread.
#pragma once

#include "devin_orch/core/time.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devin_orch::server {

// (label name, label value) pairs. Order does not matter: a family keeps the label order of its
// first registration and later registrations are matched by name.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Metrics are handed out by reference and never copied: a copy would silently stop counting.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // A negative or NaN amount throws std::invalid_argument: Prometheus treats any decrease of a
  // counter as a process restart and would invent a rate.
  void inc(double amount = 1);
  double value() const noexcept { return value_; }

 private:
  double value_ = 0;
};

class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double value) noexcept { value_ = value; }
  void inc(double amount = 1) noexcept { value_ += amount; }
  void dec(double amount = 1) noexcept { value_ -= amount; }
  double value() const noexcept { return value_; }

 private:
  double value_ = 0;
};

class Histogram {
 public:
  // Upper bounds must be finite and strictly increasing; a trailing +Inf is accepted and dropped
  // because the +Inf bucket is always there. Otherwise throws std::invalid_argument.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // NaN is ignored: it would turn _sum into NaN for the rest of the process's life.
  void observe(double value) noexcept;

  const std::vector<double>& upper_bounds() const noexcept { return upper_bounds_; }
  // Per bucket, not cumulative; one more entry than upper_bounds() (the +Inf bucket).
  const std::vector<std::uint64_t>& bucket_counts() const noexcept { return bucket_counts_; }
  std::uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }

 private:
  std::vector<double> upper_bounds_;
  std::vector<std::uint64_t> bucket_counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Families are keyed by metric name. Asking again for the same name and label values returns the
// same metric. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, counters must end in `_total`, label
// names must match [a-zA-Z_][a-zA-Z0-9_]* without a `__` prefix, histograms may not use `le`:
// std::invalid_argument otherwise. Reusing a name with another type, other label names, other
// buckets, or a name that collides with another family's samples (`x_count` next to histogram
// `x`) is a programming error: std::logic_error. Returned references stay valid for the
// registry's lifetime.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds, Labels labels = {});

  // Families sorted by name, series by label values, so scrapes diff cleanly.
  std::string render() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Request latency against the Devin API, in seconds: 5 ms .. 60 s.
std::vector<double> default_latency_buckets();
// Queue waits and session durations, in seconds: 1 s .. 1 day.
std::vector<double> default_duration_buckets();

// Prometheus wants base units; the core measures in milliseconds.
inline double to_seconds(core::Duration d) noexcept {
  return static_cast<double>(d.count()) / 1000.0;
}

}  // namespace devin_orch::server
