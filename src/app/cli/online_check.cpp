// `check-config --online`: whether the key works, whether it belongs to the configured
// organisation, and what the jobs need that no read-only call can prove.
#include "devin_orch/app/cli/online_check.hpp"

#include "devin_orch/api/http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include <set>

namespace devin_orch::app {
namespace net = boost::asio;
namespace {

using Level = OnlineLine::Level;

std::string join(const std::set<std::string>& items, std::size_t limit = 5) {
  std::string out;
  std::size_t n = 0;
  for (const auto& item : items) {
    if (n == limit) {
      out += fmt::format(" and {} more", items.size() - limit);
      break;
    }
    if (n++ > 0) out += ", ";
    out += item;
  }
  return out;
}

}  // namespace

bool OnlineReport::ok() const noexcept {
  for (const auto& line : lines) {
    if (line.level == Level::problem) return false;
  }
  return true;
}

OnlineReport judge_online(const api::ApiResult<api::Principal>& self, const Config& config,
                          const std::vector<core::JobDefinition>& jobs) {
  OnlineReport report;
  auto add = [&](Level level, std::string text) { report.lines.push_back({level, std::move(text)}); };
  const auto& outcome = self.outcome;
  if (outcome.cls == core::CallClass::unauthorized) {
    add(Level::problem, "API key: refused by " + config.api.base_url + " (" + outcome.detail +
                            "); the daemon would pause every organisation as unauthorized");
    return report;
  }
  if (!outcome.ok() || !self.value) {
    add(Level::problem, "API key: could not be checked: " + outcome.detail +
                            (outcome.http_status == 0 ? " (is api.base_url reachable?)" : ""));
    return report;
  }
  const api::Principal& who = *self.value;
  if (config.api.version == core::ApiVersion::v1) {
    // v1 has no /self: the key worked on a list, and it acts on its own organisation only.
    add(Level::ok, "API key: works (GET /v1/sessions, api.version v1)");
    add(Level::note, "organisation: a v1 key acts on its own organisation, which v1 does not "
                     "name; api.org_id (" + config.api.org_id + ") is not checked against it");
    return report;
  }
  std::string name = who.principal_type;
  if (who.service_user_name || who.service_user_id) {
    name += fmt::format(" {} ({})", who.service_user_name.value_or("-"),
                        who.service_user_id.value_or("-"));
  } else if (who.user_id) {
    name += " " + *who.user_id;
  }
  add(Level::ok, "API key: works (GET /v3/self: " + name + ")");

  // Every organisation the daemon will send requests for with this key: the default and the
  // jobs' own, but not those api.organizations gives a key or API of their own.
  const auto own_client = [&config](const std::string& org) {
    const auto found = config.api.organizations.find(org);
    return found != config.api.organizations.end() &&
           (found->second.api_key_file || found->second.version != config.api.version);
  };
  std::set<std::string> orgs;
  if (!own_client(config.api.org_id)) orgs.insert(config.api.org_id);
  bool fan_out = false;
  for (const auto& job : jobs) {
    if (job.org_id && !own_client(*job.org_id)) orgs.insert(*job.org_id);
    fan_out = fan_out || job.controls.fan_out_enterprise;
  }
  for (const auto& [org, settings] : config.api.organizations) {
    if (own_client(org)) {
      add(Level::note, "organisation " + org + " (" +
                           std::string{core::to_string(settings.version)} +
                           "): its own key or API (api.organizations) is not checked online");
    }
  }
  if (who.org_id) {
    std::set<std::string> foreign;
    for (const auto& org : orgs) {
      if (org != *who.org_id) foreign.insert(org);
    }
    if (foreign.empty()) {
      add(Level::ok, "organisation: " + *who.org_id + " is the key's own");
    } else {
      add(Level::problem, "organisation: the key belongs to " + *who.org_id +
                              ", but requests would go to " + join(foreign) +
                              " (api.org_id or a job's org_id): they would be refused");
    }
    if (fan_out) {
      add(Level::problem, "fan_out: enterprise needs an enterprise-scoped key; this one is "
                          "scoped to " + *who.org_id);
    }
  } else {
    add(Level::note, "organisation: the key is not tied to one organisation (enterprise "
                     "scope); whether it reaches " + join(orgs) +
                     " is not checked: GET /v3/self does not list organisations");
  }

  std::set<std::string> impersonating;
  std::set<std::string> users;
  for (const auto& job : jobs) {
    if (!job.spec.create_as_user_id) continue;
    impersonating.insert(job.key);
    users.insert(*job.spec.create_as_user_id);
  }
  if (!impersonating.empty()) {
    add(Level::note,
        fmt::format("impersonation: {} job(s) use create_as_user_id ({}; users {}): the key "
                    "needs ImpersonateOrgSessions, and each user must be a member of the "
                    "organisation holding UseDevinSessions. Not checked: the API has no "
                    "read-only call that shows a key's permissions; a missing one shows as a "
                    "403 on the first such create",
                    impersonating.size(), join(impersonating), join(users)));
  }
  add(Level::note, "not checked: ManageOrgSessions/ViewOrgSessions (every key needs them; a "
                   "missing one shows as a 403 on the first create or poll), and jobs "
                   "enqueued into the database rather than listed in jobs.files");
  return report;
}

OnlineReport check_online(const Config& config, const std::string& api_key,
                          const std::vector<core::JobDefinition>& jobs) {
  net::io_context io{1};
  std::string error;
  auto http = api::HttpClient::create(io.get_executor(),
                                      http_client_options(config.api, api_key, 1), &error);
  if (!http) {
    OnlineReport report;
    report.lines.push_back({Level::problem, "api.base_url: " +
                                                (error.empty() ? http.error().message() : error)});
    return report;
  }
  api::DevinClient client{**http, config.api.version};
  auto answer = net::co_spawn(io, client.self(), net::use_future);
  io.run();
  return judge_online(answer.get(), config, jobs);
}

}  // namespace devin_orch::app
