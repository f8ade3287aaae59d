// The simulator's attachments (reference §5): the multipart upload answers {attachment_id,
// name, url}, FastAPI's 422/400 for bad forms, auth and faults as on every route; a create's
// attachment_urls are kept and listed per session.
#include "devin_orch/sim/world.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace devin_orch::sim {
namespace {

namespace json = boost::json;

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::string_view kUpload = "/v3/organizations/org-demo/attachments";
constexpr std::string_view kSessions = "/v3/organizations/org-demo/sessions";
constexpr std::string_view kForm = "multipart/form-data; boundary=XyZ";

std::string form(std::string_view disposition, std::string_view content) {
  return "--XyZ\r\nContent-Disposition: " + std::string{disposition} +
         "\r\nContent-Type: application/octet-stream\r\n\r\n" + std::string{content} +
         "\r\n--XyZ--\r\n";
}

class SimAttachments : public ::testing::Test {
 protected:
  Reply upload(std::string_view body, std::string_view content_type = kForm,
               std::string_view auth = "Bearer cog_test", std::string_view target = kUpload) {
    return world.handle({.method = "POST", .target = target, .authorization = auth, .body = body,
                         .content_type = content_type},
                        kT0);
  }
  Reply call(std::string_view method, std::string_view target, std::string_view body = {}) {
    return world.handle(
        {.method = method, .target = target, .authorization = "Bearer cog_test", .body = body},
        kT0);
  }
  std::int64_t uploaded() {
    return json::parse(call("GET", "/_sim/stats").body).at("attachments_uploaded").as_int64();
  }
  World world{WorldConfig{}};
};

TEST_F(SimAttachments, AnUploadAnswersItsIdNameAndUrl) {
  const auto reply = upload(form(R"(form-data; name="file"; filename="notes.txt")", "a\r\nb"));
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto body = json::parse(reply.body).as_object();
  EXPECT_EQ(body.at("name").as_string(), "notes.txt");
  const std::string id{body.at("attachment_id").as_string()};
  EXPECT_TRUE(std::regex_match(id, std::regex{"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"}))
      << id;
  EXPECT_EQ(body.at("url").as_string(), "https://app.devin.ai/attachments/" + id + "/notes.txt");
  EXPECT_EQ(uploaded(), 1);
  // Another upload of the same file is another attachment: the API does not deduplicate.
  const auto second = upload(form(R"(form-data; name="file"; filename="notes.txt")", "a\r\nb"));
  EXPECT_NE(json::parse(second.body).at("attachment_id"), body.at("attachment_id"));
  EXPECT_EQ(uploaded(), 2);
}

TEST_F(SimAttachments, BadFormsGetFastApisAnswers) {
  // No `file` part, or not a form at all: the required field is missing.
  for (const auto& [body, type] :
       std::vector<std::pair<std::string, std::string>>{
           {form(R"(form-data; name="other"; filename="x")", "x"), std::string{kForm}},
           {R"({"file": "x"})", "application/json"},
           {"", ""}}) {
    const auto reply = upload(body, type);
    EXPECT_EQ(reply.status, 422) << type;
    EXPECT_EQ(json::parse(reply.body).at("detail").at(0).at("loc"), (json::array{"body", "file"}));
  }
  // A plain field called `file` is not an upload.
  const auto text = upload(form(R"(form-data; name="file")", "x"));
  EXPECT_EQ(text.status, 422) << text.body;
  // A form that cannot be parsed.
  EXPECT_EQ(upload("--XyZ\r\nno headers end", kForm).status, 400);
  EXPECT_EQ(upload(form(R"(form-data; name="file"; filename="a")", "x"),
                   "multipart/form-data").status,
            400);
  EXPECT_EQ(uploaded(), 0);
}

TEST_F(SimAttachments, AuthOrgAndMethodAsOnEveryRoute) {
  const std::string ok = form(R"(form-data; name="file"; filename="a")", "x");
  EXPECT_EQ(upload(ok, kForm, "").status, 401);
  EXPECT_EQ(upload(ok, kForm, "Bearer apk_v1key").status, 401);
  EXPECT_EQ(upload(ok, kForm, "Bearer cog_test", "/v3/organizations/org-nope/attachments").status,
            404);
  EXPECT_EQ(call("GET", kUpload).status, 405);
  EXPECT_EQ(upload(ok, kForm, "Bearer cog_test", "/v3beta1/organizations/org-demo/attachments")
                .status,
            200);
  EXPECT_EQ(uploaded(), 1);
}

TEST_F(SimAttachments, FaultsApplyToUploadsToo) {
  world = World{WorldConfig{.faults = {.http_500 = 1.0}}};
  EXPECT_EQ(upload(form(R"(form-data; name="file"; filename="a")", "x")).status, 500);
  EXPECT_EQ(uploaded(), 0);
}

TEST_F(SimAttachments, ACreateKeepsItsAttachmentUrlsAndTheSessionListsThem) {
  const auto uploaded_reply = upload(form(R"(form-data; name="file"; filename="a.txt")", "x"));
  const std::string url{json::parse(uploaded_reply.body).at("url").as_string()};
  const std::string foreign = "https://example.com/files/b.png";
  const auto created = call("POST", kSessions,
                            json::serialize(json::object{
                                {"prompt", "p"}, {"attachment_urls", json::array{url, foreign}}}));
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id{json::parse(created.body).at("session_id").as_string()};
  const auto listed = call("GET", std::string{kSessions} + "/" + id + "/attachments");
  ASSERT_EQ(listed.status, 200) << listed.body;
  const auto items = json::parse(listed.body).at("items").as_array();
  ASSERT_EQ(items.size(), 2U);
  EXPECT_EQ(items[0].at("url").as_string(), url);
  EXPECT_EQ(items[0].at("name").as_string(), "a.txt");
  EXPECT_EQ(items[1].at("url").as_string(), foreign);
  EXPECT_EQ(items[1].at("name").as_string(), "b.png");
  const auto admin = json::parse(call("GET", "/_sim/sessions").body);
  EXPECT_EQ(admin.at("items").at(0).at("attachment_urls"), (json::array{url, foreign}));
  // The reference's limit on each URL.
  const auto too_long = call("POST", kSessions,
                             json::serialize(json::object{
                                 {"prompt", "p"},
                                 {"attachment_urls", json::array{"https://x/" + std::string(2100, 'a')}}}));
  EXPECT_EQ(too_long.status, 422);
}

}  // namespace
}  // namespace devin_orch::sim
