// Job files: valid definitions, each kind of invalid job with its exact located diagnostic,
// duplicate keys, fatal problems, and hostile input (huge, deep, alias bombs, bad UTF-8).
#include "devin_orch/app/jobs/job_file.hpp"

#include "support/process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> invalid_lines(const JobFileLoad& load) {
  std::vector<std::string> lines;
  for (const InvalidJob& job : load.invalid) lines.push_back(job.diagnostic.to_string());
  return lines;
}

// One job built from `fields`, with a valid key and prompt unless the fields replace them.
JobFileLoad one_job(const std::string& fields, const JobFileLimits& limits = {}) {
  return parse_job_text("- key: k1\n" + fields, "jobs.yaml", limits);
}

std::string only_problem(const JobFileLoad& load) {
  EXPECT_FALSE(load.fatal.has_value());
  EXPECT_TRUE(load.jobs.empty());
  if (load.invalid.size() != 1) return "expected one invalid job, got " +
                                       std::to_string(load.invalid.size());
  return load.invalid[0].diagnostic.to_string();
}

TEST(JobFile, ValidFileWithEveryField) {
  const JobFileLoad load = parse_job_text(R"(
- key: docs-typo-fix
  prompt: |
    Fix the typo in README.md.
    Open a PR.
  title: Fix README typo
  tags: [docs, small]
  create_as_user_id: user-42
  playbook_id: playbook-abc
  knowledge_ids: [k1, k2]
  secret_ids: []
  repos: [acme/web]
  max_acu_limit: 10
  concurrency_key: repo:acme/web
  devin_mode: fast
  org_id: org-other
  priority: -3
- key: minimal
  prompt: Say hello
  knowledge_ids: null
  title:
)",
                                          "jobs.yaml");
  ASSERT_FALSE(load.fatal.has_value()) << load.fatal->to_string();
  ASSERT_TRUE(load.invalid.empty()) << invalid_lines(load)[0];
  ASSERT_EQ(load.jobs.size(), 2U);

  const core::JobDefinition& full = load.jobs[0];
  EXPECT_EQ(full.key, "docs-typo-fix");
  EXPECT_EQ(full.spec.prompt, "Fix the typo in README.md.\nOpen a PR.\n");
  EXPECT_EQ(full.spec.title, "Fix README typo");
  EXPECT_EQ(full.spec.tags, (std::vector<std::string>{"docs", "small"}));
  EXPECT_EQ(full.spec.create_as_user_id, "user-42");
  EXPECT_EQ(full.spec.playbook_id, "playbook-abc");
  EXPECT_EQ(full.spec.knowledge_ids, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(full.spec.secret_ids, std::vector<std::string>{});  // [] = none, not null = all
  EXPECT_EQ(full.spec.repos, (std::vector<std::string>{"acme/web"}));
  EXPECT_EQ(full.spec.max_acu_limit, 10);
  EXPECT_EQ(full.spec.concurrency_key, "repo:acme/web");
  EXPECT_EQ(full.spec.devin_mode, "fast");
  EXPECT_EQ(full.org_id, "org-other");
  EXPECT_EQ(full.priority, -3);
  EXPECT_EQ(full.spec.structured_output_schema, std::nullopt);

  const core::JobDefinition& minimal = load.jobs[1];
  EXPECT_EQ(minimal, (core::JobDefinition{.key = "minimal", .spec = {.prompt = "Say hello"}}));
}

TEST(JobFile, MapFormWithJobsKey) {
  const JobFileLoad load =
      parse_job_text("jobs:\n  - key: a\n    prompt: p\n  - key: b\n    prompt: q\n", "f.yaml");
  ASSERT_FALSE(load.fatal.has_value());
  ASSERT_EQ(load.jobs.size(), 2U);
  EXPECT_EQ(load.jobs[1].key, "b");
}

TEST(JobFile, EmptyFilesHaveNoJobs) {
  for (const char* text : {"", "# nothing yet\n", "jobs:\n", "[]\n", "jobs: []\n"}) {
    const JobFileLoad load = parse_job_text(text, "f.yaml");
    EXPECT_FALSE(load.fatal.has_value()) << text;
    EXPECT_TRUE(load.jobs.empty());
    EXPECT_TRUE(load.invalid.empty());
  }
}

TEST(JobFile, InvalidJobsAreSkippedWithExactDiagnostics) {
  const JobFileLoad load = parse_job_text(
      "- key: good-1\n"           // 1
      "  prompt: ok\n"            // 2
      "- key: typo\n"             // 3
      "  promt: hello\n"          // 4
      "- just a string\n"         // 5
      "- key: bad-tags\n"         // 6
      "  prompt: p\n"             // 7
      "  tags: [a, [b]]\n"        // 8
      "- prompt: no key\n"        // 9
      "- key: good-2\n"           // 10
      "  prompt: ok\n"            // 11
      "- key: acu\n"              // 12
      "  prompt: p\n"             // 13
      "  max_acu_limit: 0\n"      // 14
      "- key: mode\n"             // 15
      "  prompt: p\n"             // 16
      "  devin_mode: ''\n"        // 17
      "- key: prio\n"             // 18
      "  prompt: p\n"             // 19
      "  priority: high\n"        // 20
      "- key: ''\n"               // 21
      "  prompt: p\n",            // 22
      "jobs.yaml");
  ASSERT_FALSE(load.fatal.has_value());
  ASSERT_EQ(load.jobs.size(), 2U);
  EXPECT_EQ(load.jobs[0].key, "good-1");
  EXPECT_EQ(load.jobs[1].key, "good-2");
  EXPECT_EQ(invalid_lines(load),
            (std::vector<std::string>{
                "jobs.yaml:4:3: jobs[1].promt: unknown field 'promt' (did you mean 'prompt'?)",
                "jobs.yaml:5:3: jobs[2]: expected a map with at least 'key' and 'prompt', got "
                "'just a string'",
                "jobs.yaml:8:13: jobs[3].tags[1]: expected a string, got a list",
                "jobs.yaml:9:3: jobs[4].key: missing required field 'key'",
                "jobs.yaml:14:18: jobs[6].max_acu_limit: must be a positive integer, got 0",
                "jobs.yaml:17:15: jobs[7].devin_mode: must not be empty; leave the field out "
                "instead",
                "jobs.yaml:20:13: jobs[8].priority: expected an integer, got 'high'",
                "jobs.yaml:21:8: jobs[9].key: must not be empty",
            }));
  // Jobs whose key was usable carry it, so they can be reported by name.
  EXPECT_EQ(load.invalid[0].key, "typo");
  EXPECT_EQ(load.invalid[1].key, std::nullopt);
  EXPECT_EQ(load.invalid[2].key, "bad-tags");
  EXPECT_EQ(load.invalid[3].key, std::nullopt);
}

TEST(JobFile, MissingPromptAndEmptyPrompt) {
  EXPECT_EQ(only_problem(one_job("  title: t\n")),
            "jobs.yaml:1:3: jobs[0].prompt: missing required field 'prompt'");
  EXPECT_EQ(only_problem(one_job("  prompt: '   '\n")),
            "jobs.yaml:2:11: jobs[0].prompt: must not be empty or only whitespace");
  EXPECT_EQ(only_problem(one_job("  prompt:\n")),
            "jobs.yaml:2:3: jobs[0].prompt: expected a string, got nothing");
}

TEST(JobFile, KeyLimits) {
  const std::string long_key(513, 'k');
  const JobFileLoad too_long = parse_job_text("- key: " + long_key + "\n  prompt: p\n", "f");
  ASSERT_EQ(too_long.invalid.size(), 1U);
  EXPECT_EQ(too_long.invalid[0].diagnostic.reason, "is 513 characters; the limit is 512");
  EXPECT_EQ(too_long.invalid[0].key, std::nullopt) << "a key core refuses names no job";
  const JobFileLoad max_key =
      parse_job_text("- key: " + std::string(512, 'k') + "\n  prompt: p\n", "f");
  EXPECT_EQ(max_key.jobs.size(), 1U);
  // Characters, not bytes: 512 two-byte characters are 1024 bytes and still one key.
  std::string wide;
  for (int i = 0; i < 512; ++i) wide += "\xC3\xBC";
  EXPECT_EQ(parse_job_text("- key: " + wide + "\n  prompt: p\n", "f").jobs.size(), 1U);
  const JobFileLoad control = parse_job_text("- key: \"a\\tb\"\n  prompt: p\n", "f");
  ASSERT_EQ(control.invalid.size(), 1U);
  EXPECT_EQ(control.invalid[0].diagnostic.reason, "must not contain control characters");
}

TEST(JobFile, DuplicateKeysFirstWins) {
  const JobFileLoad load = parse_job_text(
      "- key: same\n"          // 1
      "  prompt: first\n"      // 2
      "- key: other\n"         // 3
      "  prompt: x\n"          // 4
      "- prompt: second\n"     // 5
      "  key: same\n"          // 6
      "  bogus: 1\n",          // 7
      "jobs.yaml");
  ASSERT_EQ(load.jobs.size(), 2U);
  EXPECT_EQ(load.jobs[0].spec.prompt, "first");
  ASSERT_EQ(load.invalid.size(), 1U);
  EXPECT_EQ(load.invalid[0].diagnostic.to_string(),
            "jobs.yaml:6:8: jobs[2].key: duplicate key 'same' (first defined at line 1)");
  // The key belongs to the first definition; the duplicate must not be reported under it.
  EXPECT_EQ(load.invalid[0].key, std::nullopt);
}

TEST(JobFile, KeyOfAnInvalidJobIsStillClaimed) {
  const JobFileLoad load = parse_job_text(
      "- key: k\n  prompt: p\n  max_acu_limit: -1\n- key: k\n  prompt: p\n", "f");
  EXPECT_TRUE(load.jobs.empty());
  ASSERT_EQ(load.invalid.size(), 2U);
  EXPECT_EQ(load.invalid[0].key, "k");
  EXPECT_THAT(load.invalid[1].diagnostic.reason, HasSubstr("duplicate key 'k'"));
}

TEST(JobFile, DuplicateFieldInsideAJob) {
  EXPECT_EQ(only_problem(one_job("  prompt: a\n  prompt: b\n")),
            "jobs.yaml:3:3: jobs[0].prompt: duplicate field 'prompt' (first at line 2)");
}

TEST(JobFile, MalformedYamlIsFatalAndLocated) {
  const JobFileLoad load =
      parse_job_text("- key: a\n  prompt: p\n- key: b\n  prompt: x: y\n", "jobs.yaml");
  ASSERT_TRUE(load.fatal.has_value());
  EXPECT_TRUE(load.jobs.empty());
  EXPECT_TRUE(load.invalid.empty());
  EXPECT_EQ(load.fatal->to_string(), "jobs.yaml:4:12: invalid nested block mapping on the same line");
}

TEST(JobFile, WrongTopLevelShapesAreFatal) {
  EXPECT_THAT(parse_job_text("just text", "f").fatal->reason, HasSubstr("expected a list of jobs"));
  EXPECT_EQ(parse_job_text("job:\n  - key: a\n", "f").fatal->to_string(),
            "f:1:1: unknown top-level key 'job'; a job file is a list of jobs or a map with one "
            "key, 'jobs'");
  EXPECT_EQ(parse_job_text("jobs: {key: a}\n", "f").fatal->to_string(),
            "f:1:7: jobs: expected a list of jobs, got a map");
}

// What a sink saw, in order: "job:<key>" or "invalid:<diagnostic>".
std::vector<std::string> stream_jobs(const std::string& text, std::optional<Diagnostic>* fatal,
                                     const JobFileLimits& limits = {}) {
  std::vector<std::string> seen;
  const JobSink sink{
      .job = [&](core::JobDefinition&& job) { seen.push_back("job:" + job.key); },
      .invalid =
          [&](InvalidJob&& invalid) {
            seen.push_back("invalid:" + invalid.diagnostic.to_string());
          },
  };
  *fatal = read_job_text(text, "f", sink, limits);
  return seen;
}

TEST(JobFileStream, DeliversJobsOneAtATimeInFileOrder) {
  std::optional<Diagnostic> fatal;
  const auto seen = stream_jobs(
      "jobs:\n"
      "  - key: a\n    prompt: p\n"
      "  - key: b\n"
      "  - {key: c, prompt: q, tags: [x, y], structured_output_schema: {type: object}}\n"
      "  - just text\n",
      &fatal);
  EXPECT_FALSE(fatal.has_value());
  EXPECT_THAT(seen, ::testing::ElementsAre(
                        "job:a", "invalid:f:4:5: jobs[1].prompt: missing required field 'prompt'",
                        "job:c",
                        "invalid:f:6:5: jobs[3]: expected a map with at least 'key' and 'prompt', "
                        "got 'just text'"));
}

TEST(JobFileStream, AShapeProblemAfterTheJobsDeliversNothing) {
  // Each problem is only visible after every job was read: the screen's outline catches it.
  const std::vector<std::pair<std::string, std::string>> cases{
      {"jobs:\n  - {key: a, prompt: p}\nlater: 1\n",
       "f:3:1: unknown top-level key 'later'; a job file is a list of jobs or a map with one key, "
       "'jobs'"},
      {"jobs:\n  - {key: a, prompt: p}\njobs:\n  - {key: b, prompt: p}\n",
       "f:3:1: the top-level key 'jobs' appears twice"},
      {"jobs:\n  - {key: a, prompt: p}\n  - {key: b, prompt: p}\n  - {key: c, prompt: p}\n",
       "f:2:3: jobs: more than 2 jobs in one file"},
      {"- {key: a, prompt: p}\n- {key: b, prompt: p}\n- [unbalanced\n", ""},
  };
  for (const auto& [text, expected] : cases) {
    std::optional<Diagnostic> fatal;
    const auto seen = stream_jobs(text, &fatal, JobFileLimits{.max_jobs = 2});
    ASSERT_TRUE(fatal.has_value()) << text;
    if (!expected.empty()) {
      EXPECT_EQ(fatal->to_string(), expected);
    }
    EXPECT_TRUE(seen.empty()) << text;
  }
}

TEST(JobFileStream, NestedValuesKeepTheirShapeAndMarks) {
  std::vector<core::JobDefinition> jobs;
  const JobSink sink{.job = [&](core::JobDefinition&& job) { jobs.push_back(std::move(job)); },
                     .invalid = [](InvalidJob&&) { FAIL() << "no job is invalid"; }};
  const auto fatal = read_job_text(
      "- key: a\n"
      "  prompt: p\n"
      "  on_waiting_for_user: {finish_after: 10m}\n"
      "  session_secrets:\n"
      "    - {key: TOKEN, from_env: CI_TOKEN, sensitive: maybe}\n"
      "    - {key: OTHER, from_env: CI_OTHER, sensitive: Off}\n"
      "  structured_output_schema:\n"
      "    type: object\n"
      "    properties: {n: {type: integer, minimum: 1}, s: [\"1\", 2, true, ~]}\n",
      "f", sink);
  ASSERT_FALSE(fatal.has_value()) << fatal->to_string();
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_EQ(jobs[0].controls.on_waiting_for_user.finish_after, std::chrono::minutes{10});
  ASSERT_EQ(jobs[0].spec.session_secrets.size(), 2U);
  EXPECT_TRUE(jobs[0].spec.session_secrets[0].sensitive) << "not a boolean: the safe default";
  EXPECT_FALSE(jobs[0].spec.session_secrets[1].sensitive);
  EXPECT_EQ(jobs[0].spec.structured_output_schema,
            R"({"type":"object","properties":{"n":{"type":"integer","minimum":1},)"
            R"("s":["1",2,true,null]}})");
}

// A YAML stream is Unicode text: a byte sequence that is not UTF-8, raw or written as an
// escape, makes the file unusable as a whole, like any other syntax error.
TEST(JobFile, NonUtf8MakesTheFileUnusable) {
  const JobFileLoad raw =
      parse_job_text("- key: a\n  prompt: fine \xe2\x9c\x93\n- key: b\n  prompt: \"bad \xc3\x28 byte\"\n",
                     "jobs.yaml");
  ASSERT_TRUE(raw.fatal.has_value());
  EXPECT_TRUE(raw.jobs.empty());
  EXPECT_TRUE(raw.invalid.empty());
  EXPECT_EQ(raw.fatal->to_string(), "jobs.yaml:4:16: not valid UTF-8 (a YAML file is UTF-8 text)");

  const JobFileLoad escaped = parse_job_text(
      "- key: a\n  prompt: p\n- key: c\n  prompt: p\n  tags: [ok, \"\\ud800\"]\n", "jobs.yaml");
  ASSERT_TRUE(escaped.fatal.has_value());
  EXPECT_TRUE(escaped.jobs.empty());
  EXPECT_EQ(escaped.fatal->to_string(),
            "jobs.yaml:5:15: double-quoted scalar has invalid UTF8 escape");
}

TEST(JobFile, PromptSizeLimit) {
  EXPECT_EQ(one_job("  prompt: " + std::string(65536, 'p') + "\n").jobs.size(), 1U);
  EXPECT_EQ(only_problem(one_job("  prompt: " + std::string(65537, 'p') + "\n")),
            "jobs.yaml:2:11: jobs[0].prompt: is 65537 bytes; the limit is 65536");
}

TEST(JobFile, FileSizeLimit) {
  const JobFileLimits limits{.max_file_bytes = 64};
  const JobFileLoad load =
      parse_job_text("- key: a\n  prompt: " + std::string(100, 'x') + "\n", "big.yaml", limits);
  ASSERT_TRUE(load.fatal.has_value());
  EXPECT_EQ(load.fatal->to_string(), "big.yaml: file is larger than the limit of 64 bytes");

  testing::TempDir dir;
  testing::write_file(dir.file("big.yaml"), std::string(200, '#'));
  const JobFileLoad from_disk = load_job_file(dir.file("big.yaml"), limits);
  ASSERT_TRUE(from_disk.fatal.has_value());
  EXPECT_EQ(from_disk.fatal->reason, "file is larger than the limit of 64 bytes");
}

// Files are read in 64 KiB pieces: jobs on both sides of every boundary arrive whole.
TEST(JobFile, AFileOfSeveralReadsArrivesWhole) {
  std::string text;
  for (int i = 0; i < 600; ++i) {
    text += "- key: job-" + std::to_string(i) + "\n  prompt: " + std::string(400, 'a' + i % 26) +
            "\n";
  }
  ASSERT_GT(text.size(), 3U * 64 * 1024);
  testing::TempDir dir;
  testing::write_file(dir.file("jobs.yaml"), text);
  const JobFileLoad load = load_job_file(dir.file("jobs.yaml"));
  ASSERT_FALSE(load.fatal.has_value()) << load.fatal->to_string();
  ASSERT_EQ(load.jobs.size(), 600U);
  EXPECT_TRUE(load.invalid.empty());
  EXPECT_EQ(load.jobs[599].key, "job-599");
  EXPECT_EQ(load.jobs[599].spec.prompt, std::string(400, 'a' + 599 % 26));
}

TEST(JobFile, JobCountLimit) {
  const JobFileLimits limits{.max_jobs = 2};
  const JobFileLoad load =
      parse_job_text("- {key: a, prompt: p}\n- {key: b, prompt: p}\n- {key: c, prompt: p}\n", "f",
                     limits);
  ASSERT_TRUE(load.fatal.has_value());
  EXPECT_EQ(load.fatal->reason, "more than 2 jobs in one file");
}

TEST(JobFile, AliasBombIsFatal) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    const char previous = static_cast<char>(level - 1);
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + previous;
    bomb += "]\n";
  }
  bomb += "jobs:\n  - key: boom\n    prompt: p\n    tags: *j\n";
  const JobFileLoad load = parse_job_text(bomb, "bomb.yaml");
  ASSERT_TRUE(load.fatal.has_value());
  EXPECT_EQ(load.fatal->line, 2);
  EXPECT_THAT(load.fatal->reason, HasSubstr("aliases"));
  EXPECT_TRUE(load.jobs.empty());
}

TEST(JobFile, DeepNestingIsFatal) {
  const std::string deep = "- key: a\n  prompt: p\n  structured_output_schema: " +
                           std::string(100'000, '[') + std::string(100'000, ']') + "\n";
  const JobFileLoad load = parse_job_text(deep, "deep.yaml");
  ASSERT_TRUE(load.fatal.has_value());
  EXPECT_EQ(load.fatal->reason, "nested deeper than 32 levels");

  // Within the limit, nesting is fine.
  const JobFileLoad ok = parse_job_text(
      "- key: a\n  prompt: p\n  structured_output_schema: {type: object, x: [[[[1]]]]}\n", "f");
  EXPECT_EQ(ok.jobs.size(), 1U);
}

TEST(JobFile, NodeCountLimit) {
  const JobFileLimits limits{.max_nodes = 50};
  std::string text = "- key: a\n  prompt: p\n  tags:\n";
  for (int i = 0; i < 60; ++i) text += "    - t\n";
  const JobFileLoad load = parse_job_text(text, "f", limits);
  ASSERT_TRUE(load.fatal.has_value());
  // The sequence, the job map, 3 keys and 2 values, the tags list: the 43rd tag is node 51.
  EXPECT_EQ(load.fatal->to_string(), "f:46:7: more than 50 YAML nodes");
}

TEST(JobFile, FlowCollectionsAreCappedBeforeTheyAreParsed) {
  const JobFileLimits limits{.max_nodes = 50};
  // 51 flow marks, even inside quotes and comments: the count cannot be dodged.
  const std::string text = "- key: a\n  prompt: \"" + std::string(50, ',') + "\"\n  tags: [t]\n";
  const JobFileLoad load = parse_job_text(text, "f", limits);
  ASSERT_TRUE(load.fatal.has_value());
  EXPECT_EQ(load.fatal->reason,
            "more than 50 of the characters ',', '[' and '{' (a limit on flow-style YAML)");
  const JobFileLoad under = parse_job_text(
      "- key: a\n  prompt: \"" + std::string(49, ',') + "\"\n  tags: [t]\n", "f", limits);
  EXPECT_EQ(under.jobs.size(), 1U);
}

TEST(JobFile, SchemaMapBecomesJsonText) {
  const JobFileLoad load = parse_job_text(R"(- key: s
  prompt: p
  structured_output_schema:
    type: object
    required: [summary, "ok"]
    additionalProperties: false
    properties:
      summary: {type: string, description: "He said \"hi\"\n\tthen\\left"}
      count: {type: integer, minimum: 0, maximum: 1.5e3}
      flag: {type: boolean, default: true, const: "true"}
      nothing: ~
      version: '1'
      hex: 0x1F
      neg: -0.5
)",
                                          "f");
  ASSERT_TRUE(load.invalid.empty()) << invalid_lines(load)[0];
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].spec.structured_output_schema,
            R"({"type":"object","required":["summary","ok"],"additionalProperties":false,)"
            R"("properties":{"summary":{"type":"string","description":"He said \"hi\"\n\tthen\\left"},)"
            R"("count":{"type":"integer","minimum":0,"maximum":1.5e3},)"
            R"("flag":{"type":"boolean","default":true,"const":"true"},"nothing":null,)"
            R"("version":"1","hex":"0x1F","neg":-0.5}})");
}

TEST(JobFile, SchemaMustBeAMap) {
  EXPECT_EQ(only_problem(one_job("  prompt: p\n  structured_output_schema: [a]\n")),
            "jobs.yaml:3:29: jobs[0].structured_output_schema: expected a map (a JSON Schema "
            "object), got a list");
  EXPECT_EQ(only_problem(one_job("  prompt: p\n  structured_output_schema: {a: 1, a: 2}\n")),
            "jobs.yaml:3:36: jobs[0].structured_output_schema: duplicate schema key 'a'");
}

TEST(JobFile, ControlCharactersInSchemaStringsAreEscaped) {
  const JobFileLoad load =
      parse_job_text("- key: s\n  prompt: p\n  structured_output_schema: {d: \"\\x01\\x1f\"}\n",
                     "f");
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].spec.structured_output_schema, R"({"d":"\u0001\u001f"})");
}

TEST(JobFile, GarbageNeverCrashes) {
  for (const std::string& text :
       {std::string("\x00\x01", 2), std::string("- [\n"), std::string("- {key: [a, prompt: }"),
        std::string("- ? [a]\n  : b\n"), std::string("- key: [a]\n  prompt: p\n"),
        std::string("--- a\n--- b\n"), std::string("- key: a\n  prompt: p\n  tags: {x: 1}\n"),
        std::string("- key: {a: 1}\n  prompt: p\n"), std::string("&x [*x]"),
        std::string("jobs:\n  - null\n  - ~\n  - []\n")}) {
    const JobFileLoad load = parse_job_text(text, "f");
    EXPECT_TRUE(load.fatal.has_value() || !load.invalid.empty()) << text;
    EXPECT_TRUE(load.jobs.empty()) << text;
  }
}

TEST(JobFile, LoadsFromDiskAndReportsUnreadableFiles) {
  testing::TempDir dir;
  testing::write_file(dir.file("jobs.yaml"), "- key: a\n  prompt: p\n");
  const JobFileLoad load = load_job_file(dir.file("jobs.yaml"));
  ASSERT_EQ(load.jobs.size(), 1U);
  const JobFileLoad missing = load_job_file(dir.file("nope.yaml"));
  ASSERT_TRUE(missing.fatal.has_value());
  EXPECT_EQ(missing.fatal->to_string(),
            dir.file("nope.yaml") + ": cannot open: No such file or directory");
}

TEST(JobFile, ShippedExampleJobsAreValid) {
  const JobFileLoad load = load_job_file(std::string(DEVIN_ORCH_SOURCE_DIR) + "/examples/jobs.yaml");
  ASSERT_FALSE(load.fatal.has_value()) << load.fatal->to_string();
  EXPECT_TRUE(load.invalid.empty()) << invalid_lines(load)[0];
  EXPECT_GE(load.jobs.size(), 6U);
  for (const std::string marker : {"[sim:exit]", "[sim:error]", "[sim:finished]", "[sim:waiting]",
                                   "[sim:suspend=out_of_credits]"}) {
    int count = 0;
    for (const auto& job : load.jobs) count += job.spec.prompt.find(marker) != std::string::npos;
    EXPECT_EQ(count, 1) << marker;
  }
}

// The v1 demo file is the v3 one without the fields v1 lacks, and the v3 one is refused on v1
// exactly for those fields, each with its file, line and field.
TEST(JobFile, ShippedV1ExampleJobsAreTheV3OnesWithoutV3OnlyFields) {
  const std::string v3_file = std::string(DEVIN_ORCH_SOURCE_DIR) + "/examples/jobs.yaml";
  const std::string v1_file = std::string(DEVIN_ORCH_SOURCE_DIR) + "/examples/jobs-v1.yaml";
  const JobFileLoad v1 = load_job_file(v1_file, {.api_version = core::ApiVersion::v1});
  ASSERT_FALSE(v1.fatal.has_value()) << v1.fatal->to_string();
  EXPECT_TRUE(v1.invalid.empty()) << invalid_lines(v1)[0];
  const JobFileLoad v3 = load_job_file(v3_file);
  ASSERT_EQ(v1.jobs.size(), v3.jobs.size());
  for (std::size_t i = 0; i < v3.jobs.size(); ++i) {
    core::JobDefinition stripped = v3.jobs[i];
    stripped.spec.repos.clear();
    stripped.spec.create_as_user_id.reset();
    stripped.spec.devin_mode.reset();
    EXPECT_EQ(v1.jobs[i], stripped) << v3.jobs[i].key;
  }

  const JobFileLoad refused = load_job_file(v3_file, {.api_version = core::ApiVersion::v1});
  std::vector<std::string> keys;
  for (const auto& bad : refused.invalid) {
    ASSERT_TRUE(bad.key);
    keys.push_back(*bad.key);
    EXPECT_EQ(bad.diagnostic.file, v3_file);
    EXPECT_GT(bad.diagnostic.line, 0);
    EXPECT_NE(bad.diagnostic.reason.find("api.version v1"), std::string::npos)
        << bad.diagnostic.to_string();
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"docs-typo-fix", "flaky-test-triage",
                                            "dependency-bump", "api-question"}));
  ASSERT_EQ(refused.invalid.size(), 4U);
  EXPECT_EQ(refused.invalid[0].diagnostic.field, "jobs[0].repos");
  EXPECT_EQ(refused.invalid[1].diagnostic.field, "jobs[1].create_as_user_id");
  EXPECT_EQ(refused.jobs.size(), 2U);
}

}  // namespace
}  // namespace devin_orch::app

namespace devin_orch::app {
namespace {

TEST(JobFileControls, EveryControlIsReadAndKeptOnTheDefinition) {
  const auto load = parse_job_text(R"(- key: controlled
  prompt: do it
  not_before: 2026-11-24T09:30:00Z
  deadline: 2026-11-24T12:00:00+01:00
  max_attempts: 3
  on_waiting_for_user: {finish_after: 10m}
  messages: [add tests, update the changelog]
  complete_on: finished
  fan_out: enterprise
- key: answers
  prompt: do it
  on_waiting_for_user: {send_message: "Yes, go ahead."}
- key: waits
  prompt: do it
  on_waiting_for_user: keep_waiting
)",
                                   "jobs.yaml");
  ASSERT_TRUE(load.invalid.empty()) << load.invalid.front().diagnostic.to_string();
  ASSERT_EQ(load.jobs.size(), 3U);
  const auto& controls = load.jobs[0].controls;
  EXPECT_EQ(controls.not_before_ms, 1795512600000);
  EXPECT_EQ(controls.deadline_ms, 1795518000000);
  EXPECT_EQ(controls.max_attempts, 3);
  EXPECT_EQ(controls.on_waiting_for_user.action, core::WaitingPolicy::Action::finish_after);
  EXPECT_EQ(controls.on_waiting_for_user.finish_after, std::chrono::minutes{10});
  EXPECT_EQ(controls.messages, (std::vector<std::string>{"add tests", "update the changelog"}));
  EXPECT_EQ(controls.complete_on, core::CompletionPolicy::on_finished);
  EXPECT_TRUE(controls.fan_out_enterprise);
  EXPECT_EQ(load.jobs[1].controls.on_waiting_for_user.message, "Yes, go ahead.");
  EXPECT_EQ(load.jobs[2].controls, core::JobControls{});
}

TEST(JobFileControls, StallControlsAreReadAndChecked) {
  const auto load = parse_job_text(R"(- key: watched
  prompt: do it
  stall_after: 45m
  stall_action: terminate
- key: zero
  prompt: p
  stall_after: 0s
- key: vague
  prompt: p
  stall_after: a while
- key: violent
  prompt: p
  stall_action: kill
)",
                                   "jobs.yaml");
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].controls.stall.after, std::chrono::minutes{45});
  EXPECT_EQ(load.jobs[0].controls.stall.action, core::StallAction::terminate);
  ASSERT_EQ(load.invalid.size(), 3U);
  EXPECT_EQ(load.invalid[0].diagnostic.field, "jobs[1].stall_after");
  EXPECT_EQ(load.invalid[0].diagnostic.reason, "must be longer than zero");
  EXPECT_EQ(load.invalid[1].diagnostic.field, "jobs[2].stall_after");
  EXPECT_EQ(load.invalid[1].diagnostic.reason, "expected a duration like 30m, got 'a while'");
  EXPECT_EQ(load.invalid[2].diagnostic.field, "jobs[3].stall_action");
  EXPECT_EQ(load.invalid[2].diagnostic.reason,
            "stall_action must be report, message or terminate, got 'kill'");
}

TEST(JobFileControls, BadControlsMakeTheJobInvalidWithTheField) {
  const auto load = parse_job_text(R"(- key: a
  prompt: p
  deadline: tomorrow
- key: b
  prompt: p
  max_attempts: 0
- key: c
  prompt: p
  on_waiting_for_user: {finish_after: soon}
- key: d
  prompt: p
  complete_on: whenever
- key: e
  prompt: p
  not_before: 2026-11-24T09:30:00
)",
                                   "jobs.yaml");
  ASSERT_EQ(load.invalid.size(), 5U);
  EXPECT_NE(load.invalid[0].diagnostic.to_string().find("jobs.yaml:3:13: jobs[0].deadline"),
            std::string::npos)
      << load.invalid[0].diagnostic.to_string();
  EXPECT_NE(load.invalid[1].diagnostic.reason.find("between 1 and 1000"), std::string::npos);
  EXPECT_NE(load.invalid[2].diagnostic.field.find("finish_after"), std::string::npos);
  EXPECT_NE(load.invalid[3].diagnostic.reason.find("stop or finished"), std::string::npos);
  EXPECT_NE(load.invalid[4].diagnostic.reason.find("with a zone"), std::string::npos);
}

// Jobs are built from the screening parse's recorded events; a file whose recording outgrows
// max_replay_bytes is parsed a second time instead. Both ways give the same load, down to
// every diagnostic's line and column.
TEST(JobFile, ReplayedEventsAndASecondParseGiveTheSameLoad) {
  std::vector<std::string> texts{
      "jobs:\n  - key: a\n    prompt: p\n  - key: b\n    prompt: q\n",
      "- key: a\n  prompt: p\n  tags: [x, y]\n- key: a\n  prompt: again\n- prompt: no key\n",
      "- key: a\n  prompt: !!str 12\n  title: &t shared\n- {key: b, prompt: \"q\\tr\"}\n",
      "- key: a\n  prompt: p\n---\n- key: b\n  prompt: q\n",
      "- key: a\n  prompt: [not, text]\n- key: b\n  promt: p\n- 12\n- ~\n",
  };
  const std::string corpus = std::string(DEVIN_ORCH_SOURCE_DIR) + "/tests/fuzz/corpus/job_file";
  for (const auto* name : {"escapes.yaml", "examples-jobs.yaml", "flow.yaml", "invalid-mix.yaml",
                           "list-form.yaml"}) {
    const auto text = read_input_file(corpus + "/" + name, 1U << 20U, nullptr);
    ASSERT_TRUE(text) << name;
    texts.push_back(*text);
  }
  for (const auto& text : texts) {
    const auto replayed = parse_job_text(text, "jobs.yaml");
    EXPECT_TRUE(replayed.fatal || !replayed.jobs.empty() || !replayed.invalid.empty()) << text;
    for (const std::size_t budget : {std::size_t{0}, text.size() / 2, std::size_t{64}}) {
      EXPECT_EQ(parse_job_text(text, "jobs.yaml", JobFileLimits{.max_replay_bytes = budget}),
                replayed)
          << "budget " << budget << " for:\n" << text;
    }
  }
}

}  // namespace
}  // namespace devin_orch::app

namespace devin_orch::app {
namespace {

TEST(JobFileNotify, AJobNamesItsOwnReceivers) {
  const JobFileLoad load = one_job(
      "  prompt: p\n"
      "  notify:\n"
      "    - url: https://ci.example.com/builds/7\n"
      "      secret_file: /etc/devin-orch/ci.secret\n"
      "      events: [job.finished, job.failed]\n");
  ASSERT_EQ(load.jobs.size(), 1U) << (load.invalid.empty() ? "" : invalid_lines(load)[0]);
  const auto& notify = load.jobs[0].controls.notify;
  ASSERT_EQ(notify.size(), 1U);
  EXPECT_EQ(notify[0].url, "https://ci.example.com/builds/7");
  EXPECT_EQ(notify[0].secret_file, "/etc/devin-orch/ci.secret");
  EXPECT_EQ(notify[0].events.size(), 2U);
}

TEST(JobFileNotify, BadReceiversAreLocatedByCoresRules) {
  EXPECT_EQ(only_problem(one_job("  prompt: p\n  notify:\n    - url: http://example.com/x\n")),
            "jobs.yaml:4:12: jobs[0].notify[0].url: plain http:// is only allowed for loopback "
            "hosts (127.0.0.0/8, ::1, localhost)");
  EXPECT_EQ(only_problem(one_job("  prompt: p\n  notify:\n    - url: https://a.example/x\n"
                                 "      secret_file: relative.secret\n")),
            "jobs.yaml:5:20: jobs[0].notify[0].secret_file: must be an absolute path");
  EXPECT_THAT(only_problem(one_job("  prompt: p\n  notify:\n    - url: https://a.example/x\n"
                                   "      events: [job.nope]\n")),
              HasSubstr("jobs[0].notify[0].events[0]: unknown event 'job.nope'"));
  EXPECT_THAT(only_problem(one_job("  prompt: p\n  notify: https://a.example/x\n")),
              HasSubstr("jobs[0].notify: expected a list of {url, secret_file, events, tags}"));
}

}  // namespace
}  // namespace devin_orch::app
