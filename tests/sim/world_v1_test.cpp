// The legacy v1 routes of the World (reference §1, §3 "v1 status", §8): keys by version,
// idempotent creates, the v1 detail and list shapes, offset paging, messages, termination, and
// the same faults and limits as v3.
#include "devin_orch/sim/v1_status.hpp"
#include "devin_orch/sim/world.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <regex>

namespace devin_orch::sim {
namespace {
namespace json = boost::json;

constexpr TimeMs kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr std::string_view kV1Key = "Bearer apk_test";
constexpr std::string_view kV3Key = "Bearer cog_test";
constexpr std::string_view kV3Sessions = "/v3/organizations/org-demo/sessions";

class WorldV1Test : public ::testing::Test {
 protected:
  Reply call(std::string_view method, std::string_view target, std::string_view body = {},
             std::string_view auth = kV1Key) {
    return world.handle({.method = method, .target = target, .authorization = auth, .body = body},
                        now);
  }
  json::value call_json(std::string_view method, std::string_view target,
                        std::string_view body = {}, int expected_status = 200) {
    const auto reply = call(method, target, body);
    EXPECT_EQ(reply.status, expected_status) << method << ' ' << target << ": " << reply.body;
    return json::parse(reply.body);
  }
  json::value create(std::string_view body) { return call_json("POST", "/v1/sessions", body); }
  std::string id_of(const json::value& v) { return std::string{v.at("session_id").as_string()}; }
  json::value get(const std::string& id) { return call_json("GET", "/v1/session/" + id); }
  void advance_s(double seconds) { now += static_cast<TimeMs>(seconds * 1000); }

  TimeMs now = kT0;
  World world{WorldConfig{}};
};

TEST_F(WorldV1Test, KeysWorkOnlyOnTheirOwnVersion) {
  EXPECT_EQ(call("GET", "/v1/sessions", {}, kV1Key).status, 200);
  EXPECT_EQ(call("GET", "/v1/sessions", {}, "Bearer apk_user_abc").status, 200);
  EXPECT_EQ(call("GET", "/v1/sessions", {}, kV3Key).status, 401);
  EXPECT_EQ(call("GET", "/v1/sessions", {}, "Bearer apk_").status, 401);
  EXPECT_EQ(call("GET", "/v1/sessions", {}, "").status, 401);
  EXPECT_EQ(call("GET", std::string{kV3Sessions}, {}, kV3Key).status, 200);
  EXPECT_EQ(call("GET", std::string{kV3Sessions}, {}, kV1Key).status, 401);
  EXPECT_EQ(call("GET", "/v3/self", {}, "Bearer apk_user_abc").status, 401);
}

TEST_F(WorldV1Test, ConfiguredKeysAreCheckedPerVersion) {
  world = World{WorldConfig{.api_key = "cog_only", .v1_api_key = "apk_only"}};
  EXPECT_EQ(call("GET", "/v1/sessions", {}, "Bearer apk_only").status, 200);
  EXPECT_EQ(call("GET", "/v1/sessions", {}, "Bearer apk_other").status, 401);
  EXPECT_EQ(call("GET", "/v1/sessions", {}, "Bearer cog_only").status, 401);
  EXPECT_EQ(call("GET", std::string{kV3Sessions}, {}, "Bearer cog_only").status, 200);
  EXPECT_EQ(call("GET", std::string{kV3Sessions}, {}, "Bearer apk_only").status, 401);
}

TEST_F(WorldV1Test, CreateAnswersIdAndUrlAndIsNewSessionOnlyWhenIdempotentWasAsked) {
  const auto plain = create(R"({"prompt":"fix it","tags":["a"]})");
  const auto id = id_of(plain);
  EXPECT_TRUE(std::regex_match(id, std::regex{"devin-[0-9a-f]{32}"})) << id;
  EXPECT_EQ(plain.at("url"), json::value("https://app.devin.ai/sessions/" + id));
  EXPECT_FALSE(plain.as_object().contains("is_new_session"));
  EXPECT_EQ(plain.as_object().size(), 2u);

  const auto first = create(R"({"prompt":"fix it","tags":["x","y"],"idempotent":true})");
  EXPECT_EQ(first.at("is_new_session"), true);
  EXPECT_NE(id_of(first), id);
}

TEST_F(WorldV1Test, IdempotentCreateAnswersTheLiveSessionWithTheSamePromptAndTags) {
  const auto first = create(R"({"prompt":"p [sim:exit]","tags":["x","y"],"idempotent":true})");
  // The same prompt and tag set (order does not matter): the same session, not a new one.
  const auto again = create(R"({"prompt":"p [sim:exit]","tags":["y","x"],"idempotent":true})");
  EXPECT_EQ(id_of(again), id_of(first));
  EXPECT_EQ(again.at("is_new_session"), false);
  EXPECT_EQ(world.session_count(), 1u);

  // Another prompt or another tag set is another request.
  EXPECT_EQ(create(R"({"prompt":"q [sim:exit]","tags":["x","y"],"idempotent":true})")
                .at("is_new_session"), true);
  EXPECT_EQ(create(R"({"prompt":"p [sim:exit]","tags":["x"],"idempotent":true})")
                .at("is_new_session"), true);
  // Without the flag, a duplicate request makes a duplicate session, as on v3.
  EXPECT_NE(id_of(create(R"({"prompt":"p [sim:exit]","tags":["x","y"]})")), id_of(first));
  EXPECT_EQ(world.session_count(), 4u);

  // Once the sessions have ended (exit), the same request creates a new one.
  advance_s(100);
  const auto later = create(R"({"prompt":"p [sim:exit]","tags":["x","y"],"idempotent":true})");
  EXPECT_EQ(later.at("is_new_session"), true);
  EXPECT_NE(id_of(later), id_of(first));
}

TEST_F(WorldV1Test, CreateValidatesV1FieldsAndIgnoresV3OnlyOnes) {
  EXPECT_EQ(call("POST", "/v1/sessions", R"({})").status, 422);
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"prompt":"p","idempotent":"yes"})").status, 422);
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"prompt":"p","max_acu_limit":0})").status, 422);
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"prompt":"p","planning_mode_agency":"x"})").status,
            422);
  EXPECT_EQ(world.session_count(), 0u);
  const auto s = create(R"({"prompt":"p","create_as_user_id":"u-1","devin_mode":"fast",
                            "snapshot_id":"snap-1","unlisted":true,"title":"T"})");
  const auto detail = get(id_of(s));
  EXPECT_EQ(detail.at("snapshot_id"), "snap-1");
  EXPECT_EQ(detail.at("title"), "T");
  // The v3 view of the same session shows no user: v1 dropped create_as_user_id.
  const auto v3 = json::parse(
      call("GET", std::string{kV3Sessions} + "/" + id_of(s), {}, kV3Key).body);
  EXPECT_TRUE(v3.at("user_id").is_null());
}

TEST_F(WorldV1Test, DetailHasTheV1ShapeWithIsoTimestampsAndStatusEnum) {
  const auto id = id_of(create(R"({"prompt":"p [sim:exit]","tags":["t"],
                                   "structured_output_schema":{"type":"object"}})"));
  for (const auto* path : {"/v1/session/", "/v1/sessions/"}) {
    const auto d = call_json("GET", std::string{path} + id);
    EXPECT_EQ(d.at("session_id"), json::value(id));
    EXPECT_EQ(d.at("status_enum"), "working");
    EXPECT_EQ(d.at("status"), "new");
    EXPECT_EQ(d.at("created_at"), "2023-11-14T22:13:20.000000+00:00");
    EXPECT_EQ(d.at("updated_at"), "2023-11-14T22:13:20.000000+00:00");
    EXPECT_EQ(d.at("tags"), (json::array{"t"}));
    EXPECT_TRUE(d.at("pull_request").is_null());
    EXPECT_TRUE(d.at("messages").as_array().empty());
    EXPECT_FALSE(d.as_object().contains("status_detail"));
  }
  // new 2 + claimed 5 + working 30 s: then running/finished.
  advance_s(38);
  auto d = get(id);
  EXPECT_EQ(d.at("status_enum"), "finished");
  EXPECT_EQ(d.at("status"), "running: finished");
  EXPECT_EQ(d.at("pull_request").at("url"), "https://github.com/example/repo/pull/1");
  EXPECT_TRUE(d.at("structured_output").is_object());
  advance_s(10);
  d = get(id);
  EXPECT_EQ(d.at("status_enum"), "expired");
  EXPECT_EQ(d.at("status"), "exit");
}

TEST(V1Status, MapsTheLifecycleOntoV1sEnum) {
  EXPECT_EQ(v1_status("new", std::nullopt).status_enum, "working");
  EXPECT_EQ(v1_status("claimed", std::nullopt).status_enum, "working");
  EXPECT_EQ(v1_status("running", "working").status_enum, "working");
  EXPECT_EQ(v1_status("running", "waiting_for_approval").status_enum, "working");
  EXPECT_EQ(v1_status("running", "waiting_for_user").status_enum, "blocked");
  EXPECT_EQ(v1_status("running", "finished").status_enum, "finished");
  EXPECT_EQ(v1_status("resuming", std::nullopt).status_enum, "resume_requested");
  EXPECT_EQ(v1_status("suspended", "inactivity").status_enum, "expired");
  EXPECT_EQ(v1_status("exit", std::nullopt).status_enum, "expired");
  const auto error = v1_status("error", std::nullopt);
  EXPECT_EQ(error.status_enum, "expired");
  EXPECT_EQ(error.text, "error");
  const auto billing = v1_status("suspended", "out_of_credits");
  EXPECT_EQ(billing.status_enum, "expired");
  EXPECT_EQ(billing.text, "suspended: out_of_credits");
}

TEST_F(WorldV1Test, ListPagesByOffsetNewestFirstAndFiltersByTags) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(id_of(create(R"({"prompt":"p)" + std::to_string(i) + R"(","tags":["all",")" +
                               (i % 2 ? "odd" : "even") + R"("]})")));
  }
  auto page = call_json("GET", "/v1/sessions?limit=2&offset=0");
  ASSERT_EQ(page.at("sessions").as_array().size(), 2u);
  EXPECT_EQ(page.at("sessions").at(0).at("session_id"), json::value(ids[4]));
  EXPECT_TRUE(page.at("sessions").at(0).as_object().contains("requesting_user_email"));
  EXPECT_FALSE(page.at("sessions").at(0).as_object().contains("messages"));
  page = call_json("GET", "/v1/sessions?limit=2&offset=4");
  ASSERT_EQ(page.at("sessions").as_array().size(), 1u);
  EXPECT_EQ(page.at("sessions").at(0).at("session_id"), json::value(ids[0]));
  EXPECT_TRUE(call_json("GET", "/v1/sessions?offset=5").at("sessions").as_array().empty());

  page = call_json("GET", "/v1/sessions?tags=odd&tags=all");
  ASSERT_EQ(page.at("sessions").as_array().size(), 2u);
  EXPECT_EQ(page.at("sessions").at(0).at("session_id"), json::value(ids[3]));
  EXPECT_TRUE(call_json("GET", "/v1/sessions?user_email=a@b.c").at("sessions").as_array().empty());
  EXPECT_EQ(call("GET", "/v1/sessions?limit=0").status, 422);
  EXPECT_EQ(call("GET", "/v1/sessions?offset=-1").status, 422);
  EXPECT_EQ(call("GET", "/v1/sessions?limit=x").status, 422);
}

TEST_F(WorldV1Test, ListLagHidesNewSessionsFromTheV1ListToo) {
  world = World{WorldConfig{.list_lag_ms = 1000}};
  const auto id = id_of(create(R"({"prompt":"p","tags":["t"]})"));
  EXPECT_TRUE(call_json("GET", "/v1/sessions?tags=t").at("sessions").as_array().empty());
  EXPECT_EQ(get(id).at("session_id"), json::value(id));
  advance_s(1);
  EXPECT_EQ(call_json("GET", "/v1/sessions?tags=t").at("sessions").as_array().size(), 1u);
}

TEST_F(WorldV1Test, MessagesAndTerminationFollowTheLifecycle) {
  const auto id = id_of(create(R"({"prompt":"p [sim:waiting]"})"));
  auto reply = call("POST", "/v1/session/" + id + "/message", R"({"message":"hi"})");
  EXPECT_EQ(reply.status, 400);  // still initializing
  EXPECT_NE(reply.body.find("still initializing"), std::string::npos);
  advance_s(38);
  EXPECT_EQ(get(id).at("status_enum"), "blocked");
  reply = call("POST", "/v1/session/" + id + "/message", R"({"message":"go on"})");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "null");
  auto d = get(id);
  EXPECT_EQ(d.at("status_enum"), "working");
  ASSERT_EQ(d.at("messages").as_array().size(), 1u);
  EXPECT_EQ(d.at("messages").at(0).at("message"), "go on");
  EXPECT_EQ(call("POST", "/v1/session/" + id + "/message", R"({})").status, 422);

  const auto terminated = call_json("DELETE", "/v1/sessions/" + id);
  EXPECT_TRUE(terminated.at("detail").is_string());
  d = get(id);
  EXPECT_EQ(d.at("status_enum"), "expired");
  EXPECT_EQ(d.at("status"), "exit");
  EXPECT_EQ(call("DELETE", "/v1/session/" + id).status, 405);  // DELETE is on /sessions/ only
  EXPECT_EQ(call("GET", "/v1/session/devin-nope").status, 404);
  EXPECT_EQ(call("DELETE", "/v1/sessions/devin-nope").status, 404);
}

TEST_F(WorldV1Test, FaultsAndConcurrencyCapsApplyToV1AsToV3) {
  world = World{WorldConfig{.faults = {.drop_after_create = 1}}};
  EXPECT_EQ(call("GET", "/v1/sessions").delivery, Delivery::respond);
  auto reply = call("POST", "/v1/sessions", R"({"prompt":"p","idempotent":true})");
  EXPECT_EQ(reply.delivery, Delivery::drop);
  EXPECT_EQ(world.session_count(), 1u);
  // The retry of the same request is answered with the session the dropped answer carried;
  // the answer is dropped again, but no second session appears.
  reply = call("POST", "/v1/sessions", R"({"prompt":"p","idempotent":true})");
  EXPECT_EQ(world.session_count(), 1u);
  auto stats = json::parse(call("GET", "/_sim/stats").body);
  EXPECT_EQ(stats.at("faults").at("drop_after_create"), 2);
  EXPECT_EQ(stats.at("requests").at("POST /v1/sessions").at("dropped"), 2);

  world = World{WorldConfig{.faults = {.http_500 = 1}}};
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"prompt":"p"})").status, 500);
  EXPECT_EQ(world.session_count(), 0u);

  world = World{WorldConfig{.faults = {.http_429 = 1}}};
  EXPECT_EQ(call("GET", "/v1/session/devin-x").status, 429);

  world = World{WorldConfig{.rate_limit_rpm = 60, .rate_limit_burst = 1}};
  EXPECT_EQ(call("GET", "/v1/sessions").status, 200);
  EXPECT_EQ(call("GET", "/v1/sessions").status, 429);

  world = World{WorldConfig{.max_concurrent_sessions = 1}};
  create(R"({"prompt":"a","idempotent":true})");
  // An idempotent repeat is answered from the existing session, never refused by the cap.
  EXPECT_EQ(create(R"({"prompt":"a","idempotent":true})").at("is_new_session"), false);
  reply = call("POST", "/v1/sessions", R"({"prompt":"b"})");
  EXPECT_EQ(reply.status, 429);
  EXPECT_NE(reply.body.find("sessions running"), std::string::npos);
}

TEST_F(WorldV1Test, V1AndV3SeeTheSameSessions) {
  const auto id = id_of(create(R"({"prompt":"p","tags":["orch-x"]})"));
  const auto v3 = json::parse(
      call("GET", std::string{kV3Sessions} + "?tags=orch-x", {}, kV3Key).body);
  ASSERT_EQ(v3.at("items").as_array().size(), 1u);
  EXPECT_EQ(v3.at("items").at(0).at("session_id"), json::value(id));
  // A second session with the creation tag counts as a duplicate, whichever API made it.
  create(R"({"prompt":"p","tags":["orch-x"]})");
  EXPECT_EQ(json::parse(call("GET", "/_sim/stats").body).at("duplicate_tag_groups"), 1);
}

}  // namespace
}  // namespace devin_orch::sim
