// Tests of the v1 mapping: the status table (docs/api-v1.md), ISO-8601 timestamps, the create
// body, the tolerant readers and the offset-paged list; and the v1 calls of DevinClient against
// a loopback server.
#include "devin_orch/api/json_mapping_v1.hpp"

#include "devin_orch/api/devin_client.hpp"

#include "api/loopback_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace devin_orch::api {
namespace {

namespace json = boost::json;
using namespace testing;

TEST(V1Status, EachDocumentedValueMapsOntoAV3StatusTheVerdictsKnow) {
  struct Case {
    std::optional<std::string_view> status_enum;
    std::optional<std::string_view> text;
    std::string status;
    std::optional<std::string> detail;
  };
  const std::vector<Case> cases = {
      {"working", "running", "running", "working"},
      {"resumed", std::nullopt, "running", "working"},
      {"blocked", std::nullopt, "running", "waiting_for_user"},
      {"finished", std::nullopt, "running", "finished"},
      {"resume_requested", std::nullopt, "resuming", std::nullopt},
      {"resume_requested_frontend", std::nullopt, "resuming", std::nullopt},
      {"expired", "exit", "exit", std::nullopt},
      {"expired", std::nullopt, "exit", std::nullopt},
      {"expired", "timed out after 24h", "exit", std::nullopt},
      {"expired", "error", "error", std::nullopt},
      {"expired", "Error: the VM crashed", "error", std::nullopt},
      {"expired", "suspended: out_of_credits", "suspended", "out_of_credits"},
      {"expired", "suspended: inactivity", "suspended", "inactivity"},
      {"expired", "suspended", "suspended", std::nullopt},
      {"suspend_requested", std::nullopt, "v1:suspend_requested", std::nullopt},
      {"suspend_requested_frontend", std::nullopt, "v1:suspend_requested_frontend", std::nullopt},
      {"stopped", std::nullopt, "v1:stopped", std::nullopt},
      {"RUNNING", std::nullopt, "v1:running", std::nullopt},
      {std::nullopt, "running", "v1:unknown", std::nullopt},
      // The free text counts only for expired: a working session saying "error" works on.
      {"working", "error", "running", "working"},
  };
  for (const auto& c : cases) {
    const auto got = v1_status(c.status_enum, c.text);
    EXPECT_EQ(got.status, c.status) << c.status_enum.value_or("<none>") << " / "
                                    << c.text.value_or("<none>");
    EXPECT_EQ(got.status_detail, c.detail) << c.status_enum.value_or("<none>");
  }
}

TEST(V1Iso8601, ReadsTheFormsFastApiAndOthersWrite) {
  EXPECT_EQ(parse_iso8601("2023-11-14T22:13:20Z"), 1700000000);
  EXPECT_EQ(parse_iso8601("2023-11-14T22:13:20.000000+00:00"), 1700000000);
  EXPECT_EQ(parse_iso8601("2023-11-14T22:13:20.5"), 1700000000);  // naive: UTC
  EXPECT_EQ(parse_iso8601("2023-11-15T00:13:20+02:00"), 1700000000);
  EXPECT_EQ(parse_iso8601("2023-11-14T20:13:20-0200"), 1700000000);
  for (const auto* bad : {"", "2023-11-14", "2023-11-14T22:13", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20.Z", "1700000000",
                          "2023-11-14T22:13:20+2"}) {
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  }
}

TEST(V1CreateBody, IsIdempotentCarriesTheCreationTagAndOnlyV1Fields) {
  core::JobSpec spec{.prompt = "Fix it",
                     .title = "T",
                     .tags = {"team"},
                     .playbook_id = "playbook-1",
                     .knowledge_ids = std::vector<std::string>{},
                     .max_acu_limit = 5,
                     .structured_output_schema = R"({"type":"object"})"};
  const auto body = json::parse(v1_create_session_body(spec, "orch-k-g0",
                                                       {{.key = "K", .value = "V"}}));
  EXPECT_EQ(body, json::parse(R"({"prompt":"Fix it","idempotent":true,"title":"T",
      "tags":["team","orch-k-g0"],"playbook_id":"playbook-1","knowledge_ids":[],
      "max_acu_limit":5,"structured_output_schema":{"type":"object"},
      "session_secrets":[{"key":"K","value":"V","sensitive":true}]})"));
}

constexpr std::string_view kDetail = R"({
  "session_id": "devin-1", "status": "suspended: out_of_credits", "status_enum": "expired",
  "title": "T", "created_at": "2023-11-14T22:13:20.000000+00:00",
  "updated_at": "2023-11-14T22:14:00Z", "snapshot_id": null, "playbook_id": null,
  "tags": ["a", "orch-k-g0"], "pull_request": {"url": "https://github.com/o/r/pull/1"},
  "structured_output": {"summary": "ok"}, "messages": [], "unknown": 1})";

TEST(V1Session, DetailIsReadIntoTheV3ShapedSession) {
  const auto s = parse_v1_session(kDetail, "org-1");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->session_id, "devin-1");
  EXPECT_EQ(s->org_id, "org-1");
  EXPECT_EQ(s->status, "suspended");
  EXPECT_EQ(s->status_detail, "out_of_credits");
  EXPECT_EQ(s->created_at, 1700000000);
  EXPECT_EQ(s->updated_at, 1700000040);
  EXPECT_EQ(s->tags, (std::vector<std::string>{"a", "orch-k-g0"}));
  ASSERT_EQ(s->pull_requests.size(), 1U);
  EXPECT_EQ(s->pull_requests[0].pr_url, "https://github.com/o/r/pull/1");
  EXPECT_EQ(s->structured_output, R"({"summary":"ok"})");
  EXPECT_EQ(s->url, "https://app.devin.ai/sessions/devin-1");
  EXPECT_EQ(s->title, "T");
}

TEST(V1Session, WrongTypesAreUnexpectedShapeAndBadJsonMalformed) {
  for (const auto* body : {R"({"status_enum":"working"})", R"({"session_id":1})",
                           R"({"session_id":"d","status_enum":3})",
                           R"({"session_id":"d","created_at":"yesterday"})",
                           R"({"session_id":"d","tags":"a"})",
                           R"({"session_id":"d","pull_request":"x"})", R"([])"}) {
    const auto s = parse_v1_session(body, "org-1");
    ASSERT_FALSE(s) << body;
    EXPECT_EQ(s.error(), make_error_code(errc::unexpected_shape)) << body;
  }
  EXPECT_EQ(parse_v1_session("{", "org-1").error(), make_error_code(errc::malformed_json));
  // Nulls and absences are defaults, never errors.
  const auto s = parse_v1_session(
      R"({"session_id":"d","status":null,"status_enum":null,"tags":null,"pull_request":null})",
      "org-1");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, "v1:unknown");
}

TEST(V1Created, CreateAnswerBecomesANewSessionWithTheTagsSent) {
  const auto s = parse_v1_created(
      R"({"session_id":"devin-1","url":"https://app.devin.ai/sessions/devin-1","is_new_session":false})",
      "org-1", {"a", "orch-k-g0"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->session_id, "devin-1");
  EXPECT_EQ(s->status, "new");
  EXPECT_EQ(s->org_id, "org-1");
  EXPECT_EQ(s->tags, (std::vector<std::string>{"a", "orch-k-g0"}));
  EXPECT_FALSE(parse_v1_created(R"({"url":"u"})", "org-1", {}));
  EXPECT_FALSE(parse_v1_created(R"({"session_id":"d","is_new_session":"no"})", "org-1", {}));
}

TEST(V1List, FullPagesPointAtTheNextOffsetAndCreatedAfterFiltersHere) {
  const std::string two = R"({"sessions":[
      {"session_id":"d2","status_enum":"working","created_at":"2023-11-14T22:13:30Z"},
      {"session_id":"d1","status_enum":"working","created_at":"2023-11-14T22:13:20Z"}]})";
  auto page = parse_v1_session_list(two, "org-1", 4, 2, std::nullopt);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items.size(), 2U);
  EXPECT_TRUE(page->has_next_page);
  EXPECT_EQ(page->end_cursor, "6");
  page = parse_v1_session_list(two, "org-1", 0, 3, 1700000001);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1U);
  EXPECT_EQ(page->items[0].session_id, "d2");
  EXPECT_FALSE(page->has_next_page);
  EXPECT_FALSE(page->end_cursor);
  EXPECT_FALSE(parse_v1_session_list(R"({"items":[]})", "org-1", 0, 1, std::nullopt));
  EXPECT_FALSE(
      parse_v1_session_list(R"({"sessions":[{"session_id":2}]})", "org-1", 0, 1, std::nullopt));
}

TEST(V1Targets, ListTakesTagsLimitAndOffsetAndRefusesWhatV1CannotAnswer) {
  std::int64_t offset = -1;
  int limit = 0;
  EXPECT_EQ(v1_list_target({.tags = {"orch-a b"}, .created_after = 5, .first = 200, .after = "400"},
                           &offset, &limit),
            "/v1/sessions?limit=200&offset=400&tags=orch-a%20b");
  EXPECT_EQ(offset, 400);
  EXPECT_EQ(limit, 200);
  EXPECT_EQ(v1_list_target({}, &offset, &limit), "/v1/sessions?limit=100&offset=0");
  EXPECT_FALSE(v1_list_target({.session_ids = {"d"}}, &offset, &limit));
  EXPECT_FALSE(v1_list_target({.updated_after = 1}, &offset, &limit));
  EXPECT_FALSE(v1_list_target({.after = "c0001"}, &offset, &limit));
  EXPECT_EQ(v1_session_path("devin-1"), "/v1/session/devin-1");
  EXPECT_EQ(v1_terminate_path("devin-1"), "/v1/sessions/devin-1");
  EXPECT_EQ(v1_message_path("a/b"), "/v1/session/a%2Fb/message");
}

// DevinClient constructed for v1, against a loopback server.
struct V1Fixture {
  explicit V1Fixture(LoopbackServer::Responder respond)
      : server{io, std::move(respond)},
        http{std::move(*HttpClient::create(
            io.get_executor(), {.base_url = server.url(), .bearer_token = "apk_test"}))} {}

  template <class T>
  T operator()(net::awaitable<T> call) {
    return run(io, std::move(call));
  }

  net::io_context io;
  LoopbackServer server;
  std::unique_ptr<HttpClient> http;
  DevinClient client{*http, core::ApiVersion::v1};
};

TEST(DevinClientV1, CallsGoToTheV1RoutesAndAnswersAreRead) {
  V1Fixture f{[](const ReceivedRequest& request) {
    if (request.method == "POST" && request.target == "/v1/sessions") {
      return response(200, R"({"session_id":"devin-1","url":"u","is_new_session":true})");
    }
    if (request.target.starts_with("/v1/session/devin-1/message")) return response(200, "null");
    if (request.target.starts_with("/v1/session/devin-1")) return response(200, std::string{kDetail});
    if (request.method == "DELETE") return response(200, R"({"detail":"Session terminated"})");
    return response(200, R"({"sessions":[]})");
  }};
  auto created = f(f.client.create_session("org-1", {.prompt = "Fix it"}, "orch-k-g0"));
  ASSERT_TRUE(created.outcome.ok()) << created.outcome.detail;
  EXPECT_EQ(created.value->session_id, "devin-1");
  EXPECT_EQ(created.value->tags, (std::vector<std::string>{"orch-k-g0"}));
  EXPECT_EQ(json::parse(f.server.requests.back().body).at("idempotent"), true);

  auto got = f(f.client.get_session("org-1", "devin-1"));
  ASSERT_TRUE(got.outcome.ok()) << got.outcome.detail;
  EXPECT_EQ(got.value->status, "suspended");
  EXPECT_EQ(f.server.requests.back().target, "/v1/session/devin-1");

  auto sent = f(f.client.send_message("org-1", "devin-1", "hi"));
  EXPECT_TRUE(sent.outcome.ok()) << sent.outcome.detail;
  EXPECT_FALSE(sent.value);
  EXPECT_EQ(f.server.requests.back().target, "/v1/session/devin-1/message");

  auto ended = f(f.client.terminate_session("org-1", "devin-1", true));
  EXPECT_TRUE(ended.outcome.ok()) << ended.outcome.detail;
  EXPECT_FALSE(ended.value);
  EXPECT_EQ(f.server.requests.back().method, "DELETE");
  EXPECT_EQ(f.server.requests.back().target, "/v1/sessions/devin-1");

  auto self = f(f.client.self());
  ASSERT_TRUE(self.outcome.ok()) << self.outcome.detail;
  EXPECT_EQ(self.value->principal_type, "v1_api_key");
  EXPECT_EQ(f.server.requests.back().target, "/v1/sessions?limit=1");

  const auto before = f.server.requests.size();
  auto by_ids = f(f.client.list_sessions("org-1", {.session_ids = {"devin-1"}}));
  EXPECT_EQ(by_ids.outcome.cls, core::CallClass::not_sent);
  auto orgs = f(f.client.list_organizations(200, std::nullopt));
  EXPECT_EQ(orgs.outcome.cls, core::CallClass::not_sent);
  EXPECT_EQ(f.server.requests.size(), before);  // nothing was sent for either
}

}  // namespace
}  // namespace devin_orch::api
