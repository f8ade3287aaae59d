// The JSON form of a job definition (job_json.hpp): `enqueue --stdin` lines and `show --json`'s
// "definition", so a job copies from one database to another through a pipe.
#include "devin_orch/app/cli/job_json.hpp"

#include "command.hpp"

#include "devin_orch/app/formats/duration.hpp"
#include "devin_orch/app/formats/json_text.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/core/job_validation.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace devin_orch::app {
namespace json = boost::json;
namespace {

// The control fields the store keeps as JSON (decode_controls' format).
constexpr std::array<std::string_view, 7> kControlFields{
    "on_waiting_for_user", "messages", "complete_on", "fan_out", "notify", "stall_after_ms",
    "stall_action"};

}  // namespace

json::parse_options json_limits() {
  json::parse_options options;
  options.max_depth = 64;
  return options;
}

std::optional<core::JobDefinition> parse_job_object(const json::object& object,
                                                    std::string* reason) {
  const auto fail = [&](std::string why) -> std::optional<core::JobDefinition> {
    if (reason != nullptr) *reason = std::move(why);
    return std::nullopt;
  };
  core::JobDefinition definition;
  json::object spec;
  json::object controls;
  bool has_key = false;
  for (const auto& [name, value] : object) {
    if (name == "key") {
      if (!value.is_string()) return fail("field 'key': expected a string");
      definition.key = value.get_string();
      has_key = true;
    } else if (name == "org_id") {
      if (value.is_null()) continue;
      if (!value.is_string()) return fail("field 'org_id': expected a string or null");
      definition.org_id = std::string{value.get_string()};
    } else if (name == "priority") {
      if (!value.is_int64()) return fail("field 'priority': expected an integer");
      definition.priority = value.get_int64();
    } else if (name == "not_before" || name == "deadline") {
      if (value.is_null()) continue;
      const auto at = value.is_string() ? parse_timestamp_ms(value.get_string()) : std::nullopt;
      if (!at) {
        return fail("field '" + std::string{name} +
                    "': expected an RFC 3339 time with a zone, like 2026-11-24T09:30:00Z");
      }
      (name == "deadline" ? definition.controls.deadline_ms : definition.controls.not_before_ms) =
          *at;
    } else if (name == "max_attempts") {
      if (value.is_null()) continue;
      if (!value.is_int64()) return fail("field 'max_attempts': expected an integer or null");
      definition.controls.max_attempts = value.get_int64();
    } else if (name == "on_waiting_for_user" && value.is_object() &&
               value.get_object().size() == 1 && value.get_object().contains("finish_after")) {
      // The YAML spelling ({"finish_after": "10m"}) is accepted too.
      const auto& after = value.get_object().at("finish_after");
      const auto duration = after.is_string() ? parse_duration(after.get_string()) : std::nullopt;
      if (!duration) {
        return fail("field 'on_waiting_for_user.finish_after': expected a duration like 10m");
      }
      controls[name] = json::object{{"finish_after_ms", duration->count()}};
    } else if (name == "stall_after") {
      // The YAML spelling ("30m") beside the stored one (stall_after_ms).
      if (value.is_null()) continue;
      const auto duration = value.is_string() ? parse_duration(value.get_string()) : std::nullopt;
      if (!duration) return fail("field 'stall_after': expected a duration like 30m");
      controls["stall_after_ms"] = duration->count();
    } else if (std::find(kControlFields.begin(), kControlFields.end(), name) !=
               kControlFields.end()) {
      controls[name] = value;
    } else {
      spec[name] = value;
    }
  }
  if (!has_key) return fail("field 'key' is required");
  std::string why;
  auto decoded = store::decode_spec(json::serialize(spec), &why);
  if (!decoded) return fail(std::move(why));
  definition.spec = std::move(*decoded);
  if (!controls.empty()) {
    if (!store::decode_controls(json::serialize(controls), definition.controls, &why)) {
      constexpr std::string_view kPrefix = "controls: ";
      if (why.starts_with(kPrefix)) why.erase(0, kPrefix.size());
      return fail(std::move(why));
    }
  }
  if (const auto problem = core::validate(definition)) {
    return fail(store::field_error_text(*problem));
  }
  return definition;
}

json::object definition_object(const core::JobDefinition& definition) {
  json::object out;
  out["key"] = definition.key;
  json::error_code ec;
  auto spec = json::parse(store::encode_spec(definition.spec), ec, {}, json_limits());
  if (!ec && spec.is_object()) {
    for (auto& [name, value] : spec.get_object()) out[name] = std::move(value);
  }
  out["org_id"] = nullable(definition.org_id);
  out["priority"] = definition.priority;
  out["not_before"] = timestamp_or_null(definition.controls.not_before_ms);
  out["deadline"] = timestamp_or_null(definition.controls.deadline_ms);
  if (definition.controls.max_attempts) {
    out["max_attempts"] = *definition.controls.max_attempts;
  } else {
    out["max_attempts"] = nullptr;
  }
  if (const auto encoded = store::encode_controls(definition.controls); !encoded.empty()) {
    auto controls = json::parse(encoded, ec, {}, json_limits());
    if (!ec && controls.is_object()) {
      for (auto& [name, value] : controls.get_object()) out[name] = std::move(value);
    }
  }
  return out;
}

std::optional<core::JobDefinition> parse_job_json(std::string_view text, std::string* reason) {
  json::error_code ec;
  const auto value = json::parse(text, ec, {}, json_limits());
  if (ec) {
    if (reason != nullptr) *reason = "not valid JSON: " + ec.message();
    return std::nullopt;
  }
  if (!value.is_object()) {
    if (reason != nullptr) *reason = "expected a JSON object";
    return std::nullopt;
  }
  return parse_job_object(value.get_object(), reason);
}

std::string job_definition_json(const core::JobDefinition& definition) {
  return json_text(definition_object(definition));
}

}  // namespace devin_orch::app
