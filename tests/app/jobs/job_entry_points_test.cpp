// The same job through every way in (a YAML job file, `enqueue --file`, `enqueue --stdin`,
// `enqueue` flags, the HTTP API's POST /api/v1/jobs, the stored-spec decoder and a row another
// tool inserts) meets the same rule and is refused with the same reason, or accepted everywhere.
#include "devin_orch/app/cli/cli.hpp"
#include "devin_orch/app/cli/job_json.hpp"
#include "devin_orch/app/dashboard/dashboard.hpp"
#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/store/sqlite/sqlite_store.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "support/process.hpp"

#include <boost/json.hpp>
#include <sqlite3.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// 2026-01-01T00:00:00Z
constexpr std::int64_t kNowMs = 1'767'225'600'000;

std::string repeat(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

// One job, written once as an `enqueue --stdin` line; every other form is derived from it.
struct Case {
  const char* name;
  json::object job;
  std::optional<core::FieldError> expected;  // nullopt: accepted everywhere
};

// Where the stored form keeps each field (docs/queue.md): columns, the controls object, or spec.
constexpr std::array<std::string_view, 6> kControlFields{
    "on_waiting_for_user", "messages", "complete_on", "fan_out", "stall_after_ms", "stall_action"};
bool is_control(std::string_view name) {
  return std::find(kControlFields.begin(), kControlFields.end(), name) != kControlFields.end();
}
bool is_column(std::string_view name) {
  return name == "key" || name == "org_id" || name == "priority" || name == "max_attempts";
}

json::object spec_of(const json::object& job) {
  json::object spec;
  for (const auto& [name, value] : job) {
    if (!is_column(name) && !is_control(name)) spec[name] = value;
  }
  return spec;
}

// A block-style job file; each value in JSON's spelling, which is YAML's flow style.
std::string yaml_of(const json::object& job) {
  std::string text;
  for (const auto& [name, value] : job) {
    text += (text.empty() ? "- " : "  ") + std::string(name) + ": " + json::serialize(value) + "\n";
  }
  return text;
}

// The `enqueue` flags for the job, or nullopt if a field has no flag.
std::optional<std::vector<std::string>> flags_of(const json::object& job) {
  std::vector<std::string> args;
  for (const auto& [name, value] : job) {
    if (name == "key" || name == "prompt" || name == "devin_mode") {
      args.push_back(name == "devin_mode" ? "--devin-mode" : "--" + std::string(name));
      args.emplace_back(value.as_string());
    } else if (name == "child_playbook_id" || name == "concurrency_key") {
      args.push_back(name == "concurrency_key" ? "--concurrency-key" : "--child-playbook");
      args.emplace_back(value.as_string());
    } else if (name == "resumable") {
      args.push_back("--resumable");
      args.emplace_back(value.as_bool() ? "true" : "false");
    } else if (name == "stall_action") {
      args.push_back("--stall-action");
      args.emplace_back(value.as_string());
    } else if (name == "max_attempts" || name == "max_acu_limit") {
      args.push_back(name == "max_attempts" ? "--max-attempts" : "--max-acu-limit");
      args.push_back(std::to_string(value.as_int64()));
    } else {
      return std::nullopt;
    }
  }
  return args;
}

class JobEntryPoints : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"DEVIN_ORCH_DATABASE", "DEVIN_ORCH_ORG_ID", "DEVIN_ORCH_BASE_URL"}) {
      ::unsetenv(name);
    }
  }

  struct Output {
    int code = -1;
    std::string out;
    std::string err;
  };

  // `enqueue --config C args...` on a database of its own, so no run sees another's jobs.
  Output enqueue(std::vector<std::string> args, const std::string& input = "") {
    const std::string name = "run" + std::to_string(++runs_);
    const std::string config = dir_.file(name + ".yaml");
    testing::write_file(config, "api:\n  org_id: org-demo\ndatabase:\n  path: " +
                                    dir_.file(name + ".db") + "\n");
    args.insert(args.begin(), {"--config", config});
    std::istringstream in{input};
    std::ostringstream out;
    std::ostringstream err;
    Output result;
    result.code = to_int(
        run_command("enqueue", args, CommandIo{in, out, err, core::from_epoch_ms(kNowMs)}));
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  // POST /api/v1/jobs with the job as its body, on a database of its own. Returns the status,
  // the answer and the job as stored, if any.
  struct Posted {
    int status = 0;
    json::value answer;
    std::optional<core::JobRecord> stored;
  };
  Posted post(const std::string& body) {
    const std::string name = "http" + std::to_string(++runs_);
    auto opened = store::SqliteStore::open(store::StoreOptions{.path = dir_.file(name + ".db")});
    if (!opened) throw std::runtime_error("cannot open the test database");
    Config config;
    config.api.org_id = "org-demo";
    dashboard::Dashboard api{**opened, &(*opened)->outbox(), config,
                             dashboard::WebAuth{"token", "secret"},
                             [] { return core::from_epoch_ms(kNowMs); }};
    const auto response = api.handle(server::HttpRequest{
        "POST", "/api/v1/jobs", {{"authorization", "Bearer token"}}, body});
    Posted posted{response.status, json::parse(response.body), std::nullopt};
    const auto jobs = (*opened)->all_jobs();
    if (jobs && !jobs->empty()) posted.stored = jobs->front();
    return posted;
  }

  // Inserts the job as a producer would, with SQL on its own connection, then lets the store
  // claim. Returns SQLite's result code for the insert and the row as the store left it.
  struct Stored {
    int insert = SQLITE_OK;
    std::vector<core::JobRecord> claimed;
    std::optional<core::JobRecord> row;
  };
  Stored store_row(const json::object& job) {
    const std::string path = dir_.file("queue" + std::to_string(++runs_) + ".db");
    auto opened = store::SqliteStore::open(store::StoreOptions{.path = path});
    if (!opened) throw std::runtime_error("cannot open the test database");
    json::object controls;
    for (const auto& [name, value] : job) {
      if (is_control(name)) controls[name] = value;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open");
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO jobs (key, spec, max_attempts, controls, source) "
                       "VALUES (?1, ?2, ?3, ?4, 'producer')",
                       -1, &insert, nullptr);
    const std::string key{job.at("key").as_string()};
    const std::string spec = json::serialize(spec_of(job));
    const std::string controls_text = json::serialize(controls);
    sqlite3_bind_text(insert, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 2, spec.data(), static_cast<int>(spec.size()), SQLITE_TRANSIENT);
    if (const auto* attempts = job.if_contains("max_attempts")) {
      sqlite3_bind_int64(insert, 3, attempts->as_int64());
    }
    if (!controls.empty()) {
      sqlite3_bind_text(insert, 4, controls_text.data(), static_cast<int>(controls_text.size()),
                        SQLITE_TRANSIENT);
    }
    Stored stored;
    stored.insert = sqlite3_step(insert) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    if (stored.insert != SQLITE_OK) return stored;
    auto& queue = **opened;
    stored.claimed = queue.claimable(core::from_epoch_ms(kNowMs), 10).value();
    stored.row = queue.find(key).value();
    return stored;
  }

  testing::TempDir dir_;
  int runs_ = 0;
};

std::vector<Case> cases() {
  const json::object base{{"key", "job-1"}, {"prompt", "Fix the flaky test"}};
  const auto with = [&](json::object changes) {
    json::object job = base;
    for (auto& [name, value] : changes) job[name] = value;
    return job;
  };
  return {
      {"a 300-character session-secret key",
       with({{"session_secrets", json::array{json::object{{"key", std::string(300, 's')},
                                                          {"from_env", "TOKEN"}}}}}),
       core::FieldError{"session_secrets[0].key", "is 300 characters; the limit is 256"}},
      {"a 513-character job key", with({{"key", std::string(513, 'k')}}),
       core::FieldError{"key", "is 513 characters; the limit is 512"}},
      {"a 512-character job key of two-byte characters", with({{"key", repeat("\xC3\xBC", 512)}}),
       std::nullopt},
      {"an empty prompt", with({{"prompt", ""}}),
       core::FieldError{"prompt", "must not be empty or only whitespace"}},
      {"a blank prompt", with({{"prompt", " \n "}}),
       core::FieldError{"prompt", "must not be empty or only whitespace"}},
      {"max_attempts 0", with({{"max_attempts", 0}}),
       core::FieldError{"max_attempts", "must be between 1 and 1000, got 0"}},
      {"max_attempts 1001", with({{"max_attempts", 1001}}),
       core::FieldError{"max_attempts", "must be between 1 and 1000, got 1001"}},
      {"max_attempts 1000", with({{"max_attempts", 1000}}), std::nullopt},
      {"max_acu_limit 0", with({{"max_acu_limit", 0}}),
       core::FieldError{"max_acu_limit", "must be a positive integer, got 0"}},
      {"concurrency_key repo:acme/backend", with({{"concurrency_key", "repo:acme/backend"}}),
       std::nullopt},
      {"an empty concurrency_key", with({{"concurrency_key", ""}}),
       core::FieldError{"concurrency_key", "must not be empty"}},
      {"a concurrency_key with a space", with({{"concurrency_key", "repo acme"}}),
       core::FieldError{"concurrency_key",
                        "must hold only letters, digits and - _ . : / @ + = #, got byte 32"}},
      {"a 201-character concurrency_key", with({{"concurrency_key", std::string(201, 'k')}}),
       core::FieldError{"concurrency_key", "is 201 characters; the limit is 200"}},
      {"an empty devin_mode", with({{"devin_mode", ""}}),
       core::FieldError{"devin_mode", "must not be empty; leave the field out instead"}},
      {"devin_mode lite", with({{"devin_mode", "lite"}}), std::nullopt},
      {"devin_mode fusion", with({{"devin_mode", "fusion"}}), std::nullopt},
      {"devin_mode ultra", with({{"devin_mode", "ultra"}}), std::nullopt},
      {"a devin_mode nobody knows yet", with({{"devin_mode", "hyper"}}), std::nullopt},
      {"resumable false", with({{"resumable", false}, {"devin_mode", "lite"}}), std::nullopt},
      {"resumable true", with({{"resumable", true}}), std::nullopt},
      {"a child playbook", with({{"child_playbook_id", "playbook-children"}}), std::nullopt},
      {"an empty child playbook", with({{"child_playbook_id", ""}}),
       core::FieldError{"child_playbook_id", "must not be empty; leave the field out instead"}},
      {"an empty tag", with({{"tags", json::array{"nightly", ""}}}),
       core::FieldError{"tags[1]", "must not be empty"}},
      {"a stall action", with({{"stall_action", "terminate"}}), std::nullopt},
      {"an empty follow-up message", with({{"messages", json::array{""}}}),
       core::FieldError{"messages[0]", "must not be empty or only whitespace"}},
  };
}

TEST_F(JobEntryPoints, EveryWayInGivesTheSameVerdictInTheSameWords) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::string line = json::serialize(c.job);
    const std::string yaml = yaml_of(c.job);
    const std::string key{c.job.at("key").as_string()};

    // A YAML job file, as the daemon's loader reads it.
    const JobFileLoad load = parse_job_text(yaml, "jobs.yaml");
    ASSERT_FALSE(load.fatal) << load.fatal->to_string();
    // `enqueue --file`.
    const std::string file = dir_.file("jobs.yaml");
    testing::write_file(file, yaml);
    const Output from_file = enqueue({"--file", file});
    // `enqueue --stdin` and the function behind it.
    std::string json_reason;
    const auto from_json = parse_job_json(line, &json_reason);
    const Output from_stdin = enqueue({"--stdin"}, line + "\n");
    // The flags, where every field has one.
    const auto flags = flags_of(c.job);
    const Output from_flags = flags ? enqueue(*flags) : Output{};
    // The HTTP API.
    const Posted from_http = post(line);
    // The stored spec on its own, and a row another tool inserted.
    std::string spec_reason;
    const auto spec = store::decode_spec(json::serialize(spec_of(c.job)), &spec_reason);
    const Stored stored = store_row(c.job);

    if (!c.expected) {
      ASSERT_EQ(load.jobs.size(), 1U) << load.invalid.at(0).diagnostic.to_string();
      EXPECT_EQ(from_file.code, 0) << from_file.err;
      EXPECT_EQ(from_file.out, "added " + key + "\n");
      ASSERT_TRUE(from_json) << json_reason;
      EXPECT_EQ(*from_json, load.jobs[0]) << "both readers build the same definition";
      EXPECT_EQ(from_stdin.code, 0) << from_stdin.err;
      EXPECT_EQ(from_stdin.out, "added " + key + "\n");
      if (flags) {
        EXPECT_EQ(from_flags.code, 0) << from_flags.err;
        EXPECT_EQ(from_flags.out, "added " + key + "\n");
      }
      EXPECT_EQ(from_http.status, 201) << json::serialize(from_http.answer);
      EXPECT_EQ(from_http.answer, (json::value{{"key", key}, {"result", "added"}}));
      ASSERT_TRUE(from_http.stored);
      EXPECT_EQ(from_http.stored->definition, load.jobs[0]);
      EXPECT_TRUE(spec) << spec_reason;
      ASSERT_EQ(stored.insert, SQLITE_OK);
      ASSERT_EQ(stored.claimed.size(), 1U) << stored.row->last_error.value_or("");
      EXPECT_EQ(stored.claimed[0].definition, load.jobs[0]);
      continue;
    }

    const core::FieldError& want = *c.expected;
    ASSERT_TRUE(load.jobs.empty());
    ASSERT_EQ(load.invalid.size(), 1U);
    EXPECT_EQ(load.invalid[0].diagnostic.field, "jobs[0]." + want.field);
    EXPECT_EQ(load.invalid[0].diagnostic.reason, want.reason);

    EXPECT_EQ(from_file.code, 2);
    EXPECT_EQ(from_file.out, "") << "nothing is added";
    EXPECT_THAT(from_file.err, StartsWith(file + ":"));
    EXPECT_THAT(from_file.err, HasSubstr(": jobs[0]." + want.text() + "\n"));

    const std::string json_text = "field '" + want.field + "': " + want.reason;
    EXPECT_FALSE(from_json);
    EXPECT_EQ(json_reason, json_text);
    EXPECT_EQ(from_stdin.code, 2);
    EXPECT_EQ(from_stdin.out, "");
    EXPECT_EQ(from_stdin.err, "stdin:1: " + json_text + "\n");
    EXPECT_EQ(from_http.status, 400);
    EXPECT_EQ(from_http.answer, (json::value{{"error", json_text}, {"status", 400}}));
    EXPECT_FALSE(from_http.stored) << "nothing is added";

    if (flags) {
      EXPECT_EQ(from_flags.code, 2);
      EXPECT_EQ(from_flags.out, "");
      const std::string flag =
          want.field == "devin_mode" ? "--devin-mode"
          : want.field == "max_attempts" ? "--max-attempts"
          : want.field == "max_acu_limit" ? "--max-acu-limit"
          : want.field == "child_playbook_id" ? "--child-playbook"
          : want.field == "concurrency_key" ? "--concurrency-key"
                                          : "--" + want.field;
      EXPECT_THAT(from_flags.err, StartsWith("devin-orch enqueue: " + flag + ": " + want.reason +
                                             "\n"));
    }

    const bool in_spec = !is_column(want.field) && !is_control(want.field.substr(
                                                        0, want.field.find('[')));
    if (in_spec) {
      EXPECT_FALSE(spec);
      EXPECT_EQ(spec_reason, json_text);
    } else {
      EXPECT_TRUE(spec) << spec_reason;
    }

    if (want.field == "key") {
      // The table's own CHECK refuses the row: it counts characters, as core does.
      EXPECT_EQ(stored.insert, SQLITE_CONSTRAINT_CHECK);
      continue;
    }
    ASSERT_EQ(stored.insert, SQLITE_OK);
    EXPECT_TRUE(stored.claimed.empty());
    ASSERT_TRUE(stored.row);
    EXPECT_EQ(stored.row->state, core::JobState::invalid);
    EXPECT_EQ(stored.row->last_error, "invalid spec: " + json_text);
  }
}

// stall_after is a duration in the YAML and JSON forms and milliseconds in the stored controls
// (and `show --json`, whose output goes back in through `enqueue --stdin`): each form builds the
// same definition, and 0 is refused with core's words wherever it comes in.
TEST_F(JobEntryPoints, StallAfterArrivesTheSameWayFromEveryForm) {
  const JobFileLoad load =
      parse_job_text("- key: k\n  prompt: p\n  stall_after: 90s\n  stall_action: message\n",
                     "jobs.yaml");
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].controls.stall.after, core::Duration{90'000});
  const auto from_json = parse_job_json(
      R"({"key":"k","prompt":"p","stall_after":"90s","stall_action":"message"})", nullptr);
  ASSERT_TRUE(from_json);
  EXPECT_EQ(*from_json, load.jobs[0]);
  const json::object shown = definition_object(load.jobs[0]);
  EXPECT_EQ(shown.at("stall_after_ms").as_int64(), 90'000);
  const auto again = parse_job_json(json::serialize(shown), nullptr);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, load.jobs[0]);
  const Stored stored =
      store_row({{"key", "k"}, {"prompt", "p"}, {"stall_after_ms", 90'000},
                 {"stall_action", "message"}});
  ASSERT_EQ(stored.claimed.size(), 1U);
  EXPECT_EQ(stored.claimed[0].definition, load.jobs[0]);
  const Output flags = enqueue({"--key", "k", "--prompt", "p", "--stall-after", "90s",
                                "--stall-action", "message"});
  EXPECT_EQ(flags.code, 0) << flags.err;

  std::string reason;
  EXPECT_FALSE(parse_job_json(R"({"key":"k","prompt":"p","stall_after":"0s"})", &reason));
  EXPECT_EQ(reason, "field 'stall_after': must be longer than zero");
  EXPECT_FALSE(parse_job_json(R"({"key":"k","prompt":"p","stall_after":"soon"})", &reason));
  EXPECT_EQ(reason, "field 'stall_after': expected a duration like 30m");
  const Output zero = enqueue({"--key", "k", "--prompt", "p", "--stall-after", "0s"});
  EXPECT_EQ(zero.code, 2);
  EXPECT_THAT(zero.err, HasSubstr("--stall-after: must be longer than zero"));
}

// `resumable` must be a real boolean everywhere: the API takes a JSON bool, and a string like
// "yes" that one reader took and another refused would make the same job differ by entry point.
TEST_F(JobEntryPoints, ResumableArrivesEverywhereAndOnlyAsABoolean) {
  const json::object job{{"key", "job-r"}, {"prompt", "p"}, {"resumable", false}};
  const JobFileLoad load = parse_job_text(yaml_of(job), "jobs.yaml");
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].spec.resumable, false);
  const auto from_json = parse_job_json(json::serialize(job), nullptr);
  ASSERT_TRUE(from_json);
  EXPECT_EQ(from_json->spec.resumable, false);
  const Stored stored = store_row(job);
  ASSERT_EQ(stored.claimed.size(), 1U);
  EXPECT_EQ(stored.claimed[0].definition.spec.resumable, false);
  EXPECT_EQ(store::encode_spec(load.jobs[0].spec), R"({"prompt":"p","resumable":false})");
  // Absent and null are the API's default, not false.
  EXPECT_EQ(parse_job_json(R"({"key":"k","prompt":"p","resumable":null})", nullptr)->spec.resumable,
            std::nullopt);
  EXPECT_EQ(parse_job_text("- key: k\n  prompt: p\n", "jobs.yaml").jobs.at(0).spec.resumable,
            std::nullopt);

  const JobFileLoad quoted =
      parse_job_text("- key: k\n  prompt: p\n  resumable: \"true\"\n", "jobs.yaml");
  ASSERT_EQ(quoted.invalid.size(), 1U);
  EXPECT_EQ(quoted.invalid[0].diagnostic.field, "jobs[0].resumable");
  EXPECT_THAT(quoted.invalid[0].diagnostic.reason, StartsWith("expected true or false"));
  const JobFileLoad yes = parse_job_text("- key: k\n  prompt: p\n  resumable: yes\n", "jobs.yaml");
  ASSERT_EQ(yes.invalid.size(), 1U) << "YAML 1.1's yes is not a boolean the API would take";

  std::string reason;
  EXPECT_FALSE(parse_job_json(R"({"key":"k","prompt":"p","resumable":"true"})", &reason));
  EXPECT_EQ(reason, "field 'resumable': expected true, false or null");
  EXPECT_FALSE(store::decode_spec(R"({"prompt":"p","resumable":1})", &reason));
  EXPECT_EQ(reason, "field 'resumable': expected true, false or null");

  const Output flag = enqueue({"--key", "k", "--prompt", "p", "--resumable", "yes"});
  EXPECT_EQ(flag.code, 2);
  EXPECT_THAT(flag.err, HasSubstr("--resumable needs true or false, got 'yes'"));
  const Output ok = enqueue({"--key", "k", "--prompt", "p", "--resumable", "false"});
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(JobEntryPoints, AYamlProblemIsLocatedAtTheValueThatBreaksTheRule) {
  const JobFileLoad load = parse_job_text(
      "- key: job-1\n"
      "  prompt: p\n"
      "  session_secrets:\n"
      "    - key: " + std::string(300, 's') + "\n"
      "      from_env: TOKEN\n"
      "- key: job-2\n"
      "  prompt: p\n"
      "  max_attempts: 0\n"
      "- key: job-3\n"
      "  prompt: p\n"
      "  devin_mode: ''\n"
      "- key: job-4\n"
      "  prompt: p\n"
      "  devin_mode: lite\n",
      "jobs.yaml");
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].spec.devin_mode, "lite");
  ASSERT_EQ(load.invalid.size(), 3U);
  EXPECT_EQ(load.invalid[0].diagnostic.to_string(),
            "jobs.yaml:4:12: jobs[0].session_secrets[0].key: is 300 characters; the limit is 256");
  EXPECT_EQ(load.invalid[1].diagnostic.to_string(),
            "jobs.yaml:8:17: jobs[1].max_attempts: must be between 1 and 1000, got 0");
  EXPECT_EQ(load.invalid[2].diagnostic.to_string(),
            "jobs.yaml:11:15: jobs[2].devin_mode: must not be empty; leave the field out instead");
  // The key was fine, so the loader can still name the job.
  EXPECT_EQ(load.invalid[0].key, "job-1");
}

}  // namespace
}  // namespace devin_orch::app
