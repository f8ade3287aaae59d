// devin-sim's command-line parsing: defaults, every kind of value, and rejected input.
#include "devin_orch/sim/flags.hpp"

#include <gtest/gtest.h>

namespace devin_orch::sim {
namespace {

TEST(Flags, DefaultsMatchTheDocumentation) {
  const auto parsed = parse_flags({});
  ASSERT_TRUE(parsed.options) << parsed.error;
  const auto& o = *parsed.options;
  EXPECT_EQ(o.server.host, "127.0.0.1");
  EXPECT_EQ(o.server.port, 0);
  EXPECT_EQ(o.world.seed, 1u);
  EXPECT_DOUBLE_EQ(o.world.time_factor, 1.0);
  EXPECT_EQ(o.world.orgs, std::vector<std::string>{"org-demo"});
  EXPECT_DOUBLE_EQ(o.world.rate_limit_burst, 10);
  EXPECT_EQ(o.world.slow_ms, 2000);
  EXPECT_EQ(o.world.total_mode, TotalMode::random);
  EXPECT_EQ(o.world.retry_after_mode, RetryAfterMode::seconds);
  EXPECT_EQ(o.world.in_flight_grace_ms, 50);
  EXPECT_FALSE(o.world.hold_running);
  EXPECT_EQ(o.world.list_lag_ms, 0);
  EXPECT_EQ(o.world.child_sessions, 2);
  EXPECT_FALSE(o.world.user_acu_quota);
  EXPECT_EQ(o.world.fault_retry_after_ms, 0);
  EXPECT_EQ(o.world.fault_retry_after_mode, RetryAfterMode::seconds);
  EXPECT_DOUBLE_EQ(o.world.faults.http_429, 0.0);
}

TEST(Flags, ParsesTheListLagQuotaChildrenAndFaultWaitFlags) {
  const auto parsed = parse_flags({"--list-lag-ms", "4000", "--child-sessions=3",
                                   "--user-acu-quota", "0.5", "--fault-429", "0.1",
                                   "--fault-retry-after-ms", "1500", "--fault-retry-after-mode",
                                   "both", "--retry-after-mode", "both"});
  ASSERT_TRUE(parsed.options) << parsed.error;
  const auto& w = parsed.options->world;
  EXPECT_EQ(w.list_lag_ms, 4000);
  EXPECT_EQ(w.child_sessions, 3);
  EXPECT_EQ(w.user_acu_quota, 0.5);
  EXPECT_DOUBLE_EQ(w.faults.http_429, 0.1);
  EXPECT_EQ(w.fault_retry_after_ms, 1500);
  EXPECT_EQ(w.fault_retry_after_mode, RetryAfterMode::both);
  EXPECT_EQ(w.retry_after_mode, RetryAfterMode::both);
}

TEST(Flags, ParsesEveryKindOfValue) {
  const auto parsed = parse_flags({"--port", "8080", "--port-file", "/tmp/p", "--seed", "42",
                                   "--time-factor=0.01", "--org", "org-a", "--org", "org-b",
                                   "--enterprise-orgs", "3", "--api-key", "cog_secret",
                                   "--rate-limit-rpm", "120", "--rate-limit-burst", "4",
                                   "--retry-after-mode", "date", "--max-concurrent-sessions", "5",
                                   "--fault-500", "0.25", "--fault-drop-after-create", "1",
                                   "--slow-ms", "10", "--total-mode", "never", "--hold-running",
                                   "--updated-after-mode", "rejected-with-ids",
                                   "--log-requests", "--host", "::1"});
  ASSERT_TRUE(parsed.options) << parsed.error;
  const auto& o = *parsed.options;
  EXPECT_EQ(o.server.port, 8080);
  EXPECT_EQ(o.port_file, "/tmp/p");
  EXPECT_EQ(o.world.seed, 42u);
  EXPECT_DOUBLE_EQ(o.world.time_factor, 0.01);
  EXPECT_EQ(o.world.orgs, (std::vector<std::string>{"org-a", "org-b"}));
  EXPECT_EQ(o.world.enterprise_orgs, 3);
  EXPECT_EQ(o.world.api_key, "cog_secret");
  EXPECT_DOUBLE_EQ(o.world.rate_limit_rpm, 120);
  EXPECT_DOUBLE_EQ(o.world.rate_limit_burst, 4);
  EXPECT_EQ(o.world.retry_after_mode, RetryAfterMode::date);
  EXPECT_EQ(o.world.max_concurrent_sessions, 5);
  EXPECT_DOUBLE_EQ(o.world.faults.http_500, 0.25);
  EXPECT_DOUBLE_EQ(o.world.faults.drop_after_create, 1.0);
  EXPECT_EQ(o.world.slow_ms, 10);
  EXPECT_EQ(o.world.total_mode, TotalMode::never);
  EXPECT_EQ(o.world.updated_after_mode, UpdatedAfterMode::rejected_with_ids);
  EXPECT_TRUE(o.world.hold_running);
  EXPECT_TRUE(o.server.log_requests);
  EXPECT_EQ(o.server.host, "::1");
}

TEST(Flags, RejectsBadInput) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--bogus"},
           {"--port"},
           {"--port", "70000"},
           {"--fault-500", "1.5"},
           {"--fault-503", "x"},
           {"--time-factor", "0"},
           {"--retry-after-mode", "minutes"},
           {"--updated-after-mode", "both"},
           {"--host", "0.0.0.0"},
           {"--host", "10.1.2.3"},
           {"--tls-cert", "c.pem"},
           {"--hold-running=yes"},
           {"--seed", "-1"},
           {"--list-lag-ms", "-5"},
           {"--user-acu-quota", "-1"},
           {"--fault-429", "2"},
           {"--fault-retry-after-mode", "none"},
           {"--child-sessions", "x"}}) {
    const auto parsed = parse_flags(args);
    EXPECT_FALSE(parsed.options) << args[0];
    EXPECT_FALSE(parsed.error.empty()) << args[0];
  }
}

TEST(Flags, HelpListsEveryFlag) {
  const auto text = usage();
  for (const auto* flag :
       {"--host", "--port", "--port-file", "--seed", "--time-factor", "--org", "--enterprise-orgs",
        "--api-key", "--rate-limit-rpm", "--rate-limit-burst", "--retry-after-mode",
        "--max-concurrent-sessions", "--fault-500", "--fault-503", "--fault-502-html",
        "--fault-reset", "--fault-slow", "--slow-ms", "--fault-garbage",
        "--fault-drop-after-create", "--fault-creating", "--total-mode", "--hold-running",
        "--updated-after-mode", "--tls-cert", "--tls-key", "--log-requests", "--in-flight-grace-ms", "--help",
        "--list-lag-ms", "--child-sessions", "--user-acu-quota", "--fault-429",
        "--fault-retry-after-ms", "--fault-retry-after-mode", "--v1-api-key"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag;
  }
  const auto parsed = parse_flags({"--help"});
  ASSERT_TRUE(parsed.options);
  EXPECT_TRUE(parsed.options->help);
}

TEST(Loopback, OnlyLoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.1"));
  EXPECT_FALSE(is_loopback_host("example.com"));
}

}  // namespace
}  // namespace devin_orch::sim
