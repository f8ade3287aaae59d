// The JSON of a notification event, the same for every backend: the backend gathers the facts
// inside the transaction that causes the event and stores what this returns as the event body.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/notify_target.hpp"
#include "devin_orch/store/types.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace devin_orch::store {

// What a job event says beyond the job's record.
struct JobEventNote {
  std::optional<std::string> detail;           // overrides the job's last_error as "detail"
  std::optional<std::string> kept_session_id;  // job.duplicate_terminated
  std::vector<std::string> terminated_session_ids;
};

// {"id", "type", "created_at", "job": {key, source, org_id, tags, generation, state, status,
//  status_detail, detail, session_id, session_url, pull_requests, acus_consumed, children_acus,
//  structured_output, created_at, started_at, finished_at, parent_key, ...}}
std::string encode_job_event(std::string_view id, core::EventType type, std::int64_t at_ms,
                             const core::JobRecord& job, const Outcome& outcome,
                             std::string_view source, const JobEventNote& note = {});
// {"id", "type", "created_at", "org": {"id", "reason", "source"}}
std::string encode_org_event(std::string_view id, core::EventType type, std::int64_t at_ms,
                             std::string_view org_id, std::optional<std::string_view> reason,
                             std::optional<std::string_view> source);

// RFC 3339 UTC with milliseconds: "2026-12-06T09:30:00.125Z".
std::string utc_timestamp(std::int64_t epoch_ms);

// The tags of an event, JSON array text (for routing columns) and back.
std::string encode_tags(std::span<const std::string> tags);
std::vector<std::string> decode_tags(std::string_view json);

// A delivery's receiver as stored: one target as JSON.
std::string encode_target(const core::NotifyTarget& target);
std::optional<core::NotifyTarget> decode_target(std::string_view json);

}  // namespace devin_orch::store
