// Internal to the store: the outbox's rows as every backend reads and writes them. What an event
// row holds (built from a job's row as the announcing transaction left it, or from an
// organisation's pause), and how a row of notify_events or of a delivery becomes an OutboxEvent
// or a Delivery. A backend's row type offers int64_at, text_at, optional_text_at,
// optional_int64_at and optional_double_at by column index; only the SQL differs by backend.
#pragma once

#include "job_row.hpp"

#include "devin_orch/core/random.hpp"
#include "devin_orch/core/time.hpp"
#include "devin_orch/store/notify_codec.hpp"
#include "devin_orch/store/outbox_store.hpp"
#include "devin_orch/store/spec_codec.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::store {

// The job's columns an event needs, read_job's first and then these: what read_job_facts reads.
#define DEVIN_ORCH_JOB_EVENT_COLUMNS                                                       \
  DEVIN_ORCH_JOB_COLUMNS ", source, pull_requests, acus_consumed, structured_output, "    \
                         "finished_at, children_acus"

// Column order shared by every query that builds an OutboxEvent (read_outbox_event).
#define DEVIN_ORCH_OUTBOX_EVENT_COLUMNS \
  "seq, id, type, job_key, org_id, created_at, tags, targets, body"

// Column order shared by every query that builds a Delivery (read_delivery), over
// notify_deliveries AS d JOIN notify_events AS e.
#define DEVIN_ORCH_DELIVERY_COLUMNS                                                          \
  "d.seq, e.id, e.type, e.job_key, d.sink, d.target, e.body, d.state, d.attempts, "          \
  "e.created_at, d.next_attempt_at, d.age_from, d.last_error, d.delivered_at, e.org_id"

// A job as an event describes it.
struct JobFacts {
  core::JobRecord job;
  Outcome outcome;
  std::string source;
};

template <class Row>
JobFacts read_job_facts(const Row& row) {
  constexpr int first = kJobColumnCount;  // after DEVIN_ORCH_JOB_COLUMNS
  JobFacts facts;
  facts.job = read_job(row).record;
  facts.source = row.text_at(first);
  if (auto text = row.optional_text_at(first + 1)) {
    facts.outcome.pull_requests =
        parse_pull_requests(*text).value_or(std::vector<core::PullRequest>{});
  }
  facts.outcome.acus_consumed = row.optional_double_at(first + 2).value_or(0.0);
  facts.outcome.structured_output = row.optional_text_at(first + 3);
  facts.outcome.started_at_ms = facts.job.started_at_ms;
  facts.outcome.finished_at_ms = row.optional_int64_at(first + 4);
  facts.outcome.children_acus = row.optional_double_at(first + 5).value_or(0.0);
  return facts;
}

// A notify_events row to insert (seq and routed_at are the database's).
struct EventRow {
  std::string id;
  std::string type;
  std::optional<std::int64_t> job_id;  // job events
  std::optional<std::string> job_key;
  std::string org_id;  // the job's org_id, "" for the default
  std::string tags;    // JSON array
  std::optional<std::string> targets;  // the job's own notify:, JSON, or NULL
  std::string body;
  std::int64_t created_at_ms = 0;
};

EventRow job_event_row(core::Random& random, core::EventType type, core::TimePoint now,
                       const JobFacts& facts, const JobEventNote& note = {});
EventRow org_event_row(core::Random& random, core::EventType type, core::TimePoint now,
                       std::string_view org_id, std::optional<std::string_view> reason,
                       std::optional<std::string_view> source);

std::optional<DeliveryState> parse_delivery_state(std::string_view text);

template <class Row>
OutboxEvent read_outbox_event(const Row& row) {
  OutboxEvent event;
  event.seq = row.int64_at(0);
  event.id = row.text_at(1);
  // An unknown type (a newer writer) is routed to nobody rather than misnamed.
  const auto type = core::parse_event_type(row.text_at(2));
  event.type = type.value_or(core::EventType::job_finished);
  event.job_key = row.optional_text_at(3);
  event.org_id = row.text_at(4);
  event.created_at_ms = row.int64_at(5);
  event.tags = decode_tags(row.text_at(6));
  if (const auto targets = row.optional_text_at(7); targets && type) {
    // Unreadable targets (a newer writer's) route the event to the configured ones only.
    if (auto decoded = decode_notify_targets(*targets)) event.job_targets = std::move(*decoded);
  }
  event.body = row.text_at(8);
  return event;
}

template <class Row>
Delivery read_delivery(const Row& row) {
  Delivery out;
  out.seq = row.int64_at(0);
  out.event_id = row.text_at(1);
  out.type = core::parse_event_type(row.text_at(2)).value_or(core::EventType::job_finished);
  out.job_key = row.optional_text_at(3);
  out.sink = row.text_at(4);
  // A target this build cannot read is kept with the URL empty: its delivery fails and is
  // reported, it does not vanish.
  out.target = decode_target(row.text_at(5)).value_or(core::NotifyTarget{});
  out.body = row.text_at(6);
  out.state = parse_delivery_state(row.text_at(7)).value_or(DeliveryState::pending);
  out.attempts = row.int64_at(8);
  out.event_created_at_ms = row.int64_at(9);
  out.next_attempt_at_ms = row.int64_at(10);
  out.age_from_ms = row.int64_at(11);
  out.last_error = row.optional_text_at(12);
  out.delivered_at_ms = row.optional_int64_at(13);
  out.org_id = row.text_at(14);
  return out;
}

}  // namespace devin_orch::store
