// The dashboard as a function from request to response over a real SQLite store: routing, the
// JSON API (the same answers as the CLI, writes only with the token, bad input stores nothing),
// the pages (escaped text, filters) and the forms (session cookie and CSRF token required).
#include "devin_orch/app/dashboard/dashboard.hpp"

#include "devin_orch/app/cli/job_views.hpp"
#include "devin_orch/app/dashboard/request_parts.hpp"
#include "devin_orch/store/sqlite/sqlite_store.hpp"
#include "support/process.hpp"

#include <boost/json.hpp>

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devin_orch::app::dashboard {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
namespace json = boost::json;

constexpr std::string_view kToken = "t0ken-for-tests";
constexpr std::string_view kHostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";

class DashboardTest : public ::testing::Test {
 protected:
  DashboardTest() {
    auto opened = store::SqliteStore::open(store::StoreOptions{.path = dir_.file("orch.db")});
    if (!opened) throw std::runtime_error("cannot open the test database");
    store_ = std::move(*opened);
    config_.api.org_id = "org-demo";
  }

  Dashboard make(std::optional<std::string> token = std::string{kToken}) {
    return Dashboard{*store_, &store_->outbox(), config_, WebAuth{std::move(token), "secret"},
                     [this] { return now_; }};
  }

  server::HttpResponse call(Dashboard& dashboard, std::string method, std::string target,
                            std::string body = {},
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    return dashboard.handle(server::HttpRequest{std::move(method), std::move(target),
                                                std::move(headers), std::move(body)});
  }
  static std::pair<std::string, std::string> bearer(std::string_view token) {
    return {"authorization", "Bearer " + std::string{token}};
  }
  static std::string header(const server::HttpResponse& response, std::string_view name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return {};
  }

  void add(const std::string& key, std::vector<std::string> tags = {},
           std::optional<std::string> org = std::nullopt, core::Duration age = 1h) {
    ASSERT_TRUE(store_->add_job(
        core::JobDefinition{.key = key, .org_id = std::move(org),
                            .spec = {.prompt = "Task " + key, .tags = std::move(tags)}},
        "test", now_ - age));
  }
  std::size_t job_count() {
    const auto jobs = store_->all_jobs();
    return jobs ? jobs->size() : 0;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::SqliteStore> store_;
  Config config_;
  core::TimePoint now_ = core::TimePoint{std::chrono::milliseconds{1'800'000'000'000}};
};

TEST_F(DashboardTest, ListsJobsWithTheFiltersOfLs) {
  add("alpha", {"ci"});
  add("beta", {"nightly"}, "org-b");
  ASSERT_TRUE(store_->request_cancel("beta", false, now_));
  auto dashboard = make();
  auto all = call(dashboard, "GET", "/api/v1/jobs?sort=key");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.content_type, "application/json");
  const auto rows = json::parse(all.body).as_array();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].at("key"), "alpha");
  EXPECT_EQ(rows[0].at("org_id"), "org-demo");
  EXPECT_TRUE(rows[0].as_object().contains("reason_code"));  // ls --json's row, all fields

  const auto cancelled = json::parse(call(dashboard, "GET", "/api/v1/jobs?state=cancelled").body);
  ASSERT_EQ(cancelled.as_array().size(), 1U);
  EXPECT_EQ(cancelled.as_array()[0].at("key"), "beta");
  EXPECT_EQ(json::parse(call(dashboard, "GET", "/api/v1/jobs?tag=ci").body).as_array().size(), 1U);
  EXPECT_EQ(json::parse(call(dashboard, "GET", "/api/v1/jobs?org=org-b").body).as_array().size(), 1U);
  EXPECT_EQ(json::parse(call(dashboard, "GET", "/api/v1/jobs?sort=key&reverse=true&limit=1").body)
                .as_array()[0].at("key"), "beta");

  const auto bad_state = call(dashboard, "GET", "/api/v1/jobs?state=queud");
  EXPECT_EQ(bad_state.status, 400);
  EXPECT_THAT(bad_state.body, HasSubstr("did you mean 'queued'?"));
  const auto bad_sort = call(dashboard, "GET", "/api/v1/jobs?sort=age");
  EXPECT_EQ(bad_sort.status, 400);
  EXPECT_THAT(bad_sort.body, HasSubstr("sort must be created, updated, key or state"));
  const auto unknown = call(dashboard, "GET", "/api/v1/jobs?colour=blue");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("unknown query parameter 'colour'"));
}

TEST_F(DashboardTest, ShowsOneJobAsShowJson) {
  add("a/b key");
  auto dashboard = make();
  const auto response = call(dashboard, "GET", "/api/v1/jobs/a%2Fb%20key");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = json::parse(response.body).as_object();
  EXPECT_EQ(body.at("definition").at("key"), "a/b key");
  EXPECT_EQ(body.at("definition").at("prompt"), "Task a/b key");
  EXPECT_EQ(body.at("outcome").at("state"), "queued");
  EXPECT_EQ(body.at("outcome").at("source"), "test");
  EXPECT_EQ(body.at("history").as_array().size(), 1U);
  const auto missing = call(dashboard, "GET", "/api/v1/jobs/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("no job has the key 'nope'"));
}

TEST_F(DashboardTest, EnqueuesThroughTheSameIntakeAsTheCli) {
  auto dashboard = make();
  const std::string job = R"({"key":"http-1","prompt":"Fix it","tags":["api"]})";
  const auto added = call(dashboard, "POST", "/api/v1/jobs", job, {bearer(kToken)});
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(json::parse(added.body), (json::value{{"key", "http-1"}, {"result", "added"}}));
  const auto again = call(dashboard, "POST", "/api/v1/jobs", job, {bearer(kToken)});
  EXPECT_EQ(again.status, 200);
  EXPECT_THAT(again.body, HasSubstr("\"unchanged\""));
  const auto changed = call(dashboard, "POST", "/api/v1/jobs",
                            R"({"key":"http-1","prompt":"Fix something else"})", {bearer(kToken)});
  EXPECT_EQ(changed.status, 409);
  EXPECT_THAT(changed.body, HasSubstr("\"differs\":[\"prompt\",\"tags\"]"));
  const auto stored = store_->find("http-1");
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->definition.spec.prompt, "Fix it");
  EXPECT_EQ(*store_->job_source((*stored)->id), "http");
}

TEST_F(DashboardTest, RefusesBadWritesAndStoresNothing) {
  auto dashboard = make();
  const std::string job = R"({"key":"x","prompt":"p"})";
  const struct {
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    int status;
    std::string says;
  } cases[] = {
      {job, {}, 401, "Authorization: Bearer"},
      {job, {bearer("wrong")}, 401, "wrong bearer token"},
      {job, {{"authorization", "Basic eDp5"}}, 401, "Authorization: Bearer"},
      {R"({"key":"x","prompt":)", {bearer(kToken)}, 400, "not valid JSON"},
      {R"([1,2])", {bearer(kToken)}, 400, "expected one JSON object"},
      {R"({"key":"x","prompt":"p","colour":"blue"})", {bearer(kToken)}, 400, "colour"},
      {R"({"key":"x"})", {bearer(kToken)}, 400, "prompt"},
      {R"({"key":"","prompt":"p"})", {bearer(kToken)}, 400, "key"},
      {R"({"key":"x","prompt":"p","priority":"high"})", {bearer(kToken)}, 400, "priority"},
      {std::string(kMaxJobBodyBytes + 1, ' '), {bearer(kToken)}, 413, "too large"},
  };
  for (const auto& c : cases) {
    const auto response = call(dashboard, "POST", "/api/v1/jobs", c.body, c.headers);
    EXPECT_EQ(response.status, c.status) << c.body.substr(0, 80);
    EXPECT_EQ(response.content_type, "application/json");
    EXPECT_THAT(response.body, HasSubstr(c.says)) << c.body.substr(0, 80);
    EXPECT_NO_THROW((void)json::parse(response.body).at("error").as_string());
  }
  EXPECT_EQ(job_count(), 0U);

  auto read_only = make(std::nullopt);
  const auto refused = call(read_only, "POST", "/api/v1/jobs", job, {bearer(kToken)});
  EXPECT_EQ(refused.status, 403);
  EXPECT_THAT(refused.body, HasSubstr("no dashboard.token_file"));
  EXPECT_EQ(job_count(), 0U);
  // The listener's own refusals (a body over its limit) are JSON errors too.
  const auto rejected = Dashboard::rejected(413, "Payload Too Large");
  EXPECT_EQ(rejected.content_type, "application/json");
  EXPECT_THAT(rejected.body, HasSubstr("too large"));
}

// The daemon reads a job's attachments when their upload is due: a file this process cannot
// use, or one over attachments.max_bytes, is refused at once with the path and the reason.
TEST_F(DashboardTest, AnAttachmentMustBeAUsableFileWithinTheConfiguredLimit) {
  config_.attachments.max_bytes = 16;
  ::mkdir(dir_.file("files").c_str(), 0755);
  testing::write_file(dir_.file("files/small.txt"), "sixteen bytes ok");
  testing::write_file(dir_.file("files/large.txt"), "seventeen bytes!!");
  auto dashboard = make();
  const auto post = [&](const std::string& key, const std::string& path) {
    const json::value job{{"key", key}, {"prompt", "p"}, {"attachments", json::array{path.c_str()}}};
    return call(dashboard, "POST", "/api/v1/jobs", json::serialize(job), {bearer(kToken)});
  };
  const struct {
    std::string path;
    std::string says;
  } refused[] = {
      {dir_.file("files/large.txt"), "16"},
      {dir_.file("files/gone.txt"), dir_.file("files/gone.txt")},
      {dir_.file("files"), "not a file"},
      {"files/small.txt", "absolute"},
  };
  for (const auto& c : refused) {
    const auto response = post("refused", c.path);
    EXPECT_EQ(response.status, 400) << c.path;
    EXPECT_THAT(response.body, HasSubstr("attachments")) << c.path;
    EXPECT_THAT(response.body, HasSubstr(c.says)) << response.body;
  }
  EXPECT_EQ(job_count(), 0U);
  const auto added = post("attached", dir_.file("files/small.txt"));
  ASSERT_EQ(added.status, 201) << added.body;
  const auto stored = store_->find("attached");
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->definition.spec.attachments,
            std::vector<std::string>{dir_.file("files/small.txt")});
}

TEST_F(DashboardTest, CancelsAndRetriesAsTheCliDoes) {
  add("job-1");
  auto dashboard = make();
  EXPECT_EQ(call(dashboard, "POST", "/api/v1/jobs/job-1/cancel").status, 401);
  EXPECT_EQ((*store_->find("job-1"))->state, core::JobState::queued);
  const auto cancelled = call(dashboard, "POST", "/api/v1/jobs/job-1/cancel", "", {bearer(kToken)});
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_THAT(cancelled.body, HasSubstr("\"cancelled\""));
  EXPECT_EQ(call(dashboard, "POST", "/api/v1/jobs/job-1/cancel", "", {bearer(kToken)}).status, 409);
  const auto retried = call(dashboard, "POST", "/api/v1/jobs/job-1/retry", "", {bearer(kToken)});
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(json::parse(retried.body).at("generation"), 1);
  EXPECT_EQ((*store_->find("job-1"))->state, core::JobState::queued);
  EXPECT_EQ(call(dashboard, "POST", "/api/v1/jobs/job-1/retry", "", {bearer(kToken)}).status, 409);
  EXPECT_EQ(call(dashboard, "POST", "/api/v1/jobs/nope/retry", "", {bearer(kToken)}).status, 404);
}

TEST_F(DashboardTest, RoutesUnknownPathsAndMethods) {
  auto dashboard = make();
  EXPECT_EQ(call(dashboard, "GET", "/api/v1/nothing").status, 404);
  const auto wrong = call(dashboard, "DELETE", "/api/v1/jobs");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(header(wrong, "Allow"), "GET, POST");
  EXPECT_EQ(call(dashboard, "GET", "/api/v1/jobs/x/cancel").status, 405);
  EXPECT_EQ(call(dashboard, "GET", "/jobs/%zz").status, 400);
  EXPECT_EQ(call(dashboard, "GET", "/nowhere").status, 404);
  const auto openapi = call(dashboard, "GET", "/api/v1/openapi.json");
  ASSERT_EQ(openapi.status, 200);
  const auto document = json::parse(openapi.body);
  EXPECT_EQ(document.at("openapi"), "3.0.3");
  EXPECT_TRUE(document.at("paths").as_object().contains("/jobs/{key}/retry"));
  EXPECT_EQ(call(dashboard, "GET", "/assets/dashboard.css").content_type, "text/css; charset=utf-8");
  // Every answer forbids inline scripts and framing.
  EXPECT_THAT(header(call(dashboard, "GET", "/"), "Content-Security-Policy"),
              HasSubstr("script-src 'self'"));
}

// A queued job of a full concurrency group says why it waits, on the job list as in `ls`.
TEST_F(DashboardTest, AJobOfAFullConcurrencyGroupSaysWhyItWaits) {
  config_.concurrency = {core::ConcurrencyLimit{.pattern = "repo:*", .max_active = 1}};
  for (const char* key : {"first", "second"}) {
    ASSERT_TRUE(store_->add_job(
        core::JobDefinition{.key = key,
                            .spec = {.prompt = "p", .concurrency_key = std::string{"repo:a"}}},
        "test", now_ - 1h));
  }
  const auto first = store_->find("first");
  ASSERT_TRUE(first && *first);
  const std::int64_t id = (*first)->id;
  ASSERT_TRUE(store_->commit_intent(id, 1, core::creation_tag("first", 0), 1, now_ - 30min));
  ASSERT_TRUE(store_->commit_session(id, core::Session{.session_id = "s-1", .status = "running"},
                                     false, now_ - 30min));
  auto dashboard = make();
  const auto page = call(dashboard, "GET", "/jobs?state=queued");
  ASSERT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("second"));
  EXPECT_THAT(page.body, HasSubstr("concurrency:repo:a 1/1 active, waiting for a place"))
      << page.body;
  const auto rows = json::parse(call(dashboard, "GET", "/api/v1/jobs?state=queued").body);
  ASSERT_EQ(rows.as_array().size(), 1U);
  EXPECT_EQ(rows.at(0).at("reason_code"), "concurrency_group");
}

TEST_F(DashboardTest, PagesShowJobTextOnlyAsText) {
  ASSERT_TRUE(store_->add_job(
      core::JobDefinition{.key = "evil\"><b>key",
                          .spec = {.prompt = std::string{kHostile},
                                   .title = std::string{kHostile},
                                   .tags = {std::string{kHostile}}}},
      "test", now_ - 1h));
  auto dashboard = make();
  for (const std::string& target : std::vector<std::string>{
           "/", "/jobs", "/jobs?q=evil", "/jobs/" + percent_encode("evil\"><b>key")}) {
    const auto page = call(dashboard, "GET", target);
    ASSERT_EQ(page.status, 200) << target;
    EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
    EXPECT_THAT(page.body, Not(HasSubstr("<script>alert"))) << target;
    EXPECT_THAT(page.body, Not(HasSubstr("<img"))) << target;
    EXPECT_THAT(page.body, Not(HasSubstr("<b>key"))) << target;
  }
  const auto job = call(dashboard, "GET", "/jobs/" + percent_encode("evil\"><b>key"));
  EXPECT_THAT(job.body, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img"));
}

TEST_F(DashboardTest, PagesOverviewListAndJob) {
  add("alpha", {"ci"}, std::nullopt, 3h);
  add("beta", {}, "org-b", 2h);
  add("gamma", {}, std::nullopt, 1h);
  ASSERT_TRUE(store_->request_cancel("gamma", false, now_));
  ASSERT_TRUE(store_->pause_org("org-b", "quota review", "cli", now_));
  auto dashboard = make();
  const auto overview = call(dashboard, "GET", "/");
  EXPECT_THAT(overview.body, HasSubstr("<td>org-b</td>"));
  EXPECT_THAT(overview.body, HasSubstr("quota review"));
  EXPECT_THAT(overview.body, HasSubstr("href=\"/jobs/alpha\">alpha</a> since"));  // oldest waiting
  EXPECT_THAT(overview.body, HasSubstr("Sign in to act"));
  EXPECT_THAT(overview.body, Not(HasSubstr("name=\"csrf\"")));  // no forms before signing in

  const auto queued = call(dashboard, "GET", "/jobs?state=queued&org=org-demo");
  EXPECT_THAT(queued.body, HasSubstr("<p id=\"count\">1 job</p>"));
  EXPECT_THAT(queued.body, HasSubstr(">alpha</a>"));
  const auto text = call(dashboard, "GET", "/jobs?q=AMM");
  EXPECT_THAT(text.body, HasSubstr(">gamma</a>"));
  EXPECT_THAT(text.body, Not(HasSubstr(">alpha</a>")));
  EXPECT_EQ(call(dashboard, "GET", "/jobs?state=nope").status, 400);

  const auto job = call(dashboard, "GET", "/jobs/gamma");
  EXPECT_THAT(job.body, HasSubstr("state s-cancelled"));
  EXPECT_THAT(job.body, HasSubstr("Task gamma"));
  EXPECT_THAT(job.body, HasSubstr("id=\"history\""));
  EXPECT_EQ(call(dashboard, "GET", "/jobs/nope").status, 404);
}

TEST_F(DashboardTest, TheOverviewShowsEachOrganisationsRateBudget) {
  auto dashboard = make();
  EXPECT_THAT(call(dashboard, "GET", "/").body, Not(HasSubstr("id=\"rate\"")));  // not known

  std::vector<RateUse> gates;
  dashboard.set_rate_use([&gates] { return gates; });
  EXPECT_THAT(call(dashboard, "GET", "/").body, HasSubstr("no organisation's gate is open"));

  gates = {{.org_id = "org-demo", .ceiling_per_minute = 60, .allowed_per_minute = 60,
            .tokens = 3.7, .burst = 5, .requests_in_flight = 2},
           {.org_id = std::string{kHostile}, .ceiling_per_minute = 60, .allowed_per_minute = 30,
            .tokens = 0.2, .burst = 5, .requests_in_flight = 0}};
  const auto body = call(dashboard, "GET", "/").body;
  EXPECT_THAT(body, HasSubstr("<tr><td>org-demo</td><td class=\"n\">60</td><td class=\"n\">60"
                              "</td><td class=\"n\">3 of 5</td><td class=\"n\">2</td></tr>"));
  EXPECT_THAT(body, HasSubstr("30 (slowed by 429s)"));
  EXPECT_THAT(body, HasSubstr("0 of 5"));
  EXPECT_THAT(body, Not(HasSubstr("<script>alert(1)")));  // an org id is text too
}

TEST_F(DashboardTest, ListPagesThroughManyJobs) {
  for (int i = 0; i < 120; ++i) {
    add("job-" + std::to_string(1000 + i), {}, std::nullopt, std::chrono::minutes{200 - i});
  }
  auto dashboard = make();
  const auto first = call(dashboard, "GET", "/jobs?sort=key");
  EXPECT_THAT(first.body, HasSubstr("page 1 of 3"));
  EXPECT_THAT(first.body, HasSubstr(">job-1049</a>"));
  EXPECT_THAT(first.body, Not(HasSubstr(">job-1050</a>")));
  const auto third = call(dashboard, "GET", "/jobs?sort=key&page=3");
  EXPECT_THAT(third.body, HasSubstr(">job-1119</a>"));
  EXPECT_THAT(third.body, Not(HasSubstr(">job-1099</a>")));
  EXPECT_THAT(third.body, HasSubstr("href=\"/jobs?sort=key&amp;page=2\""));
}

TEST_F(DashboardTest, FormsNeedTheSessionCookieAndTheCsrfToken) {
  add("job-1");
  auto dashboard = make();
  const auto& auth = dashboard.auth();
  const std::pair<std::string, std::string> cookie{"cookie", "devin_orch_session=" + auth.session_value()};
  const std::string csrf = "csrf=" + auth.csrf_token();

  const auto wrong_login = call(dashboard, "POST", "/login", "token=nope");
  EXPECT_EQ(wrong_login.status, 401);
  EXPECT_EQ(header(wrong_login, "Set-Cookie"), "");
  const auto login = call(dashboard, "POST", "/login", "token=" + std::string{kToken});
  ASSERT_EQ(login.status, 303);
  EXPECT_THAT(header(login, "Set-Cookie"), HasSubstr("devin_orch_session=" + auth.session_value()));
  EXPECT_THAT(header(login, "Set-Cookie"), HasSubstr("HttpOnly; SameSite=Strict"));

  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/cancel", csrf).status, 401);  // no cookie
  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/cancel", "", {cookie}).status, 403);  // no CSRF
  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/cancel", "csrf=forged", {cookie}).status, 403);
  EXPECT_EQ((*store_->find("job-1"))->state, core::JobState::queued);

  const auto signed_in = call(dashboard, "GET", "/jobs/job-1", "", {cookie});
  EXPECT_THAT(signed_in.body, HasSubstr("value=\"" + auth.csrf_token() + "\""));
  const auto cancelled = call(dashboard, "POST", "/jobs/job-1/cancel", csrf, {cookie});
  EXPECT_EQ(cancelled.status, 303);
  EXPECT_EQ(header(cancelled, "Location"), "/jobs/job-1");
  EXPECT_EQ((*store_->find("job-1"))->state, core::JobState::cancelled);
  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/retry", csrf, {cookie}).status, 303);
  EXPECT_EQ((*store_->find("job-1"))->state, core::JobState::queued);

  EXPECT_EQ(call(dashboard, "POST", "/orgs/pause", csrf + "&org=org-x&reason=too+busy", {cookie}).status, 303);
  EXPECT_EQ(store_->paused_orgs()->at("org-x"), "too busy");
  EXPECT_EQ(call(dashboard, "POST", "/orgs/resume", csrf + "&org=org-x", {cookie}).status, 303);
  EXPECT_TRUE(store_->paused_orgs()->empty());

  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/delete", csrf, {cookie}).status, 409);  // queued
  ASSERT_TRUE(store_->request_cancel("job-1", false, now_));
  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/delete", csrf, {cookie}).status, 303);
  EXPECT_FALSE(*store_->find("job-1"));
}

// An outbox that cannot list (the PostgreSQL store's today): only its section says so.
class NoOutbox final : public store::OutboxStore {
 public:
  template <class T>
  static store::StoreResult<T> unsupported() {
    return store::Error{errc::database_error, "no outbox here"};
  }
  store::StoreResult<std::vector<store::OutboxEvent>> unrouted_events(std::size_t) override {
    return unsupported<std::vector<store::OutboxEvent>>();
  }
  store::StoreResult<void> route_event(std::int64_t, std::span<const store::DeliveryRoute>,
                                       core::TimePoint) override {
    return unsupported<void>();
  }
  store::StoreResult<std::vector<store::Delivery>> pending_deliveries(std::size_t) override {
    return unsupported<std::vector<store::Delivery>>();
  }
  store::StoreResult<void> record_attempt(const store::DeliveryAttempt&, core::TimePoint) override {
    return unsupported<void>();
  }
  store::StoreResult<store::OutboxCounts> outbox_counts() override {
    return unsupported<store::OutboxCounts>();
  }
  store::StoreResult<std::vector<store::Delivery>> list_deliveries(const store::DeliveryFilter&) override {
    return unsupported<std::vector<store::Delivery>>();
  }
  store::StoreResult<std::int64_t> retry_deliveries(std::optional<std::string>, core::TimePoint) override {
    return unsupported<std::int64_t>();
  }
  store::StoreResult<std::int64_t> prune_events(core::TimePoint) override {
    return unsupported<std::int64_t>();
  }
};

TEST_F(DashboardTest, AJobPageShowsWhetherItsEventsCanBeRead) {
  add("job-1");
  auto dashboard = make();
  EXPECT_THAT(call(dashboard, "GET", "/jobs/job-1").body, HasSubstr("No notification for this job"));
  NoOutbox outbox;
  Dashboard without{*store_, &outbox, config_, WebAuth{std::nullopt, "secret"}, [this] { return now_; }};
  const auto page = call(without, "GET", "/jobs/job-1");
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("id=\"events-unavailable\">Not available: "));
  EXPECT_THAT(page.body, HasSubstr("Task job-1"));
}

TEST_F(DashboardTest, ReadOnlyWithoutAToken) {
  add("job-1");
  auto dashboard = make(std::nullopt);
  const auto overview = call(dashboard, "GET", "/");
  EXPECT_THAT(overview.body, HasSubstr("read-only"));
  EXPECT_THAT(overview.body, Not(HasSubstr("<form method=\"post\"")));
  EXPECT_EQ(call(dashboard, "POST", "/login", "token=").status, 200);  // says there is none
  EXPECT_EQ(call(dashboard, "POST", "/jobs/job-1/cancel", "csrf=").status, 403);
  EXPECT_EQ((*store_->find("job-1"))->state, core::JobState::queued);
}

}  // namespace
}  // namespace devin_orch::app::dashboard
