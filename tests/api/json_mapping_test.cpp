// Tests of the Devin JSON mapping: tolerant session/page readers, the create body, error
// digests and percent-encoded request targets.
#include "devin_orch/api/json_mapping.hpp"

#include "session_oracle.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::api {
namespace {

namespace json = boost::json;

// The OpenAPI example SessionResponse, with every documented field set.
constexpr std::string_view full_session = R"({
  "session_id": "devin-abc123def456",
  "url": "https://app.devin.ai/sessions/devin-abc123def456",
  "status": "running",
  "status_detail": "working",
  "tags": ["team-a", "orch-job1-g0"],
  "org_id": "org-abc123def456",
  "created_at": 1718000000,
  "updated_at": 1718000123,
  "acus_consumed": 1.5,
  "pull_requests": [{"pr_url": "https://github.com/o/r/pull/1", "pr_state": "open"},
                    {"pr_url": "https://github.com/o/r/pull/2", "pr_state": null}],
  "title": "Fix the build",
  "user_id": null,
  "service_user_id": "su-1",
  "playbook_id": null,
  "parent_session_id": null,
  "child_session_ids": [],
  "is_archived": true,
  "structured_output": {"result": "ok", "count": 2},
  "origin": "api",
  "category": "bug_fixing",
  "subcategory": "Other"
})";

errc error_of(const auto& r) { return static_cast<errc>(r.error().value()); }

TEST(ParseSession, ReadsEveryFieldOfAFullResponse) {
  auto session = parse_session(full_session);
  ASSERT_TRUE(session) << session.error().message();
  EXPECT_EQ(session->session_id, "devin-abc123def456");
  EXPECT_EQ(session->url, "https://app.devin.ai/sessions/devin-abc123def456");
  EXPECT_EQ(session->status, "running");
  EXPECT_EQ(session->status_detail, "working");
  EXPECT_EQ(session->tags, (std::vector<std::string>{"team-a", "orch-job1-g0"}));
  EXPECT_EQ(session->org_id, "org-abc123def456");
  EXPECT_EQ(session->created_at, 1718000000);
  EXPECT_EQ(session->updated_at, 1718000123);
  EXPECT_DOUBLE_EQ(session->acus_consumed, 1.5);
  ASSERT_EQ(session->pull_requests.size(), 2U);
  EXPECT_EQ(session->pull_requests[0],
            (PullRequest{.pr_url = "https://github.com/o/r/pull/1", .pr_state = "open"}));
  EXPECT_EQ(session->pull_requests[1].pr_state, std::nullopt);
  EXPECT_EQ(session->title, "Fix the build");
  EXPECT_TRUE(session->is_archived);
  ASSERT_TRUE(session->structured_output);
  EXPECT_EQ(json::parse(*session->structured_output), json::parse(R"({"result":"ok","count":2})"));
}

TEST(ParseSession, ReadsParentAndChildren) {
  auto parent = parse_session(R"({"session_id": "devin-p", "status": "running",
    "parent_session_id": null, "child_session_ids": ["devin-c1", "devin-c2"]})");
  ASSERT_TRUE(parent) << parent.error().message();
  EXPECT_EQ(parent->parent_session_id, std::nullopt);
  EXPECT_EQ(parent->child_session_ids, (std::vector<std::string>{"devin-c1", "devin-c2"}));
  auto child = parse_session(R"({"session_id": "devin-c1", "status": "running",
    "parent_session_id": "devin-p", "child_session_ids": null})");
  ASSERT_TRUE(child) << child.error().message();
  EXPECT_EQ(child->parent_session_id, "devin-p");
  EXPECT_TRUE(child->child_session_ids.empty());
  // Absent, [] and the full example response all read as no family.
  auto full = parse_session(full_session);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->parent_session_id, std::nullopt);
  EXPECT_TRUE(full->child_session_ids.empty());
}

TEST(ParseSession, AnOddFamilyShapeNeverMakesTheSessionUnreadable) {
  auto session = parse_session(R"({"session_id": "d", "status": "exit",
    "parent_session_id": 12, "child_session_ids": ["c1", 2, null, "c2"]})");
  ASSERT_TRUE(session) << session.error().message();
  EXPECT_EQ(session->status, "exit");
  EXPECT_EQ(session->parent_session_id, std::nullopt);
  EXPECT_EQ(session->child_session_ids, (std::vector<std::string>{"c1", "c2"}));
  session = parse_session(R"({"session_id": "d", "status": "exit", "child_session_ids": "c1"})");
  ASSERT_TRUE(session);
  EXPECT_TRUE(session->child_session_ids.empty());
}

TEST(ParseSession, MinimalResponseGetsDefaults) {
  auto session = parse_session(R"({"session_id": "devin-1", "status": "new"})");
  ASSERT_TRUE(session);
  EXPECT_EQ(*session, (Session{.session_id = "devin-1", .status = "new"}));
}

TEST(ParseSession, NullsAreAcceptedForEveryOptionalField) {
  auto session = parse_session(R"({
    "session_id": "devin-1", "status": "exit", "url": null, "status_detail": null,
    "tags": null, "org_id": null, "created_at": null, "updated_at": null,
    "acus_consumed": null, "pull_requests": null, "title": null,
    "structured_output": null, "is_archived": null})");
  ASSERT_TRUE(session) << session.error().message();
  EXPECT_EQ(*session, (Session{.session_id = "devin-1", .status = "exit"}));
}

TEST(ParseSession, UnknownFieldsAreIgnoredAndUnknownStatusKept) {
  auto session = parse_session(R"({"session_id": "devin-1", "status": "creating",
    "status_detail": "warming_up", "brand_new_field": {"nested": [1, 2, 3]}})");
  ASSERT_TRUE(session);
  EXPECT_EQ(session->status, "creating");
  EXPECT_EQ(session->status_detail, "warming_up");
}

TEST(ParseSession, NumbersMayBeIntegersOrFloats) {
  auto session = parse_session(R"({"session_id": "d", "status": "running",
    "created_at": 1718000000.75, "updated_at": 1.718000123e9, "acus_consumed": 3})");
  ASSERT_TRUE(session) << session.error().message();
  EXPECT_EQ(session->created_at, 1718000000);
  EXPECT_EQ(session->updated_at, 1718000123);
  EXPECT_DOUBLE_EQ(session->acus_consumed, 3.0);
}

TEST(ParseSession, StructuredOutputOfAnyJsonTypeIsKeptSerialised) {
  auto session = parse_session(R"({"session_id": "d", "status": "exit",
                                   "structured_output": [1, "two", false]})");
  ASSERT_TRUE(session);
  EXPECT_EQ(session->structured_output, R"([1,"two",false])");
}

TEST(ParseSession, WrongTypesAreShapeErrors) {
  for (const char* body : {
           R"({"status": "new"})",
           R"({"session_id": "d"})",
           R"({"session_id": 42, "status": "new"})",
           R"({"session_id": "d", "status": 3})",
           R"({"session_id": null, "status": "new"})",
           R"({"session_id": "d", "status": "new", "tags": "a,b"})",
           R"({"session_id": "d", "status": "new", "tags": ["a", 1]})",
           R"({"session_id": "d", "status": "new", "created_at": "yesterday"})",
           R"({"session_id": "d", "status": "new", "created_at": 1e300})",
           R"({"session_id": "d", "status": "new", "acus_consumed": "1.5"})",
           R"({"session_id": "d", "status": "new", "is_archived": 1})",
           R"({"session_id": "d", "status": "new", "pull_requests": [{"pr_state": "open"}]})",
           R"({"session_id": "d", "status": "new", "pull_requests": ["https://x"]})",
           R"(["devin-1", "new"])",
           R"("devin-1")",
       }) {
    auto session = parse_session(body);
    ASSERT_FALSE(session) << body;
    EXPECT_EQ(error_of(session), errc::unexpected_shape) << body;
  }
}

TEST(ParseSession, GarbageIsMalformedJson) {
  for (const char* body : {"", "not json", "<html><body>502 Bad Gateway</body></html>",
                           R"({"session_id": "d", "status": "new")", "\xff\xfe\x00\x01"}) {
    auto session = parse_session(body);
    ASSERT_FALSE(session) << body;
    EXPECT_EQ(error_of(session), errc::malformed_json) << body;
  }
}

TEST(ParseSession, DeepNestingIsRejectedButModerateNestingIsFine) {
  const auto nested = [](int depth) {
    return R"({"session_id": "d", "status": "new", "structured_output": )" +
           std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  EXPECT_TRUE(parse_session(nested(40)));
  auto hostile = parse_session(nested(100000));
  ASSERT_FALSE(hostile);
  EXPECT_EQ(error_of(hostile), errc::malformed_json);
}

TEST(ParseSession, HugeArraysAreFine) {
  std::string body = R"({"session_id": "d", "status": "new", "pull_requests": [)";
  for (int i = 0; i < 20000; ++i) {
    if (i > 0) body += ',';
    body += R"({"pr_url": "https://github.com/o/r/pull/)" + std::to_string(i) +
            R"(", "pr_state": "open"})";
  }
  body += "]}";
  auto session = parse_session(body);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->pull_requests.size(), 20000U);
  EXPECT_EQ(session->pull_requests.back().pr_url, "https://github.com/o/r/pull/19999");
}

// Bodies on which the event-driven reader could part ways with reading a parsed tree:
// duplicate keys (the last one counts), escapes, session-like keys nested where they mean
// nothing, and every wrong type at every depth.
const std::vector<std::string> tricky_sessions = {
    R"({"session_id": "a", "status": 5, "status": "new"})",
    R"({"session_id": "a", "status": "new", "status": 5})",
    R"({"session_id": "a", "session_id": null, "status": "new"})",
    R"({"session_id": "a", "status": "new", "title": "t", "title": null, "url": "u", "url": null})",
    R"({"session_id": "a", "status": "new", "tags": [1], "tags": ["x"]})",
    R"({"session_id": "a", "status": "new", "tags": ["x"], "tags": null})",
    R"({"session_id": "a", "status": "new", "tags": ["x", ["y"]]})",
    R"({"session_id": "a", "status": "new", "tags": {"x": 1}})",
    R"({"session_id": "a", "status": "new", "created_at": {}, "created_at": 7.9})",
    R"({"session_id": "a", "status": "new", "created_at": 18446744073709551615})",
    R"({"session_id": "a", "status": "new", "acus_consumed": 18446744073709551615})",
    R"({"session_id": "a", "status": "new", "is_archived": true, "is_archived": null})",
    R"({"session_id": "a", "status": "new", "url": ["u"]})",
    R"({"session_id": {"session_id": "b"}, "status": "new"})",
    R"({"session_id": "a", "status": "new",
        "pull_requests": [{"pr_url": 1, "pr_url": "p", "pr_state": "open", "pr_state": null}]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [{"pr_url": "p", "pr_state": 3}]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [{"pr_url": "p", "pr_state": []}]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [{"pr_url": ["p"]}]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [{"pr_url": "p"}, null]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [[{"pr_url": "p"}]]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [["p", {"pr_url": "q"}]]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [{"pr_url": "p", "x": {"pr_url": 1}}]})",
    R"({"session_id": "a", "status": "new", "pull_requests": [{"pr_url": "p"}], "pull_requests": []})",
    R"({"session_id": "a", "status": "new", "pull_requests": 5, "pull_requests": [{"pr_url": "q"}]})",
    R"({"session_id": "a", "status": "new", "structured_output": {"k": 1, "k": [true, null]}})",
    R"({"session_id": "a", "status": "new", "structured_output": {"a": 1}, "structured_output": "t\"x"})",
    R"({"session_id": "a", "status": "new", "structured_output": [1], "structured_output": null})",
    R"({"session_id": "a", "status": "new", "structured_output": 1.5e3})",
    R"({"session_id": "a", "status": "new", "extra": {"status": 5, "tags": [1], "session_id": null}})",
    R"({"session_id": "a", "status": "new", "extra": [[{"pull_requests": 1}]], "title": "t"})",
    R"({"sess\u0069on_id": "\u00e9\ud83d\ude00\n", "status": "a\\b", "status_detail": "\"q\""})",
    R"({"session_id": "a", "status": "new", "parent_session_id": 7, "child_session_ids": "x"})",
    R"({"session_id": "a", "status": "new", "parent_session_id": {"id": "p"}})",
    R"({"session_id": "a", "status": "new", "parent_session_id": "p", "parent_session_id": null})",
    R"({"session_id": "a", "status": "new", "parent_session_id": ""})",
    R"({"session_id": "a", "status": "new", "child_session_ids": ["c1", 2, ["c3"], {"c": "4"}, "c5"]})",
    R"({"session_id": "a", "status": "new", "child_session_ids": ["c1"], "child_session_ids": null})",
    R"({"session_id": "a", "status": "new", "child_session_ids": {"0": "c1"}, "tags": ["t"]})",
    R"({"session_id": "a"})",
    R"({"status": "new"})",
    R"([{"session_id": "a", "status": "new"}])",
    R"("text")",
    R"(null)",
};

TEST(ParseSession, AgreesWithReadingTheWholeTree) {
  for (const std::string& body : tricky_sessions) {
    const auto expected = oracle::read_session(json::parse(body));
    const auto session = parse_session(body);
    ASSERT_EQ(session.has_value(), expected.has_value()) << body;
    if (expected) {
      EXPECT_TRUE(oracle::same_session(*session, *expected)) << body;
    } else {
      EXPECT_EQ(error_of(session), errc::unexpected_shape) << body;
    }
  }
}

TEST(ParseSession, TheLastOfDuplicateKeysCounts) {
  auto session = parse_session(R"({"session_id": "a", "status": 5, "status": "new",
      "title": "t", "title": null, "tags": [1], "tags": ["x"], "created_at": "no",
      "created_at": 7.9, "structured_output": {"k": 1, "k": 2}})");
  ASSERT_TRUE(session) << session.error().message();
  EXPECT_EQ(session->status, "new");
  EXPECT_EQ(session->title, std::nullopt);
  EXPECT_EQ(session->tags, std::vector<std::string>{"x"});
  EXPECT_EQ(session->created_at, 7);
  EXPECT_EQ(session->structured_output, R"({"k":2})");

  auto spoiled = parse_session(R"({"session_id": "a", "status": "new", "status": null})");
  ASSERT_FALSE(spoiled);
  EXPECT_EQ(error_of(spoiled), errc::unexpected_shape);
}

TEST(ParseSession, SessionFieldsNestedInOtherKeysMeanNothing) {
  auto session = parse_session(R"({"session_id": "a", "status": "new",
      "extra": {"status": 5, "session_id": null, "tags": [1]}, "title": "t"})");
  ASSERT_TRUE(session) << session.error().message();
  EXPECT_EQ(session->status, "new");
  EXPECT_EQ(session->title, "t");
  EXPECT_TRUE(session->tags.empty());
}

TEST(ParseSessionPage, ItemsAgreeWithReadingTheWholeTree) {
  std::string body = R"({"total": 3, "items": [)";
  for (std::size_t i = 0; i < tricky_sessions.size(); ++i) {
    // One page per body on its own, and every readable body together in one page.
    const std::string page = R"({"items": [)" + tricky_sessions[i] + "]}";
    const auto expected = oracle::read_page_items(json::parse(page));
    const auto read = parse_session_page(page);
    ASSERT_EQ(read.has_value(), expected.has_value()) << page;
    if (!expected) continue;
    ASSERT_EQ(read->items.size(), 1U);
    EXPECT_TRUE(oracle::same_session(read->items[0], (*expected)[0])) << page;
    if (body.back() != '[') body += ',';
    body += tricky_sessions[i];
  }
  body += "]}";
  const auto expected = oracle::read_page_items(json::parse(body));
  const auto read = parse_session_page(body);
  ASSERT_TRUE(expected);
  ASSERT_TRUE(read) << read.error().message();
  ASSERT_EQ(read->items.size(), expected->size());
  for (std::size_t i = 0; i < expected->size(); ++i) {
    EXPECT_TRUE(oracle::same_session(read->items[i], (*expected)[i])) << i;
  }
}

TEST(ParseSessionPage, ReadsItemsAndCursor) {
  auto page = parse_session_page(R"({"items": [{"session_id": "a", "status": "running"},
      {"session_id": "b", "status": "exit"}], "end_cursor": "cur-2", "has_next_page": true,
      "total": 7})");
  ASSERT_TRUE(page) << page.error().message();
  ASSERT_EQ(page->items.size(), 2U);
  EXPECT_EQ(page->items[1].session_id, "b");
  EXPECT_EQ(page->end_cursor, "cur-2");
  EXPECT_TRUE(page->has_next_page);
  EXPECT_EQ(page->total, 7);
}

TEST(ParseSessionPage, NullOrAbsentTotalAndCursor) {
  auto nulls = parse_session_page(
      R"({"items": [], "end_cursor": null, "has_next_page": false, "total": null})");
  ASSERT_TRUE(nulls);
  EXPECT_TRUE(nulls->items.empty());
  EXPECT_EQ(nulls->end_cursor, std::nullopt);
  EXPECT_EQ(nulls->total, std::nullopt);

  auto absent = parse_session_page(R"({"items": [{"session_id": "a", "status": "new"}]})");
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->items.size(), 1U);
  EXPECT_EQ(absent->end_cursor, std::nullopt);
  EXPECT_FALSE(absent->has_next_page);
  EXPECT_EQ(absent->total, std::nullopt);
}

TEST(ParseSessionPage, OneBadItemFailsThePage) {
  auto page = parse_session_page(
      R"({"items": [{"session_id": "a", "status": "new"}, {"status": "new"}]})");
  ASSERT_FALSE(page);
  EXPECT_EQ(error_of(page), errc::unexpected_shape);
}

TEST(ParseSessionPage, ShapeErrors) {
  for (const char* body : {R"({})", R"({"items": null})", R"({"items": {}})", R"([])",
                           R"({"items": [], "total": "many"})",
                           R"({"items": [], "has_next_page": "yes"})",
                           R"({"items": [], "end_cursor": 5})"}) {
    auto page = parse_session_page(body);
    ASSERT_FALSE(page) << body;
    EXPECT_EQ(error_of(page), errc::unexpected_shape) << body;
  }
  EXPECT_EQ(error_of(parse_session_page("{")), errc::malformed_json);
}

TEST(ParseMessagePage, CountsDevinsMessagesAndReadsTheCursor) {
  auto page = parse_message_page(R"({"items": [
      {"event_id": "e1", "created_at": 1, "message": "Working on it", "source": "devin"},
      {"event_id": "e2", "created_at": 2, "message": "any news?", "source": "user"},
      {"event_id": "e3", "created_at": 3, "message": "Done", "source": "devin", "extra": [1]},
      {"event_id": "e4", "created_at": 4, "message": "?", "source": "system"},
      {"event_id": "e5", "created_at": 5, "message": "no source"}],
      "end_cursor": "c-5", "has_next_page": true, "total": null})");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items, 5);
  EXPECT_EQ(page->from_devin, 2);
  EXPECT_EQ(page->end_cursor, "c-5");
  EXPECT_TRUE(page->has_next_page);
  auto last = parse_message_page(R"({"items": []})");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->from_devin, 0);
  EXPECT_FALSE(last->has_next_page);
  for (const char* body : {R"({})", R"({"items": [3]})", R"({"items": [], "has_next_page": 1})"}) {
    EXPECT_EQ(error_of(parse_message_page(body)), errc::unexpected_shape) << body;
  }
}

TEST(MessagesTarget, EncodesIdsAndPages) {
  EXPECT_EQ(messages_target("org 1", "devin-a/b", 200, std::nullopt),
            "/v3/organizations/org%201/sessions/devin-a%2Fb/messages?first=200");
  EXPECT_EQ(messages_target("o", "s", 50, std::string{"c=1&x"}),
            "/v3/organizations/o/sessions/s/messages?first=50&after=c%3D1%26x");
}

TEST(ParseOrganizationPage, ReadsOrganisations) {
  auto page = parse_organization_page(R"({"items": [
      {"org_id": "org-1", "name": "One", "created_at": 1, "max_cycle_acu_limit": null},
      {"org_id": "org-2", "name": "Two"}], "end_cursor": "c", "has_next_page": true,
      "total": 2})");
  ASSERT_TRUE(page) << page.error().message();
  ASSERT_EQ(page->items.size(), 2U);
  EXPECT_EQ(page->items[0].org_id, "org-1");
  EXPECT_EQ(page->items[1].name, "Two");
  EXPECT_EQ(page->end_cursor, "c");
  EXPECT_TRUE(page->has_next_page);

  EXPECT_EQ(error_of(parse_organization_page(R"({"items": [{"name": "x"}]})")),
            errc::unexpected_shape);
  EXPECT_EQ(error_of(parse_organization_page("nope")), errc::malformed_json);
}

json::object body_of(const core::JobSpec& spec, std::string_view tag = "orch-k-g0") {
  return json::parse(create_session_body(spec, tag)).as_object();
}

TEST(ParsePrincipal, EveryMemberOfTheUnionAndItsShapeErrors) {
  auto service = parse_principal(R"({"principal_type": "service_user", "service_user_id": "s1",
    "service_user_name": "bot", "org_id": "org-1", "extra": [1]})");
  ASSERT_TRUE(service) << service.error().message();
  EXPECT_EQ(service->principal_type, "service_user");
  EXPECT_EQ(service->service_user_id, "s1");
  EXPECT_EQ(service->service_user_name, "bot");
  EXPECT_EQ(service->org_id, "org-1");
  EXPECT_EQ(service->user_id, std::nullopt);
  auto person = parse_principal(R"({"principal_type": "user", "user_id": "u1", "org_id": null})");
  ASSERT_TRUE(person);
  EXPECT_EQ(person->principal_type, "user");
  EXPECT_EQ(person->user_id, "u1");
  EXPECT_EQ(person->org_id, std::nullopt);
  for (const char* body : {R"({"service_user_id": "s"})", R"({"principal_type": 1})",
                           R"({"principal_type": "service_user", "org_id": 5})", R"([])"}) {
    const auto bad = parse_principal(body);
    ASSERT_FALSE(bad) << body;
    EXPECT_EQ(error_of(bad), errc::unexpected_shape) << body;
  }
  EXPECT_EQ(error_of(parse_principal("not json")), errc::malformed_json);
}

TEST(CreateSessionBody, OnlyPromptAndTagWhenNothingElseIsSet) {
  const json::object body = body_of({.prompt = "Fix it"});
  EXPECT_EQ(body, json::parse(R"({"prompt": "Fix it", "tags": ["orch-k-g0"]})").as_object());
}

TEST(CreateSessionBody, EveryFieldWhenSet) {
  const core::JobSpec spec{
      .prompt = "Do \"this\"\n",
      .title = "T",
      .tags = {"a", "b"},
      .create_as_user_id = "user-1",
      .playbook_id = "playbook-1",
      .child_playbook_id = "playbook-child",
      .knowledge_ids = std::vector<std::string>{"k1"},
      .secret_ids = std::vector<std::string>{"s1", "s2"},
      .repos = {"owner/repo"},
      .max_acu_limit = 10,
      .structured_output_schema = R"({"type": "object", "properties": {}})",
      .devin_mode = "fast",
      .resumable = false,
  };
  EXPECT_EQ(body_of(spec), json::parse(R"({
      "prompt": "Do \"this\"\n", "title": "T", "tags": ["a", "b", "orch-k-g0"],
      "create_as_user_id": "user-1", "playbook_id": "playbook-1",
      "child_playbook_id": "playbook-child", "knowledge_ids": ["k1"],
      "secret_ids": ["s1", "s2"], "repos": ["owner/repo"], "max_acu_limit": 10,
      "structured_output_schema": {"type": "object", "properties": {}},
      "devin_mode": "fast", "resumable": false})").as_object());
}

TEST(CreateSessionBody, DevinModeIsPassedThroughAndResumableOnlyWhenSet) {
  // The known modes and one the daemon has never heard of: the API decides, not us.
  for (const auto* mode : {"normal", "fast", "lite", "ultra", "fusion", "hyper"}) {
    EXPECT_EQ(body_of({.prompt = "p", .devin_mode = mode}).at("devin_mode"), mode);
  }
  EXPECT_EQ(body_of({.prompt = "p", .resumable = true}).at("resumable"), true);
  EXPECT_FALSE(body_of({.prompt = "p"}).contains("resumable"));
  EXPECT_FALSE(body_of({.prompt = "p"}).contains("devin_mode"));
}

TEST(CreateSessionBody, CreationTagIsAppendedOnce) {
  const json::object body = body_of({.prompt = "p", .tags = {"orch-k-g0", "x"}});
  EXPECT_EQ(body.at("tags"), json::parse(R"(["orch-k-g0", "x"])"));
}

TEST(CreateSessionBody, EmptyListsMeanNoneAbsentMeansDefault) {
  const json::object none = body_of({.prompt = "p",
                                     .knowledge_ids = std::vector<std::string>{},
                                     .secret_ids = std::vector<std::string>{}});
  EXPECT_EQ(none.at("knowledge_ids"), json::array{});
  EXPECT_EQ(none.at("secret_ids"), json::array{});

  const json::object all = body_of({.prompt = "p"});
  EXPECT_FALSE(all.contains("knowledge_ids"));
  EXPECT_FALSE(all.contains("secret_ids"));
  EXPECT_FALSE(all.contains("repos"));
  EXPECT_FALSE(all.contains("title"));
  EXPECT_FALSE(all.contains("max_acu_limit"));
  EXPECT_FALSE(all.contains("structured_output_schema"));
}

TEST(CreateSessionBody, SchemaIsEmbeddedAsAnObjectNotAString) {
  const json::object body =
      body_of({.prompt = "p", .structured_output_schema = R"({"type":"object"})"});
  ASSERT_TRUE(body.at("structured_output_schema").is_object());
  EXPECT_EQ(body.at("structured_output_schema").at("type"), "object");

  // Invalid schemas should never get here; if one does, the API must see it and reject it.
  const json::object broken = body_of({.prompt = "p", .structured_output_schema = "{oops"});
  EXPECT_EQ(broken.at("structured_output_schema"), "{oops");
}

TEST(SendMessageBody, EscapesTheMessage) {
  EXPECT_EQ(json::parse(send_message_body("say \"hi\"\n")),
            json::parse(R"({"message": "say \"hi\"\n"})"));
}

TEST(ErrorDetail, FastApiStringDetail) {
  EXPECT_EQ(error_detail(R"({"detail": "Your organization has a billing error."})"),
            "Your organization has a billing error.");
}

TEST(ErrorDetail, ValidationErrorListIsJoined) {
  EXPECT_EQ(error_detail(R"({"detail": [
      {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"},
      {"loc": ["query", "first", 0], "msg": "Input should be less than or equal to 200",
       "type": "less_than_equal"}]})"),
            "body.prompt: Field required; query.first.0: Input should be less than or equal to "
            "200");
}

TEST(ErrorDetail, HtmlPageIsCutToTwoHundredPrintableBytes) {
  std::string html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>";
  html += std::string(500, 'x') + "</body></html>";
  const std::string detail = error_detail(html);
  EXPECT_TRUE(detail.starts_with("<html><head><title>502 Bad Gateway</title></head><body>xxx"))
      << detail;
  EXPECT_EQ(detail.size(), 197U);  // 200 bytes less the three control characters
  EXPECT_EQ(detail.find('\n'), std::string::npos);
  EXPECT_EQ(detail.find('\r'), std::string::npos);
}

TEST(ErrorDetail, BinaryJunkLeavesOnlyPrintableText) {
  static constexpr char bytes[] = "\x00\x01\x1b[31mred\x7f\xff\xfe ok \xc3\xa9 \xe2\x82";
  const std::string junk{bytes, sizeof bytes - 1};
  EXPECT_EQ(error_detail(junk), "[31mred ok \xc3\xa9 ");
  EXPECT_EQ(error_detail(""), "");
}

TEST(ErrorDetail, HostileDetailIsBounded) {
  const std::string body = R"({"detail": ")" + std::string(100000, 'a') + "\\n\"}";
  const std::string detail = error_detail(body);
  EXPECT_EQ(detail, std::string(500, 'a'));
}

TEST(Targets, SessionPathsAreEncoded) {
  EXPECT_EQ(sessions_path("org-1"), "/v3/organizations/org-1/sessions");
  EXPECT_EQ(session_path("org-1", "devin-abc"), "/v3/organizations/org-1/sessions/devin-abc");
  EXPECT_EQ(session_path("org 1/..", "a?b#c"),
            "/v3/organizations/org%201%2F../sessions/a%3Fb%23c");
}

TEST(Targets, ListQueryRepeatsArrayKeysAndEncodesValues) {
  const ListSessionsQuery query{.session_ids = {"devin-a", "devin-b"},
                                .tags = {"orch job&1=x+y", "caf\xc3\xa9"},
                                .created_after = 1718000000,
                                .updated_after = 1718000100,
                                .first = 200,
                                .after = "cur/=="};
  EXPECT_EQ(list_sessions_target("org-1", query),
            "/v3/organizations/org-1/sessions?session_ids=devin-a&session_ids=devin-b"
            "&tags=orch%20job%261%3Dx%2By&tags=caf%C3%A9&created_after=1718000000"
            "&updated_after=1718000100&first=200&after=cur%2F%3D%3D");
  EXPECT_EQ(list_sessions_target("org-1", {}), "/v3/organizations/org-1/sessions");
  EXPECT_EQ(list_sessions_target("o", {.first = 1}), "/v3/organizations/o/sessions?first=1");
}

TEST(Targets, OrganizationsTarget) {
  EXPECT_EQ(organizations_target(100, std::nullopt), "/v3/enterprise/organizations?first=100");
  EXPECT_EQ(organizations_target(5, std::string{"a b"}),
            "/v3/enterprise/organizations?first=5&after=a%20b");
}

}  // namespace
}  // namespace devin_orch::api

namespace devin_orch::api {
namespace {

TEST(CreateSessionBodySecrets, ResolvedSecretsAreSentAsSessionSecretInputs) {
  const core::JobSpec spec{.prompt = "p"};
  const auto body = boost::json::parse(create_session_body(
      spec, "orch-tag", {{.key = "K", .value = "v", .sensitive = false}}));
  const auto& secrets = body.at("session_secrets").as_array();
  ASSERT_EQ(secrets.size(), 1U);
  EXPECT_EQ(secrets[0].at("key").as_string(), "K");
  EXPECT_EQ(secrets[0].at("value").as_string(), "v");
  EXPECT_EQ(secrets[0].at("sensitive").as_bool(), false);
  EXPECT_FALSE(boost::json::parse(create_session_body(spec, "orch-tag")).as_object().contains(
      "session_secrets"));
}

}  // namespace
}  // namespace devin_orch::api
