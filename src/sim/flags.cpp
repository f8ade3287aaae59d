// Parsing and documenting devin-sim's flags; every default here matches WorldConfig/ServerConfig.
#include "devin_orch/sim/flags.hpp"

#include <charconv>
#include <cmath>
#include <functional>
#include <map>

namespace devin_orch::sim {
namespace {

std::optional<double> to_double(const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(value)) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

template <class Int>
std::optional<Int> to_int(const std::string& text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string usage() {
  return R"(usage: devin-sim [flags]

A faithful simulator of the Devin v3 API (also under /v3beta1/) with admin endpoints under /_sim/.

Network:
  --host ADDR                   loopback address to listen on (default 127.0.0.1)
  --port N                      TCP port, 0 = any free port (default 0)
  --port-file PATH              write the bound port here, atomically, once listening (default none)
  --tls-cert FILE               PEM certificate chain; with --tls-key serves HTTPS (default none)
  --tls-key FILE                PEM private key (default none)
  --log-requests                one line per request to stderr (default off)

World:
  --seed N                      seed of every random choice (default 1)
  --time-factor F               lifecycle durations are multiplied by F, F > 0 (default 1.0)
  --org ID                      an organisation that exists; repeatable (default org-demo)
  --enterprise-orgs N           extra orgs org-e0001.. for the enterprise endpoint (default 0)
  --api-key KEY                 v3 routes accept only `Bearer KEY` (default: any `Bearer cog_...`)
  --v1-api-key KEY              v1 routes accept only `Bearer KEY` (default: any `Bearer apk_...`);
                                v1 never takes cog_ keys and v3 never takes apk_ keys
  --hold-running                sessions never leave running/working (default off)
  --total-mode MODE             list `total`: always|never|random (default random)
  --updated-after-mode MODE     list `updated_after`: inclusive|exclusive|ignored|
                                rejected-with-ids (422 with session_ids) (default inclusive)
  --list-lag-ms N               a new session stays out of every list answer for N ms; GET by
                                id sees it at once; not time-scaled (default 0)
  --child-sessions N            children spawned by a create with child_playbook_id (default 2)
  --user-acu-quota ACUS         ACUs each create_as_user_id user may consume; a session created
                                as a user past it suspends with user_usage_limit_exceeded
                                (default: no quota)

Limits:
  --rate-limit-rpm N            token bucket refill per API key per minute, 0 = off (default 0)
  --rate-limit-burst N          token bucket capacity (default 10)
  --retry-after-mode MODE       seconds|date|ms|both|none (default seconds)
  --in-flight-grace-ms N        early_requests_after_429 ignores requests this soon after the
                                429 (default 50)
  --max-concurrent-sessions N   per-org cap on active sessions for creates, 0 = off (default 0)

Faults (probabilities 0..1 per API request, default 0):
  --fault-reset P               close the connection without answering, nothing processed
  --fault-500 P                 answer 500 without processing
  --fault-503 P                 answer 503 without processing
  --fault-429 P                 answer 429 without processing
  --fault-retry-after-ms N      500/503/429 fault answers ask for this wait, 0 = none (default 0)
  --fault-retry-after-mode MODE how they ask: seconds|date|ms|both (default seconds)
  --fault-502-html P            answer 502 with an HTML body without processing
  --fault-drop-after-create P   create the session, then close without answering
  --fault-slow P                answer after --slow-ms
  --slow-ms M                   delay of a slow answer in ms (default 2000)
  --fault-garbage P             process, then answer 200 with a non-JSON body
  --fault-creating P            a new session passes through status `creating`

  --help                        show this text
)";
}

ParsedFlags parse_flags(const std::vector<std::string>& args) {
  Options options;
  auto& world = options.world;
  auto& server = options.server;
  bool org_given = false;

  using Setter = std::function<std::optional<std::string>(const std::string&)>;
  auto probability = [](double& target) -> Setter {
    return [&target](const std::string& v) -> std::optional<std::string> {
      const auto p = to_double(v);
      if (!p || *p < 0 || *p > 1) return "expects a probability in [0, 1]";
      target = *p;
      return std::nullopt;
    };
  };
  auto non_negative_int = [](int& target) -> Setter {
    return [&target](const std::string& v) -> std::optional<std::string> {
      const auto n = to_int<int>(v);
      if (!n || *n < 0) return "expects a non-negative integer";
      target = *n;
      return std::nullopt;
    };
  };
  auto non_negative = [](double& target) -> Setter {
    return [&target](const std::string& v) -> std::optional<std::string> {
      const auto n = to_double(v);
      if (!n || *n < 0) return "expects a non-negative number";
      target = *n;
      return std::nullopt;
    };
  };
  auto retry_mode = [](RetryAfterMode& target, bool none_allowed) -> Setter {
    return [&target, none_allowed](const std::string& v) -> std::optional<std::string> {
      if (v == "seconds") target = RetryAfterMode::seconds;
      else if (v == "date") target = RetryAfterMode::date;
      else if (v == "ms") target = RetryAfterMode::ms;
      else if (v == "both") target = RetryAfterMode::both;
      else if (v == "none" && none_allowed) target = RetryAfterMode::none;
      else return none_allowed ? "expects seconds, date, ms, both or none"
                               : "expects seconds, date, ms or both";
      return std::nullopt;
    };
  };
  auto text = [](std::string& target) -> Setter {
    return [&target](const std::string& v) -> std::optional<std::string> {
      if (v.empty()) return "expects a non-empty value";
      target = v;
      return std::nullopt;
    };
  };

  const std::map<std::string, Setter> valued = {
      {"--host", text(server.host)},
      {"--port",
       [&](const std::string& v) -> std::optional<std::string> {
         const auto n = to_int<unsigned short>(v);
         if (!n) return "expects a port number 0..65535";
         server.port = *n;
         return std::nullopt;
       }},
      {"--port-file", text(options.port_file)},
      {"--tls-cert", text(server.tls_cert_file)},
      {"--tls-key", text(server.tls_key_file)},
      {"--seed",
       [&](const std::string& v) -> std::optional<std::string> {
         const auto n = to_int<std::uint64_t>(v);
         if (!n) return "expects an unsigned integer";
         world.seed = *n;
         return std::nullopt;
       }},
      {"--time-factor",
       [&](const std::string& v) -> std::optional<std::string> {
         const auto f = to_double(v);
         if (!f || *f <= 0) return "expects a number > 0";
         world.time_factor = *f;
         return std::nullopt;
       }},
      {"--org",
       [&](const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return "expects an organisation id";
         if (!org_given) world.orgs.clear();
         org_given = true;
         world.orgs.push_back(v);
         return std::nullopt;
       }},
      {"--enterprise-orgs",
       [&](const std::string& v) -> std::optional<std::string> {
         const auto n = to_int<int>(v);
         if (!n || *n < 0 || *n > 9999) return "expects an integer in 0..9999";
         world.enterprise_orgs = *n;
         return std::nullopt;
       }},
      {"--api-key", text(world.api_key)},
      {"--v1-api-key", text(world.v1_api_key)},
      {"--rate-limit-rpm", non_negative(world.rate_limit_rpm)},
      {"--rate-limit-burst",
       [&](const std::string& v) -> std::optional<std::string> {
         const auto n = to_double(v);
         if (!n || *n < 1) return "expects a number >= 1";
         world.rate_limit_burst = *n;
         return std::nullopt;
       }},
      {"--retry-after-mode", retry_mode(world.retry_after_mode, true)},
      {"--fault-retry-after-mode", retry_mode(world.fault_retry_after_mode, false)},
      {"--fault-retry-after-ms", non_negative_int(world.fault_retry_after_ms)},
      {"--fault-429", probability(world.faults.http_429)},
      {"--list-lag-ms", non_negative_int(world.list_lag_ms)},
      {"--child-sessions", non_negative_int(world.child_sessions)},
      {"--user-acu-quota",
       [&](const std::string& v) -> std::optional<std::string> {
         const auto n = to_double(v);
         if (!n || *n < 0) return "expects a non-negative number";
         world.user_acu_quota = *n;
         return std::nullopt;
       }},
      {"--total-mode",
       [&](const std::string& v) -> std::optional<std::string> {
         if (v == "always") world.total_mode = TotalMode::always;
         else if (v == "never") world.total_mode = TotalMode::never;
         else if (v == "random") world.total_mode = TotalMode::random;
         else return "expects always, never or random";
         return std::nullopt;
       }},
      {"--updated-after-mode",
       [&](const std::string& v) -> std::optional<std::string> {
         if (v == "inclusive") world.updated_after_mode = UpdatedAfterMode::inclusive;
         else if (v == "exclusive") world.updated_after_mode = UpdatedAfterMode::exclusive;
         else if (v == "ignored") world.updated_after_mode = UpdatedAfterMode::ignored;
         else if (v == "rejected-with-ids") {
           world.updated_after_mode = UpdatedAfterMode::rejected_with_ids;
         } else {
           return "expects inclusive, exclusive, ignored or rejected-with-ids";
         }
         return std::nullopt;
       }},
      {"--in-flight-grace-ms", non_negative_int(world.in_flight_grace_ms)},
      {"--max-concurrent-sessions", non_negative_int(world.max_concurrent_sessions)},
      {"--fault-reset", probability(world.faults.reset)},
      {"--fault-500", probability(world.faults.http_500)},
      {"--fault-503", probability(world.faults.http_503)},
      {"--fault-502-html", probability(world.faults.http_502_html)},
      {"--fault-drop-after-create", probability(world.faults.drop_after_create)},
      {"--fault-slow", probability(world.faults.slow)},
      {"--slow-ms", non_negative_int(world.slow_ms)},
      {"--fault-garbage", probability(world.faults.garbage)},
      {"--fault-creating", probability(world.faults.creating)},
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      options.help = true;
      continue;
    }
    if (flag == "--hold-running" || flag == "--log-requests") {
      if (inline_value) return {std::nullopt, flag + " takes no value"};
      (flag == "--hold-running" ? world.hold_running : server.log_requests) = true;
      continue;
    }
    const auto it = valued.find(flag);
    if (it == valued.end()) return {std::nullopt, "unknown flag: " + args[i]};
    if (!inline_value) {
      if (i + 1 >= args.size()) return {std::nullopt, flag + " needs a value"};
      inline_value = args[++i];
    }
    if (auto problem = it->second(*inline_value)) {
      return {std::nullopt, flag + " " + *problem + ", got '" + *inline_value + "'"};
    }
  }
  if (server.tls_cert_file.empty() != server.tls_key_file.empty()) {
    return {std::nullopt, "--tls-cert and --tls-key must be given together"};
  }
  if (!is_loopback_host(server.host)) {
    return {std::nullopt, "--host must be a loopback address, got '" + server.host + "'"};
  }
  return {std::move(options), {}};
}

}  // namespace devin_orch::sim
