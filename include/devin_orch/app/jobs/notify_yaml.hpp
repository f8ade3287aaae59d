// Reads a YAML list of notification targets ({url, secret_file, events, tags}), the one form
// shared by a job's `notify:` and the configuration's notify.webhooks / notify.slack. Only the
// shape is checked here; the values are core's to judge (core::validate(NotifyTarget)).
#pragma once

#include "devin_orch/app/formats/yaml_value.hpp"
#include "devin_orch/core/notify_target.hpp"

#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace devin_orch::app {

struct NotifyYamlError {
  YamlMark mark;
  std::string field;  // "notify[1].events[0]"
  std::string reason;
};

// `field` names the list ("notify", "notify.webhooks"); `note(field, node)` is told where each
// value is, so a rule core finds broken later can be located; `resolve_path` turns a
// secret_file as written into the path used (the config resolves relative paths against its
// own directory; a job file keeps it as written).
std::variant<std::vector<core::NotifyTarget>, NotifyYamlError> read_notify_targets(
    const YamlValue& list, const std::string& field, core::NotifyTarget::Format format,
    const std::function<void(const std::string&, const YamlValue&)>& note,
    const std::function<std::string(const std::string&)>& resolve_path);

}  // namespace devin_orch::app
