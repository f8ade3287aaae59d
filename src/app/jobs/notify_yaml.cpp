// The YAML form of notification targets, read into core::NotifyTarget values.
#include "devin_orch/app/jobs/notify_yaml.hpp"

#include <array>

namespace devin_orch::app {
namespace {

constexpr std::array<std::string_view, 4> kWebhookFields{"url", "secret_file", "events", "tags"};

NotifyYamlError error(const YamlValue& at, std::string field, std::string reason) {
  return NotifyYamlError{.mark = at.mark, .field = std::move(field), .reason = std::move(reason)};
}

}  // namespace

std::variant<std::vector<core::NotifyTarget>, NotifyYamlError> read_notify_targets(
    const YamlValue& list, const std::string& field, core::NotifyTarget::Format format,
    const std::function<void(const std::string&, const YamlValue&)>& note,
    const std::function<std::string(const std::string&)>& resolve_path) {
  const bool slack = format == core::NotifyTarget::Format::slack;
  const std::string shape = slack ? "a list of {url, events, tags}"
                                  : "a list of {url, secret_file, events, tags}";
  if (list.is_null()) return std::vector<core::NotifyTarget>{};
  if (!list.is_sequence()) return error(list, field, "expected " + shape + ", got " + describe_yaml(list));
  note(field, list);
  std::vector<core::NotifyTarget> targets;
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    const YamlValue& item = list.items[i];
    const std::string item_field = field + "[" + std::to_string(i) + "]";
    if (!item.is_map()) return error(item, item_field, "expected " + shape + ", got " + describe_yaml(item));
    note(item_field, item);
    core::NotifyTarget target;
    target.format = format;
    bool has_url = false;
    for (const auto& [key, value] : item.entries) {
      const std::string name = key.is_scalar() ? key.scalar : std::string{};
      const std::string sub = item_field + "." + name;
      const bool known = std::find(kWebhookFields.begin(), kWebhookFields.end(), name) !=
                             kWebhookFields.end() &&
                         !(slack && name == "secret_file");
      if (!known) {
        return error(key, sub, "unknown field " + describe_yaml(key) + "; expected " + shape);
      }
      if (name == "url" || name == "secret_file") {
        if (!value.is_scalar()) {
          return error(value.is_null() ? key : value, sub,
                       "expected a string, got " + describe_yaml(value));
        }
        note(sub, value);
        if (name == "url") {
          target.url = value.scalar;
          has_url = true;
        } else {
          target.secret_file = value.scalar.empty() ? value.scalar : resolve_path(value.scalar);
        }
        continue;
      }
      // events, tags: lists of strings
      if (value.is_null()) continue;
      if (!value.is_sequence()) {
        return error(value, sub, "expected a list of strings, got " + describe_yaml(value));
      }
      note(sub, value);
      for (std::size_t j = 0; j < value.items.size(); ++j) {
        const YamlValue& entry = value.items[j];
        const std::string entry_field = sub + "[" + std::to_string(j) + "]";
        if (!entry.is_scalar()) {
          return error(entry, entry_field, "expected a string, got " + describe_yaml(entry));
        }
        note(entry_field, entry);
        if (name == "tags") {
          target.tags.push_back(entry.scalar);
          continue;
        }
        const auto type = core::parse_event_type(entry.scalar);
        if (!type) {
          std::string names;
          for (const auto known_type : core::kAllEventTypes) {
            names += (names.empty() ? "" : ", ") + std::string(core::to_string(known_type));
          }
          return error(entry, entry_field,
                       "unknown event " + describe_yaml(entry) + "; the events are " + names);
        }
        target.events.push_back(*type);
      }
    }
    if (!has_url) return error(item, item_field + ".url", "missing required field 'url'");
    targets.push_back(std::move(target));
  }
  return targets;
}

}  // namespace devin_orch::app
