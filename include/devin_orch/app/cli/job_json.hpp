// The JSON form of a job definition: "key", "prompt" and the other spec fields, "org_id",
// "priority", "not_before"/"deadline" (RFC 3339), "max_attempts", "on_waiting_for_user",
// "messages", "complete_on", "fan_out", "stall_after" (a duration; written as
// "stall_after_ms"), "stall_action". The format of `enqueue --stdin` and of `show --json`'s
// "definition" (docs/cli.md).
#pragma once

#include "devin_orch/core/job.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app {

// On failure these return nullopt and a reason naming the field.
std::optional<core::JobDefinition> parse_job_json(std::string_view text, std::string* reason);
std::optional<core::JobDefinition> parse_job_object(const boost::json::object& object,
                                                    std::string* reason);

std::string job_definition_json(const core::JobDefinition& definition);
boost::json::object definition_object(const core::JobDefinition& definition);

// The limits every JSON input of the CLI is parsed with.
boost::json::parse_options json_limits();

}  // namespace devin_orch::app
