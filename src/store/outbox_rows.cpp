// The outbox's event rows, built the same way by every backend (outbox_rows.hpp).
#include "outbox_rows.hpp"

#include "devin_orch/core/notify_event.hpp"

namespace devin_orch::store {

EventRow job_event_row(core::Random& random, core::EventType type, core::TimePoint now,
                       const JobFacts& facts, const JobEventNote& note) {
  const core::JobRecord& job = facts.job;
  EventRow row;
  row.id = core::new_event_id(random);
  row.type = std::string{core::to_string(type)};
  row.job_id = job.id;
  row.job_key = job.definition.key;
  row.org_id = job.definition.org_id.value_or(std::string{});
  row.tags = encode_tags(job.definition.spec.tags);
  row.targets = text_or_null(encode_notify_targets(job.definition.controls.notify));
  row.created_at_ms = core::to_epoch_ms(now);
  row.body = encode_job_event(row.id, type, row.created_at_ms, job, facts.outcome, facts.source,
                              note);
  return row;
}

EventRow org_event_row(core::Random& random, core::EventType type, core::TimePoint now,
                       std::string_view org_id, std::optional<std::string_view> reason,
                       std::optional<std::string_view> source) {
  EventRow row;
  row.id = core::new_event_id(random);
  row.type = std::string{core::to_string(type)};
  row.org_id = std::string{org_id};
  row.tags = "[]";
  row.created_at_ms = core::to_epoch_ms(now);
  row.body = encode_org_event(row.id, type, row.created_at_ms, org_id, reason, source);
  return row;
}

std::optional<DeliveryState> parse_delivery_state(std::string_view text) {
  if (text == "pending") return DeliveryState::pending;
  if (text == "delivered") return DeliveryState::delivered;
  if (text == "dead") return DeliveryState::dead;
  return std::nullopt;
}

}  // namespace devin_orch::store
