// Canonical JSON encoding of JobSpec and the strict decoder that guards what producers store:
// JSON types here, the values' rules in core (job_validation).
#include "devin_orch/store/spec_codec.hpp"

#include "devin_orch/core/job_validation.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>

namespace devin_orch::store {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxDepth = 64;

json::parse_options parse_options() {
  json::parse_options options;
  options.max_depth = kMaxDepth;
  return options;
}

json::array string_array(const std::vector<std::string>& values) {
  json::array array;
  array.reserve(values.size());
  for (const auto& value : values) array.emplace_back(value);
  return array;
}

// Decoding state: the first failure wins and names its field.
class Decoder {
 public:
  explicit Decoder(std::string* reason) : reason_{reason} {}

  bool fail(std::string message) {
    if (reason_ != nullptr) *reason_ = std::move(message);
    return false;
  }
  bool field_error(std::string_view field, std::string_view expected) {
    return fail("field '" + std::string(field) + "': expected " + std::string(expected));
  }

  bool string_field(std::string_view field, const json::value& value, std::string& out) {
    if (!value.is_string()) return field_error(field, "a string");
    out = value.get_string();
    return true;
  }

  bool string_array_field(std::string_view field, const json::value& value,
                          std::vector<std::string>& out, bool nullable) {
    const std::string_view expected =
        nullable ? "an array of strings or null" : "an array of strings";
    if (!value.is_array()) return field_error(field, expected);
    out.clear();
    for (const auto& element : value.get_array()) {
      if (!element.is_string()) return field_error(field, expected);
      out.emplace_back(element.get_string());
    }
    return true;
  }

 private:
  std::string* reason_;
};

// session_secrets hold references only: [{"key": K, "from_env": VAR | "from_file": PATH,
// "sensitive": bool}]. A literal value is refused: it would be stored in the database.
struct SecretRefsOrError {
  std::optional<std::vector<core::SessionSecretRef>> refs;
  std::string why;
  explicit operator bool() const { return refs.has_value(); }
  const std::vector<core::SessionSecretRef>& operator*() const { return *refs; }
  const std::string& error() const { return why; }
};

SecretRefsOrError decode_secret_refs(const json::value& value) {
  SecretRefsOrError out;
  if (!value.is_array()) {
    out.why = "expected an array of {key, from_env | from_file}";
    return out;
  }
  std::vector<core::SessionSecretRef> refs;
  for (const auto& item : value.get_array()) {
    if (!item.is_object()) {
      out.why = "expected objects {key, from_env | from_file}";
      return out;
    }
    const auto& object = item.get_object();
    core::SessionSecretRef ref;
    for (const auto& [name, field] : object) {
      if (name == "key" && field.is_string()) {
        ref.key = std::string(field.get_string());
      } else if ((name == "from_env" || name == "from_file") && field.is_string()) {
        ref.source = name == "from_env" ? core::SessionSecretRef::Source::env
                                        : core::SessionSecretRef::Source::file;
        ref.name = std::string(field.get_string());
      } else if (name == "sensitive" && field.is_bool()) {
        ref.sensitive = field.get_bool();
      } else if (name == "value") {
        out.why = "a literal 'value' would be stored; use from_env or from_file";
        return out;
      } else {
        out.why = "unexpected or malformed '" + std::string(name) + "'";
        return out;
      }
    }
    if (!object.contains("key") || object.contains("from_env") == object.contains("from_file")) {
      out.why = "each secret needs a key and exactly one of from_env or from_file";
      return out;
    }
    refs.push_back(std::move(ref));
  }
  out.refs = std::move(refs);
  return out;
}

}  // namespace

std::string field_error_text(const core::FieldError& error) {
  return "field '" + error.field + "': " + error.reason;
}

std::string encode_spec(const core::JobSpec& spec) {
  // Insertion order is serialisation order: this fixed order makes the text canonical.
  json::object out;
  out["prompt"] = spec.prompt;
  if (spec.title) out["title"] = *spec.title;
  if (!spec.tags.empty()) out["tags"] = string_array(spec.tags);
  if (spec.create_as_user_id) out["create_as_user_id"] = *spec.create_as_user_id;
  if (spec.playbook_id) out["playbook_id"] = *spec.playbook_id;
  if (spec.child_playbook_id) out["child_playbook_id"] = *spec.child_playbook_id;
  if (spec.knowledge_ids) out["knowledge_ids"] = string_array(*spec.knowledge_ids);
  if (spec.secret_ids) out["secret_ids"] = string_array(*spec.secret_ids);
  if (!spec.repos.empty()) out["repos"] = string_array(spec.repos);
  if (spec.max_acu_limit) out["max_acu_limit"] = *spec.max_acu_limit;
  if (spec.structured_output_schema) {
    // Re-serialised so whitespace differences do not count as a changed definition. Text that
    // is not an object is kept as a string, which decode_spec then rejects with a reason.
    json::error_code ec;
    json::value schema = json::parse(*spec.structured_output_schema, ec, {}, parse_options());
    if (!ec && schema.is_object()) {
      out["structured_output_schema"] = std::move(schema);
    } else {
      out["structured_output_schema"] = *spec.structured_output_schema;
    }
  }
  if (spec.devin_mode) out["devin_mode"] = *spec.devin_mode;
  if (spec.resumable) out["resumable"] = *spec.resumable;
  if (!spec.session_secrets.empty()) {
    json::array secrets;
    for (const auto& secret : spec.session_secrets) {
      json::object item{{"key", secret.key}};
      item[secret.source == core::SessionSecretRef::Source::env ? "from_env" : "from_file"] =
          secret.name;
      if (!secret.sensitive) item["sensitive"] = false;
      secrets.push_back(std::move(item));
    }
    out["session_secrets"] = std::move(secrets);
  }
  if (!spec.attachments.empty()) out["attachments"] = string_array(spec.attachments);
  // Last, so that the text of every spec without one stays what it was.
  if (spec.concurrency_key) out["concurrency_key"] = *spec.concurrency_key;
  return json::serialize(out);
}

result<core::JobSpec> decode_spec(std::string_view text, std::string* reason) {
  Decoder decoder{reason};
  json::error_code ec;
  const json::value root = json::parse(text, ec, {}, parse_options());
  if (ec) {
    decoder.fail("not valid JSON: " + ec.message());
    return errc::invalid_argument;
  }
  if (!root.is_object()) {
    decoder.fail("expected a JSON object");
    return errc::invalid_argument;
  }

  core::JobSpec spec;
  bool have_prompt = false;
  for (const auto& [key, value] : root.get_object()) {
    bool ok = true;
    if (key == "prompt") {
      ok = decoder.string_field(key, value, spec.prompt);
      have_prompt = true;
    } else if (key == "title") {
      if (value.is_null()) {
        spec.title.reset();
      } else if (value.is_string()) {
        spec.title = std::string(value.get_string());
      } else {
        ok = decoder.field_error(key, "a string or null");
      }
    } else if (key == "tags") {
      ok = decoder.string_array_field(key, value, spec.tags, false);
    } else if (key == "create_as_user_id") {
      ok = decoder.string_field(key, value, spec.create_as_user_id.emplace());
    } else if (key == "playbook_id") {
      ok = decoder.string_field(key, value, spec.playbook_id.emplace());
    } else if (key == "child_playbook_id") {
      ok = decoder.string_field(key, value, spec.child_playbook_id.emplace());
    } else if (key == "knowledge_ids" || key == "secret_ids") {
      auto& target = key == "knowledge_ids" ? spec.knowledge_ids : spec.secret_ids;
      if (value.is_null()) {
        target.reset();
      } else {
        ok = decoder.string_array_field(key, value, target.emplace(), true);
      }
    } else if (key == "repos") {
      ok = decoder.string_array_field(key, value, spec.repos, false);
    } else if (key == "attachments") {
      ok = decoder.string_array_field(key, value, spec.attachments, false);
    } else if (key == "max_acu_limit") {
      // Whether it is positive is core's rule; here only whether it is a 64-bit integer.
      if (value.is_int64()) {
        spec.max_acu_limit = value.get_int64();
      } else if (value.is_uint64() &&
                 value.get_uint64() <=
                     static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        spec.max_acu_limit = static_cast<std::int64_t>(value.get_uint64());
      } else {
        ok = decoder.field_error(key, "a 64-bit integer");
      }
    } else if (key == "structured_output_schema") {
      if (!value.is_object()) {
        ok = decoder.field_error(key, "an object");
      } else {
        spec.structured_output_schema = json::serialize(value);
      }
    } else if (key == "devin_mode") {
      ok = decoder.string_field(key, value, spec.devin_mode.emplace());
    } else if (key == "concurrency_key") {
      ok = decoder.string_field(key, value, spec.concurrency_key.emplace());
    } else if (key == "resumable") {
      // A JSON bool only: the API refuses "true" as a string, so the queue does too.
      if (value.is_null()) {
        spec.resumable.reset();
      } else if (value.is_bool()) {
        spec.resumable = value.get_bool();
      } else {
        ok = decoder.field_error(key, "true, false or null");
      }
    } else if (key == "session_secrets") {
      const auto parsed = decode_secret_refs(value);
      if (!parsed) {
        ok = decoder.fail("field 'session_secrets': " + parsed.error());
      } else {
        spec.session_secrets = *parsed;
      }
    } else {
      // A misspelt optional field would otherwise be dropped and the session created without it.
      ok = decoder.fail("unknown field '" + std::string(key) + "'");
    }
    if (!ok) return errc::invalid_argument;
  }
  if (!have_prompt) {
    decoder.fail("field 'prompt' is required");
    return errc::invalid_argument;
  }
  if (const auto problem = core::validate(spec)) {
    decoder.fail(field_error_text(*problem));
    return errc::invalid_argument;
  }
  return spec;
}

namespace {

json::array notify_targets_json(const std::vector<core::NotifyTarget>& targets) {
  json::array out;
  for (const auto& target : targets) {
    json::object item{{"url", target.url}};
    if (target.format == core::NotifyTarget::Format::slack) item["format"] = "slack";
    if (target.secret_file) item["secret_file"] = *target.secret_file;
    if (!target.events.empty()) {
      json::array events;
      for (const auto type : target.events) events.emplace_back(core::to_string(type));
      item["events"] = std::move(events);
    }
    if (!target.tags.empty()) item["tags"] = string_array(target.tags);
    out.push_back(std::move(item));
  }
  return out;
}

// The JSON types and names only; the values are core::validate's.
std::optional<std::vector<core::NotifyTarget>> notify_targets_from_json(const json::value& value,
                                                                        std::string* reason) {
  const auto fail = [&](std::string why) -> std::optional<std::vector<core::NotifyTarget>> {
    *reason = "field 'notify': " + std::move(why);
    return std::nullopt;
  };
  constexpr const char* kShape =
      "expected an array of {\"url\", \"secret_file\", \"events\", \"tags\"}";
  if (!value.is_array()) return fail(kShape);
  std::vector<core::NotifyTarget> targets;
  for (const auto& item : value.as_array()) {
    if (!item.is_object()) return fail(kShape);
    core::NotifyTarget target;
    bool has_url = false;
    for (const auto& [name, field] : item.as_object()) {
      if (name == "url" && field.is_string()) {
        target.url = std::string{field.as_string()};
        has_url = true;
      } else if (name == "secret_file" && field.is_string()) {
        target.secret_file = std::string{field.as_string()};
      } else if (name == "format" && field.is_string() &&
                 (field.as_string() == "slack" || field.as_string() == "webhook")) {
        target.format = field.as_string() == "slack" ? core::NotifyTarget::Format::slack
                                                      : core::NotifyTarget::Format::webhook;
      } else if ((name == "events" || name == "tags") && field.is_array()) {
        for (const auto& entry : field.as_array()) {
          if (!entry.is_string()) return fail("'" + std::string{name} + "' must hold strings");
          if (name == "tags") {
            target.tags.emplace_back(entry.as_string());
          } else if (const auto type = core::parse_event_type(entry.as_string())) {
            target.events.push_back(*type);
          } else {
            return fail("unknown event '" + std::string{entry.as_string()} + "'");
          }
        }
      } else {
        return fail(std::string{kShape} + ", got field '" + std::string{name} + "'");
      }
    }
    if (!has_url) return fail("each target needs a \"url\"");
    targets.push_back(std::move(target));
  }
  return targets;
}

}  // namespace

std::string encode_notify_targets(const std::vector<core::NotifyTarget>& targets) {
  return targets.empty() ? std::string{} : json::serialize(notify_targets_json(targets));
}

result<std::vector<core::NotifyTarget>> decode_notify_targets(std::string_view text,
                                                              std::string* reason) {
  if (text.empty()) return std::vector<core::NotifyTarget>{};
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec, {}, parse_options());
  std::string why = ec ? "not valid JSON (" + ec.message() + ")" : std::string{};
  if (!ec) {
    if (auto targets = notify_targets_from_json(parsed, &why)) return std::move(*targets);
  }
  if (reason != nullptr) *reason = std::move(why);
  return errc::invalid_argument;
}

std::string encode_controls(const core::JobControls& controls) {
  json::object out;
  using Action = core::WaitingPolicy::Action;
  switch (controls.on_waiting_for_user.action) {
    case Action::keep_waiting: break;
    case Action::finish_after:
      out["on_waiting_for_user"] =
          json::object{{"finish_after_ms", controls.on_waiting_for_user.finish_after.count()}};
      break;
    case Action::send_message:
      out["on_waiting_for_user"] =
          json::object{{"send_message", controls.on_waiting_for_user.message}};
      break;
  }
  if (!controls.messages.empty()) out["messages"] = string_array(controls.messages);
  if (controls.complete_on) {
    out["complete_on"] =
        *controls.complete_on == core::CompletionPolicy::on_finished ? "finished" : "stop";
  }
  if (controls.fan_out_enterprise) out["fan_out"] = "enterprise";
  if (!controls.notify.empty()) out["notify"] = notify_targets_json(controls.notify);
  if (controls.stall.after) out["stall_after_ms"] = controls.stall.after->count();
  if (controls.stall.action) out["stall_action"] = core::to_string(*controls.stall.action);
  return out.empty() ? std::string{} : json::serialize(out);
}

result<void> decode_controls(std::string_view text, core::JobControls& controls,
                             std::string* reason) {
  const auto fail = [&](std::string why) -> result<void> {
    if (reason != nullptr) *reason = "controls: " + std::move(why);
    return errc::invalid_argument;
  };
  if (text.empty()) return {};
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec, {}, parse_options());
  if (ec) return fail("not valid JSON (" + ec.message() + ")");
  if (!parsed.is_object()) return fail("expected a JSON object");
  core::JobControls decoded = controls;
  for (const auto& [key, value] : parsed.as_object()) {
    if (key == "on_waiting_for_user") {
      using Action = core::WaitingPolicy::Action;
      if (value.is_string() && value.as_string() == "keep_waiting") {
        decoded.on_waiting_for_user = {};
      } else if (value.is_object() && value.as_object().size() == 1 &&
                 value.as_object().contains("finish_after_ms") &&
                 value.as_object().at("finish_after_ms").is_int64()) {
        decoded.on_waiting_for_user = {
            .action = Action::finish_after,
            .finish_after = std::chrono::milliseconds{value.as_object().at("finish_after_ms").as_int64()}};
      } else if (value.is_object() && value.as_object().size() == 1 &&
                 value.as_object().contains("send_message") &&
                 value.as_object().at("send_message").is_string()) {
        decoded.on_waiting_for_user = {
            .action = Action::send_message,
            .message = std::string{value.as_object().at("send_message").as_string()}};
      } else {
        return fail("field 'on_waiting_for_user': expected \"keep_waiting\", "
                    "{\"finish_after_ms\": N} or {\"send_message\": \"text\"}");
      }
    } else if (key == "messages") {
      if (!value.is_array()) return fail("field 'messages': expected an array of strings");
      decoded.messages.clear();
      for (const auto& item : value.as_array()) {
        if (!item.is_string()) return fail("field 'messages': expected an array of strings");
        decoded.messages.emplace_back(item.as_string());
      }
    } else if (key == "complete_on") {
      if (value.is_string() && value.as_string() == "stop") {
        decoded.complete_on = core::CompletionPolicy::on_stop;
      } else if (value.is_string() && value.as_string() == "finished") {
        decoded.complete_on = core::CompletionPolicy::on_finished;
      } else {
        return fail("field 'complete_on': expected \"stop\" or \"finished\"");
      }
    } else if (key == "fan_out") {
      if (!value.is_string() || value.as_string() != "enterprise") {
        return fail("field 'fan_out': expected \"enterprise\"");
      }
      decoded.fan_out_enterprise = true;
    } else if (key == "notify") {
      std::string why;
      auto targets = notify_targets_from_json(value, &why);
      if (!targets) return fail(std::move(why));
      decoded.notify = std::move(*targets);
    } else if (key == "stall_after_ms") {
      if (!value.is_int64()) return fail("field 'stall_after_ms': expected an integer");
      decoded.stall.after = core::Duration{value.as_int64()};
    } else if (key == "stall_action") {
      const auto action =
          value.is_string() ? core::parse_stall_action(value.as_string()) : std::nullopt;
      if (!action) {
        return fail("field 'stall_action': expected \"report\", \"message\" or \"terminate\"");
      }
      decoded.stall.action = *action;
    } else {
      return fail("unknown field '" + std::string{key} + "'");
    }
  }
  controls = std::move(decoded);
  return {};
}

}  // namespace devin_orch::store
