// The operator's job commands as the real `devin-orch` binary, around real daemon runs against
// devin-sim: enqueue (flags, YAML file, JSON lines on stdin), ls, show, cancel, retry, pause,
// resume, delete, prune, with their exit codes.
#include "daemon_fixture.hpp"

#include <sqlite3.h>

#include <gmock/gmock.h>

#include <sstream>

namespace devin_orch::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::MatchesRegex;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class Cli : public DaemonFixture {
 protected:
  void SetUp() override {
    start_sim({"--time-factor", "0.005"});
    write_config(DaemonSettings{}, {});
  }

  RunResult cli(const std::string& command, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {command, "--config", dir_.file("config.yaml")});
    return run_command(daemon_options(std::move(args)));
  }
  boost::json::value cli_json(const std::string& command, std::vector<std::string> args = {}) {
    args.push_back("--json");
    const auto result = cli(command, std::move(args));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return boost::json::parse(result.out);
  }
  std::vector<std::string> ls_keys(std::vector<std::string> filters) {
    std::vector<std::string> keys;
    const auto rows = cli_json("ls", std::move(filters));
    for (const auto& row : rows.as_array()) keys.emplace_back(row.at("key").as_string());
    return keys;
  }
  std::map<std::string, std::string> states() {
    std::map<std::string, std::string> out;
    const auto rows = cli_json("ls");
    for (const auto& row : rows.as_array()) {
      out[std::string{row.at("key").as_string()}] = std::string{row.at("state").as_string()};
    }
    return out;
  }
  std::int64_t count_rows(const std::string& sql) {
    sqlite3* db = nullptr;
    std::int64_t count = -1;
    if (sqlite3_open_v2(dir_.file("state/orch.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        count = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return count;
  }
};

// check-config --online asks devin-sim's GET /v3/self with the configured key.
TEST_F(Cli, CheckConfigOnlineChecksTheKeyTheOrganisationAndNamesImpersonation) {
  write_jobs("- key: as-bob\n  prompt: p\n  create_as_user_id: user-bob\n");
  write_config(DaemonSettings{});
  auto check = cli("check-config", {"--online"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_THAT(check.out, HasSubstr("# online: ok: API key: works (GET /v3/self: service_user "
                                   "devin-sim (svc-sim))\n"));
  EXPECT_THAT(check.out, HasSubstr("# online: ok: organisation: org-demo is the key's own\n"));
  EXPECT_THAT(check.out, HasSubstr("# online: note: impersonation: 1 job(s) use "
                                   "create_as_user_id (as-bob; users user-bob)"));
  EXPECT_EQ(check.out.find(kApiKey), std::string::npos) << "the key is never printed";
  // Without --online nothing is asked.
  const auto requests = sim_->stats().at("requests_total").as_int64();
  EXPECT_EQ(cli("check-config").exit_code, 0);
  EXPECT_EQ(sim_->stats().at("requests_total").as_int64(), requests);

  // A job for an organisation the key does not belong to.
  write_jobs("- key: elsewhere\n  prompt: p\n  org_id: org-other\n");
  check = cli("check-config", {"--online"});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.out, HasSubstr("# online: PROBLEM: organisation: the key belongs to org-demo, "
                                   "but requests would go to org-other"));

  // A key the server refuses.
  auto options = daemon_options({"check-config", "--config", dir_.file("config.yaml"), "--online"});
  options.env = {{"DEVIN_API_KEY", "cog_not_the_right_one"}};
  check = run_command(options);
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.out, HasSubstr("# online: PROBLEM: API key: refused by"));
  EXPECT_THAT(check.out, HasSubstr("HTTP 401: Invalid API key"));
  EXPECT_EQ(check.out.find("cog_not_the_right_one"), std::string::npos);
}

TEST_F(Cli, EnqueueFromFlagsFileAndStdinThenInspectCancelRetryAndPrune) {
  // ---- enqueue, three ways
  const auto flags = cli("enqueue", {"--key", "from-flags", "--prompt", "Ship it [sim:exit]",
                                     "--tag", "manual", "--priority", "5"});
  EXPECT_EQ(flags.exit_code, 0) << flags.err;
  EXPECT_EQ(flags.out, "added from-flags\n");

  write_jobs(
      "- key: from-file\n"
      "  prompt: \"Break it [sim:error]\"\n"
      "- key: ghost-org\n"
      "  prompt: \"Nobody is home [sim:exit]\"\n"
      "  org_id: org-ghost\n"
      "- key: bad-one\n"
      "  prompt: Fine\n"
      "  colour: blue\n",
      "more-jobs.yaml");
  const auto file = cli("enqueue", {"--file", dir_.file("more-jobs.yaml")});
  EXPECT_EQ(file.exit_code, 2) << "one job was invalid";
  EXPECT_EQ(file.out, "added from-file\nadded ghost-org\n");
  EXPECT_THAT(file.err, StartsWith(dir_.file("more-jobs.yaml") + ":8:3: "));

  write_file(dir_.file("jobs.jsonl"),
             R"({"key": "from-stdin", "prompt": "Finish it [sim:exit]", "tags": ["batch"]})" "\n"
             R"({"key": "to-cancel", "prompt": "Never mind [sim:exit]", "priority": -1})" "\n"
             R"({"key": "broken", "prompt": ""})" "\n");
  auto shell = daemon_options({});
  shell.args = {"/bin/sh", "-c",
                "'" + std::string{DEVIN_ORCH_BIN} + "' enqueue --config '" +
                    dir_.file("config.yaml") + "' --stdin --json < '" + dir_.file("jobs.jsonl") +
                    "'"};
  const auto stdin_run = run_command(shell);
  EXPECT_EQ(stdin_run.exit_code, 2);
  EXPECT_EQ(stdin_run.err, "stdin:3: field 'prompt': must not be empty or only whitespace\n");
  EXPECT_EQ(stdin_run.out,
            R"([{"key":"from-stdin","result":"added"},{"key":"to-cancel","result":"added"},)"
            R"({"key":"broken","result":"invalid","error":"stdin:3: field 'prompt': must not be empty or only whitespace"}])"
            "\n");
  const auto again = cli("enqueue", {"--key", "from-flags", "--prompt", "Something else"});
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_EQ(again.out,
            "exists from-flags with a different definition (not applied): priority, prompt, tags "
            "differ\n");

  // ---- cancel a queued job: it never starts
  const auto cancelled = cli("cancel", {"to-cancel"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(cancelled.out, "to-cancel: cancelled\n");
  EXPECT_EQ(cli("cancel", {"no-such-job"}).exit_code, 3);

  // ---- pauses are listed and lifted (for an organisation no job uses)
  EXPECT_EQ(cli("pause", {"--list"}).out, "no organisation is paused\n");
  const auto paused = cli("pause", {"--org", "org-elsewhere", "--reason", "maintenance"});
  EXPECT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, "paused organisation org-elsewhere: maintenance\n");
  const auto pauses = cli_json("pause", {"--list"});
  ASSERT_EQ(pauses.as_array().size(), 1U);
  EXPECT_EQ(pauses.at(0).at("org_id").as_string(), "org-elsewhere");
  EXPECT_EQ(pauses.at(0).at("reason").as_string(), "maintenance");
  EXPECT_EQ(pauses.at(0).at("source").as_string(), "cli");
  EXPECT_THAT(cli("pause", {"--list"}).out, StartsWith("ORG            SINCE"));
  EXPECT_EQ(cli("resume", {"--org", "org-elsewhere"}).out, "resumed organisation org-elsewhere\n");
  EXPECT_EQ(cli_json("pause", {"--list"}).as_array().size(), 0U);

  // ---- the daemon runs what was queued
  const auto run = run_until_idle();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(states(), (std::map<std::string, std::string>{{"from-flags", "finished"},
                                                          {"from-file", "failed"},
                                                          {"ghost-org", "dead"},
                                                          {"from-stdin", "finished"},
                                                          {"to-cancel", "cancelled"}}));
  EXPECT_EQ(sim_->sessions().size(), 3U) << "the cancelled job never started";

  // ---- ls: text and filters
  const auto table = cli("ls");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  std::istringstream lines{table.out};
  std::string header;
  std::getline(lines, header);
  EXPECT_THAT(header, MatchesRegex("KEY +STATE +ORG +SESSION +STATUS +AGE +DURATION +ACUS +REASON "
                                   "+ERROR"));
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 5U);
  // Newest first: to-cancel and from-stdin were enqueued last, from-flags first. Ages are in
  // seconds or, on a loaded machine where this test takes minutes, in minutes.
  EXPECT_THAT(rows[0], MatchesRegex("to-cancel +cancelled +org-demo +- +- +[0-9]+[sm] +- +- +- "
                                    "+cancelled by an operator"));
  EXPECT_THAT(rows[2], MatchesRegex("ghost-org +dead +org-ghost +- +- +[0-9]+[sm] +- +- +- +.*404.*"));
  EXPECT_THAT(rows[4], MatchesRegex("from-flags +finished +org-demo +devin-[0-9a-f]+ +exit +[0-9]+[sm] "
                                    "+[0-9]+[sm] +[0-9.]+ +- +-"));
  EXPECT_THAT(ls_keys({"--state", "finished"}), ElementsAre("from-stdin", "from-flags"));
  EXPECT_THAT(ls_keys({"--state", "dead", "--state", "failed"}), ElementsAre("ghost-org", "from-file"));
  EXPECT_THAT(ls_keys({"--org", "org-ghost"}), ElementsAre("ghost-org"));
  EXPECT_THAT(ls_keys({"--tag", "batch"}), ElementsAre("from-stdin"));
  EXPECT_THAT(ls_keys({"--newer-than", "1h", "--limit", "2"}), ElementsAre("to-cancel", "from-stdin"));
  EXPECT_THAT(ls_keys({"--sort", "key", "--limit", "2"}), ElementsAre("from-file", "from-flags"));
  EXPECT_THAT(ls_keys({"--older-than", "1h"}), ElementsAre());
  const auto listed = cli_json("ls", {"--state", "finished"});
  const auto& first = listed.at(0).as_object();
  EXPECT_TRUE(first.at("session_id").as_string().starts_with("devin-"));
  EXPECT_EQ(first.at("status").as_string(), "exit");
  EXPECT_TRUE(first.at("finished_at").is_string());
  EXPECT_EQ(first.at("attempts").as_int64(), 1);

  // ---- show: text and JSON
  const auto shown = cli("show", {"from-flags"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, StartsWith("Job from-flags\n  state:              finished\n"
                                    "  source:             cli\n"));
  EXPECT_THAT(shown.out, HasSubstr("  prompt:             Ship it [sim:exit]\n"));
  EXPECT_THAT(shown.out, HasSubstr("  tags:               manual\n"));
  EXPECT_THAT(shown.out, HasSubstr("  priority:           5\n"));
  EXPECT_THAT(shown.out, HasSubstr("  status:             exit\n"));
  EXPECT_THAT(shown.out, HasSubstr("  pull_requests:      https://github.com/example/repo/pull/"));
  EXPECT_THAT(shown.out, HasSubstr("\nHistory\n"));
  const auto detail = cli_json("show", {"from-flags"});
  const auto& outcome = detail.at("outcome").as_object();
  const std::string session_id{outcome.at("session_id").as_string()};
  bool known_to_sim = false;
  for (const auto& session : sim_->sessions()) {
    known_to_sim = known_to_sim || session.at("session_id").as_string() == session_id;
  }
  EXPECT_TRUE(known_to_sim) << session_id;
  EXPECT_EQ(outcome.at("pull_requests").as_array().size(), 1U);
  EXPECT_GT(outcome.at("acus_consumed").to_number<double>(), 0.0);
  EXPECT_TRUE(outcome.at("started_at").is_string());
  std::vector<std::string> events;
  for (const auto& entry : detail.at("history").as_array()) {
    events.emplace_back(entry.at("event").as_string());
  }
  EXPECT_EQ(events.front(), "queued");
  EXPECT_THAT(events, Contains("created"));
  EXPECT_EQ(detail.at("definition").at("priority").as_int64(), 5);
  const auto unknown = cli("show", {"no-such-job"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_EQ(unknown.err, "devin-orch show: no job has the key 'no-such-job'\n");

  // ---- cancel of an ended job; retry
  EXPECT_EQ(cli("cancel", {"from-file"}).exit_code, 4);
  const auto not_retryable = cli("retry", {"from-flags"});
  EXPECT_EQ(not_retryable.exit_code, 4);
  EXPECT_THAT(not_retryable.err, HasSubstr("cannot retry a job in state finished"));
  EXPECT_EQ(cli("retry", {"no-such-job"}).exit_code, 3);
  const auto retried = cli("retry", {"ghost-org"});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(retried.out, "ghost-org: queued again as generation 1 (history kept)\n");
  EXPECT_EQ(cli("retry", {"from-file", "--json"}).out,
            R"({"key":"from-file","result":"requeued","generation":1})" "\n");
  EXPECT_THAT(ls_keys({"--state", "queued"}), ElementsAre("ghost-org", "from-file"));

  const auto rerun = run_until_idle();
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  const auto after = states();
  EXPECT_EQ(after.at("from-file"), "failed") << "its [sim:error] session failed again";
  EXPECT_EQ(after.at("ghost-org"), "dead");
  EXPECT_EQ(sim_->sessions().size(), 4U) << "one new session: from-file's second generation";
  const auto ghost = cli_json("show", {"ghost-org"});
  EXPECT_EQ(ghost.at("outcome").at("generation").as_int64(), 1);
  std::vector<std::string> ghost_events;
  for (const auto& entry : ghost.at("history").as_array()) {
    ghost_events.emplace_back(entry.at("event").as_string());
  }
  EXPECT_EQ(std::count(ghost_events.begin(), ghost_events.end(), "dead"), 2) << "history kept";
  EXPECT_THAT(ghost_events, Contains("retry"));

  // ---- delete one ended job: the others stay
  const auto deleted = cli("delete", {"ghost-org"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted ghost-org (was dead)\n");
  EXPECT_EQ(cli("show", {"ghost-org"}).exit_code, 3);
  EXPECT_EQ(cli("delete", {"ghost-org"}).exit_code, 3);
  EXPECT_EQ(count_rows("SELECT count(*) FROM jobs"), 4);
  EXPECT_EQ(count_rows("SELECT count(*) FROM outcomes WHERE key = 'ghost-org'"), 1);

  // ---- prune: nothing is old enough, then everything that ended is
  EXPECT_EQ(cli("prune", {"--older-than", "1h"}).out.substr(0, 18), "pruned 0 job(s) th");
  const auto dry = cli_json("prune", {"--older-than", "0s", "--dry-run"});
  EXPECT_EQ(dry.at("pruned").as_int64(), 4);
  EXPECT_EQ(dry.at("dry_run").as_bool(), true);
  EXPECT_EQ(count_rows("SELECT count(*) FROM jobs"), 4);
  const auto pruned = cli("prune", {"--older-than", "0s"});
  EXPECT_EQ(pruned.exit_code, 0) << pruned.err;
  EXPECT_THAT(pruned.out, StartsWith("pruned 4 job(s) that ended before "));
  EXPECT_THAT(pruned.out, HasSubstr("(outcomes kept)"));
  EXPECT_EQ(count_rows("SELECT count(*) FROM jobs"), 0);
  EXPECT_EQ(count_rows("SELECT count(*) FROM outcomes"), 5);
  EXPECT_EQ(count_rows("SELECT count(*) FROM outcomes WHERE key = 'from-flags' AND "
                       "state = 'finished' AND session_id = '" + session_id + "'"),
            1);
  EXPECT_EQ(cli("ls").out, "KEY  STATE  ORG  SESSION  STATUS  AGE  DURATION  ACUS  REASON  ERROR\n");
}

// Issue 24: the daemon said "no API key: no API key: ..." when it found none.
TEST_F(Cli, RunWithoutAnApiKeySaysSoOnce) {
  auto options = daemon_options({"run", "--config", dir_.file("config.yaml")});
  options.env.clear();
  options.unset_env.push_back("DEVIN_API_KEY");  // CREDENTIALS_DIRECTORY is unset already
  const auto run = run_command(options);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("no API key: provide the systemd credential devin-api-key, set "
                                 "api.api_key_file, or set DEVIN_API_KEY"));
  EXPECT_EQ(run.err.find("no API key: no API key"), std::string::npos) << run.err;
}

TEST_F(Cli, TheMainHelpListsTheJobCommandsAndTheirExitCodes) {
  const auto help = run_command(daemon_options({"--help"}));
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"enqueue", "ls", "show", "cancel", "retry", "pause", "resume",
                              "prune", "delete"}) {
    EXPECT_THAT(help.out, HasSubstr("\n  " + std::string{command} + " ")) << command;
    const auto own = run_command(daemon_options({command, "--help"}));
    EXPECT_EQ(own.exit_code, 0) << command;
    EXPECT_THAT(own.out, StartsWith("Usage: devin-orch " + std::string{command}));
  }
  EXPECT_THAT(help.out, HasSubstr("3 no job has that key, 4 not allowed in the job's current state"));
  const auto bad = run_command(daemon_options({"ls", "--no-such-option"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "devin-orch ls: unknown option '--no-such-option'\n"
                     "see 'devin-orch ls --help'\n");
  // Issue 24: no command at all printed the whole help (30 lines) to stderr.
  const auto none = run_command(daemon_options({}));
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err, "devin-orch: no command given\nsee 'devin-orch --help'\n");
  EXPECT_EQ(none.out, "");
}

}  // namespace
}  // namespace devin_orch::testing
