// The World through its request interface with an injected clock: sessions, lifecycle over
// time, filters, paging, limits, faults and the admin counters, without sockets.
#include "devin_orch/sim/world.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace devin_orch::sim {
namespace {
namespace json = boost::json;

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::string_view kSessions = "/v3/organizations/org-demo/sessions";

class WorldTest : public ::testing::Test {
 protected:
  void make(WorldConfig config) { world = World{std::move(config)}; }

  Reply call(std::string_view method, std::string_view target, std::string_view body = {},
             std::string_view auth = "Bearer cog_test") {
    return world.handle({.method = method, .target = target, .authorization = auth, .body = body},
                        now);
  }
  json::value call_json(std::string_view method, std::string_view target,
                        std::string_view body = {}, int expected_status = 200) {
    const auto reply = call(method, target, body);
    EXPECT_EQ(reply.status, expected_status) << method << ' ' << target << ": " << reply.body;
    return json::parse(reply.body);
  }
  std::string create(std::string_view prompt, std::vector<std::string> tags = {}) {
    json::object body{{"prompt", prompt}};
    json::array t;
    for (auto& tag : tags) t.emplace_back(tag);
    body["tags"] = std::move(t);
    return std::string{call_json("POST", kSessions, json::serialize(body)).at("session_id").as_string()};
  }
  json::value get(const std::string& id) {
    return call_json("GET", std::string{kSessions} + "/" + id);
  }
  std::string status_of(const std::string& id) {
    return std::string{get(id).at("status").as_string()};
  }
  json::value stats() { return call_json("GET", "/_sim/stats"); }
  void advance_s(double seconds) { now += static_cast<TimeMs>(seconds * 1000); }

  TimeMs now = kT0;
  World world{WorldConfig{.total_mode = TotalMode::always}};
};

std::vector<std::string> ids_of(const json::value& page) {
  std::vector<std::string> ids;
  for (const auto& item : page.at("items").as_array()) {
    ids.emplace_back(item.at("session_id").as_string());
  }
  return ids;
}

TEST_F(WorldTest, CreateReturnsTheFullSessionResponse) {
  const auto body = call_json(
      "POST", kSessions,
      R"({"prompt":"fix it","title":"T","tags":["a","b"],"playbook_id":"playbook-1",
          "create_as_user_id":"user-9","unknown_field":1,"devin_mode":"fast","platform":"linux",
          "session_secrets":[{"key":"K","value":"V"}],"max_acu_limit":5})");
  const auto& s = body.as_object();
  const std::string id{s.at("session_id").as_string()};
  EXPECT_TRUE(std::regex_match(id, std::regex{"devin-[0-9a-f]{32}"})) << id;
  EXPECT_EQ(s.at("url"), json::value("https://app.devin.ai/sessions/" + id));
  EXPECT_EQ(s.at("status"), "new");
  EXPECT_TRUE(s.at("status_detail").is_null());
  EXPECT_TRUE(s.at("structured_output").is_null());
  EXPECT_EQ(s.at("tags"), (json::array{"a", "b"}));
  EXPECT_EQ(s.at("org_id"), "org-demo");
  EXPECT_EQ(s.at("created_at"), kT0 / 1000);
  EXPECT_EQ(s.at("updated_at"), kT0 / 1000);
  EXPECT_EQ(s.at("acus_consumed").to_number<double>(), 0.0);
  EXPECT_TRUE(s.at("pull_requests").as_array().empty());
  EXPECT_EQ(s.at("title"), "T");
  EXPECT_EQ(s.at("user_id"), "user-9");
  EXPECT_EQ(s.at("service_user_id"), "svc-sim");
  EXPECT_EQ(s.at("playbook_id"), "playbook-1");
  EXPECT_EQ(s.at("origin"), "api");
  EXPECT_EQ(s.at("is_archived"), false);
}

TEST_F(WorldTest, IdsAreDeterministicFromTheSeed) {
  auto ids_for = [&](std::uint64_t seed) {
    make({.seed = seed});
    return std::vector<std::string>{create("a"), create("b"), create("a")};
  };
  const auto first = ids_for(5);
  EXPECT_EQ(first, ids_for(5));
  EXPECT_NE(first, ids_for(6));
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), 3u);
}

TEST_F(WorldTest, DuplicatePostsCreateDuplicateSessions) {
  const auto a = create("same", {"orch-job-1"});
  const auto b = create("same", {"orch-job-1"});
  create("other", {"orch-job-2"});
  EXPECT_NE(a, b);
  const auto s = stats();
  EXPECT_EQ(s.at("sessions_created"), 3);
  EXPECT_EQ(s.at("duplicate_tag_groups"), 1);
}

TEST_F(WorldTest, ValidationErrorsAreFastApiShaped) {
  auto detail = call_json("POST", kSessions, R"({"title":"no prompt"})", 422).at("detail");
  EXPECT_EQ(detail, json::parse(R"([{"loc":["body","prompt"],"msg":"Field required","type":"missing"}])"));
  detail = call_json("POST", kSessions, R"({"prompt":7,"tags":["x",3],"bypass_approval":"yes",
                     "structured_output_schema":[],"devin_mode":"slow","max_acu_limit":1.5})",
                     422).at("detail");
  std::set<std::string> locs;
  for (const auto& e : detail.as_array()) locs.insert(json::serialize(e.at("loc")));
  EXPECT_EQ(locs, (std::set<std::string>{R"(["body","prompt"])", R"(["body","tags",1])",
                                         R"(["body","bypass_approval"])",
                                         R"(["body","structured_output_schema"])",
                                         R"(["body","devin_mode"])", R"(["body","max_acu_limit"])"}));
  call_json("POST", kSessions, "not json", 422);
  call_json("POST", kSessions, "[1]", 422);
  call_json("POST", kSessions, "", 422);
  EXPECT_EQ(world.session_count(), 0u);
}

TEST_F(WorldTest, NullOptionalFieldsAreAccepted) {
  call_json("POST", kSessions, R"({"prompt":"p","title":null,"tags":null,"platform":null})");
}

// Reference §2.1 gives session_secrets key 1..256 and value ≤65536, attachment_urls 1..2083:
// pydantic lengths, so code points, not UTF-8 bytes. A key of 200 "é" (400 bytes) is valid.
TEST_F(WorldTest, StringLengthLimitsCountCharactersNotBytes) {
  std::string key;
  for (int i = 0; i < 200; ++i) key += "\xC3\xA9";
  std::string url = "https://example.com/";
  while (url.size() < 2 * 2000) url += "\xC3\xA9";  // about 2,000 characters, ~4,000 bytes
  const json::object ok{{"prompt", "p"},
                        {"session_secrets", json::array{json::object{{"key", key}, {"value", "v"}}}},
                        {"attachment_urls", json::array{json::string{url}}}};
  call_json("POST", kSessions, json::serialize(ok));
  key += std::string(57, 'k');  // 257 characters
  const json::object too_long{
      {"prompt", "p"},
      {"session_secrets", json::array{json::object{{"key", key}, {"value", "v"}}}}};
  const auto detail = call_json("POST", kSessions, json::serialize(too_long), 422).at("detail");
  EXPECT_EQ(detail.at(0).at("loc"), json::parse(R"(["body","session_secrets",0,"key"])"));
  EXPECT_EQ(detail.at(0).at("type"), "string_too_long");
}

TEST_F(WorldTest, UnknownPlatformIs400ListingValidLabels) {
  const auto body = call_json("POST", kSessions, R"({"prompt":"p","platform":"macos"})", 400);
  const std::string detail{body.at("detail").as_string()};
  for (const auto* label : {"default", "inherit", "linux", "windows"}) {
    EXPECT_NE(detail.find(label), std::string::npos) << detail;
  }
}

TEST_F(WorldTest, AuthAndUnknownThings) {
  EXPECT_EQ(call("GET", kSessions, {}, "").status, 401);
  EXPECT_EQ(call("GET", kSessions, {}, "Bearer apk_user_legacy").status, 401);
  EXPECT_EQ(call("GET", kSessions, {}, "Basic cog_x").status, 401);
  EXPECT_EQ(call_json("GET", "/v3/organizations/org-nope/sessions", {}, 404).at("detail"),
            "Organization not found");
  EXPECT_EQ(call("GET", std::string{kSessions} + "/devin-0000").status, 404);
  EXPECT_EQ(call_json("GET", "/v3/nothing", {}, 404).at("detail"), "Not Found");
  const auto wrong_method = call("PATCH", kSessions);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(call("GET", "/v3beta1/organizations/org-demo/sessions").status, 200);
}

TEST_F(WorldTest, ConfiguredApiKeyIsTheOnlyOneAccepted) {
  make({.api_key = "cog_right"});
  EXPECT_EQ(call("GET", kSessions, {}, "Bearer cog_other").status, 401);
  EXPECT_EQ(call("GET", kSessions, {}, "Bearer cog_right").status, 200);
}

TEST_F(WorldTest, SessionsInAnotherOrgAreNotFound) {
  make({.orgs = {"org-a", "org-b"}});
  const auto id = std::string{
      call_json("POST", "/v3/organizations/org-a/sessions", R"({"prompt":"p"})").at("session_id").as_string()};
  EXPECT_EQ(call("GET", "/v3/organizations/org-b/sessions/" + id).status, 404);
  EXPECT_EQ(call("GET", "/v3/organizations/org-a/sessions/" + id).status, 200);
}

TEST_F(WorldTest, LifecycleAdvancesWithTheClockAndTimeFactor) {
  make({.time_factor = 0.01});
  const auto id = create("work [sim:finished]");
  EXPECT_EQ(status_of(id), "new");
  advance_s(0.03);
  EXPECT_EQ(status_of(id), "claimed");
  advance_s(0.1);
  auto s = get(id);
  EXPECT_EQ(s.at("status"), "running");
  EXPECT_EQ(s.at("status_detail"), "working");
  EXPECT_EQ(s.at("updated_at"), (kT0 + 70) / 1000);
  EXPECT_GT(s.at("acus_consumed").to_number<double>(), 0.0);
  advance_s(0.3);
  s = get(id);
  EXPECT_EQ(s.at("status_detail"), "finished");
  ASSERT_EQ(s.at("pull_requests").as_array().size(), 1u);
  EXPECT_EQ(s.at("pull_requests").at(0).at("pr_state"), "open");
  EXPECT_TRUE(s.at("structured_output").is_null());  // no schema was given
  advance_s(0.1);
  s = get(id);
  EXPECT_EQ(s.at("status"), "suspended");
  EXPECT_EQ(s.at("status_detail"), "inactivity");
}

TEST_F(WorldTest, StructuredOutputOnlyWithASchemaAndOnlyOnGetAndList) {
  make({.time_factor = 0.01});
  const auto id = std::string{call_json("POST", kSessions,
                                        R"({"prompt":"[sim:exit]","structured_output_schema":{"type":"object"}})")
                                  .at("session_id").as_string()};
  EXPECT_TRUE(get(id).at("structured_output").is_null());
  advance_s(1);
  const auto s = get(id);
  EXPECT_EQ(s.at("status"), "exit");
  EXPECT_TRUE(s.at("structured_output").at("summary").is_string());
  const auto message_reply = call_json("DELETE", std::string{kSessions} + "/" + id);
  EXPECT_TRUE(message_reply.at("structured_output").is_null());
}

TEST_F(WorldTest, MarkersReachTheirEndStates) {
  make({.time_factor = 0.01});
  const auto error = create("[sim:error]");
  const auto credits = create("[sim:suspend=out_of_credits]");
  const auto waiting = create("[sim:waiting]");
  const auto hold = create("[sim:hold]");
  advance_s(0.42);
  EXPECT_EQ(get(waiting).at("status_detail"), "waiting_for_user");
  advance_s(10);
  EXPECT_EQ(status_of(error), "error");
  EXPECT_EQ(get(credits).at("status_detail"), "out_of_credits");
  EXPECT_EQ(get(waiting).at("status_detail"), "inactivity");
  EXPECT_EQ(get(hold).at("status_detail"), "working");
}

TEST_F(WorldTest, HoldRunningKeepsEverySessionWorking) {
  make({.time_factor = 0.01, .hold_running = true});
  const auto id = create("[sim:error]");
  advance_s(1000);
  EXPECT_EQ(get(id).at("status_detail"), "working");
}

TEST_F(WorldTest, CreatingStatusWhenTheFaultRateSaysSo) {
  make({.faults = {.creating = 1.0}});
  const auto id = create("p");
  advance_s(3);
  EXPECT_EQ(status_of(id), "creating");
  advance_s(2);
  EXPECT_EQ(status_of(id), "claimed");
}

TEST_F(WorldTest, MessagesDuringInitialisationAreRejected) {
  const auto id = create("[sim:finished]");
  const auto target = std::string{kSessions} + "/" + id + "/messages";
  EXPECT_EQ(call_json("POST", target, R"({"message":"hi"})", 400).at("detail"),
            "Devin session still initializing");
  advance_s(3);  // claimed
  EXPECT_EQ(call("POST", target, R"({"message":"hi"})").status, 400);
  call_json("POST", target, R"({"nope":1})", 422);
}

TEST_F(WorldTest, MessageResumesASuspendedSession) {
  make({.time_factor = 0.01});
  const auto id = create("[sim:finished]");
  advance_s(1);
  EXPECT_EQ(status_of(id), "suspended");
  const auto before = get(id).at("acus_consumed").to_number<double>();
  const auto target = std::string{kSessions} + "/" + id + "/messages";
  const auto reply = call_json("POST", target, R"({"message":"more please","message_as_user_id":null})");
  EXPECT_EQ(reply.at("status"), "resuming");
  EXPECT_TRUE(reply.at("status_detail").is_null());
  advance_s(0.06);
  EXPECT_EQ(get(id).at("status_detail"), "working");
  advance_s(1);
  const auto after = get(id);
  EXPECT_EQ(after.at("status_detail"), "inactivity");
  EXPECT_GT(after.at("acus_consumed").to_number<double>(), before);
  EXPECT_EQ(after.at("updated_at"), (now - 100) / 1000);  // suspended 0.4 s after the resume

  const auto messages = call_json("GET", target);
  ASSERT_EQ(messages.at("items").as_array().size(), 1u);
  EXPECT_EQ(messages.at("items").at(0).at("message"), "more please");
  EXPECT_EQ(messages.at("items").at(0).at("source"), "user");
  EXPECT_EQ(messages.at("items").at(0).at("created_at"), (kT0 + 1000) / 1000);
}

// [sim:chatty]: Devin writes every minute (scaled) while it works, in order with the user's
// messages, and updated_at does not move for them.
TEST_F(WorldTest, AChattySessionsDevinWritesWhileItWorksWithoutMovingUpdatedAt) {
  make({.time_factor = 0.01});
  const auto id = create("think aloud [sim:hold] [sim:chatty]");
  advance_s(1);
  ASSERT_EQ(get(id).at("status_detail"), "working");
  const auto updated_at = get(id).at("updated_at");
  const auto target = std::string{kSessions} + "/" + id + "/messages";
  const auto first = call_json("GET", target);
  const auto written = first.at("items").as_array().size();
  EXPECT_GE(written, 1u);
  for (const auto& item : first.at("items").as_array()) EXPECT_EQ(item.at("source"), "devin");
  call_json("POST", target, R"({"message":"how is it going?"})");
  advance_s(1.2);  // two more minutes of simulated time
  const auto later = call_json("GET", target);
  const auto& items = later.at("items").as_array();
  ASSERT_EQ(items.size(), written + 1 + 2);
  EXPECT_EQ(items.at(written).at("source"), "user");
  EXPECT_EQ(items.back().at("source"), "devin");
  for (std::size_t i = 1; i < items.size(); ++i) {
    EXPECT_LE(items.at(i - 1).at("created_at").to_number<std::int64_t>(),
              items.at(i).at("created_at").to_number<std::int64_t>());
  }
  EXPECT_EQ(get(id).at("updated_at"), updated_at);
  // Without the marker Devin writes nothing.
  const auto quiet = create("think [sim:hold]");
  advance_s(2);
  EXPECT_TRUE(call_json("GET", std::string{kSessions} + "/" + quiet + "/messages")
                  .at("items").as_array().empty());
}

TEST_F(WorldTest, MessagesToEndedSessionsAreRejected) {
  make({.time_factor = 0.01});
  const auto id = create("[sim:exit]");
  advance_s(1);
  EXPECT_EQ(call_json("POST", std::string{kSessions} + "/" + id + "/messages", R"({"message":"x"})", 400)
                .at("detail"),
            "Session has ended");
}

TEST_F(WorldTest, MessagesPageChronologically) {
  make({.time_factor = 0.01});
  const auto id = create("[sim:hold]");
  advance_s(1);
  const auto target = std::string{kSessions} + "/" + id + "/messages";
  for (int i = 0; i < 5; ++i) call_json("POST", target, json::serialize(json::object{{"message", std::to_string(i)}}));
  auto page = call_json("GET", target + "?first=2");
  EXPECT_EQ(page.at("items").at(0).at("message"), "0");
  EXPECT_EQ(page.at("has_next_page"), true);
  std::string cursor{page.at("end_cursor").as_string()};
  page = call_json("GET", target + "?first=2&after=" + cursor);
  EXPECT_EQ(page.at("items").at(0).at("message"), "2");
  cursor = std::string{page.at("end_cursor").as_string()};
  page = call_json("GET", target + "?first=2&after=" + cursor);
  EXPECT_EQ(page.at("items").as_array().size(), 1u);
  EXPECT_TRUE(page.at("end_cursor").is_null());
  EXPECT_EQ(page.at("has_next_page"), false);
}

TEST_F(WorldTest, DeleteTerminatesToExit) {
  const auto id = create("[sim:hold]");
  advance_s(20);
  const auto reply = call_json("DELETE", std::string{kSessions} + "/" + id + "?archive=true");
  EXPECT_EQ(reply.at("status"), "exit");
  EXPECT_TRUE(reply.at("status_detail").is_null());
  EXPECT_EQ(reply.at("is_archived"), true);
  advance_s(100);
  const auto s = get(id);
  EXPECT_EQ(s.at("status"), "exit");
  EXPECT_EQ(s.at("updated_at"), (kT0 + 20'000) / 1000);
  const auto other = create("[sim:hold]");
  EXPECT_EQ(call_json("DELETE", std::string{kSessions} + "/" + other).at("is_archived"), false);
  call_json("DELETE", std::string{kSessions} + "/" + other + "?archive=maybe", {}, 422);
}

TEST_F(WorldTest, DeleteKeepsAnErrorAnError) {
  make({.time_factor = 0.01});
  const auto id = create("[sim:error]");
  advance_s(1);
  EXPECT_EQ(call_json("DELETE", std::string{kSessions} + "/" + id).at("status"), "error");
}

TEST_F(WorldTest, ArchiveSuspendsAnActiveSession) {
  const auto id = create("[sim:hold]");
  advance_s(10);
  const auto reply = call_json("POST", std::string{kSessions} + "/" + id + "/archive");
  EXPECT_EQ(reply.at("is_archived"), true);
  EXPECT_EQ(reply.at("status"), "suspended");
  EXPECT_EQ(get(id).at("status_detail"), "user_request");
  EXPECT_EQ(call_json("POST", std::string{kSessions} + "/" + id + "/messages", R"({"message":"x"})", 400)
                .at("detail"),
            "Session is archived");
}

TEST_F(WorldTest, ListIsNewestFirstWithStableCursors) {
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) {
    created.push_back(create("p" + std::to_string(i)));
    if (i % 2 == 0) advance_s(1);  // some share a created_at second
  }
  auto page = call_json("GET", std::string{kSessions} + "?first=2");
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{created[4], created[3]}));
  EXPECT_EQ(page.at("has_next_page"), true);
  EXPECT_EQ(page.at("total"), 5);
  const std::string cursor{page.at("end_cursor").as_string()};

  // Sessions created between pages must neither shift nor duplicate later pages.
  create("newer 1");
  create("newer 2");
  page = call_json("GET", std::string{kSessions} + "?first=2&after=" + cursor);
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{created[2], created[1]}));
  page = call_json("GET", std::string{kSessions} + "?first=2&after=" +
                              std::string{page.at("end_cursor").as_string()});
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{created[0]}));
  EXPECT_EQ(page.at("has_next_page"), false);
  EXPECT_TRUE(page.at("end_cursor").is_null());
  EXPECT_EQ(page.at("total"), 7);
}

TEST_F(WorldTest, FirstBoundsAndBadCursorsAre422) {
  for (const auto* query : {"?first=0", "?first=201", "?first=abc"}) {
    const auto body = call_json("GET", std::string{kSessions} + query, {}, 422);
    EXPECT_EQ(body.at("detail").at(0).at("loc"), (json::array{"query", "first"})) << query;
  }
  call_json("GET", std::string{kSessions} + "?first=1");
  call_json("GET", std::string{kSessions} + "?first=200");
  const auto body = call_json("GET", std::string{kSessions} + "?after=garbage", {}, 422);
  EXPECT_EQ(body.at("detail").at(0).at("loc"), (json::array{"query", "after"}));
  call_json("GET", std::string{kSessions} + "?created_after=yesterday", {}, 422);
}

TEST_F(WorldTest, SessionIdsFilterInBothArrayForms) {
  const auto a = create("a");
  const auto b = create("b");
  create("c");
  auto page = call_json("GET", std::string{kSessions} + "?session_ids=" + a + "&session_ids=" + b +
                                   "&session_ids=devin-unknown");
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{b, a}));
  EXPECT_EQ(page.at("total"), 2);
  page = call_json("GET", std::string{kSessions} + "?session_ids%5B%5D=" + a);
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{a}));
  page = call_json("GET", std::string{kSessions} + "?session_ids=" + a + "&session_ids=" + b + "&first=1");
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{b}));
  EXPECT_EQ(page.at("has_next_page"), true);
  EXPECT_EQ(stats().at("list_requests_with_session_ids"), 3);
}

TEST_F(WorldTest, TagsFilterRequiresEveryTag) {
  const auto both = create("1", {"x", "y"});
  const auto only_x = create("2", {"x"});
  create("3", {"y"});
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?tags=x")),
            (std::vector<std::string>{only_x, both}));
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?tags=x&tags=y")),
            (std::vector<std::string>{both}));
  EXPECT_TRUE(ids_of(call_json("GET", std::string{kSessions} + "?tags=z")).empty());
}

// Reference §4 lists a `category` filter; the sim's sessions have category null, so any
// category matches none of them (it used to be ignored and answered every session).
TEST_F(WorldTest, CategoryFilterMatchesNothingSinceNoSessionHasOne) {
  const auto a = create("a");
  create("b");
  auto page = call_json("GET", std::string{kSessions} + "?category=bug_fixing");
  EXPECT_TRUE(ids_of(page).empty());
  EXPECT_EQ(page.at("total"), 0);
  page = call_json("GET", std::string{kSessions} + "?session_ids=" + a + "&category=other");
  EXPECT_TRUE(ids_of(page).empty());
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?session_ids=" + a)),
            (std::vector<std::string>{a}));
}

TEST_F(WorldTest, TimeFiltersAreInclusiveAfterExclusiveBefore) {
  const auto early = create("[sim:hold] early");
  advance_s(10);
  const auto late = create("[sim:hold] late");
  const auto t_late = now / 1000;
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?created_after=" + std::to_string(t_late))),
            (std::vector<std::string>{late}));
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?created_before=" + std::to_string(t_late))),
            (std::vector<std::string>{early}));
  // The early session became running/working at +7 s; the late one is still new at t_late.
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?updated_before=" + std::to_string(kT0 / 1000 + 7))),
            (std::vector<std::string>{}));
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?updated_after=" + std::to_string(kT0 / 1000 + 7))),
            (std::vector<std::string>{late, early}));
}

TEST_F(WorldTest, UpdatedAfterModes) {
  const auto early = create("[sim:hold] early");
  advance_s(10);  // early went running/working at +7 s
  const auto late = create("[sim:hold] late");
  const auto stamp = std::to_string(kT0 / 1000 + 7);
  const auto by_ids = std::string{kSessions} + "?session_ids=" + early + "&session_ids=" + late +
                      "&updated_after=" + stamp;
  EXPECT_EQ(ids_of(call_json("GET", by_ids)), (std::vector<std::string>{late, early}));
  call_json("POST", "/_sim/config", R"({"updated_after_mode":"exclusive"})");
  EXPECT_EQ(ids_of(call_json("GET", by_ids)), (std::vector<std::string>{late}));
  call_json("POST", "/_sim/config", R"({"updated_after_mode":"ignored"})");
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?updated_after=99999999999")),
            (std::vector<std::string>{late, early}));
  call_json("POST", "/_sim/config", R"({"updated_after_mode":"rejected-with-ids"})");
  EXPECT_EQ(call("GET", by_ids).status, 422);
  // Either parameter alone is still fine.
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?updated_after=" + stamp)),
            (std::vector<std::string>{late, early}));
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?session_ids=" + late)),
            (std::vector<std::string>{late}));
  EXPECT_EQ(call_json("GET", "/_sim/config").at("updated_after_mode"), "rejected-with-ids");
  EXPECT_EQ(call("POST", "/_sim/config", R"({"updated_after_mode":"sometimes"})").status, 400);
}

TEST_F(WorldTest, TotalModes) {
  make({.total_mode = TotalMode::never});
  create("a");
  EXPECT_TRUE(call_json("GET", kSessions).at("total").is_null());
  make({.total_mode = TotalMode::random});
  create("a");
  int nulls = 0;
  for (int i = 0; i < 100; ++i) {
    const auto total = call_json("GET", kSessions).at("total");
    if (total.is_null()) ++nulls;
    else EXPECT_EQ(total, 1);
  }
  EXPECT_GT(nulls, 20);
  EXPECT_LT(nulls, 80);
}

TEST_F(WorldTest, RateLimitInSecondsMode) {
  make({.rate_limit_rpm = 60, .rate_limit_burst = 2});
  EXPECT_EQ(call("GET", kSessions).status, 200);
  EXPECT_EQ(call("GET", kSessions).status, 200);
  const auto limited = call("GET", kSessions);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(json::parse(limited.body).at("detail"), "Rate limit exceeded. Please retry later.");
  ASSERT_EQ(limited.headers.size(), 1u);
  EXPECT_EQ(limited.headers[0], (std::pair<std::string, std::string>{"Retry-After", "1"}));
  // Another key has its own bucket; admin endpoints are never limited.
  EXPECT_EQ(call("GET", kSessions, {}, "Bearer cog_other").status, 200);
  EXPECT_EQ(call("GET", "/_sim/stats").status, 200);
  now += 1000;
  EXPECT_EQ(call("GET", kSessions).status, 200);
  EXPECT_EQ(stats().at("rate_limited_total"), 1);
}

TEST_F(WorldTest, RetryAfterHeadersPerMode) {
  make({.rate_limit_rpm = 30, .rate_limit_burst = 1, .retry_after_mode = RetryAfterMode::date});
  call("GET", kSessions);
  auto limited = call("GET", kSessions);
  ASSERT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers.at(0).first, "Retry-After");
  EXPECT_EQ(limited.headers.at(0).second, http_date(kT0 + 2000));

  make({.rate_limit_rpm = 30, .rate_limit_burst = 1, .retry_after_mode = RetryAfterMode::ms});
  call("GET", kSessions);
  limited = call("GET", kSessions);
  EXPECT_EQ(limited.headers.at(0), (std::pair<std::string, std::string>{"retry-after-ms", "2000"}));

  make({.rate_limit_rpm = 30, .rate_limit_burst = 1, .retry_after_mode = RetryAfterMode::none});
  call("GET", kSessions);
  limited = call("GET", kSessions);
  EXPECT_EQ(limited.status, 429);
  EXPECT_TRUE(limited.headers.empty());
}

TEST_F(WorldTest, EarlyRequestsAfter429CountOutsideTheGrace) {
  make({.rate_limit_rpm = 60, .rate_limit_burst = 1});
  call("GET", kSessions);
  ASSERT_EQ(call("GET", kSessions).status, 429);  // Retry-After: 1, window [t, t+1000)
  now += 30;                                         // in flight when the 429 left: forgiven
  ASSERT_EQ(call("GET", kSessions).status, 429);     // restarts the window at t+30
  EXPECT_EQ(stats().at("early_requests_after_429"), 0);
  now += 100;                                        // ignored the advice
  call("GET", kSessions);
  EXPECT_EQ(stats().at("early_requests_after_429"), 1);
  now += 2000;                                       // waited long enough
  EXPECT_EQ(call("GET", kSessions).status, 200);
  EXPECT_EQ(stats().at("early_requests_after_429"), 1);
}

TEST_F(WorldTest, NoEarlyCountWithoutAnAdvertisedWindow) {
  make({.rate_limit_rpm = 60, .rate_limit_burst = 1, .retry_after_mode = RetryAfterMode::none});
  call("GET", kSessions);
  call("GET", kSessions);
  now += 200;
  call("GET", kSessions);
  EXPECT_EQ(stats().at("early_requests_after_429"), 0);
}

TEST_F(WorldTest, ConcurrencyCapCountsActiveSessionsPerOrg) {
  make({.time_factor = 0.01, .orgs = {"org-demo", "org-b"}, .max_concurrent_sessions = 2});
  create("[sim:hold]");
  const auto ending = create("[sim:error]");
  const auto capped = call("POST", kSessions, R"({"prompt":"third"})");
  EXPECT_EQ(capped.status, 429);
  EXPECT_EQ(json::parse(capped.body).at("detail"),
            "You have 2 sessions running, the most your plan allows at once.");
  EXPECT_TRUE(capped.headers.empty());
  EXPECT_EQ(call("POST", "/v3/organizations/org-b/sessions", R"({"prompt":"[sim:hold]"})").status, 200);
  advance_s(1);  // the error session is no longer active
  EXPECT_EQ(status_of(ending), "error");
  EXPECT_EQ(call("POST", kSessions, R"({"prompt":"third"})").status, 200);
  const auto s = stats();
  EXPECT_EQ(s.at("concurrency_limited_total"), 1);
  EXPECT_EQ(s.at("rate_limited_total"), 0);
  EXPECT_EQ(s.at("active_sessions"), 3);
}

std::vector<int> fault_trace(std::uint64_t seed) {
  World world{WorldConfig{.seed = seed, .faults = {.http_500 = 0.3, .http_503 = 0.2, .slow = 0.3}}};
  std::vector<int> trace;
  for (int i = 0; i < 200; ++i) {
    const auto reply = world.handle({.method = "GET",
                                     .target = "/v3/organizations/org-demo/sessions",
                                     .authorization = "Bearer cog_x"},
                                    kT0);
    trace.push_back(reply.status * 10 + (reply.delay_ms > 0 ? 1 : 0));
  }
  return trace;
}

TEST(WorldFaults, DecisionsAreDeterministicBySeed) {
  const auto a = fault_trace(11);
  EXPECT_EQ(a, fault_trace(11));
  EXPECT_NE(a, fault_trace(12));
  const auto count = [&](int code) { return std::count(a.begin(), a.end(), code); };
  EXPECT_GT(count(5000), 30);   // 500
  EXPECT_GT(count(5030), 15);   // 503
  EXPECT_GT(count(2001), 20);   // slow 200
}

TEST_F(WorldTest, EachFaultKindIsCountedAndShapedAsDocumented) {
  auto only = [&](FaultRates rates) { make({.faults = rates, .slow_ms = 123}); };
  only({.reset = 1});
  auto reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.delivery, Delivery::reset);
  EXPECT_EQ(world.session_count(), 0u);
  EXPECT_EQ(stats().at("faults").at("reset"), 1);
  EXPECT_EQ(stats().at("requests").at("POST /v3/organizations/{org_id}/sessions").at("reset"), 1);

  only({.http_502_html = 1});
  reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.status, 502);
  EXPECT_EQ(reply.content_type, "text/html");
  EXPECT_NE(reply.body.find("<html>"), std::string::npos);
  EXPECT_EQ(world.session_count(), 0u);

  only({.drop_after_create = 1});
  EXPECT_EQ(call("GET", kSessions).delivery, Delivery::respond);  // creates only
  reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.delivery, Delivery::drop);
  EXPECT_EQ(world.session_count(), 1u);
  EXPECT_EQ(call("POST", kSessions, R"({})").delivery, Delivery::respond);  // 422: nothing created
  auto s = stats();
  EXPECT_EQ(s.at("faults").at("drop_after_create"), 1);
  EXPECT_EQ(s.at("requests").at("POST /v3/organizations/{org_id}/sessions").at("dropped"), 1);

  only({.slow = 1});
  reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.delay_ms, 123);
  EXPECT_EQ(world.session_count(), 1u);

  only({.garbage = 1});
  reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.status, 200);
  boost::system::error_code ec;
  json::parse(reply.body, ec);
  EXPECT_TRUE(ec);
  EXPECT_EQ(world.session_count(), 1u);
  EXPECT_EQ(stats().at("faults").at("garbage"), 1);
}

TEST_F(WorldTest, StatsCountRequestsByRouteTemplateAndStatus) {
  const auto id = create("p");
  get(id);
  get(id);
  call("GET", std::string{kSessions} + "/devin-missing");
  call("GET", "/_sim/sessions");
  const auto s = stats();
  EXPECT_EQ(s.at("requests_total"), 4);  // admin requests are not counted
  EXPECT_EQ(s.at("requests").at("GET /v3/organizations/{org_id}/sessions/{devin_id}"),
            json::parse(R"({"200":2,"404":1})"));
  EXPECT_EQ(s.at("requests").at("POST /v3/organizations/{org_id}/sessions").at("200"), 1);
  EXPECT_EQ(s.at("sessions_by_status").at("new"), 1);
  EXPECT_EQ(s.at("sessions_by_status").at("exit"), 0);
  EXPECT_EQ(s.at("active_sessions"), 1);
}

TEST_F(WorldTest, AdminSessionsDeleteAndForce) {
  const auto a = create("a", {"orch-1"});
  const auto b = create("b", {"orch-1"});
  auto items = call_json("GET", "/_sim/sessions").at("items").as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].at("session_id"), json::value(a));
  EXPECT_EQ(stats().at("duplicate_tag_groups"), 1);

  call_json("DELETE", "/_sim/sessions/" + b);
  EXPECT_EQ(call("GET", std::string{kSessions} + "/" + b).status, 404);
  EXPECT_EQ(stats().at("duplicate_tag_groups"), 0);
  EXPECT_EQ(call("DELETE", "/_sim/sessions/" + b).status, 404);

  const auto forced = call_json("POST", "/_sim/sessions/" + a + "/force",
                                R"({"status":"suspended","status_detail":"payment_declined"})");
  EXPECT_EQ(forced.at("status_detail"), "payment_declined");
  advance_s(1000);
  EXPECT_EQ(get(a).at("status_detail"), "payment_declined");
  EXPECT_EQ(call("POST", "/_sim/sessions/" + a + "/force", R"({"status":"done"})").status, 400);
}

TEST_F(WorldTest, AdminConfigChangesSettingsAtRuntime) {
  auto settings = call_json("POST", "/_sim/config",
                            R"({"fault_500":1,"rate_limit_rpm":0,"retry_after_mode":"ms",
                                "max_concurrent_sessions":3,"hold_running":true})");
  EXPECT_EQ(settings.at("fault_500").to_number<double>(), 1.0);
  EXPECT_EQ(settings.at("retry_after_mode"), "ms");
  EXPECT_EQ(settings.at("max_concurrent_sessions"), 3);
  EXPECT_EQ(call("GET", kSessions).status, 500);
  EXPECT_EQ(call("POST", "/_sim/config", R"({"fault_500":2})").status, 400);
  EXPECT_EQ(call("POST", "/_sim/config", R"({"no_such_thing":1})").status, 400);
  EXPECT_EQ(call_json("GET", "/_sim/config").at("fault_500").to_number<double>(), 1.0);
  call_json("POST", "/_sim/config", R"({"fault_500":0})");
  EXPECT_EQ(call("GET", kSessions).status, 200);
}

TEST_F(WorldTest, TagsEndpoints) {
  const auto id = create("p", {"a"});
  const auto target = std::string{kSessions} + "/" + id + "/tags";
  EXPECT_EQ(call_json("POST", target, R"({"tags":["b","a"]})").at("tags"), (json::array{"a", "b"}));
  EXPECT_EQ(call_json("PUT", target, R"({"tags":["c"]})").at("tags"), (json::array{"c"}));
  EXPECT_EQ(call_json("GET", target).at("tags"), (json::array{"c"}));
  EXPECT_EQ(ids_of(call_json("GET", std::string{kSessions} + "?tags=c")), (std::vector<std::string>{id}));
  EXPECT_TRUE(ids_of(call_json("GET", std::string{kSessions} + "?tags=a")).empty());
}

TEST_F(WorldTest, EnterpriseOrganisationsAndSelf) {
  make({.orgs = {"org-main"}, .enterprise_orgs = 3, .total_mode = TotalMode::always});
  auto page = call_json("GET", "/v3/enterprise/organizations?first=2");
  EXPECT_EQ(page.at("items").at(0).at("org_id"), "org-main");
  EXPECT_EQ(page.at("items").at(1).at("org_id"), "org-e0001");
  EXPECT_TRUE(page.at("items").at(0).at("max_cycle_acu_limit").is_null());
  EXPECT_EQ(page.at("total"), 4);
  page = call_json("GET", "/v3/enterprise/organizations?first=2&after=" +
                              std::string{page.at("end_cursor").as_string()});
  EXPECT_EQ(page.at("items").at(1).at("org_id"), "org-e0003");
  EXPECT_EQ(page.at("has_next_page"), false);
  EXPECT_EQ(call("POST", "/v3/organizations/org-e0002/sessions", R"({"prompt":"p"})").status, 200);
  const auto self = call_json("GET", "/v3/self");
  EXPECT_EQ(self.at("principal_type"), "service_user");
  EXPECT_TRUE(self.at("org_id").is_null());
}

TEST_F(WorldTest, TenThousandSessionsStayCheapToLookUp) {
  make({.total_mode = TotalMode::never, .hold_running = true});
  std::vector<std::string> ids;
  for (int i = 0; i < 10'000; ++i) ids.push_back(create("p"));
  std::string query = std::string{kSessions} + "?first=200";
  for (int i = 0; i < 200; ++i) query += "&session_ids=" + ids[static_cast<std::size_t>(i * 37)];
  const auto page = call_json("GET", query);
  EXPECT_EQ(page.at("items").as_array().size(), 200u);
  EXPECT_EQ(page.at("items").at(0).at("session_id"), json::value(ids[199 * 37]));
}


// ---------------------------------------------------------------------------------------------
// Reference §12: list lag, new devin_mode values, resumable, children, the user quota, waits
// announced by fault answers, /v3/self.

TEST_F(WorldTest, ListLagHidesANewSessionFromEveryListButNotFromGet) {
  make({.total_mode = TotalMode::always, .list_lag_ms = 4000});
  const auto id = create("p", {"orch-lag"});
  EXPECT_EQ(get(id).at("session_id"), json::value(id));
  const std::string base{kSessions};
  for (const auto& target : {base, base + "?tags=orch-lag", base + "?session_ids=" + id,
                             base + "?created_after=0"}) {
    const auto page = call_json("GET", target);
    EXPECT_TRUE(ids_of(page).empty()) << target;
    EXPECT_EQ(page.at("total"), 0) << target;
  }
  advance_s(3.9);
  EXPECT_TRUE(ids_of(call_json("GET", base + "?tags=orch-lag")).empty());
  advance_s(0.1);
  for (const auto& target : {base, base + "?tags=orch-lag", base + "?session_ids=" + id}) {
    const auto page = call_json("GET", target);
    EXPECT_EQ(ids_of(page), std::vector<std::string>{id}) << target;
    EXPECT_EQ(page.at("total"), 1) << target;
  }
}

TEST_F(WorldTest, DevinModeTakesTheKnownValuesAndRefusesOthersWith422) {
  for (const auto* mode : {"normal", "fast", "lite", "ultra", "fusion"}) {
    EXPECT_EQ(call("POST", kSessions,
                   std::string{R"({"prompt":"p","devin_mode":")"} + mode + "\"}")
                  .status,
              200)
        << mode;
  }
  const auto refused = call("POST", kSessions, R"({"prompt":"p","devin_mode":"turbo"})");
  ASSERT_EQ(refused.status, 422);
  const auto error = json::parse(refused.body).at("detail").at(0);
  EXPECT_EQ(error.at("loc"), (json::array{"body", "devin_mode"}));
  EXPECT_EQ(error.at("msg"), "Input should be 'normal', 'fast', 'lite', 'ultra' or 'fusion'");
  EXPECT_EQ(error.at("type"), "enum");
  EXPECT_EQ(world.session_count(), 5u);
}

TEST_F(WorldTest, ResumableIsValidatedStoredAndKeepsAStoppedSessionAsleep) {
  const auto bad = call("POST", kSessions, R"({"prompt":"p","resumable":"yes"})");
  ASSERT_EQ(bad.status, 422);
  EXPECT_EQ(json::parse(bad.body).at("detail").at(0).at("loc"), (json::array{"body", "resumable"}));
  EXPECT_EQ(json::parse(bad.body).at("detail").at(0).at("type"), "bool_type");

  const auto created =
      call_json("POST", kSessions, R"({"prompt":"[sim:finished]","resumable":false})");
  EXPECT_FALSE(created.as_object().contains("resumable"));  // not part of SessionResponse
  const std::string disposable{created.at("session_id").as_string()};
  const std::string keep{
      call_json("POST", kSessions, R"({"prompt":"[sim:finished]","resumable":true})")
          .at("session_id")
          .as_string()};
  const auto plain = create("[sim:finished]");
  const auto items = call_json("GET", "/_sim/sessions").at("items").as_array();
  EXPECT_EQ(items.at(0).at("resumable"), false);
  EXPECT_EQ(items.at(1).at("resumable"), true);
  EXPECT_TRUE(items.at(2).at("resumable").is_null());

  advance_s(60);
  ASSERT_EQ(status_of(disposable), "suspended");
  const auto refused = call("POST", std::string{kSessions} + "/" + disposable + "/messages",
                            R"({"message":"more"})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(json::parse(refused.body).at("detail"), "Session is not resumable");
  for (const auto& id : {keep, plain}) {
    EXPECT_EQ(call_json("POST", std::string{kSessions} + "/" + id + "/messages",
                        R"({"message":"more"})")
                  .at("status"),
              "resuming");
  }
}

TEST_F(WorldTest, ChildPlaybookSpawnsChildrenThatOutliveTheirParent) {
  make({.total_mode = TotalMode::always, .child_sessions = 2});
  const auto parent = call_json(
      "POST", kSessions,
      R"({"prompt":"[sim:hold]","tags":["orch-job"],"child_playbook_id":"playbook-kid"})");
  const std::string parent_id{parent.at("session_id").as_string()};
  EXPECT_TRUE(parent.at("parent_session_id").is_null());
  const auto& kids = parent.at("child_session_ids").as_array();
  ASSERT_EQ(kids.size(), 2u);
  for (const auto& kid : kids) {
    const auto child = get(std::string{kid.as_string()});
    EXPECT_EQ(child.at("parent_session_id"), json::value(parent_id));
    EXPECT_TRUE(child.at("child_session_ids").is_null());
    EXPECT_EQ(child.at("playbook_id"), "playbook-kid");
    EXPECT_EQ(child.at("tags"), (json::array{"orch-job"}));
  }
  // A session without children and a plain create stay as before.
  EXPECT_TRUE(call_json("POST", kSessions, R"({"prompt":"x"})").at("child_session_ids").is_null());
  // A tag lookup sees the children beside the parent; they are not duplicates of it.
  EXPECT_EQ(call_json("GET", std::string{kSessions} + "?tags=orch-job").at("total"), 3);
  auto s = stats();
  EXPECT_EQ(s.at("sessions_created"), 2);
  EXPECT_EQ(s.at("child_sessions_created"), 2);
  EXPECT_EQ(s.at("duplicate_tag_groups"), 0);

  advance_s(20);
  const std::string kid{kids.at(0).as_string()};
  const double child_acus = get(kid).at("acus_consumed").to_number<double>();
  EXPECT_GT(child_acus, 0.1);
  // Each session reports only its own ACUs: the parent's are not the family's sum.
  EXPECT_DOUBLE_EQ(get(parent_id).at("acus_consumed").to_number<double>(), child_acus);

  call_json("DELETE", std::string{kSessions} + "/" + parent_id);
  EXPECT_EQ(status_of(parent_id), "exit");
  advance_s(5);
  EXPECT_EQ(status_of(kid), "running");  // not terminated with its parent
  EXPECT_GT(get(kid).at("acus_consumed").to_number<double>(), child_acus);
}

TEST_F(WorldTest, UserQuotaSuspendsNewSessionsOfThatUserOnly) {
  make({.total_mode = TotalMode::always, .user_acu_quota = 0.2});
  auto create_as = [&](std::string_view user) {
    json::object body{{"prompt", "[sim:hold]"}};
    if (!user.empty()) body["create_as_user_id"] = user;
    return std::string{
        call_json("POST", kSessions, json::serialize(body)).at("session_id").as_string()};
  };
  const auto first = create_as("user-a");
  advance_s(30);  // 7 s to start, then 23 s running: 0.23 ACU, past the quota
  ASSERT_GT(get(first).at("acus_consumed").to_number<double>(), 0.2);
  const auto over = create_as("user-a");
  const auto other = create_as("user-b");
  const auto unnamed = create_as("");
  EXPECT_EQ(get(over).at("status"), "new");
  advance_s(8);
  const auto suspended = get(over);
  EXPECT_EQ(suspended.at("status"), "suspended");
  EXPECT_EQ(suspended.at("status_detail"), "user_usage_limit_exceeded");
  EXPECT_EQ(suspended.at("acus_consumed"), 0);
  EXPECT_EQ(status_of(other), "running");
  EXPECT_EQ(status_of(unnamed), "running");
  EXPECT_EQ(status_of(first), "running");  // only new sessions are checked
}

TEST_F(WorldTest, FaultAnswersAnnounceRetryAfterAndEarlyRequestsAreCounted) {
  make({.faults = {.http_503 = 1}, .fault_retry_after_ms = 2000});
  auto reply = call("GET", kSessions);
  ASSERT_EQ(reply.status, 503);
  ASSERT_EQ(reply.headers.size(), 1u);
  EXPECT_EQ(reply.headers[0], (std::pair<std::string, std::string>{"Retry-After", "2"}));
  now += 20;  // in flight when the 503 left: forgiven, and it announces a window of its own
  call("GET", kSessions);
  EXPECT_EQ(stats().at("early_requests_in_retry_after"), 0);
  now += 100;  // ignored the advice
  call("GET", kSessions);
  auto s = stats();
  EXPECT_EQ(s.at("early_requests_in_retry_after"), 1);
  EXPECT_EQ(s.at("early_requests_after_429"), 0);  // that counter is for rate-limit 429s
  EXPECT_EQ(s.at("retry_after_windows"), 3);
  call_json("POST", "/_sim/config", R"({"fault_503":0})");
  now += 2000;  // waited
  EXPECT_EQ(call("GET", kSessions).status, 200);
  EXPECT_EQ(stats().at("early_requests_in_retry_after"), 1);

  make({.faults = {.http_500 = 1}, .fault_retry_after_ms = 1500,
        .fault_retry_after_mode = RetryAfterMode::both});
  reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.headers, (std::vector<std::pair<std::string, std::string>>{
                               {"Retry-After", "2"}, {"retry-after-ms", "1500"}}));
  EXPECT_EQ(world.session_count(), 0u);

  make({.faults = {.http_503 = 1}});  // no wait configured: no header, no window
  reply = call("GET", kSessions);
  EXPECT_TRUE(reply.headers.empty());
  now += 100;
  call("GET", kSessions);
  EXPECT_EQ(stats().at("early_requests_in_retry_after"), 0);
  EXPECT_EQ(stats().at("retry_after_windows"), 0);
}

TEST_F(WorldTest, Fault429IsAnsweredWithoutProcessing) {
  make({.faults = {.http_429 = 1}, .fault_retry_after_ms = 700,
        .fault_retry_after_mode = RetryAfterMode::ms});
  const auto reply = call("POST", kSessions, R"({"prompt":"p"})");
  EXPECT_EQ(reply.status, 429);
  EXPECT_EQ(reply.headers.at(0), (std::pair<std::string, std::string>{"retry-after-ms", "700"}));
  EXPECT_EQ(world.session_count(), 0u);
  const auto s = stats();
  EXPECT_EQ(s.at("faults").at("429"), 1);
  EXPECT_EQ(s.at("rate_limited_total"), 0);
  // Rate-limited answers can announce both headers too.
  EXPECT_EQ(call_json("POST", "/_sim/config", R"({"retry_after_mode":"both","fault_429":0})")
                .at("retry_after_mode"),
            "both");
}

TEST(WorldFaults, The429FaultLeavesOlderSeedsDecisionsAlone) {
  auto trace = [](double rate_429) {
    World world{WorldConfig{.seed = 5, .faults = {.http_500 = 0.3, .http_429 = rate_429}}};
    std::vector<int> statuses;
    for (int i = 0; i < 100; ++i) {
      statuses.push_back(world
                             .handle({.method = "GET",
                                      .target = "/v3/organizations/org-demo/sessions",
                                      .authorization = "Bearer cog_x"},
                                     kT0)
                             .status);
    }
    return statuses;
  };
  const auto without = trace(0.0);
  const auto with = trace(0.5);
  for (std::size_t i = 0; i < without.size(); ++i) {
    if (without[i] == 500) {
      EXPECT_EQ(with[i], 500) << i;  // 500s are decided first, and stay put
    }
  }
  EXPECT_GT(std::count(with.begin(), with.end(), 429), 15);
}

TEST_F(WorldTest, SelfAnswersThePrincipalForAWorkingKeyOnly) {
  make({.api_key = "cog_right"});
  const auto ok = call("GET", "/v3/self", {}, "Bearer cog_right");
  ASSERT_EQ(ok.status, 200);
  const auto self = json::parse(ok.body);
  EXPECT_EQ(self.at("principal_type"), "service_user");
  EXPECT_EQ(self.at("service_user_id"), "svc-sim");
  EXPECT_EQ(self.at("org_id"), "org-demo");
  EXPECT_EQ(call("GET", "/v3/self", {}, "Bearer cog_wrong").status, 401);
  EXPECT_EQ(call("GET", "/v3/self", {}, "").status, 401);
  EXPECT_EQ(call("GET", "/v3beta1/self", {}, "Bearer cog_right").status, 200);
}

}  // namespace
}  // namespace devin_orch::sim
