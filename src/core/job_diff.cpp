// The field-by-field comparison of two job definitions.
#include "devin_orch/core/job_diff.hpp"

namespace devin_orch::core {

std::vector<std::string_view> differing_fields(const JobDefinition& stored,
                                               const JobDefinition& offered) {
  std::vector<std::string_view> fields;
  const auto compare = [&fields](std::string_view name, const auto& a, const auto& b) {
    if (!(a == b)) fields.push_back(name);
  };
  const JobSpec& a = stored.spec;
  const JobSpec& b = offered.spec;
  const JobControls& x = stored.controls;
  const JobControls& y = offered.controls;
  compare("key", stored.key, offered.key);
  compare("org_id", stored.org_id, offered.org_id);
  compare("priority", stored.priority, offered.priority);
  compare("prompt", a.prompt, b.prompt);
  compare("title", a.title, b.title);
  compare("tags", a.tags, b.tags);
  compare("create_as_user_id", a.create_as_user_id, b.create_as_user_id);
  compare("playbook_id", a.playbook_id, b.playbook_id);
  compare("child_playbook_id", a.child_playbook_id, b.child_playbook_id);
  compare("knowledge_ids", a.knowledge_ids, b.knowledge_ids);
  compare("secret_ids", a.secret_ids, b.secret_ids);
  compare("repos", a.repos, b.repos);
  compare("max_acu_limit", a.max_acu_limit, b.max_acu_limit);
  compare("concurrency_key", a.concurrency_key, b.concurrency_key);
  compare("structured_output_schema", a.structured_output_schema, b.structured_output_schema);
  compare("devin_mode", a.devin_mode, b.devin_mode);
  compare("resumable", a.resumable, b.resumable);
  compare("session_secrets", a.session_secrets, b.session_secrets);
  compare("attachments", a.attachments, b.attachments);
  compare("not_before", x.not_before_ms, y.not_before_ms);
  compare("deadline", x.deadline_ms, y.deadline_ms);
  compare("max_attempts", x.max_attempts, y.max_attempts);
  compare("on_waiting_for_user", x.on_waiting_for_user, y.on_waiting_for_user);
  compare("messages", x.messages, y.messages);
  compare("complete_on", x.complete_on, y.complete_on);
  compare("fan_out", x.fan_out_enterprise, y.fan_out_enterprise);
  compare("stall_after", x.stall.after, y.stall.after);
  compare("stall_action", x.stall.action, y.stall.action);
  return fields;
}

std::string join_fields(const std::vector<std::string_view>& fields) {
  std::string joined;
  for (const auto field : fields) {
    if (!joined.empty()) joined += ", ";
    joined += field;
  }
  return joined;
}

}  // namespace devin_orch::core
