// What `check-config --online` makes of GET /v3/self: a working key, a refused one, another
// organisation, an enterprise key, and what job files need that cannot be checked.
#include "devin_orch/app/cli/online_check.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devin_orch::app {
namespace {

using ::testing::HasSubstr;
using Level = OnlineLine::Level;

api::ApiResult<api::Principal> answered(std::optional<std::string> org) {
  api::ApiResult<api::Principal> self;
  self.outcome = core::CallOutcome{.cls = core::CallClass::ok, .http_status = 200};
  self.value = api::Principal{.principal_type = "service_user", .service_user_id = "svc-1",
                              .service_user_name = "bot", .org_id = std::move(org)};
  return self;
}

Config config_for(std::string org) {
  Config config;
  config.api.org_id = std::move(org);
  config.api.base_url = "http://127.0.0.1:1";
  return config;
}

core::JobDefinition job(std::string key, std::optional<std::string> as_user = std::nullopt,
                        std::optional<std::string> org = std::nullopt) {
  core::JobDefinition definition{.key = std::move(key), .org_id = std::move(org)};
  definition.spec.prompt = "p";
  definition.spec.create_as_user_id = std::move(as_user);
  return definition;
}

std::string text_of(const OnlineReport& report) {
  std::string out;
  for (const auto& line : report.lines) out += line.text + "\n";
  return out;
}

TEST(JudgeOnline, AWorkingKeyOfTheConfiguredOrganisation) {
  const auto report = judge_online(answered("org-a"), config_for("org-a"), {job("j1")});
  EXPECT_TRUE(report.ok()) << text_of(report);
  EXPECT_EQ(report.lines.at(0).text, "API key: works (GET /v3/self: service_user bot (svc-1))");
  EXPECT_EQ(report.lines.at(1).text, "organisation: org-a is the key's own");
  EXPECT_THAT(text_of(report), ::testing::Not(HasSubstr("impersonation")));
}

TEST(JudgeOnline, AV1KeyIsCheckedByAListAndItsOrganisationIsNotClaimed) {
  api::ApiResult<api::Principal> self;
  self.outcome = core::CallOutcome{.cls = core::CallClass::ok, .http_status = 200};
  self.value = api::Principal{.principal_type = "v1_api_key"};
  Config config = config_for("org-a");
  config.api.version = core::ApiVersion::v1;
  const auto report = judge_online(self, config, {job("j1")});
  EXPECT_TRUE(report.ok()) << text_of(report);
  EXPECT_EQ(report.lines.at(0).text, "API key: works (GET /v1/sessions, api.version v1)");
  EXPECT_THAT(report.lines.at(1).text, HasSubstr("v1 key acts on its own organisation"));
  EXPECT_THAT(text_of(report), ::testing::Not(HasSubstr("/v3/self")));
}

TEST(JudgeOnline, ARefusedKeyIsAProblemAndNothingElseIsJudged) {
  api::ApiResult<api::Principal> self;
  self.outcome = core::classify_response({.status = 401, .body = R"({"detail":"Invalid API key"})"},
                                         core::wall_now());
  const auto report = judge_online(self, config_for("org-a"), {job("j1", "user-1")});
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.lines.size(), 1U);
  EXPECT_THAT(report.lines[0].text, HasSubstr("API key: refused"));
  EXPECT_THAT(report.lines[0].text, HasSubstr("HTTP 401: Invalid API key"));
}

TEST(JudgeOnline, AnUnreachableApiIsAProblemThatSaysSo) {
  api::ApiResult<api::Principal> self;
  self.outcome = core::classify_transport_failure(false, "connect: Connection refused");
  const auto report = judge_online(self, config_for("org-a"), {});
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.lines.at(0).text, HasSubstr("could not be checked: connect: Connection refused"));
  EXPECT_THAT(report.lines.at(0).text, HasSubstr("api.base_url reachable"));
}

TEST(JudgeOnline, AnotherOrganisationIsAProblemWhetherConfiguredOrInAJob) {
  auto report = judge_online(answered("org-b"), config_for("org-a"), {});
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(text_of(report), HasSubstr("the key belongs to org-b, but requests would go to org-a"));
  report = judge_online(answered("org-a"), config_for("org-a"), {job("j", {}, "org-c")});
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(text_of(report), HasSubstr("requests would go to org-c"));
}

TEST(JudgeOnline, AnEnterpriseKeyIsANoteThatSaysWhatIsNotChecked) {
  const auto report = judge_online(answered(std::nullopt), config_for("org-a"), {});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.lines.at(1).level, Level::note);
  EXPECT_THAT(report.lines.at(1).text, HasSubstr("not tied to one organisation"));
}

TEST(JudgeOnline, ImpersonationNeedsAPermissionThatCannotBeChecked) {
  const auto report = judge_online(answered("org-a"), config_for("org-a"),
                                   {job("plain"), job("as-bob", "user-bob"), job("as-ann", "user-ann")});
  EXPECT_TRUE(report.ok());
  const std::string text = text_of(report);
  EXPECT_THAT(text, HasSubstr("impersonation: 2 job(s) use create_as_user_id (as-ann, as-bob; "
                              "users user-ann, user-bob): the key needs ImpersonateOrgSessions"));
  EXPECT_THAT(text, HasSubstr("Not checked"));
}

}  // namespace
}  // namespace devin_orch::app
