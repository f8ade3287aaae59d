// Core's rules for a job, one by one: each limit at its edge, how length is measured, and the
// exact field path and reason every entry point reports.
#include "devin_orch/core/job_validation.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <vector>

namespace devin_orch::core {

void PrintTo(const FieldError& error, std::ostream* out) { *out << error.text(); }

namespace {

using namespace std::chrono_literals;

JobDefinition valid_job() {
  return JobDefinition{.key = "job-1", .spec = JobSpec{.prompt = "Do the thing"}};
}

std::string repeat(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

struct Case {
  const char* name;
  std::function<void(JobDefinition&)> change;
  std::optional<FieldError> expected;  // nullopt: the job stays valid
};

TEST(JobValidation, EachRuleAtItsEdge) {
  const std::string u_umlaut = "\xC3\xBC";     // one character, two bytes
  const std::string emoji = "\xF0\x9F\x98\x80";  // one character, four bytes
  const std::vector<Case> cases{
      {"a plain job", [](JobDefinition&) {}, std::nullopt},
      // key
      {"empty key", [](JobDefinition& j) { j.key.clear(); }, FieldError{"key", "must not be empty"}},
      {"512-character key", [](JobDefinition& j) { j.key = std::string(512, 'k'); }, std::nullopt},
      {"513-character key", [](JobDefinition& j) { j.key = std::string(513, 'k'); },
       FieldError{"key", "is 513 characters; the limit is 512"}},
      {"512 two-byte characters (1024 bytes)",
       [&](JobDefinition& j) { j.key = repeat(u_umlaut, 512); }, std::nullopt},
      {"513 four-byte characters", [&](JobDefinition& j) { j.key = repeat(emoji, 513); },
       FieldError{"key", "is 513 characters; the limit is 512"}},
      {"key with a tab", [](JobDefinition& j) { j.key = "a\tb"; },
       FieldError{"key", "must not contain control characters"}},
      {"key cut inside a character", [](JobDefinition& j) { j.key = "ok\xC3"; },
       FieldError{"key", "is not valid UTF-8"}},
      {"key with a UTF-16 surrogate", [](JobDefinition& j) { j.key = "\xED\xA0\x80"; },
       FieldError{"key", "is not valid UTF-8"}},
      // org_id
      {"empty org_id", [](JobDefinition& j) { j.org_id = ""; },
       FieldError{"org_id", "must not be empty; leave the field out instead"}},
      // prompt
      {"empty prompt", [](JobDefinition& j) { j.spec.prompt.clear(); },
       FieldError{"prompt", "must not be empty or only whitespace"}},
      {"blank prompt", [](JobDefinition& j) { j.spec.prompt = " \n\t "; },
       FieldError{"prompt", "must not be empty or only whitespace"}},
      {"prompt with line breaks and a NUL",
       [](JobDefinition& j) { j.spec.prompt = std::string("a\nb\0c", 5); }, std::nullopt},
      {"prompt of 64 KiB", [](JobDefinition& j) { j.spec.prompt = std::string(65536, 'p'); },
       std::nullopt},
      {"prompt one byte over", [](JobDefinition& j) { j.spec.prompt = std::string(65537, 'p'); },
       FieldError{"prompt", "is 65537 bytes; the limit is 65536"}},
      {"prompt not UTF-8", [](JobDefinition& j) { j.spec.prompt = "bad \xC3\x28 byte"; },
       FieldError{"prompt", "is not valid UTF-8"}},
      // names and lists
      {"empty title", [](JobDefinition& j) { j.spec.title = ""; },
       FieldError{"title", "must not be empty; leave the field out instead"}},
      {"title on two lines", [](JobDefinition& j) { j.spec.title = "a\nb"; },
       FieldError{"title", "must not contain control characters"}},
      {"empty tag", [](JobDefinition& j) { j.spec.tags = {"ok", ""}; },
       FieldError{"tags[1]", "must not be empty"}},
      {"repo with a control character", [](JobDefinition& j) { j.spec.repos = {"a\x7f"}; },
       FieldError{"repos[0]", "must not contain control characters"}},
      {"no knowledge at all", [](JobDefinition& j) { j.spec.knowledge_ids.emplace(); },
       std::nullopt},
      {"empty knowledge id", [](JobDefinition& j) { j.spec.knowledge_ids = {{""}}; },
       FieldError{"knowledge_ids[0]", "must not be empty"}},
      {"empty secret id", [](JobDefinition& j) { j.spec.secret_ids = {{"s", "t", ""}}; },
       FieldError{"secret_ids[2]", "must not be empty"}},
      {"empty create_as_user_id", [](JobDefinition& j) { j.spec.create_as_user_id = ""; },
       FieldError{"create_as_user_id", "must not be empty; leave the field out instead"}},
      {"empty playbook_id", [](JobDefinition& j) { j.spec.playbook_id = ""; },
       FieldError{"playbook_id", "must not be empty; leave the field out instead"}},
      // numbers
      {"max_acu_limit 1", [](JobDefinition& j) { j.spec.max_acu_limit = 1; }, std::nullopt},
      {"max_acu_limit 0", [](JobDefinition& j) { j.spec.max_acu_limit = 0; },
       FieldError{"max_acu_limit", "must be a positive integer, got 0"}},
      {"concurrency_key", [](JobDefinition& j) { j.spec.concurrency_key = "repo:acme/backend"; },
       std::nullopt},
      {"concurrency_key empty", [](JobDefinition& j) { j.spec.concurrency_key = ""; },
       FieldError{"concurrency_key", "must not be empty"}},
      {"concurrency_key 200", [](JobDefinition& j) { j.spec.concurrency_key = std::string(200, 'k'); },
       std::nullopt},
      {"concurrency_key 201", [](JobDefinition& j) { j.spec.concurrency_key = std::string(201, 'k'); },
       FieldError{"concurrency_key", "is 201 characters; the limit is 200"}},
      {"concurrency_key space", [](JobDefinition& j) { j.spec.concurrency_key = "repo x"; },
       FieldError{"concurrency_key",
                  "must hold only letters, digits and - _ . : / @ + = #, got byte 32"}},
      {"max_attempts 1", [](JobDefinition& j) { j.controls.max_attempts = 1; }, std::nullopt},
      {"max_attempts 1000", [](JobDefinition& j) { j.controls.max_attempts = 1000; },
       std::nullopt},
      {"max_attempts 0", [](JobDefinition& j) { j.controls.max_attempts = 0; },
       FieldError{"max_attempts", "must be between 1 and 1000, got 0"}},
      {"max_attempts 1001", [](JobDefinition& j) { j.controls.max_attempts = 1001; },
       FieldError{"max_attempts", "must be between 1 and 1000, got 1001"}},
      {"negative priority", [](JobDefinition& j) { j.priority = -5; }, std::nullopt},
      // schema
      {"schema at the limit",
       [](JobDefinition& j) { j.spec.structured_output_schema = std::string(65536, ' '); },
       std::nullopt},
      {"schema over the limit",
       [](JobDefinition& j) { j.spec.structured_output_schema = std::string(65537, ' '); },
       FieldError{"structured_output_schema", "is 65537 bytes as JSON; the limit is 65536"}},
      // devin_mode: an open set, passed through
      {"devin_mode lite", [](JobDefinition& j) { j.spec.devin_mode = "lite"; }, std::nullopt},
      {"devin_mode of tomorrow", [](JobDefinition& j) { j.spec.devin_mode = "hyper"; },
       std::nullopt},
      {"empty devin_mode", [](JobDefinition& j) { j.spec.devin_mode = ""; },
       FieldError{"devin_mode", "must not be empty; leave the field out instead"}},
      // session secrets
      {"256-character secret key",
       [&](JobDefinition& j) { j.spec.session_secrets = {{.key = repeat(u_umlaut, 256), .name = "V"}}; },
       std::nullopt},
      {"300-character secret key",
       [](JobDefinition& j) {
         j.spec.session_secrets = {{.key = "A", .name = "V"}, {.key = std::string(300, 'k'), .name = "V"}};
       },
       FieldError{"session_secrets[1].key", "is 300 characters; the limit is 256"}},
      {"empty secret key", [](JobDefinition& j) { j.spec.session_secrets = {{.name = "V"}}; },
       FieldError{"session_secrets[0].key", "must not be empty"}},
      {"secret from no variable",
       [](JobDefinition& j) { j.spec.session_secrets = {{.key = "K"}}; },
       FieldError{"session_secrets[0].from_env", "must name a variable"}},
      {"secret from no file",
       [](JobDefinition& j) {
         j.spec.session_secrets = {{.key = "K", .source = SessionSecretRef::Source::file}};
       },
       FieldError{"session_secrets[0].from_file", "must name a file"}},
      // controls
      {"finish after zero",
       [](JobDefinition& j) {
         j.controls.on_waiting_for_user = {.action = WaitingPolicy::Action::finish_after};
       },
       FieldError{"on_waiting_for_user.finish_after", "must be longer than zero"}},
      {"finish after a minute",
       [](JobDefinition& j) {
         j.controls.on_waiting_for_user = {.action = WaitingPolicy::Action::finish_after,
                                           .finish_after = 1min};
       },
       std::nullopt},
      {"blank answer",
       [](JobDefinition& j) {
         j.controls.on_waiting_for_user = {.action = WaitingPolicy::Action::send_message,
                                           .message = " "};
       },
       FieldError{"on_waiting_for_user.send_message", "must not be empty or only whitespace"}},
      {"message on two lines", [](JobDefinition& j) { j.controls.messages = {"a\nb"}; },
       std::nullopt},
      {"empty follow-up", [](JobDefinition& j) { j.controls.messages = {"go on", ""}; },
       FieldError{"messages[1]", "must not be empty or only whitespace"}},
  };
  for (const Case& c : cases) {
    JobDefinition job = valid_job();
    c.change(job);
    EXPECT_EQ(validate(job), c.expected) << c.name;
  }
}

TEST(JobValidation, TheKeyComesFirstThenTheSpecThenTheControls) {
  JobDefinition job = valid_job();
  job.controls.max_attempts = 0;
  EXPECT_EQ(validate(job)->field, "max_attempts");
  job.spec.tags = {""};
  EXPECT_EQ(validate(job)->field, "tags[0]");
  job.key.clear();
  EXPECT_EQ(validate(job)->field, "key");
}

TEST(JobValidation, ThePartsAgreeWithTheWhole) {
  EXPECT_EQ(validate_key(std::string(513, 'k')), validate(JobDefinition{
                                                     .key = std::string(513, 'k'),
                                                     .spec = JobSpec{.prompt = "p"}}));
  EXPECT_EQ(validate(JobSpec{.prompt = "p", .devin_mode = ""})->field, "devin_mode");
  EXPECT_EQ(validate(JobControls{.max_attempts = 1001})->field, "max_attempts");
  EXPECT_EQ(validate(JobSpec{.prompt = "p"}), std::nullopt);
  EXPECT_EQ(validate(JobControls{}), std::nullopt);
}

TEST(JobValidation, V1RefusesEachV3OnlyFieldAndTakesEveryV1One) {
  const std::vector<std::pair<std::string, std::function<void(JobDefinition&)>>> v3_only{
      {"org_id", [](JobDefinition& j) { j.org_id = "org-2"; }},
      {"create_as_user_id", [](JobDefinition& j) { j.spec.create_as_user_id = "user-1"; }},
      {"child_playbook_id", [](JobDefinition& j) { j.spec.child_playbook_id = "playbook-2"; }},
      {"repos", [](JobDefinition& j) { j.spec.repos = {"o/r"}; }},
      {"devin_mode", [](JobDefinition& j) { j.spec.devin_mode = "fast"; }},
      {"resumable", [](JobDefinition& j) { j.spec.resumable = false; }},
      {"fan_out", [](JobDefinition& j) { j.controls.fan_out_enterprise = true; }},
      {"attachments", [](JobDefinition& j) { j.spec.attachments = {"/srv/a.txt"}; }},
  };
  for (const auto& [field, change] : v3_only) {
    JobDefinition job = valid_job();
    change(job);
    EXPECT_EQ(validate(job), std::nullopt) << field << " is fine on v3 (the default)";
    EXPECT_EQ(validate(job, ApiVersion::v3), std::nullopt) << field;
    const auto problem = validate(job, ApiVersion::v1);
    ASSERT_TRUE(problem) << field;
    EXPECT_EQ(problem->field, field);
    EXPECT_NE(problem->reason.find("api.version v1"), std::string::npos) << problem->reason;
  }
  // Everything v1's create takes (reference §8), and the daemon's own controls.
  JobDefinition v1_job = valid_job();
  v1_job.spec.title = "T";
  v1_job.spec.tags = {"a"};
  v1_job.spec.playbook_id = "playbook-1";
  v1_job.spec.knowledge_ids = std::vector<std::string>{};
  v1_job.spec.secret_ids = std::vector<std::string>{"s"};
  v1_job.spec.max_acu_limit = 3;
  v1_job.spec.structured_output_schema = R"({"type":"object"})";
  v1_job.spec.session_secrets = {SessionSecretRef{.key = "K", .name = "ENV"}};
  v1_job.controls.messages = {"go on"};
  v1_job.controls.complete_on = CompletionPolicy::on_finished;
  EXPECT_EQ(validate(v1_job, ApiVersion::v1), std::nullopt);
  // The value rules still come first: an empty devin_mode is wrong on any API.
  v1_job.spec.devin_mode = "";
  EXPECT_EQ(validate(v1_job, ApiVersion::v1)->reason,
            "must not be empty; leave the field out instead");
}

TEST(JobValidation, AttachmentsAreDistinctAbsolutePathsWithinTheCount) {
  const auto with = [](std::vector<std::string> paths) {
    JobDefinition job = valid_job();
    job.spec.attachments = std::move(paths);
    return validate(job);
  };
  EXPECT_EQ(with({}), std::nullopt);
  EXPECT_EQ(with({"/srv/jobs/a.txt", "/srv/jobs/b.png"}), std::nullopt);
  EXPECT_EQ(with({"/srv/a", "relative/b.txt"}),
            (FieldError{"attachments[1]", "must be an absolute path"}));
  EXPECT_EQ(with({""}), (FieldError{"attachments[0]", "must name a file"}));
  EXPECT_EQ(with({"/srv/dir/"}),
            (FieldError{"attachments[0]", "must name a file, not a directory"}));
  EXPECT_EQ(with({"/a", "/b", "/a"}),
            (FieldError{"attachments[2]", "repeats attachments[0]"}));
  EXPECT_EQ(with({"/a\xC0\xAF"}),
            (FieldError{"attachments[0]", "is not a valid path (UTF-8, no NUL)"}));
  EXPECT_EQ(with({"/" + repeat("d", job_limits::max_attachment_path_bytes)})->field,
            "attachments[0]");

  std::vector<std::string> paths;
  for (std::size_t i = 0; i < job_limits::max_attachments; ++i) {
    paths.push_back("/f" + std::to_string(i));
  }
  EXPECT_EQ(with(paths), std::nullopt) << "the limit itself is allowed";
  paths.push_back("/one-more");
  const auto over = with(paths);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->field, "attachments");
  EXPECT_EQ(over->reason, "has 21 files; the limit is 20");
}

TEST(JobValidation, TextJoinsFieldAndReason) {
  EXPECT_EQ((FieldError{"session_secrets[0].key", "must not be empty"}).text(),
            "session_secrets[0].key: must not be empty");
}

TEST(Utf8Characters, CountsCodePointsAndRefusesMalformedText) {
  EXPECT_EQ(utf8_characters(""), 0U);
  EXPECT_EQ(utf8_characters("abc"), 3U);
  EXPECT_EQ(utf8_characters("\xC3\xBC\xE2\x9C\x93\xF0\x9F\x98\x80"), 3U);
  EXPECT_EQ(utf8_characters("\xC0\xAF"), std::nullopt) << "overlong";
  EXPECT_EQ(utf8_characters("\xF4\x90\x80\x80"), std::nullopt) << "past U+10FFFF";
  EXPECT_EQ(utf8_characters("\x80"), std::nullopt) << "a lone continuation byte";
  EXPECT_EQ(utf8_characters("\xE2\x9C"), std::nullopt) << "cut short";
}

}  // namespace
}  // namespace devin_orch::core
