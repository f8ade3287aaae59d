// The value rules of a job, in the order validate() applies them, and the reasons they give.
#include "devin_orch/core/job_validation.hpp"

#include "devin_orch/core/concurrency_groups.hpp"

#include <algorithm>

namespace devin_orch::core {
namespace {

using Problem = std::optional<FieldError>;

Problem problem(std::string field, std::string reason) {
  return FieldError{.field = std::move(field), .reason = std::move(reason)};
}

bool has_control_characters(std::string_view text) noexcept {
  return std::any_of(text.begin(), text.end(), [](char ch) {
    const auto byte = static_cast<unsigned char>(ch);
    return byte < 0x20 || byte == 0x7f;
  });
}

bool is_blank(std::string_view text) noexcept {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Names, ids and labels: printable text on one line. An empty optional field is refused rather
// than read as "absent", so that no entry point has to decide what it would mean.
Problem check_name(const std::string& field, std::string_view text, std::string_view if_empty,
                   std::size_t max_characters = 0) {
  if (text.empty()) return problem(field, std::string(if_empty));
  const auto characters = utf8_characters(text);
  if (!characters) return problem(field, "is not valid UTF-8");
  if (max_characters != 0 && *characters > max_characters) {
    return problem(field, "is " + std::to_string(*characters) + " characters; the limit is " +
                              std::to_string(max_characters));
  }
  if (has_control_characters(text)) return problem(field, "must not contain control characters");
  return std::nullopt;
}

constexpr std::string_view kOptionalEmpty = "must not be empty; leave the field out instead";

Problem check_optional_name(const std::string& field, const std::optional<std::string>& text) {
  return text ? check_name(field, *text, kOptionalEmpty) : std::nullopt;
}

Problem check_names(const std::string& field, const std::vector<std::string>& items) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto found = check_name(field + "[" + std::to_string(i) + "]", items[i],
                                "must not be empty")) {
      return found;
    }
  }
  return std::nullopt;
}

// What Devin is asked or told: any text, line breaks and other control characters included,
// that says something.
Problem check_prose(const std::string& field, std::string_view text) {
  if (!utf8_characters(text)) return problem(field, "is not valid UTF-8");
  if (is_blank(text)) return problem(field, "must not be empty or only whitespace");
  return std::nullopt;
}

}  // namespace

std::optional<std::size_t> utf8_characters(std::string_view text) noexcept {
  std::size_t count = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    ++count;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    std::uint32_t minimum = 0;
    if ((c & 0xE0U) == 0xC0U) {
      length = 2, code = c & 0x1FU, minimum = 0x80;
    } else if ((c & 0xF0U) == 0xE0U) {
      length = 3, code = c & 0x0FU, minimum = 0x800;
    } else if ((c & 0xF8U) == 0xF0U) {
      length = 4, code = c & 0x07U, minimum = 0x10000;
    } else {
      return std::nullopt;
    }
    if (i + length > n) return std::nullopt;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0U) != 0x80U) return std::nullopt;
      code = (code << 6U) | (next & 0x3FU);
    }
    if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return std::nullopt;
    }
    i += length;
  }
  return count;
}

std::optional<FieldError> validate_key(std::string_view key) {
  return check_name("key", key, "must not be empty", job_limits::max_key_characters);
}

std::optional<FieldError> validate(const JobSpec& spec) {
  if (auto found = check_prose("prompt", spec.prompt)) return found;
  if (spec.prompt.size() > job_limits::max_prompt_bytes) {
    return problem("prompt", "is " + std::to_string(spec.prompt.size()) +
                                 " bytes; the limit is " +
                                 std::to_string(job_limits::max_prompt_bytes));
  }
  if (auto found = check_optional_name("title", spec.title)) return found;
  if (auto found = check_names("tags", spec.tags)) return found;
  if (auto found = check_optional_name("create_as_user_id", spec.create_as_user_id)) return found;
  if (auto found = check_optional_name("playbook_id", spec.playbook_id)) return found;
  if (auto found = check_optional_name("child_playbook_id", spec.child_playbook_id)) return found;
  if (spec.knowledge_ids) {
    if (auto found = check_names("knowledge_ids", *spec.knowledge_ids)) return found;
  }
  if (spec.secret_ids) {
    if (auto found = check_names("secret_ids", *spec.secret_ids)) return found;
  }
  if (auto found = check_names("repos", spec.repos)) return found;
  if (spec.max_acu_limit && *spec.max_acu_limit < 1) {
    return problem("max_acu_limit",
                   "must be a positive integer, got " + std::to_string(*spec.max_acu_limit));
  }
  if (const auto& schema = spec.structured_output_schema) {
    if (!utf8_characters(*schema)) return problem("structured_output_schema", "is not valid UTF-8");
    if (schema->size() > job_limits::max_schema_bytes) {
      return problem("structured_output_schema",
                     "is " + std::to_string(schema->size()) + " bytes as JSON; the limit is " +
                         std::to_string(job_limits::max_schema_bytes));
    }
  }
  // Any mode the API may know: the set has grown twice in a year (docs/queue.md).
  if (auto found = check_optional_name("devin_mode", spec.devin_mode)) return found;
  if (spec.concurrency_key) {
    if (auto reason = concurrency_key_problem(*spec.concurrency_key)) {
      return problem("concurrency_key", std::move(*reason));
    }
  }
  for (std::size_t i = 0; i < spec.session_secrets.size(); ++i) {
    const SessionSecretRef& secret = spec.session_secrets[i];
    const std::string field = "session_secrets[" + std::to_string(i) + "]";
    if (auto found = check_name(field + ".key", secret.key, "must not be empty",
                                job_limits::max_secret_key_characters)) {
      return found;
    }
    const bool env = secret.source == SessionSecretRef::Source::env;
    if (auto found = check_name(field + (env ? ".from_env" : ".from_file"), secret.name,
                                env ? "must name a variable" : "must name a file")) {
      return found;
    }
  }
  if (spec.attachments.size() > job_limits::max_attachments) {
    return problem("attachments", "has " + std::to_string(spec.attachments.size()) +
                                      " files; the limit is " +
                                      std::to_string(job_limits::max_attachments));
  }
  for (std::size_t i = 0; i < spec.attachments.size(); ++i) {
    const std::string& path = spec.attachments[i];
    const std::string field = "attachments[" + std::to_string(i) + "]";
    if (path.empty()) return problem(field, "must name a file");
    if (!utf8_characters(path) || path.find('\0') != std::string::npos) {
      return problem(field, "is not a valid path (UTF-8, no NUL)");
    }
    if (path.size() > job_limits::max_attachment_path_bytes) {
      return problem(field, "is longer than " +
                                std::to_string(job_limits::max_attachment_path_bytes) + " bytes");
    }
    // The daemon reads it later, from its own working directory: only an absolute path means
    // the same file there as where the job was written.
    if (!path.starts_with('/')) return problem(field, "must be an absolute path");
    if (path.back() == '/') return problem(field, "must name a file, not a directory");
    for (std::size_t j = 0; j < i; ++j) {
      if (spec.attachments[j] == path) {
        return problem(field, "repeats attachments[" + std::to_string(j) + "]");
      }
    }
  }
  return std::nullopt;
}

std::optional<FieldError> validate(const JobControls& controls) {
  if (controls.max_attempts && (*controls.max_attempts < job_limits::min_attempts ||
                                *controls.max_attempts > job_limits::max_attempts)) {
    return problem("max_attempts", "must be between " + std::to_string(job_limits::min_attempts) +
                                       " and " + std::to_string(job_limits::max_attempts) +
                                       ", got " + std::to_string(*controls.max_attempts));
  }
  const WaitingPolicy& waiting = controls.on_waiting_for_user;
  switch (waiting.action) {
    case WaitingPolicy::Action::keep_waiting: break;
    case WaitingPolicy::Action::finish_after:
      if (waiting.finish_after.count() <= 0) {
        return problem("on_waiting_for_user.finish_after", "must be longer than zero");
      }
      break;
    case WaitingPolicy::Action::send_message:
      if (auto found = check_prose("on_waiting_for_user.send_message", waiting.message)) {
        return found;
      }
      break;
  }
  for (std::size_t i = 0; i < controls.messages.size(); ++i) {
    if (auto found = check_prose("messages[" + std::to_string(i) + "]", controls.messages[i])) {
      return found;
    }
  }
  for (std::size_t i = 0; i < controls.notify.size(); ++i) {
    if (auto found = validate(controls.notify[i], "notify[" + std::to_string(i) + "]")) {
      return found;
    }
  }
  if (controls.stall.after && controls.stall.after->count() <= 0) {
    return problem("stall_after", "must be longer than zero");
  }
  return std::nullopt;
}

std::optional<FieldError> validate(const NotifyTarget& target, const std::string& field) {
  if (auto why = notify_url_problem(target.url)) return problem(field + ".url", *why);
  if (target.secret_file) {
    if (target.format == NotifyTarget::Format::slack) {
      return problem(field + ".secret_file", "a Slack incoming webhook is not signed");
    }
    if (auto found = check_name(field + ".secret_file", *target.secret_file, kOptionalEmpty)) {
      return found;
    }
    if (!target.secret_file->starts_with('/')) {
      return problem(field + ".secret_file", "must be an absolute path");
    }
  }
  return check_names(field + ".tags", target.tags);
}

// Reference §2.1 against §8: what a v3 create (or the daemon's v3-only controls) can say and
// v1 cannot. v1 ignores unknown create fields, so such a job would run without them.
std::optional<FieldError> v1_problem(const JobDefinition& definition) {
  constexpr std::string_view kNoSuchField =
      "is not available with api.version v1 (the v1 create request has no such field and would "
      "silently ignore it); remove it, or use api.version v3";
  const JobSpec& spec = definition.spec;
  const auto refuse = [&](std::string field) { return problem(std::move(field), std::string{kNoSuchField}); };
  if (definition.org_id) {
    return problem("org_id",
                   "is not available with api.version v1: a v1 key acts on its own organisation "
                   "(api.org_id) only; remove it, or use api.version v3");
  }
  if (spec.create_as_user_id) return refuse("create_as_user_id");
  if (spec.child_playbook_id) return refuse("child_playbook_id");
  if (!spec.repos.empty()) return refuse("repos");
  if (spec.devin_mode) return refuse("devin_mode");
  if (spec.resumable) return refuse("resumable");
  if (!spec.attachments.empty()) return refuse("attachments");
  if (definition.controls.fan_out_enterprise) {
    return problem("fan_out",
                   "is not available with api.version v1: v1 has no enterprise organisation "
                   "list; use api.version v3");
  }
  return std::nullopt;
}

std::optional<FieldError> validate(const JobDefinition& definition, ApiVersion api_version) {
  if (auto found = validate_key(definition.key)) return found;
  if (auto found = check_optional_name("org_id", definition.org_id)) return found;
  if (auto found = validate(definition.spec)) return found;
  if (auto found = validate(definition.controls)) return found;
  if (api_version == ApiVersion::v1) return v1_problem(definition);
  return std::nullopt;
}

}  // namespace devin_orch::core
