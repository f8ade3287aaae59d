// Tests for core::differing_fields: each field of a definition is named when, and only when,
// it differs, so a reload's or `enqueue`'s report points at what the operator changed.
#include "devin_orch/core/job_diff.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <utility>

namespace devin_orch::core {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

JobDefinition base() {
  JobDefinition job;
  job.key = "nightly";
  job.spec.prompt = "Check the docs";
  job.spec.tags = {"docs"};
  return job;
}

TEST(DifferingFields, EqualDefinitionsDifferInNothing) {
  EXPECT_THAT(differing_fields(base(), base()), IsEmpty());
  EXPECT_EQ(join_fields({}), "");
}

// One change at a time: exactly that field is named, whichever way round.
TEST(DifferingFields, NamesEachFieldAsJobFilesDo) {
  const std::vector<std::pair<std::string_view, std::function<void(JobDefinition&)>>> changes{
      {"key", [](JobDefinition& j) { j.key = "other"; }},
      {"org_id", [](JobDefinition& j) { j.org_id = "org-b"; }},
      {"priority", [](JobDefinition& j) { j.priority = 3; }},
      {"prompt", [](JobDefinition& j) { j.spec.prompt = "Check the code"; }},
      {"title", [](JobDefinition& j) { j.spec.title = "Docs"; }},
      {"tags", [](JobDefinition& j) { j.spec.tags.push_back("nightly"); }},
      {"create_as_user_id", [](JobDefinition& j) { j.spec.create_as_user_id = "user-1"; }},
      {"playbook_id", [](JobDefinition& j) { j.spec.playbook_id = "pb-1"; }},
      {"child_playbook_id", [](JobDefinition& j) { j.spec.child_playbook_id = "pb-2"; }},
      {"knowledge_ids", [](JobDefinition& j) { j.spec.knowledge_ids.emplace(); }},
      {"secret_ids", [](JobDefinition& j) { j.spec.secret_ids = std::vector<std::string>{"s"}; }},
      {"repos", [](JobDefinition& j) { j.spec.repos = {"acme/backend"}; }},
      {"max_acu_limit", [](JobDefinition& j) { j.spec.max_acu_limit = 5; }},
      {"concurrency_key", [](JobDefinition& j) { j.spec.concurrency_key = "repo:a"; }},
      {"structured_output_schema",
       [](JobDefinition& j) { j.spec.structured_output_schema = R"({"type":"object"})"; }},
      {"devin_mode", [](JobDefinition& j) { j.spec.devin_mode = "fast"; }},
      {"resumable", [](JobDefinition& j) { j.spec.resumable = false; }},
      {"session_secrets",
       [](JobDefinition& j) { j.spec.session_secrets.push_back({.key = "K", .name = "VAR"}); }},
      {"attachments", [](JobDefinition& j) { j.spec.attachments = {"/srv/a.txt"}; }},
      {"not_before", [](JobDefinition& j) { j.controls.not_before_ms = 1; }},
      {"deadline", [](JobDefinition& j) { j.controls.deadline_ms = 2; }},
      {"max_attempts", [](JobDefinition& j) { j.controls.max_attempts = 3; }},
      {"on_waiting_for_user",
       [](JobDefinition& j) {
         j.controls.on_waiting_for_user.action = WaitingPolicy::Action::send_message;
         j.controls.on_waiting_for_user.message = "go on";
       }},
      {"messages", [](JobDefinition& j) { j.controls.messages = {"and a test"}; }},
      {"complete_on",
       [](JobDefinition& j) { j.controls.complete_on = CompletionPolicy::on_finished; }},
      {"fan_out", [](JobDefinition& j) { j.controls.fan_out_enterprise = true; }},
  };
  std::set<std::string_view> named;
  for (const auto& [field, change] : changes) {
    JobDefinition changed = base();
    change(changed);
    EXPECT_THAT(differing_fields(base(), changed), ElementsAre(field));
    EXPECT_THAT(differing_fields(changed, base()), ElementsAre(field));
    named.insert(field);
  }
  EXPECT_EQ(named.size(), changes.size());
}

// The typo case: a definition with a field missing against the corrected one.
TEST(DifferingFields, SeveralChangesComeInJobFileOrder) {
  JobDefinition corrected = base();
  corrected.spec.tags = {"docs", "weekly"};
  corrected.priority = 2;
  corrected.spec.prompt = "Check the docs and the README";
  const auto fields = differing_fields(base(), corrected);
  EXPECT_THAT(fields, ElementsAre("priority", "prompt", "tags"));
  EXPECT_EQ(join_fields(fields), "priority, prompt, tags");
}

}  // namespace
}  // namespace devin_orch::core
