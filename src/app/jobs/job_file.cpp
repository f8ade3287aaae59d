// Reading job definitions from YAML files. Files come from producers we do not control, so the
// text is screened (size, depth, node count, aliases, top-level shape) before any job is
// built, jobs are then built one at a time, each field's YAML type is checked as it is read,
// and the finished job is checked with core's rules before it is accepted.
#include "devin_orch/app/jobs/job_file.hpp"

#include "devin_orch/app/jobs/notify_yaml.hpp"

#include "devin_orch/app/jobs/attachment_files.hpp"

#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/app/formats/yaml_events.hpp"
#include "devin_orch/app/formats/yaml_value.hpp"
#include "devin_orch/app/jobs/yaml_event_tape.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string_view>
#include <variant>

namespace devin_orch::app {
namespace {

constexpr std::array<std::string_view, 29> kFields{
    "key",          "prompt",        "title",      "tags",
    "create_as_user_id", "playbook_id", "child_playbook_id", "knowledge_ids", "secret_ids",
    "repos",        "max_acu_limit", "structured_output_schema", "devin_mode",
    "resumable",    "org_id",        "priority",
    // Job controls: how the daemon runs the job.
    "not_before",   "deadline",      "max_attempts", "on_waiting_for_user",
    "messages",     "complete_on",   "fan_out",      "session_secrets",
    "notify",       "concurrency_key", "stall_after",   "stall_action", "attachments",
};


bool is_json_number(std::string_view text) noexcept {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i > start;
  };
  if (i < text.size() && text[i] == '-') ++i;
  if (i < text.size() && text[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == text.size();
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : text) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const auto byte = static_cast<unsigned char>(ch);
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4U];
          out += kHex[byte & 0xFU];
        } else {
          out += ch;
        }
      }
    }
  }
  out += '"';
}

// Where the first problem of a job is, relative to the job ("tags[1]"), and what it is.
struct Problem {
  YamlMark mark;
  std::string field;
  std::string reason;
};

class JobReader {
 public:
  JobReader(std::string prefix, const JobFileLimits& limits, std::string base_directory)
      : prefix_(std::move(prefix)),
        api_version_(limits.api_version),
        api_check_(limits.api_check),
        max_attachment_bytes_(limits.max_attachment_bytes),
        base_directory_(std::move(base_directory)) {}

  bool failed() const { return problem_.has_value(); }
  const std::optional<Problem>& problem() const { return problem_; }

  void fail(const YamlValue& at, const std::string& field, std::string reason) {
    fail(at.mark, field, std::move(reason));
  }
  void fail(const YamlMark& at, const std::string& field, std::string reason) {
    if (!problem_) problem_ = Problem{at, field, std::move(reason)};
  }

  // An empty value has no position of its own (the parser gives none); the key's is exact.
  static const YamlValue& anchor(const YamlValue& key, const YamlValue& value) {
    return value.is_null() ? key : value;
  }

  // Remembers where a field's value is, so that a rule core finds broken later is located.
  void note(const std::string& field, const YamlValue& at) { marks_.try_emplace(field, at.mark); }

  std::optional<std::string> text(const YamlValue& key, const YamlValue& value,
                                  const std::string& field) {
    if (!value.is_scalar()) {
      fail(anchor(key, value), field, "expected a string, got " + describe_yaml(value));
      return std::nullopt;
    }
    note(field, value);
    return value.scalar;
  }

  std::optional<std::vector<std::string>> list(const YamlValue& key, const YamlValue& value,
                                               const std::string& field) {
    if (!value.is_sequence()) {
      fail(anchor(key, value), field, "expected a list of strings, got " + describe_yaml(value));
      return std::nullopt;
    }
    note(field, value);
    std::vector<std::string> items;
    std::size_t index = 0;
    for (const YamlValue& item : value.items) {
      auto content = text(item, item, field + "[" + std::to_string(index++) + "]");
      if (!content) return std::nullopt;
      items.push_back(std::move(*content));
    }
    return items;
  }

  // Only the words YAML 1.2 means as booleans; "yes"/"on" would be YAML 1.1 guesses, and a
  // quoted "true" is a string: the API takes a JSON bool, so the file must say one.
  std::optional<bool> boolean(const YamlValue& key, const YamlValue& value,
                              const std::string& field) {
    if (value.is_scalar() && value.tag == "?") {
      const std::string& content = value.scalar;
      if (content == "true" || content == "True" || content == "TRUE") {
        note(field, value);
        return true;
      }
      if (content == "false" || content == "False" || content == "FALSE") {
        note(field, value);
        return false;
      }
    }
    fail(anchor(key, value), field, "expected true or false, got " + describe_yaml(value));
    return std::nullopt;
  }

  std::optional<std::int64_t> integer(const YamlValue& key, const YamlValue& value,
                                      const std::string& field) {
    std::int64_t parsed = 0;
    if (value.is_scalar()) {
      const std::string& content = value.scalar;
      const auto [end, ec] =
          std::from_chars(content.data(), content.data() + content.size(), parsed);
      if (ec == std::errc{} && end == content.data() + content.size()) {
        note(field, value);
        return parsed;
      }
    }
    fail(anchor(key, value), field, "expected an integer, got " + describe_yaml(value));
    return std::nullopt;
  }

  void schema_json(const YamlValue& node, const std::string& field, std::string& out) {
    if (failed()) return;
    switch (node.kind) {
      case YamlValue::Kind::map: {
        out += '{';
        std::map<std::string, int, std::less<>> seen;
        bool first = true;
        for (auto it = node.entries.begin(); it != node.entries.end() && !failed(); ++it) {
          const YamlValue& key = it->key;
          if (!key.is_scalar()) {
            fail(key, field, "schema keys must be strings, got " + describe_yaml(key));
            return;
          }
          const std::string& name = key.scalar;
          if (!seen.emplace(name, key.mark.line + 1).second) {
            fail(key, field, "duplicate schema key " + describe_yaml(key));
            return;
          }
          if (!first) out += ',';
          first = false;
          append_json_string(out, name);
          out += ':';
          schema_json(it->value, field + "." + name, out);
        }
        out += '}';
        return;
      }
      case YamlValue::Kind::sequence: {
        out += '[';
        std::size_t index = 0;
        for (auto it = node.items.begin(); it != node.items.end() && !failed(); ++it, ++index) {
          if (index > 0) out += ',';
          schema_json(*it, field + "[" + std::to_string(index) + "]", out);
        }
        out += ']';
        return;
      }
      case YamlValue::Kind::scalar: {
        const std::string& content = node.scalar;
        // Only untagged plain scalars are typed; anything quoted or tagged stays a string.
        if (node.tag == "?") {
          if (content == "true" || content == "True" || content == "TRUE") {
            out += "true";
            return;
          }
          if (content == "false" || content == "False" || content == "FALSE") {
            out += "false";
            return;
          }
          if (is_json_number(content)) {
            out += content;
            return;
          }
        }
        append_json_string(out, content);
        return;
      }
      default:
        out += "null";
        return;
    }
  }

  std::optional<std::string> schema(const YamlValue& key, const YamlValue& value,
                                    const std::string& field) {
    if (!value.is_map()) {
      fail(anchor(key, value), field,
           "expected a map (a JSON Schema object), got " + describe_yaml(value));
      return std::nullopt;
    }
    std::string json;
    schema_json(value, field, json);
    if (failed()) return std::nullopt;
    note(field, value);
    return json;
  }

  // Reads one job map, then checks the job it describes with core's rules. The key is kept
  // when core accepts it, even when a later field is bad, so the caller can name the job.
  void read(const YamlValue& job, core::JobDefinition& out, std::optional<std::string>& key_out,
            YamlMark& key_mark) {
    std::map<std::string, int, std::less<>> seen;
    bool has_key = false;
    bool has_prompt = false;
    for (const auto& [key, value] : job.entries) {
      if (!key.is_scalar()) {
        fail(key, prefix_, "field names must be plain strings, got " + describe_yaml(key));
        continue;
      }
      const std::string& name = key.scalar;
      const std::string field = prefix_ + "." + name;
      if (const auto [found, inserted] = seen.try_emplace(name, key.mark.line + 1); !inserted) {
        fail(key, field, "duplicate field '" + name + "' (first at line " +
                             std::to_string(found->second) + ")");
        continue;
      }
      if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
        std::string reason = "unknown field '" + name + "'";
        if (const auto hint = closest_match(name, kFields)) {
          reason += " (did you mean '" + std::string(*hint) + "'?)";
        }
        fail(key, field, std::move(reason));
        continue;
      }
      const bool absent = value.is_null();
      if (name == "key") {
        has_key = true;
        if (auto text = this->text(key, value, field)) {
          if (!core::validate_key(*text)) {
            key_out = *text;
            key_mark = value.mark;
          }
          out.key = std::move(*text);
        }
      } else if (name == "prompt") {
        has_prompt = true;
        if (auto text = this->text(key, value, field)) out.spec.prompt = std::move(*text);
      } else if (name == "title") {
        if (!absent) out.spec.title = text(key, value, field);
      } else if (name == "tags") {
        if (!absent) out.spec.tags = list(key, value, field).value_or(std::vector<std::string>{});
      } else if (name == "repos") {
        if (!absent) out.spec.repos = list(key, value, field).value_or(std::vector<std::string>{});
      } else if (name == "attachments") {
        if (absent) continue;
        auto paths = list(key, value, field).value_or(std::vector<std::string>{});
        // Relative to the job file, wherever the daemon runs; core wants them absolute.
        for (auto& path : paths) {
          if (!path.empty() && !path.starts_with('/')) {
            path = (std::filesystem::path{base_directory_} / path).lexically_normal().string();
          }
        }
        out.spec.attachments = std::move(paths);
      } else if (name == "knowledge_ids") {
        // null means "all knowledge" in the API; absent and null are the same here.
        if (!absent) out.spec.knowledge_ids = list(key, value, field);
      } else if (name == "secret_ids") {
        if (!absent) out.spec.secret_ids = list(key, value, field);
      } else if (name == "create_as_user_id") {
        if (!absent) out.spec.create_as_user_id = text(key, value, field);
      } else if (name == "playbook_id") {
        if (!absent) out.spec.playbook_id = text(key, value, field);
      } else if (name == "child_playbook_id") {
        if (!absent) out.spec.child_playbook_id = text(key, value, field);
      } else if (name == "org_id") {
        if (!absent) out.org_id = text(key, value, field);
      } else if (name == "max_acu_limit") {
        if (!absent) out.spec.max_acu_limit = integer(key, value, field);
      } else if (name == "concurrency_key") {
        if (!absent) out.spec.concurrency_key = text(key, value, field);
      } else if (name == "priority") {
        if (!absent) out.priority = integer(key, value, field).value_or(0);
      } else if (name == "structured_output_schema") {
        if (!absent) out.spec.structured_output_schema = schema(key, value, field);
      } else if (name == "not_before" || name == "deadline") {
        if (absent) continue;
        if (auto text = this->text(key, value, field)) {
          if (const auto at = parse_timestamp_ms(*text)) {
            (name == "deadline" ? out.controls.deadline_ms : out.controls.not_before_ms) = *at;
          } else {
            fail(value, field, name + " must be an RFC 3339 time with a zone, like "
                                      "2026-11-24T09:30:00Z, got " + describe_yaml(value));
          }
        }
      } else if (name == "max_attempts") {
        if (!absent) out.controls.max_attempts = integer(key, value, field);
      } else if (name == "on_waiting_for_user") {
        if (absent) continue;
        using Action = core::WaitingPolicy::Action;
        constexpr const char* kExpected =
            "on_waiting_for_user must be keep_waiting, {finish_after: <duration>} or "
            "{send_message: <text>}";
        note(field, value);
        if (value.is_scalar() && value.scalar == "keep_waiting") {
          out.controls.on_waiting_for_user = {};
        } else if (const YamlValue* finish_after = value.find("finish_after");
                   value.entries.size() == 1 && finish_after != nullptr &&
                   finish_after->is_scalar()) {
          if (const auto after = parse_duration(finish_after->scalar)) {
            note(field + ".finish_after", *finish_after);
            out.controls.on_waiting_for_user = {.action = Action::finish_after,
                                                .finish_after = *after};
          } else {
            fail(*finish_after, field + ".finish_after",
                 "expected a duration like 10m, got " + describe_yaml(*finish_after));
          }
        } else if (const YamlValue* message = value.find("send_message");
                   value.entries.size() == 1 && message != nullptr) {
          if (auto text = this->text(key, *message, field + ".send_message")) {
            out.controls.on_waiting_for_user = {.action = Action::send_message,
                                                .message = std::move(*text)};
          }
        } else {
          fail(value, field, std::string(kExpected) + ", got " + describe_yaml(value));
        }
      } else if (name == "messages") {
        if (!absent) out.controls.messages = list(key, value, field).value_or(std::vector<std::string>{});
      } else if (name == "complete_on") {
        if (absent) continue;
        if (auto text = this->text(key, value, field)) {
          if (*text == "stop") {
            out.controls.complete_on = core::CompletionPolicy::on_stop;
          } else if (*text == "finished") {
            out.controls.complete_on = core::CompletionPolicy::on_finished;
          } else {
            fail(value, field, "complete_on must be stop or finished, got " + describe_yaml(value));
          }
        }
      } else if (name == "stall_after") {
        if (absent) continue;
        if (auto text = this->text(key, value, field)) {
          if (const auto after = parse_duration(*text)) {
            out.controls.stall.after = *after;
          } else {
            fail(value, field, "expected a duration like 30m, got " + describe_yaml(value));
          }
        }
      } else if (name == "stall_action") {
        if (absent) continue;
        if (auto text = this->text(key, value, field)) {
          if (const auto action = core::parse_stall_action(*text)) {
            out.controls.stall.action = *action;
          } else {
            fail(value, field, "stall_action must be report, message or terminate, got " +
                                   describe_yaml(value));
          }
        }
      } else if (name == "fan_out") {
        if (absent) continue;
        if (auto text = this->text(key, value, field)) {
          if (*text == "enterprise") {
            out.controls.fan_out_enterprise = true;
          } else {
            fail(value, field, "fan_out must be enterprise, got " + describe_yaml(value));
          }
        }
      } else if (name == "notify") {
        if (absent) continue;
        auto read = read_notify_targets(
            value, field, core::NotifyTarget::Format::webhook,
            [this](const std::string& at, const YamlValue& node) { note(at, node); },
            [](const std::string& path) { return path; });
        if (auto* problem = std::get_if<NotifyYamlError>(&read)) {
          fail(problem->mark, problem->field, std::move(problem->reason));
          continue;
        }
        out.controls.notify = std::move(std::get<std::vector<core::NotifyTarget>>(read));
      } else if (name == "session_secrets") {
        if (absent) continue;
        if (!value.is_sequence()) {
          fail(value, field, "session_secrets must be a list of {key, from_env | from_file}");
          continue;
        }
        note(field, value);
        std::vector<core::SessionSecretRef> secrets;
        for (std::size_t i = 0; i < value.items.size(); ++i) {
          const YamlValue& item = value.items[i];
          const std::string item_field = field + "[" + std::to_string(i) + "]";
          if (!item.is_map()) {
            fail(item, item_field, "expected {key, from_env | from_file}");
            break;
          }
          note(item_field, item);
          if (const YamlValue* literal = item.find("value")) {
            fail(*literal, item_field + ".value",
                 "a literal value would be stored with the job; use from_env or from_file");
            break;
          }
          const YamlValue* env = item.find("from_env");
          const YamlValue* file = item.find("from_file");
          const YamlValue* secret_key = item.find("key");
          if (secret_key == nullptr || (env != nullptr) == (file != nullptr)) {
            fail(item, item_field, "each secret needs a key and exactly one of from_env or from_file");
            break;
          }
          core::SessionSecretRef ref;
          const auto key_text = text(*secret_key, *secret_key, item_field + ".key");
          const auto source = env != nullptr ? text(*env, *env, item_field + ".from_env")
                                             : text(*file, *file, item_field + ".from_file");
          if (!key_text || !source) break;
          ref.key = *key_text;
          ref.source = env != nullptr ? core::SessionSecretRef::Source::env
                                      : core::SessionSecretRef::Source::file;
          ref.name = *source;
          if (const YamlValue* sensitive = item.find("sensitive")) {
            ref.sensitive = sensitive->as_bool().value_or(true);
          }
          secrets.push_back(std::move(ref));
        }
        out.spec.session_secrets = std::move(secrets);
      } else if (name == "devin_mode") {
        if (!absent) out.spec.devin_mode = text(key, value, field);
      } else if (name == "resumable") {
        if (!absent) out.spec.resumable = boolean(key, value, field);
      }
    }
    if (!has_key) fail(job, prefix_ + ".key", "missing required field 'key'");
    if (!has_prompt) fail(job, prefix_ + ".prompt", "missing required field 'prompt'");
    if (failed()) return;
    if (const auto problem = api_check_ ? api_check_(out) : core::validate(out, api_version_)) {
      const std::string field = prefix_ + "." + problem->field;
      fail(mark_of(field, job), field, problem->reason);
      return;
    }
    if (const auto problem = check_attachment_files(out.spec, max_attachment_bytes_)) {
      const std::string field = prefix_ + "." + problem->field;
      fail(mark_of(field, job), field, problem->reason);
    }
  }

 private:
  // Where `field` (or the nearest enclosing field that was noted) is in the file.
  YamlMark mark_of(std::string field, const YamlValue& job) const {
    while (field.size() > prefix_.size()) {
      if (const auto found = marks_.find(field); found != marks_.end()) return found->second;
      const std::size_t cut = field.back() == ']' ? field.rfind('[') : field.rfind('.');
      if (cut == std::string::npos) break;
      field.resize(cut);
    }
    return job.mark;
  }

  std::string prefix_;
  core::ApiVersion api_version_;
  const JobApiCheck& api_check_;
  std::int64_t max_attachment_bytes_;
  std::string base_directory_;  // absolute: where the job file is
  std::optional<Problem> problem_;
  std::map<std::string, YamlMark, std::less<>> marks_;
};

Diagnostic at(const std::string& file, const YamlMark& mark, std::string field,
              std::string reason) {
  return located(file, mark, std::move(reason), std::move(field));
}


// Pass one, alongside the screen and the recording of its events: the document's top-level
// shape, so that a file whose shape is wrong is rejected before any of its jobs is delivered.
class OutlineHandler final : public YamlEventHandler {
 public:
  struct Part {
    YamlValue::Kind kind = YamlValue::Kind::null;
    YamlMark mark = YamlMark{};
    std::string scalar;

    YamlValue described() const { return YamlValue{.kind = kind, .mark = mark, .scalar = scalar}; }
  };

  bool has_root = false;
  Part root;
  std::optional<Part> unknown_key;  // the first top-level key other than 'jobs'
  std::optional<YamlMark> repeated_jobs_key;
  std::optional<Part> jobs;         // the value of 'jobs' in a top-level map
  std::size_t job_count = 0;        // entries of the job list

  void on_document_start(const YamlMark&) override {}
  void on_document_end() override {}
  void on_null(const YamlMark& mark, std::string_view) override {
    node(YamlValue::Kind::null, mark, {});
  }
  void on_alias(const YamlMark& mark, std::string_view) override {
    node(YamlValue::Kind::null, mark, {});
  }
  void on_scalar(const YamlMark& mark, std::string_view, std::string_view,
                 std::string_view value) override {
    node(YamlValue::Kind::scalar, mark, value);
  }
  void on_sequence_start(const YamlMark& mark, std::string_view, std::string_view) override {
    node(YamlValue::Kind::sequence, mark, {});
    ++depth_;
  }
  void on_sequence_end() override { --depth_; }
  void on_map_start(const YamlMark& mark, std::string_view, std::string_view) override {
    node(YamlValue::Kind::map, mark, {});
    ++depth_;
  }
  void on_map_end() override { --depth_; }

 private:
  void node(YamlValue::Kind kind, const YamlMark& mark, std::string_view scalar) {
    if (depth_ == 0) {
      has_root = true;
      root = Part{kind, mark, std::string(scalar)};
      return;
    }
    if (root.kind == YamlValue::Kind::sequence) {
      if (depth_ == 1) ++job_count;
      return;
    }
    // A top-level map: keys and values alternate at depth 1; the job list's entries are at 2.
    if (depth_ == 1) {
      if (key_next_) {
        value_is_jobs_ = kind == YamlValue::Kind::scalar && scalar == "jobs";
        if (value_is_jobs_ && jobs) repeated_jobs_key = mark;
        if (!value_is_jobs_ && !unknown_key) unknown_key = Part{kind, mark, std::string(scalar)};
      } else if (value_is_jobs_) {
        jobs = Part{kind, mark, std::string(scalar)};
      }
      key_next_ = !key_next_;
    } else if (depth_ == 2 && value_is_jobs_ && jobs &&
               jobs->kind == YamlValue::Kind::sequence) {
      ++job_count;
    }
  }

  int depth_ = 0;
  bool key_next_ = true;
  bool value_is_jobs_ = false;
};

// Pass two, over the recorded events or a second parse: builds each job's tree from the
// events, checks it and hands it on, so only one job's tree exists at a time.
class JobStreamHandler final : public YamlEventHandler {
 public:
  JobStreamHandler(const std::string& name, int job_depth, const JobSink& sink,
                   const JobFileLimits& limits)
      : name_(name), job_depth_(job_depth), sink_(sink), limits_(limits) {}

  void on_document_start(const YamlMark&) override {}
  void on_document_end() override {}
  void on_null(const YamlMark& mark, std::string_view) override {
    if (!in_job()) return;
    builder_.null(mark);
    if (builder_.complete()) deliver();
  }
  void on_alias(const YamlMark& mark, std::string_view anchor) override {
    on_null(mark, anchor);  // screened out before this pass; never reached
  }
  void on_scalar(const YamlMark& mark, std::string_view tag, std::string_view,
                 std::string_view value) override {
    if (!in_job()) return;
    builder_.scalar(mark, tag, value);
    if (builder_.complete()) deliver();
  }
  void on_sequence_start(const YamlMark& mark, std::string_view, std::string_view) override {
    open(YamlValue::Kind::sequence, mark);
  }
  void on_sequence_end() override { close(); }
  void on_map_start(const YamlMark& mark, std::string_view, std::string_view) override {
    open(YamlValue::Kind::map, mark);
  }
  void on_map_end() override { close(); }

 private:
  bool in_job() const { return building_ || depth_ == job_depth_; }

  void open(YamlValue::Kind kind, const YamlMark& mark) {
    if (in_job()) {
      builder_.open(kind, mark);
      building_ = true;
    }
    ++depth_;
  }

  void close() {
    --depth_;
    if (!building_) return;
    builder_.close();
    if (builder_.complete()) deliver();
  }

  // The job file's directory, absolute; text not read from a file ("<stdin>") has the
  // working directory's.
  std::string base_directory() const {
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(std::filesystem::path{name_}, ec);
    return ec ? std::string{"/"} : absolute.parent_path().string();
  }

  void deliver() {
    building_ = false;
    const YamlValue job = builder_.take();
    const std::string prefix = "jobs[" + std::to_string(index_++) + "]";
    if (!job.is_map()) {
      sink_.invalid(InvalidJob{
          .diagnostic = at(name_, job.mark, prefix,
                           "expected a map with at least 'key' and 'prompt', got " +
                               describe_yaml(job))});
      return;
    }
    JobReader reader(prefix, limits_, base_directory());
    core::JobDefinition definition;
    std::optional<std::string> key;
    YamlMark key_mark = YamlMark{};
    reader.read(job, definition, key, key_mark);
    if (key) {
      const auto [found, inserted] = first_line_.try_emplace(*key, key_mark.line + 1);
      if (!inserted) {
        sink_.invalid(InvalidJob{
            .diagnostic = at(name_, key_mark, prefix + ".key",
                             "duplicate key '" + *key + "' (first defined at line " +
                                 std::to_string(found->second) + ")")});
        return;
      }
    }
    if (const auto& problem = reader.problem()) {
      sink_.invalid(InvalidJob{
          .key = key, .diagnostic = at(name_, problem->mark, problem->field, problem->reason)});
      return;
    }
    sink_.job(std::move(definition));
  }

  const std::string& name_;
  const int job_depth_;
  const JobSink& sink_;
  const JobFileLimits& limits_;
  YamlValueBuilder builder_;
  bool building_ = false;
  int depth_ = 0;
  std::size_t index_ = 0;
  // Every usable key is claimed by its first job, valid or not, so a later job can never
  // take over the identity of one that was reported invalid.
  std::map<std::string, int, std::less<>> first_line_;
};

// Why a file of this shape cannot be read, and else at which depth its jobs are (0: none).
std::variant<Diagnostic, int> job_depth(const OutlineHandler& outline, const std::string& name,
                                        const JobFileLimits& limits) {
  if (!outline.has_root || outline.root.kind == YamlValue::Kind::null) return 0;
  YamlMark list_mark = outline.root.mark;
  int depth = 1;
  if (outline.root.kind == YamlValue::Kind::map) {
    if (outline.unknown_key) {
      return at(name, outline.unknown_key->mark, "",
                "unknown top-level key " + describe_yaml(outline.unknown_key->described()) +
                    "; a job file is a list of jobs or a map with one key, 'jobs'");
    }
    if (outline.repeated_jobs_key) {
      return at(name, *outline.repeated_jobs_key, "", "the top-level key 'jobs' appears twice");
    }
    if (!outline.jobs || outline.jobs->kind == YamlValue::Kind::null) return 0;
    if (outline.jobs->kind != YamlValue::Kind::sequence) {
      return at(name, outline.jobs->mark, "jobs",
                "expected a list of jobs, got " + describe_yaml(outline.jobs->described()));
    }
    list_mark = outline.jobs->mark;
    depth = 2;
  } else if (outline.root.kind != YamlValue::Kind::sequence) {
    return at(name, outline.root.mark, "",
              "expected a list of jobs (or a map with a 'jobs' list), got " +
                  describe_yaml(outline.root.described()));
  }
  if (outline.job_count > limits.max_jobs) {
    return at(name, list_mark, "jobs",
              "more than " + std::to_string(limits.max_jobs) + " jobs in one file");
  }
  return depth;
}

}  // namespace

std::optional<Diagnostic> read_job_text(const std::string& text, const std::string& name,
                                        const JobSink& sink, const JobFileLimits& limits) {
  if (text.size() > limits.max_file_bytes) {
    return Diagnostic{.file = name,
                      .reason = "file is larger than the limit of " +
                                std::to_string(limits.max_file_bytes) + " bytes"};
  }
  const YamlScreenLimits screen{.max_depth = limits.max_depth, .max_nodes = limits.max_nodes};
  OutlineHandler outline;
  YamlEventTape tape(&outline, limits.max_replay_bytes);
  if (auto problem = screen_yaml(text, name, screen, &tape)) return problem;
  const auto depth = job_depth(outline, name, limits);
  if (const auto* problem = std::get_if<Diagnostic>(&depth)) return *problem;
  if (std::get<int>(depth) == 0) return std::nullopt;

  JobStreamHandler handler(name, std::get<int>(depth), sink, limits);
  if (tape.complete()) {
    tape.replay(handler);
    return std::nullopt;
  }
  // The screen parsed the same text without error, and this pass reads only the first
  // document, so this result is only the backstop.
  return parse_yaml_events(text, name, handler);
}

std::optional<Diagnostic> read_job_file(const std::string& path, const JobSink& sink,
                                        const JobFileLimits& limits) {
  Diagnostic error;
  const auto text = read_input_file(path, limits.max_file_bytes, &error);
  if (!text) return error;
  return read_job_text(*text, path, sink, limits);
}

JobFileLoad parse_job_text(const std::string& text, const std::string& name,
                           const JobFileLimits& limits) {
  JobFileLoad load;
  const JobSink sink{
      .job = [&](core::JobDefinition&& job) { load.jobs.push_back(std::move(job)); },
      .invalid = [&](InvalidJob&& invalid) { load.invalid.push_back(std::move(invalid)); },
  };
  load.fatal = read_job_text(text, name, sink, limits);
  if (load.fatal) {
    load.jobs.clear();
    load.invalid.clear();
  }
  return load;
}

JobFileLoad load_job_file(const std::string& path, const JobFileLimits& limits) {
  Diagnostic error;
  const auto text = read_input_file(path, limits.max_file_bytes, &error);
  if (!text) return JobFileLoad{.fatal = std::move(error)};
  return parse_job_text(*text, path, limits);
}

}  // namespace devin_orch::app
