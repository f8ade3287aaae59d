// The operator's job commands run in-process against a temp database with a fixed clock: option
// parsing, every command's exact text and JSON output, and the exit codes docs/cli.md promises.
#include "devin_orch/app/cli/cli.hpp"
#include "devin_orch/app/cli/job_json.hpp"

#include "devin_orch/app/formats/json_text.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/job_state_list.hpp"
#include "devin_orch/core/org_spread.hpp"
#include "devin_orch/store/sqlite/sqlite_store.hpp"
#include "support/process.hpp"

#include <boost/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TempDir;
using testing::write_file;
namespace json = boost::json;

// 2026-01-01T00:00:00Z
constexpr std::int64_t kNowMs = 1'767'225'600'000;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

class CliJobs : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"DEVIN_ORCH_DATABASE", "DEVIN_ORCH_ORG_ID", "DEVIN_ORCH_BASE_URL",
                             "DEVIN_ORCH_CONFIG", "DEVIN_API_KEY", "CREDENTIALS_DIRECTORY"}) {
      ::unsetenv(name);
    }
    write_file(config_, "api:\n  org_id: org-demo\ndatabase:\n  path: " + database_ + "\n");
  }

  Output run(std::vector<std::string> args, const std::string& input = "") {
    const std::string command = args.front();
    args.erase(args.begin());
    std::istringstream in{input};
    std::ostringstream out;
    std::ostringstream err;
    Output result;
    result.code =
        to_int(run_command(command, args, CommandIo{in, out, err, now_, default_config_}));
    result.out = out.str();
    result.err = err.str();
    return result;
  }
  // `command --config CONFIG args...`
  Output cli(const std::string& command, std::vector<std::string> args = {},
             const std::string& input = "") {
    args.insert(args.begin(), {command, "--config", config_});
    return run(std::move(args), input);
  }

  store::SqliteStore& db() {
    if (!store_) {
      auto opened = store::SqliteStore::open(store::StoreOptions{.path = database_});
      if (!opened) throw std::runtime_error("cannot open the test database");
      store_ = std::move(*opened);
    }
    return *store_;
  }
  core::JobRecord job(const std::string& key) {
    auto found = db().find(key);
    if (!found || !*found) throw std::runtime_error("no job " + key);
    return **found;
  }

  // Adds a job created `age` before now.
  void add(core::JobDefinition definition, core::Duration age) {
    ASSERT_TRUE(db().add_job(definition, "test", now_ - age));
  }
  void add(const std::string& key, core::Duration age, std::vector<std::string> tags = {},
           std::optional<std::string> org = std::nullopt) {
    add(core::JobDefinition{.key = key, .org_id = std::move(org),
                            .spec = {.prompt = "Task " + key, .tags = std::move(tags)}},
        age);
  }
  void start(const std::string& key, const std::string& session_id, core::TimePoint at) {
    const auto id = job(key).id;
    ASSERT_TRUE(db().commit_intent(id, 1, core::creation_tag(key, 0), core::to_epoch_ms(at), at));
    core::Session session{.session_id = session_id,
                         .url = "https://app.devin.ai/sessions/" + session_id,
                         .status = "running"};
    ASSERT_TRUE(db().commit_session(id, session, false, at));
  }
  void end_with(const std::string& key, const std::string& status, core::JobState state,
                const std::string& reason, core::TimePoint at) {
    const auto record = job(key);
    store::StatusUpdate update{
        .job_id = record.id,
        .session = {.session_id = *record.session_id,
                    .url = *record.session_url,
                    .status = status,
                    .acus_consumed = 2.5,
                    .pull_requests = {{.pr_url = "https://github.com/acme/backend/pull/7",
                                       .pr_state = "open"}},
                    .structured_output = R"({"fixed":true})"},
        .new_state = state,
        .reason = reason};
    ASSERT_TRUE(db().record_statuses(std::span{&update, 1}, at));
  }

  // The four jobs most `ls` tests use.
  void add_mixed_jobs() {
    add("alpha", 3h, {"ci"});
    add("beta", 2h, {"nightly"}, "org-b");
    add("gamma", 30min, {"ci", "flaky"});
    add("delta", 45s);
    start("beta", "devin-b", now_ - 1h);
    start("gamma", "devin-g", now_ - 20min);
    end_with("gamma", "error", core::JobState::failed, "session error", now_ - 10min);
  }

  std::vector<std::string> ls_keys(std::vector<std::string> args) {
    args.push_back("--json");
    const auto result = cli("ls", args);
    EXPECT_EQ(result.code, 0) << result.err;
    std::vector<std::string> keys;
    const auto rows = json::parse(result.out);
    for (const auto& row : rows.as_array()) {
      keys.emplace_back(row.at("key").as_string());
    }
    return keys;
  }

  TempDir dir_;
  std::string config_ = dir_.file("config.yaml");
  std::string database_ = dir_.file("state/orch.db");
  // Never the machine's own /etc/devin-orch/devin-orch.yaml.
  std::string default_config_ = dir_.file("etc/devin-orch.yaml");
  core::TimePoint now_ = core::from_epoch_ms(kNowMs);
  std::unique_ptr<store::SqliteStore> store_;
};

// ---------------------------------------------------------------------------------------------
// Usage

TEST_F(CliJobs, EveryCommandHasHelpAndIsListed) {
  std::vector<std::string> names;
  for (const auto* info : commands()) {
    names.emplace_back(info->name);
    const auto result = run({std::string{info->name}, "--help"});
    EXPECT_EQ(result.code, 0);
    EXPECT_THAT(result.out, StartsWith("Usage: devin-orch " + std::string{info->name}));
    EXPECT_THAT(result.out, HasSubstr("Exit codes:")) << info->name;
    EXPECT_EQ(result.err, "");
    const bool takes_config = info->name != "version";
    EXPECT_EQ(result.out.find("-c, --config FILE") != std::string::npos, takes_config)
        << info->name << ": the short form is documented where it is accepted";
    if (takes_config) {
      EXPECT_THAT(result.out, HasSubstr("default: $DEVIN_ORCH_CONFIG, then\n"));
      EXPECT_THAT(result.out, HasSubstr(std::string{kDefaultConfigPath} + "\n")) << info->name;
    }
  }
  EXPECT_THAT(names, ElementsAre("run", "status", "check-config", "healthcheck", "version",
                                 "enqueue", "ls", "show", "wait", "cancel", "retry", "pause",
                                 "resume", "prune", "delete", "events"));
  EXPECT_EQ(find_command("stats"), nullptr);
  // `status --help` names the states; so every state there is.
  for (const auto state : core::all_job_states()) {
    EXPECT_THAT(std::string{find_command("status")->help}, HasSubstr(core::to_string(state)));
  }
}

// Bad usage prints the reason and a one-line pointer to the command's help, not the help itself.
TEST_F(CliJobs, BadUsageExitsTwoWithTheReasonAndAHint) {
  const auto no_config = run({"ls"});
  EXPECT_EQ(no_config.code, 2);
  EXPECT_EQ(no_config.err, default_config_ + ": cannot open: No such file or directory\n"
                           "devin-orch ls: tried the default configuration " + default_config_ +
                           ": no --config FILE was given and DEVIN_ORCH_CONFIG is not set\n");

  EXPECT_EQ(cli("ls", {"--bogus"}).err,
            "devin-orch ls: unknown option '--bogus'\nsee 'devin-orch ls --help'\n");
  EXPECT_EQ(cli("ls", {"--limit"}).err,
            "devin-orch ls: --limit needs a value\nsee 'devin-orch ls --help'\n");
  EXPECT_EQ(cli("ls", {"--state", "sleeping"}).code, 2);
  EXPECT_EQ(cli("ls", {"--older-than", "10"}).code, 2) << "a bare number has no unit";
  EXPECT_EQ(cli("ls", {"--limit", "-1"}).code, 2);
  EXPECT_EQ(cli("ls", {"extra"}).code, 2);
  EXPECT_EQ(cli("show").code, 2);
  EXPECT_EQ(cli("show", {"a", "b"}).code, 2);
  EXPECT_EQ(cli("cancel").code, 2);
  EXPECT_EQ(cli("retry", {"--archive", "k"}).code, 2);
  EXPECT_EQ(cli("pause", {"--org", "x", "--all"}).code, 2);
  EXPECT_EQ(cli("pause", {"--list", "--all"}).code, 2);
  EXPECT_EQ(cli("resume", {"--org", ""}).code, 2);
  EXPECT_EQ(cli("prune").code, 2);
  EXPECT_EQ(cli("prune", {"--older-than", "soon"}).code, 2);
  EXPECT_EQ(cli("delete").code, 2) << "at least one key";
  EXPECT_EQ(cli("delete", {"--archive", "k"}).code, 2);
  EXPECT_EQ(cli("ls", {"--json=yes"}).code, 2) << "a switch takes no value";
  EXPECT_EQ(cli("ls", {"--org", "a", "--org", "b"}).code, 2) << "not repeatable";
  EXPECT_EQ(cli("ls", {"--limit"}).code, 2) << "missing value";
  EXPECT_EQ(cli("ls", {"--port", "1"}).code, 2) << "each command takes only its own options";
  EXPECT_EQ(cli("status", {"--port", "0"}).code, 2);
  EXPECT_EQ(cli("healthcheck", {"--port", "http"}).err,
            "devin-orch healthcheck: --port needs a number, got 'http'\n"
            "see 'devin-orch healthcheck --help'\n");
  EXPECT_EQ(run({"stats"}).err, "devin-orch: unknown command 'stats'\nsee 'devin-orch --help'\n");
  EXPECT_FALSE(std::filesystem::exists(database_)) << "bad usage must not create a database";
}

TEST_F(CliJobs, TheShortConfigOptionWorksForEveryCommand) {
  add("alpha", 1h);
  const auto listed = run({"ls", "-c", config_, "--json"});
  EXPECT_EQ(listed.code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("\"key\":\"alpha\""));
  const auto status = run({"status", "-c", config_, "--json"});
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("\"key\":\"alpha\""));
}

TEST_F(CliJobs, AnInvalidConfigIsBadUsageWithItsLocation) {
  write_file(config_, "api:\n  org_id: org-demo\n  colour: blue\n");
  const auto result = cli("ls");
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, HasSubstr(config_ + ":3:"));
}

TEST_F(CliJobs, AnUnusableDatabaseIsARuntimeFailure) {
  std::filesystem::create_directories(dir_.file("state"));
  write_file(database_, std::string(4096, 'x'));  // not a database
  for (const auto& command : {"ls", "pause"}) {
    const auto result = cli(command);
    EXPECT_EQ(result.code, 1) << command;
    EXPECT_THAT(result.err, HasSubstr("cannot open database " + database_)) << command;
  }
}

TEST_F(CliJobs, OptionsAcceptEqualsSignsAndDoubleDashEndsThem) {
  add("-dash-key", 1min);
  const auto result = run({"show", "--config=" + config_, "--json", "--", "-dash-key"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(json::parse(result.out).at("definition").at("key").as_string(), "-dash-key");
}

// Issue 24: --config, else $DEVIN_ORCH_CONFIG, else the default path; a failure names the file
// tried and why that one.
TEST_F(CliJobs, TheConfigComesFromTheOptionTheEnvironmentOrTheDefaultPath) {
  add("alpha", 1h);
  const auto ls = [&](std::vector<std::string> args, std::string_view default_config) {
    args.insert(args.begin(), "--json");
    std::istringstream in;
    std::ostringstream out;
    std::ostringstream err;
    Output result;
    result.code = to_int(run_command("ls", args, CommandIo{in, out, err, now_, default_config}));
    result.out = out.str();
    result.err = err.str();
    return result;
  };
  const std::string missing = dir_.file("nowhere/devin-orch.yaml");

  auto result = ls({}, config_);
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("\"key\":\"alpha\"")) << "the default path is read";

  result = ls({}, missing);
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, StartsWith(missing + ": "));
  EXPECT_THAT(result.err, HasSubstr("devin-orch ls: tried the default configuration " + missing +
                                    ": no --config FILE was given and DEVIN_ORCH_CONFIG is not "
                                    "set\n"));

  ::setenv("DEVIN_ORCH_CONFIG", config_.c_str(), 1);
  result = ls({}, missing);
  EXPECT_EQ(result.code, 0) << "the variable comes before the default: " << result.err;

  ::setenv("DEVIN_ORCH_CONFIG", missing.c_str(), 1);
  result = ls({}, config_);
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, HasSubstr("devin-orch ls: tried " + missing +
                                    " from DEVIN_ORCH_CONFIG: no --config FILE was given\n"));
  result = ls({"-c", config_}, missing);
  EXPECT_EQ(result.code, 0) << "--config comes first: " << result.err;
  result = ls({"--config", missing}, config_);
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, StartsWith(missing + ": "));
  EXPECT_THAT(result.err, Not(HasSubstr("tried"))) << "the file named is the one read";
  ::unsetenv("DEVIN_ORCH_CONFIG");
  ::setenv("DEVIN_ORCH_CONFIG", "", 1);
  EXPECT_EQ(ls({}, config_).code, 0) << "an empty variable is unset";
  ::unsetenv("DEVIN_ORCH_CONFIG");
}

// Issue 24: every --json printed a double the way Boost.JSON does ("acus_consumed":2.5E0).
TEST_F(CliJobs, JsonNumbersAreOrdinaryDecimals) {
  add_mixed_jobs();  // gamma's session reported 2.5 ACUs
  const auto shown = cli("show", {"gamma", "--json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr(R"("acus_consumed":2.5,"session_acus":2.5,"children_acus":0,)"));
  EXPECT_EQ(shown.out.find("E0"), std::string::npos) << shown.out;
  const auto listed = cli("ls", {"--json"});
  EXPECT_EQ(listed.out.find("E0"), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find("E2"), std::string::npos) << listed.out;
}

// Issue 24: `status --json` had "org_id": null for a job naming no organisation, where
// `ls --json` has the organisation it runs as.
TEST_F(CliJobs, StatusAndLsAgreeOnAJobsOrganisation) {
  add_mixed_jobs();  // beta names org-b; the others none (org-demo)
  const auto org_by_key = [&](const std::string& command) {
    std::map<std::string, std::string> orgs;
    const auto rows = json::parse(cli(command, {"--json"}).out);
    for (const auto& row : rows.as_array()) {
      orgs[std::string{row.at("key").as_string()}] = row.at("org_id").as_string();
    }
    return orgs;
  };
  const auto from_status = org_by_key("status");
  const auto from_ls = org_by_key("ls");
  EXPECT_EQ(from_status, from_ls);
  EXPECT_EQ(from_status.at("alpha"), "org-demo");
  EXPECT_EQ(from_status.at("beta"), "org-b");
}

// Issue 24: "no API key: no API key: ..." (the reason repeated the caller's prefix).
TEST_F(CliJobs, CheckConfigWithoutAKeySaysSoOnce) {
  const auto result = cli("check-config");
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.err,
            "devin-orch check-config: no API key: provide the systemd credential devin-api-key, "
            "set api.api_key_file, or set DEVIN_API_KEY\n");
}

// Issue 24: check-config accepted a database.path nothing could create.
TEST_F(CliJobs, CheckConfigRefusesADatabasePathThatCannotBeCreated) {
  ::setenv("DEVIN_API_KEY", "cog_test", 1);
  const auto fine = cli("check-config");
  EXPECT_EQ(fine.code, 0) << fine.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("state"))) << "checking creates nothing";

  write_file(dir_.file("state"), "a file where the directory should be");
  const auto result = cli("check-config");
  ::unsetenv("DEVIN_API_KEY");
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, config_ + ":4:9: database.path: cannot be created: '" + dir_.file("state") +
                            "' is not a directory\n");
}

// ---------------------------------------------------------------------------------------------
// enqueue

TEST_F(CliJobs, EnqueueFromFlagsAddsOnceAndReportsADifferentDefinition) {
  const std::vector<std::string> flags{
      "--key", "fix-1", "--prompt", "Fix the flaky test", "--title", "Flaky", "--tag", "ci",
      "--tag", "flaky", "--repo", "acme/backend", "--org", "org-x", "--priority", "7",
      "--not-before", "2026-01-02T09:30:00+01:00", "--deadline", "2026-01-03T00:00:00Z",
      "--max-attempts", "3", "--create-as-user", "user-9", "--playbook", "pb-1",
      "--max-acu-limit", "12", "--devin-mode", "fast"};
  const auto added = cli("enqueue", flags);
  EXPECT_EQ(added.code, 0) << added.err;
  EXPECT_EQ(added.out, "added fix-1\n");
  EXPECT_EQ(added.err, "");

  const auto record = job("fix-1");
  EXPECT_EQ(record.state, core::JobState::queued);
  EXPECT_EQ(record.created_at_ms, kNowMs);
  const core::JobDefinition expected{
      .key = "fix-1",
      .org_id = "org-x",
      .priority = 7,
      .spec = {.prompt = "Fix the flaky test",
               .title = "Flaky",
               .tags = {"ci", "flaky"},
               .create_as_user_id = "user-9",
               .playbook_id = "pb-1",
               .repos = {"acme/backend"},
               .max_acu_limit = 12,
               .devin_mode = "fast"},
      .controls = {.not_before_ms = *parse_timestamp_ms("2026-01-02T08:30:00Z"),
                   .deadline_ms = *parse_timestamp_ms("2026-01-03T00:00:00Z"),
                   .max_attempts = 3}};
  EXPECT_EQ(record.definition, expected);
  const auto history = db().history(record.id);
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 1U);
  EXPECT_EQ(history->front().message, "cli") << "source is cli";

  const auto again = cli("enqueue", flags);
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, "exists fix-1 (unchanged)\n");

  // Issue 24: the report names what differs, so the operator sees the edit that was refused.
  auto retitled = flags;
  retitled[5] = "Flaky again";  // the --title
  const auto changed = cli("enqueue", [&] {
    auto args = retitled;
    args.emplace_back("--json");
    return args;
  }());
  EXPECT_EQ(changed.code, 4);
  EXPECT_EQ(changed.out, R"([{"key":"fix-1","result":"changed","differs":["title"]}])" "\n");
  EXPECT_EQ(job("fix-1").definition, expected) << "a different definition is not applied";
  EXPECT_EQ(cli("enqueue", retitled).out,
            "exists fix-1 with a different definition (not applied): title differs\n");
  EXPECT_EQ(cli("enqueue", {"--key", "fix-1", "--prompt", "Something else"}).out,
            "exists fix-1 with a different definition (not applied): org_id, priority, prompt, "
            "title, tags, create_as_user_id, playbook_id, repos, max_acu_limit, devin_mode, "
            "not_before, deadline, max_attempts differ\n");
}

TEST_F(CliJobs, EnqueueFromFlagsRejectsBadValuesBeforeOpeningTheDatabase) {
  const auto bad = [&](std::vector<std::string> extra, const std::string& reason) {
    std::vector<std::string> args{"--key", "k", "--prompt", "p"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto result = cli("enqueue", args);
    EXPECT_EQ(result.code, 2) << reason;
    EXPECT_THAT(result.err, StartsWith("devin-orch enqueue: " + reason)) << result.err;
  };
  bad({"--priority", "high"}, "--priority needs an integer, got 'high'");
  bad({"--max-attempts", "many"}, "--max-attempts needs an integer, got 'many'");
  bad({"--max-attempts", "0"}, "--max-attempts: must be between 1 and 1000, got 0");
  bad({"--max-acu-limit", "-3"}, "--max-acu-limit: must be a positive integer, got -3");
  bad({"--devin-mode", ""}, "--devin-mode: must not be empty");
  bad({"--tag", "ok", "--tag", "a\tb"}, "--tag: must not contain control characters");
  bad({"--deadline", "2026-01-03 00:00"}, "--deadline needs an RFC 3339 time with a zone");
  bad({"--not-before", "2026-01-03T00:00:00"}, "--not-before needs an RFC 3339 time");
  bad({"--org", ""}, "--org: must not be empty");
  bad({"--stdin"}, "--key/--prompt, --file and --stdin exclude each other");

  EXPECT_THAT(cli("enqueue", {"--key", "k"}).err,
              StartsWith("devin-orch enqueue: --key and --prompt go together"));
  EXPECT_THAT(cli("enqueue", {"--key", "k", "--prompt", "  \n"}).err,
              StartsWith("devin-orch enqueue: --prompt: must not be empty or only whitespace"));
  EXPECT_THAT(cli("enqueue", {"--key", std::string(513, 'k'), "--prompt", "p"}).err,
              StartsWith("devin-orch enqueue: --key: is 513 characters; the limit is 512"));
  EXPECT_THAT(cli("enqueue", {"--key", "k", "--prompt", std::string(65 * 1024, 'p')}).err,
              HasSubstr("bytes; the limit is 65536"));
  EXPECT_THAT(cli("enqueue").err,
              StartsWith("devin-orch enqueue: give --key and --prompt, --file FILE or --stdin"));
  EXPECT_THAT(cli("enqueue", {"--stdin", "--tag", "x"}).err,
              StartsWith("devin-orch enqueue: --tag only goes with --key and --prompt"));
  EXPECT_FALSE(std::filesystem::exists(database_));
}

TEST_F(CliJobs, EnqueueFromAYamlFileAddsTheValidJobsAndLocatesTheInvalidOnes) {
  const auto file = dir_.file("jobs.yaml");
  write_file(file,
             "- key: one\n"
             "  prompt: First task\n"
             "  tags: [nightly]\n"
             "- key: two\n"
             "  prompt: Second task\n"
             "  priorty: 3\n"
             "- key: three\n"
             "  prompt: Third task\n"
             "  deadline: 2026-02-01T00:00:00Z\n");
  const auto result = cli("enqueue", {"--file", file});
  EXPECT_EQ(result.code, 2) << "one job was invalid";
  EXPECT_EQ(result.out, "added one\nadded three\n");
  EXPECT_THAT(result.err, StartsWith(file + ":6:3: "));
  EXPECT_THAT(result.err, HasSubstr("unknown field 'priorty' (did you mean 'priority'?)"));
  EXPECT_FALSE(db().find("two").value()) << "an invalid job is not recorded: its key stays free";
  EXPECT_EQ(job("three").definition.controls.deadline_ms,
            parse_timestamp_ms("2026-02-01T00:00:00Z"));

  write_file(file, "- key: one\n  prompt: First task\n  tags: [nightly]\n");
  const auto again = cli("enqueue", {"--file", file, "--json"});
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, R"([{"key":"one","result":"unchanged"}])" "\n");

  const auto missing = cli("enqueue", {"--file", dir_.file("nope.yaml")});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, StartsWith("devin-orch enqueue: " + dir_.file("nope.yaml")));
}

// Issue 24: yaml-cpp read the unterminated scalar up to the end of the file, stored m1 with
// the rest of the file as its prompt and lost m2. A syntax error now stores nothing, exits 2
// and names the first error; so does any other syntax error after valid jobs.
TEST_F(CliJobs, EnqueueFromAFileWithASyntaxErrorStoresNothing) {
  const auto file = dir_.file("jobs.yaml");
  for (const std::string quote : {"\"", "'"}) {
    SCOPED_TRACE(quote);
    write_file(file, "- key: m1\n  prompt: " + quote + "unterminated\n- key: m2\n  prompt: second\n");
    const auto result = cli("enqueue", {"--file", file});
    EXPECT_EQ(result.code, 2);
    EXPECT_EQ(result.out, "");
    EXPECT_THAT(result.err, HasSubstr(file + ":2:11: "));
    EXPECT_THAT(result.err, HasSubstr("quoted scalar"));
    EXPECT_TRUE(db().all_jobs().value().empty());
  }
  write_file(file, "- key: a\n  prompt: fine\n- key: b\n  prompt: also fine\n- key: c\n  prompt: x: y\n");
  const auto later = cli("enqueue", {"--file", file});
  EXPECT_EQ(later.code, 2);
  EXPECT_EQ(later.out, "");
  EXPECT_THAT(later.err, HasSubstr(file + ":6:12: "));
  EXPECT_TRUE(db().all_jobs().value().empty()) << "the valid jobs before the error are not stored";
}

TEST_F(CliJobs, EnqueueFromJsonLinesOnStdin) {
  const std::string input =
      R"({"key": "s1", "prompt": "One", "tags": ["a"], "org_id": "org-s", "priority": 2})" "\n"
      "\n"
      R"({"key": "s2", "prompt": "Two", "not_before": "2026-01-05T00:00:00Z", "max_attempts": 2,)"
      R"( "on_waiting_for_user": {"finish_after": "10m"}, "messages": ["Go on"], "complete_on": "finished"})" "\n"
      "not json\n"
      R"({"key": "s4", "prompt": "Four", "colour": "blue"})" "\n"
      R"({"key": "s5", "prompt": "Five", "deadline": "tomorrow"})" "\n"
      R"({"prompt": "no key"})" "\n"
      R"(["an array"])" "\n"
      R"({"key": "s9", "prompt": "Nine", "fan_out": "galaxy"})" "\n"
      R"({"key": "s10", "prompt": "   "})" "\n";
  const auto result = cli("enqueue", {"--stdin", "--json"}, input);
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.err,
            "stdin:4: not valid JSON: syntax error\n"
            "stdin:5: unknown field 'colour'\n"
            "stdin:6: field 'deadline': expected an RFC 3339 time with a zone, like "
            "2026-11-24T09:30:00Z\n"
            "stdin:7: field 'key' is required\n"
            "stdin:8: expected a JSON object\n"
            "stdin:9: field 'fan_out': expected \"enterprise\"\n"
            "stdin:10: field 'prompt': must not be empty or only whitespace\n");
  const auto rows = json::parse(result.out).as_array();
  ASSERT_EQ(rows.size(), 9U);
  EXPECT_EQ(json::serialize(rows[0]), R"({"key":"s1","result":"added"})");
  EXPECT_EQ(json::serialize(rows[1]), R"({"key":"s2","result":"added"})");
  EXPECT_EQ(json::serialize(rows[3]),
            R"({"key":"s4","result":"invalid","error":"stdin:5: unknown field 'colour'"})");
  EXPECT_EQ(rows[2].at("key"), nullptr);
  EXPECT_EQ(rows[5].at("key"), nullptr);

  EXPECT_EQ(job("s1").definition,
            (core::JobDefinition{.key = "s1", .org_id = "org-s", .priority = 2,
                                 .spec = {.prompt = "One", .tags = {"a"}}}));
  const auto s2 = job("s2").definition.controls;
  EXPECT_EQ(s2.not_before_ms, parse_timestamp_ms("2026-01-05T00:00:00Z"));
  EXPECT_EQ(s2.max_attempts, 2);
  EXPECT_EQ(s2.on_waiting_for_user.action, core::WaitingPolicy::Action::finish_after);
  EXPECT_EQ(s2.on_waiting_for_user.finish_after, 10min);
  EXPECT_EQ(s2.messages, std::vector<std::string>{"Go on"});
  EXPECT_EQ(s2.complete_on, core::CompletionPolicy::on_finished);
  EXPECT_FALSE(db().find("s4").value());

  const auto text = cli("enqueue", {"--stdin"},
                        R"({"key": "s1", "prompt": "One", "tags": ["a"], "org_id": "org-s", "priority": 2})" "\n"
                        R"({"key": "s2", "prompt": "Changed"})" "\n"
                        R"({"key": "s3", "prompt": "Three"})" "\n");
  EXPECT_EQ(text.code, 4);
  EXPECT_EQ(text.out,
            "exists s1 (unchanged)\n"
            "exists s2 with a different definition (not applied): prompt, not_before, "
            "max_attempts, on_waiting_for_user, messages, complete_on differ\n"
            "added s3\n");
  EXPECT_EQ(text.err, "");
}

TEST_F(CliJobs, TheJsonDefinitionRoundTripsThroughTheStdinFormat) {
  const core::JobDefinition full{
      .key = "round",
      .org_id = "org-r",
      .priority = -3,
      .spec = {.prompt = "Do it\nnow",
               .title = "T",
               .tags = {"x", "y"},
               .create_as_user_id = "u",
               .playbook_id = "p",
               .knowledge_ids = std::vector<std::string>{},
               .secret_ids = std::vector<std::string>{"s"},
               .repos = {"a/b"},
               .max_acu_limit = 4,
               .structured_output_schema = R"({"type":"object"})",
               .devin_mode = "normal"},
      .controls = {.not_before_ms = kNowMs + 1000,
                   .deadline_ms = kNowMs + 2000,
                   .max_attempts = 9,
                   .on_waiting_for_user = {.action = core::WaitingPolicy::Action::send_message,
                                           .message = "hello?"},
                   .messages = {"m1", "m2"},
                   .complete_on = core::CompletionPolicy::on_stop,
                   .fan_out_enterprise = true}};
  for (const auto& definition : {full, core::JobDefinition{.key = "min", .spec = {.prompt = "p"}}}) {
    std::string reason;
    const auto text = job_definition_json(definition);
    const auto parsed = parse_job_json(text, &reason);
    ASSERT_TRUE(parsed) << reason << " in " << text;
    EXPECT_EQ(*parsed, definition) << text;
  }
  EXPECT_EQ(job_definition_json(core::JobDefinition{.key = "min", .spec = {.prompt = "p"}}),
            R"({"key":"min","prompt":"p","org_id":null,"priority":0,"not_before":null,)"
            R"("deadline":null,"max_attempts":null})");
}

// ---------------------------------------------------------------------------------------------
// ls

// Newest first; DURATION is the session's run (until now while it runs), ACUS its figure, and
// a queued job says why it waits (here: nothing works the queue).
TEST_F(CliJobs, LsPrintsATableNewestFirst) {
  add_mixed_jobs();
  const auto result = cli("ls");
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "KEY    STATE    ORG       SESSION  STATUS   AGE  DURATION  ACUS  REASON                     ERROR\n"
            "delta  queued   org-demo  -        -        45s  -         -     no daemon works the queue  -\n"
            "gamma  failed   org-demo  devin-g  error    30m  10m       2.5   -                          session error\n"
            "beta   running  org-b     devin-b  running  2h   1h        0     -                          -\n"
            "alpha  queued   org-demo  -        -        3h   -         -     no daemon works the queue  -\n");
}

TEST_F(CliJobs, LsOfAnEmptyQueuePrintsTheHeaderOrAnEmptyArray) {
  EXPECT_EQ(cli("ls").out, "KEY  STATE  ORG  SESSION  STATUS  AGE  DURATION  ACUS  REASON  ERROR\n");
  EXPECT_EQ(cli("ls", {"--json"}).out, "[]\n");
}

TEST_F(CliJobs, LsFilters) {
  add_mixed_jobs();
  EXPECT_THAT(ls_keys({"--state", "queued"}), ElementsAre("delta", "alpha"));
  EXPECT_THAT(ls_keys({"--state", "queued", "--state", "failed"}),
              ElementsAre("delta", "gamma", "alpha"));
  EXPECT_THAT(ls_keys({"--state", "cancelled"}), ElementsAre());
  EXPECT_THAT(ls_keys({"--org", "org-b"}), ElementsAre("beta"));
  EXPECT_THAT(ls_keys({"--org", "org-demo"}), ElementsAre("delta", "gamma", "alpha"))
      << "a job naming no organisation belongs to api.org_id";
  EXPECT_THAT(ls_keys({"--tag", "ci"}), ElementsAre("gamma", "alpha"));
  EXPECT_THAT(ls_keys({"--older-than", "1h"}), ElementsAre("beta", "alpha"));
  EXPECT_THAT(ls_keys({"--newer-than", "1h"}), ElementsAre("delta", "gamma"));
  EXPECT_THAT(ls_keys({"--older-than", "1m", "--newer-than", "1h30m"}), ElementsAre("gamma"));
  EXPECT_THAT(ls_keys({"--older-than", "1d"}), ElementsAre());
  EXPECT_THAT(ls_keys({"--tag", "ci", "--limit", "1"}), ElementsAre("gamma"));
  EXPECT_THAT(ls_keys({"--limit", "0"}), ElementsAre());
}

// Issue 24: `--limit` kept the oldest jobs, and nothing but the order of adding was possible.
TEST_F(CliJobs, LsSortsAndTheLimitKeepsTheFirstOfThatOrder) {
  add_mixed_jobs();  // added alpha, beta, gamma, delta; beta and gamma changed since
  EXPECT_THAT(ls_keys({"--limit", "2"}), ElementsAre("delta", "gamma")) << "the newest two";
  EXPECT_THAT(ls_keys({"--sort", "created"}), ElementsAre("delta", "gamma", "beta", "alpha"));
  EXPECT_THAT(ls_keys({"--reverse"}), ElementsAre("alpha", "beta", "gamma", "delta"));
  EXPECT_THAT(ls_keys({"--reverse", "--limit", "2"}), ElementsAre("alpha", "beta"));
  EXPECT_THAT(ls_keys({"--sort", "key"}), ElementsAre("alpha", "beta", "delta", "gamma"));
  EXPECT_THAT(ls_keys({"--sort", "key", "--reverse"}),
              ElementsAre("gamma", "delta", "beta", "alpha"));
  // Lifecycle order, oldest first within a state (the order the queue is worked in).
  EXPECT_THAT(ls_keys({"--sort", "state"}), ElementsAre("alpha", "delta", "beta", "gamma"));
  // gamma ended 10 minutes ago, delta was added 45 s ago, beta started an hour ago.
  EXPECT_THAT(ls_keys({"--sort", "updated"}), ElementsAre("delta", "gamma", "beta", "alpha"));
  EXPECT_THAT(ls_keys({"--sort", "updated", "--limit", "3", "--state", "running",
                       "--state", "failed"}),
              ElementsAre("gamma", "beta"));

  const auto bad = cli("ls", {"--sort", "age"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.err, "devin-orch ls: --sort must be created, updated, key or state, got 'age'\n"
                     "see 'devin-orch ls --help'\n");
}

// Issue 24: `ls --state queud` must say which states exist.
TEST_F(CliJobs, LsRefusesAnUnknownStateAndNamesTheValidOnes) {
  const auto result = cli("ls", {"--state", "queud"});
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.err,
            "devin-orch ls: unknown state 'queud' (did you mean 'queued'?); the states are "
            "queued, creating, running, finished, failed, suspended, dead, lost, invalid, "
            "cancelled, timed_out, stalled\n"
            "see 'devin-orch ls --help'\n");
  EXPECT_THAT(cli("ls", {"--state", "sleeping"}).err,
              StartsWith("devin-orch ls: unknown state 'sleeping'; the states are queued, "));
  EXPECT_FALSE(std::filesystem::exists(database_));
}

TEST_F(CliJobs, LsJsonHasEveryDocumentedField) {
  add_mixed_jobs();
  const auto result = cli("ls", {"--json", "--state", "failed", "--state", "queued"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto rows = json::parse(result.out).as_array();
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(json_text(rows[1]),
            R"({"key":"gamma","state":"failed","org_id":"org-demo","session_id":"devin-g",)"
            R"("status":"error","status_detail":null,)"
            R"("url":"https://app.devin.ai/sessions/devin-g","attempts":1,)"
            R"("error":"session error","created_at":"2025-12-31T23:30:00Z",)"
            R"("updated_at":"2025-12-31T23:50:00Z","started_at":"2025-12-31T23:40:00Z",)"
            R"("finished_at":"2025-12-31T23:50:00Z","duration_s":600,"acus_consumed":2.5,)"
            R"("reason":null,"reason_code":null,"reason_until":null})");
  EXPECT_EQ(json_text(rows[2]),
            R"({"key":"alpha","state":"queued","org_id":"org-demo","session_id":null,)"
            R"("status":null,"status_detail":null,"url":null,"attempts":0,"error":null,)"
            R"("created_at":"2025-12-31T21:00:00Z","updated_at":"2025-12-31T21:00:00Z",)"
            R"("started_at":null,"finished_at":null,"duration_s":null,"acus_consumed":null,)"
            R"("reason":"no daemon works the queue","reason_code":"no_daemon",)"
            R"("reason_until":null})");
  // As printed: numbers as decimals (issue 24), here and in every command's --json.
  EXPECT_THAT(result.out, HasSubstr(R"("duration_s":600,"acus_consumed":2.5,)"));
}

// Why a queued job has not started, one condition at a time, the first that applies winning.
TEST_F(CliJobs, LsSaysWhyAQueuedJobWaits) {
  write_file(config_, "api:\n  org_id: org-demo\ndatabase:\n  path: " + database_ +
                          "\ncreate:\n  max_active_sessions: 2\n  max_concurrent_creates: 1\n");
  const auto reason = [&](const std::string& key) {
    const auto rows = json::parse(cli("ls", {"--json"}).out).as_array();
    for (const auto& row : rows) {
      if (row.at("key").as_string() == key) {
        return std::string{row.at("reason_code").as_string()} + ": " +
               std::string{row.at("reason").as_string()};
      }
    }
    return std::string{"no row"};
  };
  add("waiting", 1h);
  EXPECT_EQ(reason("waiting"), "no_daemon: no daemon works the queue");
  // A daemon is alive: its registry row has not lapsed.
  ASSERT_TRUE(db().acquire_lease(core::daemon_registry_name("host:42"), "host:42", 15s, now_));
  EXPECT_EQ(reason("waiting"), "ready: ready: starts at the daemon's next dispatch");

  // One create in flight fills create.max_concurrent_creates: 1.
  add("creating", 2h);
  ASSERT_TRUE(db().commit_intent(job("creating").id, 1, core::creation_tag("creating", 0),
                                 kNowMs - 1000, now_ - 1s));
  EXPECT_EQ(reason("waiting"), "max_concurrent_creates: waiting for a create slot: 1 creates in "
                               "flight (create.max_concurrent_creates 1)");
  // A running one besides fills create.max_active_sessions: 2.
  add("running", 3h);
  start("running", "devin-r", now_ - 1h);
  EXPECT_EQ(reason("waiting"), "max_active_sessions: waiting for a free slot: 2 sessions "
                               "creating or running (create.max_active_sessions 2)");
  // Another organisation's sessions do not count.
  add("elsewhere", 1h, {}, "org-b");
  EXPECT_EQ(reason("elsewhere"), "ready: ready: starts at the daemon's next dispatch");

  ASSERT_TRUE(db().hold_org("org-demo", now_ + 90s, "HTTP 429: Retry-After 90", now_));
  EXPECT_EQ(reason("waiting"), "org_held: organisation held by the server until "
                               "2026-01-01T00:01:30Z: HTTP 429: Retry-After 90");
  EXPECT_EQ(json::parse(cli("ls", {"--json", "--state", "queued"}).out).at(1).at("reason_until"),
            "2026-01-01T00:01:30Z");

  add(core::JobDefinition{.key = "later",
                          .spec = {.prompt = "p"},
                          .controls = {.not_before_ms = kNowMs + 3'600'000}},
      1min);
  EXPECT_EQ(reason("later"), "scheduled: scheduled until 2026-01-01T01:00:00Z");

  add(core::JobDefinition{.key = "as-bob", .spec = {.prompt = "p", .create_as_user_id = "bob"}},
      1min);
  ASSERT_TRUE(db().pause_user("org-demo", "bob", "user_usage_limit_exceeded", now_));
  EXPECT_EQ(reason("as-bob"), "user_paused: user bob paused: user_usage_limit_exceeded");
  EXPECT_EQ(reason("later"), "scheduled: scheduled until 2026-01-01T01:00:00Z")
      << "another user's pause does not hold it";

  ASSERT_EQ(cli("pause", {"--reason", "maintenance"}).code, 0);
  EXPECT_EQ(reason("waiting"), "org_paused: organisation paused: maintenance");
  EXPECT_EQ(reason("elsewhere"), "ready: ready: starts at the daemon's next dispatch");
  ASSERT_EQ(cli("pause", {"--all", "--reason", "incident"}).code, 0);
  EXPECT_EQ(reason("elsewhere"), "all_paused: all organisations paused: incident");

  // Only queued jobs have a reason.
  const auto text = cli("ls", {"--state", "running"});
  EXPECT_THAT(text.out, HasSubstr("  1h        0     -       -\n"));
}

TEST_F(CliJobs, LsShortensLongErrorsInTextOnly) {
  add("long", 2 * 24h);
  start("long", "devin-l", now_ - 24h);
  const std::string reason(100, 'e');
  end_with("long", "error", core::JobState::failed, reason, now_ - 24h);
  EXPECT_THAT(cli("ls").out, HasSubstr("  " + std::string(57, 'e') + "...\n"));
  EXPECT_EQ(json::parse(cli("ls", {"--json"}).out).at(0).at("error").as_string(), reason);
}

// ---------------------------------------------------------------------------------------------
// show

TEST_F(CliJobs, ShowPrintsTheDefinitionOutcomeAndHistory) {
  add(core::JobDefinition{
          .key = "alpha",
          .priority = 5,
          .spec = {.prompt = "Fix the flaky test\nin tests/test_io.py",
                   .title = "Flaky",
                   .tags = {"ci", "flaky"},
                   .create_as_user_id = "user-1",
                   .repos = {"acme/backend"},
                   .max_acu_limit = 10},
          .controls = {.not_before_ms = kNowMs + 3'600'000,
                       .deadline_ms = kNowMs + 86'400'000,
                       .max_attempts = 3,
                       .on_waiting_for_user = {.action = core::WaitingPolicy::Action::finish_after,
                                               .finish_after = 10min},
                       .messages = {"Please add a test"},
                       .complete_on = core::CompletionPolicy::on_finished}},
      3h);
  const auto result = cli("show", {"alpha"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "Job alpha\n"
            "  state:              queued\n"
            "  source:             test\n"
            "\n"
            "Definition\n"
            "  prompt:             Fix the flaky test\n"
            "                      in tests/test_io.py\n"
            "  title:              Flaky\n"
            "  tags:               ci, flaky\n"
            "  repos:              acme/backend\n"
            "  create_as_user_id:  user-1\n"
            "  max_acu_limit:      10\n"
            "  org_id:             org-demo (default)\n"
            "  priority:           5\n"
            "  not_before:         2026-01-01T01:00:00Z\n"
            "  deadline:           2026-01-02T00:00:00Z\n"
            "  max_attempts:       3\n"
            "  on_waiting_for_user: finish_after 10m\n"
            "  message 1:          Please add a test\n"
            "  complete_on:        finished\n"
            "\n"
            "Outcome\n"
            "  session_id:         -\n"
            "  url:                -\n"
            "  status:             -\n"
            "  status_detail:      -\n"
            "  acus_consumed:      0\n"
            "  pull_requests:      -\n"
            "  structured_output:  -\n"
            "  error:              -\n"
            "  attempts:           0\n"
            "  generation:         0\n"
            "  creation_tag:       -\n"
            "  created_at:         2025-12-31T21:00:00Z\n"
            "  updated_at:         2025-12-31T21:00:00Z\n"
            "  started_at:         -\n"
            "  finished_at:        -\n"
            "\n"
            "History\n"
            "  2025-12-31T21:00:00Z  queued  state=queued  test\n");
}

TEST_F(CliJobs, ShowOfAnEndedJobHasItsSessionOutcome) {
  add_mixed_jobs();
  const auto result = cli("show", {"gamma"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto& out = result.out;
  EXPECT_THAT(out, HasSubstr("  state:              failed\n"));
  EXPECT_THAT(out, HasSubstr("  session_id:         devin-g\n"));
  EXPECT_THAT(out, HasSubstr("  url:                https://app.devin.ai/sessions/devin-g\n"));
  EXPECT_THAT(out, HasSubstr("  status:             error\n"));
  EXPECT_THAT(out, HasSubstr("  acus_consumed:      2.5\n"));
  EXPECT_THAT(out,
              HasSubstr("  pull_requests:      https://github.com/acme/backend/pull/7 (open)\n"));
  EXPECT_THAT(out, HasSubstr("  structured_output:  {\"fixed\":true}\n"));
  EXPECT_THAT(out, HasSubstr("  error:              session error\n"));
  EXPECT_THAT(out, HasSubstr("  attempts:           1\n"));
  EXPECT_THAT(out, HasSubstr("  creation_tag:       " + core::creation_tag("gamma", 0) + "\n"));
  EXPECT_THAT(out, HasSubstr("  started_at:         2025-12-31T23:40:00Z\n"));
  EXPECT_THAT(out, HasSubstr("  finished_at:        2025-12-31T23:50:00Z\n"));
  // History, oldest first: the first and the last entries are this test's own doing.
  const auto history = out.substr(out.find("History\n"));
  EXPECT_THAT(history, StartsWith("History\n  2025-12-31T23:30:00Z  queued  state=queued  test\n"));
  EXPECT_THAT(history, HasSubstr("  2025-12-31T23:50:00Z  failed  state=failed  status=error"));
}

TEST_F(CliJobs, ShowJsonHasDefinitionOutcomeAndHistory) {
  add_mixed_jobs();
  const auto result = cli("show", {"gamma", "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto root = json::parse(result.out).as_object();
  EXPECT_EQ(root.size(), 3U);
  EXPECT_EQ(json::serialize(root.at("definition")),
            R"({"key":"gamma","prompt":"Task gamma","tags":["ci","flaky"],"org_id":null,)"
            R"("priority":0,"not_before":null,"deadline":null,"max_attempts":null})");
  const auto& outcome = root.at("outcome").as_object();
  EXPECT_EQ(outcome.at("state"), "failed");
  EXPECT_EQ(outcome.at("source"), "test");
  EXPECT_EQ(outcome.at("session_id"), "devin-g");
  EXPECT_EQ(outcome.at("url"), "https://app.devin.ai/sessions/devin-g");
  EXPECT_EQ(outcome.at("status"), "error");
  EXPECT_EQ(outcome.at("status_detail"), nullptr);
  EXPECT_EQ(outcome.at("acus_consumed").as_double(), 2.5);
  EXPECT_EQ(json::serialize(outcome.at("pull_requests")),
            R"([{"url":"https://github.com/acme/backend/pull/7","state":"open"}])");
  EXPECT_EQ(json::serialize(outcome.at("structured_output")), R"({"fixed":true})");
  EXPECT_EQ(outcome.at("error"), "session error");
  EXPECT_EQ(outcome.at("attempts"), 1);
  EXPECT_EQ(outcome.at("generation"), 0);
  EXPECT_EQ(outcome.at("creation_tag").as_string(), core::creation_tag("gamma", 0));
  EXPECT_EQ(outcome.at("cancel_requested"), false);
  EXPECT_EQ(outcome.at("created_at"), "2025-12-31T23:30:00Z");
  EXPECT_EQ(outcome.at("started_at"), "2025-12-31T23:40:00Z");
  EXPECT_EQ(outcome.at("finished_at"), "2025-12-31T23:50:00Z");
  const auto& history = root.at("history").as_array();
  ASSERT_GE(history.size(), 3U);
  EXPECT_EQ(json::serialize(history.front()),
            R"({"at":"2025-12-31T23:30:00Z","event":"queued","state":"queued","status":null,)"
            R"("status_detail":null,"message":"test"})");
  EXPECT_EQ(history.back().at("event"), "failed");
  EXPECT_EQ(history.back().at("status"), "error");
  // The definition can be submitted again as it is.
  std::string reason;
  const auto again = parse_job_json(json::serialize(root.at("definition")), &reason);
  ASSERT_TRUE(again) << reason;
  EXPECT_EQ(*again, job("gamma").definition);
}

// A session with children: `show` lists them and reports the job's ACUs by the configured rule
// (docs/architecture.md "Child sessions"): added by default, the larger figure when the API's
// parent figure includes its children.
TEST_F(CliJobs, ShowListsChildSessionsAndCountsTheirAcus) {
  add("family", 1h);
  start("family", "devin-p", now_ - 50min);
  end_with("family", "exit", core::JobState::finished, "", now_ - 10min);  // own: 2.5
  const store::ChildrenUpdate children{
      .job_id = job("family").id, .child_session_ids = {"devin-c1", "devin-c2"},
      .children_acus = 4.0};
  ASSERT_TRUE(db().record_children(std::span{&children, 1}, now_ - 5min));

  const auto text = cli("show", {"family"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("  acus_consumed:      6.5 (session 2.5, children 4)\n"));
  EXPECT_THAT(text.out, HasSubstr("  children:           devin-c1\n"
                                  "                      devin-c2\n"));
  const auto shown = cli("show", {"family", "--json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  const auto outcome = json::parse(shown.out).at("outcome").as_object();
  EXPECT_EQ(outcome.at("acus_consumed").to_number<double>(), 6.5);
  EXPECT_EQ(outcome.at("session_acus").to_number<double>(), 2.5);
  EXPECT_EQ(outcome.at("children_acus").to_number<double>(), 4.0);
  EXPECT_EQ(json::serialize(outcome.at("child_session_ids")), R"(["devin-c1","devin-c2"])");

  // An API whose parent figure already holds the children's: never their sum.
  write_file(config_, "api:\n  org_id: org-demo\ndatabase:\n  path: " + database_ +
                          "\njobs:\n  parent_acus_include_children: true\n");
  const auto included = cli("show", {"family", "--json"});
  ASSERT_EQ(included.code, 0) << included.err;
  EXPECT_EQ(json::parse(included.out).at("outcome").at("acus_consumed").to_number<double>(), 4.0);

  // Without children nothing changes: no children line, an empty array.
  add("single", 1h);
  const auto single = cli("show", {"single"});
  EXPECT_THAT(single.out, ::testing::Not(HasSubstr("children:")));
  EXPECT_EQ(json::serialize(json::parse(cli("show", {"single", "--json"}).out)
                                .at("outcome").at("child_session_ids")),
            "[]");
}

TEST_F(CliJobs, ShowOfAnUnknownKeyExitsThree) {
  add("alpha", 1min);
  const auto result = cli("show", {"nope"});
  EXPECT_EQ(result.code, 3);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "devin-orch show: no job has the key 'nope'\n");
}

// ---------------------------------------------------------------------------------------------
// cancel, retry

TEST_F(CliJobs, CancelAQueuedJobEndsItAtOnce) {
  add("alpha", 1min);
  const auto result = cli("cancel", {"alpha"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "alpha: cancelled\n");
  const auto record = job("alpha");
  EXPECT_EQ(record.state, core::JobState::cancelled);
  EXPECT_EQ(record.last_error, "cancelled by an operator");

  const auto again = cli("cancel", {"alpha"});
  EXPECT_EQ(again.code, 4);
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(again.err,
            "devin-orch cancel: alpha: already ended (state cancelled); nothing to cancel\n");
}

TEST_F(CliJobs, CancelARunningJobAsksTheDaemon) {
  add_mixed_jobs();
  const auto result = cli("cancel", {"beta"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "beta: cancellation requested: the running daemon terminates the session\n");
  auto record = job("beta");
  EXPECT_EQ(record.state, core::JobState::running) << "the daemon ends it, not the CLI";
  EXPECT_EQ(record.cancel_requested, 1);

  const auto archived = cli("cancel", {"beta", "--archive", "--json"});
  EXPECT_EQ(archived.code, 0);
  EXPECT_EQ(archived.out, R"({"key":"beta","result":"requested"})" "\n");
  EXPECT_EQ(job("beta").cancel_requested, 2);
  EXPECT_EQ(cli("cancel", {"beta", "--archive"}).out,
            "beta: cancellation requested: the running daemon terminates the session and "
            "archives it\n");
  EXPECT_THAT(cli("show", {"beta"}).out, HasSubstr("  cancel_requested:   terminate and archive\n"));
}

TEST_F(CliJobs, CancelOfAnEndedOrUnknownJob) {
  add_mixed_jobs();
  const auto ended = cli("cancel", {"gamma"});
  EXPECT_EQ(ended.code, 4);
  EXPECT_EQ(ended.err, "devin-orch cancel: gamma: already ended (state failed); nothing to cancel\n");
  EXPECT_EQ(job("gamma").state, core::JobState::failed);
  const auto unknown = cli("cancel", {"nope", "--json"});
  EXPECT_EQ(unknown.code, 3);
  EXPECT_EQ(unknown.out, "");
  EXPECT_EQ(unknown.err, "devin-orch cancel: no job has the key 'nope'\n");
  EXPECT_EQ(cli("cancel", {"delta", "--json"}).out, R"({"key":"delta","result":"cancelled"})" "\n");
}

TEST_F(CliJobs, RetryQueuesAnEndedJobAsANewGeneration) {
  add_mixed_jobs();
  const auto before = db().history(job("gamma").id).value().size();
  const auto result = cli("retry", {"gamma"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "gamma: queued again as generation 1 (history kept)\n");
  const auto record = job("gamma");
  EXPECT_EQ(record.state, core::JobState::queued);
  EXPECT_EQ(record.generation, 1);
  EXPECT_EQ(record.attempts, 0);
  EXPECT_FALSE(record.session_id);
  EXPECT_EQ(db().history(record.id).value().size(), before + 1);

  const auto queued = cli("retry", {"gamma"});
  EXPECT_EQ(queued.code, 4);
  EXPECT_EQ(queued.err,
            "devin-orch retry: gamma: cannot retry a job in state queued (only failed, "
            "suspended, dead, lost, cancelled, timed_out, stalled)\n");
  EXPECT_EQ(cli("retry", {"beta"}).code, 4) << "running";
  EXPECT_EQ(cli("retry", {"nope"}).code, 3);
  EXPECT_EQ(cli("retry", {"nope"}).err, "devin-orch retry: no job has the key 'nope'\n");

  ASSERT_EQ(cli("cancel", {"alpha"}).code, 0);
  EXPECT_EQ(cli("retry", {"alpha", "--json"}).out,
            R"({"key":"alpha","result":"requeued","generation":1})" "\n");
}

TEST_F(CliJobs, FinishedAndInvalidJobsCannotBeRetried) {
  add("done", 1h);
  start("done", "devin-d", now_ - 30min);
  end_with("done", "exit", core::JobState::finished, "", now_ - 10min);
  EXPECT_EQ(cli("retry", {"done"}).code, 4);
  ASSERT_TRUE(db().add_invalid("broken", "test", "missing prompt", now_));
  EXPECT_EQ(cli("retry", {"broken"}).code, 4);
}

// Issue 24: a job the daemon's loader recorded `invalid` (a typo in a job file) is mended by
// its corrected definition through each of enqueue's inputs, and then runs like any other.
TEST_F(CliJobs, EnqueueMendsAnInvalidJobFromEveryInput) {
  for (const char* key : {"by-flags", "by-file", "by-stdin"}) {
    ASSERT_TRUE(db().add_invalid(key, "file:jobs.yaml",
                                 "jobs.yaml:2:3: jobs[0].promt: unknown field 'promt'",
                                 now_ - 1h));
  }
  const auto flags = cli("enqueue", {"--key", "by-flags", "--prompt", "Fixed", "--tag", "ci"});
  EXPECT_EQ(flags.code, 0) << flags.err;
  EXPECT_EQ(flags.out, "mended by-flags (was invalid; queued again)\n");

  const auto file = dir_.file("jobs.yaml");
  write_file(file, "- key: by-file\n  prompt: Fixed\n");
  const auto from_file = cli("enqueue", {"--file", file});
  EXPECT_EQ(from_file.code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, "mended by-file (was invalid; queued again)\n");

  const auto from_stdin =
      cli("enqueue", {"--stdin", "--json"}, R"({"key": "by-stdin", "prompt": "Fixed"})" "\n");
  EXPECT_EQ(from_stdin.code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, R"([{"key":"by-stdin","result":"mended"}])" "\n");

  for (const char* key : {"by-flags", "by-file", "by-stdin"}) {
    const auto record = job(key);
    EXPECT_EQ(record.state, core::JobState::queued) << key;
    EXPECT_EQ(record.definition.spec.prompt, "Fixed") << key;
    EXPECT_EQ(record.last_error, std::nullopt) << key;
  }
  EXPECT_EQ(job("by-flags").definition.spec.tags, std::vector<std::string>{"ci"});
  const auto shown = cli("show", {"by-flags"});
  EXPECT_THAT(shown.out, HasSubstr("mended  state=queued  definition replaced by cli: prompt, "
                                   "tags differ"));
  // Mended once: it is an ordinary queued job now, and keeps its definition.
  EXPECT_EQ(cli("enqueue", {"--key", "by-flags", "--prompt", "Other"}).code, 4);
}

// ---------------------------------------------------------------------------------------------
// delete

TEST_F(CliJobs, DeleteRemovesEndedJobsAndRefusesLiveOnes) {
  add_mixed_jobs();  // alpha and delta queued, beta running, gamma failed
  ASSERT_TRUE(db().add_invalid("broken", "test", "missing prompt", now_));
  const auto gamma = job("gamma").id;

  const auto deleted = cli("delete", {"gamma", "broken"});
  EXPECT_EQ(deleted.code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted gamma (was failed)\ndeleted broken (was invalid)\n");
  EXPECT_EQ(deleted.err, "");
  EXPECT_EQ(cli("show", {"gamma"}).code, 3);
  EXPECT_TRUE(db().history(gamma).value().empty()) << "its history goes with it";

  const auto running = cli("delete", {"beta"});
  EXPECT_EQ(running.code, 4);
  EXPECT_EQ(running.out, "");
  EXPECT_EQ(running.err,
            "devin-orch delete: beta: has not ended (state running); cancel it first: "
            "devin-orch cancel beta\n");
  EXPECT_EQ(cli("delete", {"alpha"}).code, 4) << "queued";
  const auto unknown = cli("delete", {"nope"});
  EXPECT_EQ(unknown.code, 3);
  EXPECT_EQ(unknown.err, "devin-orch delete: no job has the key 'nope'\n");
  EXPECT_THAT(ls_keys({"--sort", "key"}), ElementsAre("alpha", "beta", "delta"));

  // Several keys: each is decided alone; 4 wins over 3.
  ASSERT_EQ(cli("cancel", {"delta"}).code, 0);
  const auto mixed = cli("delete", {"nope", "delta", "alpha", "--json"});
  EXPECT_EQ(mixed.code, 4);
  EXPECT_EQ(mixed.out,
            R"([{"key":"nope","result":"not_found","state":null},)"
            R"({"key":"delta","result":"deleted","state":"cancelled"},)"
            R"({"key":"alpha","result":"not_ended","state":"queued"}])" "\n");
  EXPECT_THAT(ls_keys({"--sort", "key"}), ElementsAre("alpha", "beta"));
}

// A deleted key is free again, so a job file that still lists it brings it back: say so.
TEST_F(CliJobs, DeletingAJobFromAJobFileSaysTheDaemonAddsItAgain) {
  ASSERT_TRUE(db().add_job({.key = "nightly", .spec = {.prompt = "p"}}, "file:/etc/jobs.yaml",
                           now_ - 1h));
  ASSERT_EQ(cli("cancel", {"nightly"}).code, 0);
  const auto deleted = cli("delete", {"nightly"});
  EXPECT_EQ(deleted.code, 0);
  EXPECT_EQ(deleted.out, "deleted nightly (was cancelled)\n");
  EXPECT_EQ(deleted.err,
            "devin-orch delete: note: nightly came from /etc/jobs.yaml; the daemon adds it "
            "again as a new job at its next start or reload unless it is removed from that "
            "file\n");
}

// ---------------------------------------------------------------------------------------------
// pause, resume

TEST_F(CliJobs, PauseResumeAndList) {
  EXPECT_EQ(cli("pause", {"--list"}).out, "no organisation is paused\n");
  EXPECT_EQ(cli("pause", {"--list", "--json"}).out, "[]\n");

  const auto paused = cli("pause");
  EXPECT_EQ(paused.code, 0) << paused.err;
  EXPECT_EQ(paused.out, "paused organisation org-demo: paused by an operator\n");
  const auto all = cli("pause", {"--all", "--reason", "maintenance window"});
  EXPECT_EQ(all.out, "paused all organisations: maintenance window\n");
  EXPECT_EQ(cli("pause", {"--org", "org-b", "--reason", "budget", "--json"}).out,
            R"({"org_id":"org-b","result":"paused","reason":"budget"})" "\n");
  const auto again = cli("pause", {"--org", "org-b", "--reason", "other"});
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, "organisation org-b was already paused: budget\n");

  const auto paused_orgs = db().paused_orgs();
  ASSERT_TRUE(paused_orgs);
  EXPECT_EQ(paused_orgs->size(), 3U);
  EXPECT_EQ(paused_orgs->at("*"), "maintenance window");

  EXPECT_EQ(cli("pause", {"--list"}).out,
            "ORG       SINCE                 SOURCE  REASON\n"
            "*         2026-01-01T00:00:00Z  cli     maintenance window\n"
            "org-b     2026-01-01T00:00:00Z  cli     budget\n"
            "org-demo  2026-01-01T00:00:00Z  cli     paused by an operator\n");
  EXPECT_EQ(json::serialize(json::parse(cli("pause", {"--list", "--json"}).out).at(1)),
            R"({"org_id":"org-b","reason":"budget","paused_at":"2026-01-01T00:00:00Z",)"
            R"("source":"cli"})");

  EXPECT_EQ(cli("resume", {"--all"}).out, "resumed all organisations\n");
  EXPECT_EQ(cli("resume").out, "resumed organisation org-demo\n");
  const auto not_paused = cli("resume", {"--json"});
  EXPECT_EQ(not_paused.code, 0);
  EXPECT_EQ(not_paused.out, R"({"org_id":"org-demo","result":"not_paused"})" "\n");
  EXPECT_EQ(cli("resume", {"--org", "org-demo"}).out, "organisation org-demo was not paused\n");
  EXPECT_EQ(db().paused_orgs().value(),
            (std::map<std::string, std::string>{{"org-b", "budget"}}));
}

// ---------------------------------------------------------------------------------------------
// prune

TEST_F(CliJobs, PruneRemovesOldEndedJobsAndKeepsTheirOutcomes) {
  add_mixed_jobs();                                   // gamma ended 10 minutes ago
  add("old", 3 * 24h);
  start("old", "devin-o", now_ - 3 * 24h);
  end_with("old", "exit", core::JobState::finished, "", now_ - 2 * 24h);
  add("stale", 3 * 24h);
  ASSERT_EQ(cli("cancel", {"stale"}).code, 0);         // ended now

  const auto dry = cli("prune", {"--older-than", "1d", "--dry-run"});
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_EQ(dry.out,
            "would prune 1 job(s) that ended before 2025-12-31T00:00:00Z (dry run: nothing "
            "removed)\n");
  EXPECT_TRUE(db().find("old").value()) << "a dry run removes nothing";
  EXPECT_EQ(json::serialize(json::parse(cli("prune", {"--older-than", "5m", "--dry-run", "--json"}).out)),
            R"({"pruned":2,"dry_run":true,"cutoff":"2025-12-31T23:55:00Z"})");

  const auto pruned = cli("prune", {"--older-than", "1d"});
  EXPECT_EQ(pruned.code, 0) << pruned.err;
  EXPECT_EQ(pruned.out, "pruned 1 job(s) that ended before 2025-12-31T00:00:00Z (outcomes kept)\n");
  EXPECT_FALSE(db().find("old").value());
  EXPECT_EQ(cli("show", {"old"}).code, 3);
  EXPECT_THAT(ls_keys({"--reverse"}), ElementsAre("stale", "alpha", "beta", "gamma", "delta"));

  const auto second = cli("prune", {"--older-than", "1d12h", "--json"});
  EXPECT_EQ(second.out, R"({"pruned":0,"dry_run":false,"cutoff":"2025-12-30T12:00:00Z"})" "\n");
  EXPECT_EQ(json::parse(cli("prune", {"--older-than", "5m", "--json"}).out).at("pruned"), 1)
      << "gamma; stale ended just now";
}

}  // namespace
// `events ls` and `events retry`: deliveries as the outbox holds them, and dead letters sent
// again with their maximum age counted from the retry.
TEST_F(CliJobs, EventsListDeliveriesAndRetryDeadLetters) {
  add_mixed_jobs();  // gamma failed: one job.failed event
  EXPECT_EQ(cli("events", {"ls"}).out, "no deliveries\n");
  const auto events = db().unrouted_events(10).value();
  ASSERT_EQ(events.size(), 1U);
  const std::vector<store::DeliveryRoute> routes{
      {.sink = "webhook https://ci.example.com/hook", .target = {.url = "https://ci.example.com/hook"}}};
  ASSERT_TRUE(db().route_event(events[0].seq, routes, now_ - 9min));
  ASSERT_TRUE(db().record_attempt({.seq = events[0].seq, .sink = routes[0].sink,
                                   .state = store::DeliveryState::dead, .attempts = 3,
                                   .error = "HTTP 500"},
                                  now_ - 8min));
  const auto listed = cli("events", {"ls", "--dead"});
  EXPECT_EQ(listed.code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("job.failed  gamma  https://ci.example.com/hook  dead   "));
  EXPECT_THAT(listed.out, HasSubstr("HTTP 500"));
  const auto as_json = json::parse(cli("events", {"ls", "--json", "--job", "gamma"}).out).as_array();
  ASSERT_EQ(as_json.size(), 1U);
  EXPECT_EQ(as_json[0].at("event_id").as_string(), events[0].id);
  EXPECT_EQ(as_json[0].at("state").as_string(), "dead");
  EXPECT_EQ(as_json[0].at("attempts").as_int64(), 3);
  EXPECT_TRUE(json::parse(cli("events", {"ls", "--json", "--pending"}).out).as_array().empty());

  const auto retried = cli("events", {"retry", events[0].id});
  EXPECT_EQ(retried.code, 0) << retried.err;
  EXPECT_EQ(retried.out, "queued 1 dead-lettered delivery again\n");
  const auto pending = db().pending_deliveries(10).value();
  ASSERT_EQ(pending.size(), 1U);
  EXPECT_EQ(pending[0].age_from_ms, core::to_epoch_ms(now_));
  EXPECT_EQ(cli("events", {"retry", events[0].id}).code, 3);  // nothing dead any more
  EXPECT_EQ(cli("events", {"retry", "--all-dead", "--json"}).out, "{\"retried\":0}\n");
  EXPECT_EQ(cli("events", {"retry"}).code, 2);
  EXPECT_EQ(cli("events", {"list"}).code, 2);
}

}  // namespace devin_orch::app
