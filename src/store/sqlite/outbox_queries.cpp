// The notification outbox in SQLite: routing events to deliveries, reading what is pending,
// recording attempts, and the operator's listing and retry of dead letters. The event rows
// themselves are written by the transitions in sqlite_store.cpp, in their own transactions.
#include "devin_orch/store/sqlite/sqlite_store.hpp"

#include "../outbox_rows.hpp"

#include "devin_orch/store/notify_codec.hpp"
#include "devin_orch/store/spec_codec.hpp"
#include "devin_orch/store/sqlite/statement.hpp"

#include <boost/json.hpp>

namespace devin_orch::store {
namespace {

std::optional<std::string> states_json(const std::vector<DeliveryState>& states) {
  if (states.empty()) return std::nullopt;
  boost::json::array names;
  for (const auto state : states) names.emplace_back(to_string(state));
  return boost::json::serialize(names);
}

}  // namespace

StoreResult<std::vector<OutboxEvent>> SqliteStore::unrouted_events(std::size_t limit) {
  return answer([&]() -> result<std::vector<OutboxEvent>> {
    std::vector<OutboxEvent> events;
    auto done = read_rows(
        "SELECT " DEVIN_ORCH_OUTBOX_EVENT_COLUMNS
        " FROM notify_events WHERE routed_at IS NULL ORDER BY seq LIMIT ?1",
        [&](Statement& s) { s.bind(1, static_cast<std::int64_t>(limit)); },
        [&](const Statement& row) {
          events.push_back(read_outbox_event(row));
          return true;
        });
    if (!done) return done.error();
    return events;
  });
}

StoreResult<void> SqliteStore::route_event(std::int64_t seq, std::span<const DeliveryRoute> routes,
                                           core::TimePoint now) {
  return answer([&]() -> result<void> {
    const std::int64_t at = core::to_epoch_ms(now);
    return write_outbox(
        [&]() -> result<void> {
          auto marked = execute_counting(
              "UPDATE notify_events SET routed_at = ?2 WHERE seq = ?1 AND routed_at IS NULL",
              [&](Statement& s) {
                s.bind(1, seq);
                s.bind(2, at);
              });
          if (!marked) return marked.error();
          if (*marked == 0) return {};  // routed already (or gone)
          for (const auto& route : routes) {
            auto inserted = execute_counting(
                "INSERT INTO notify_deliveries (seq, sink, target, next_attempt_at, age_from, "
                "updated_at) SELECT ?1, ?2, ?3, ?4, created_at, ?4 FROM notify_events "
                "WHERE seq = ?1 ON CONFLICT (seq, sink) DO NOTHING",
                [&](Statement& s) {
                  s.bind(1, seq);
                  s.bind(2, route.sink);
                  s.bind(3, encode_target(route.target));
                  s.bind(4, at);
                });
            if (!inserted) return inserted.error();
          }
          return {};
        },
        /*fenced=*/true);
  });
}

StoreResult<std::vector<Delivery>> SqliteStore::pending_deliveries(std::size_t per_sink_limit) {
  return answer([&]() -> result<std::vector<Delivery>> {
    std::vector<Delivery> deliveries;
    // The window numbers each sink's pending deliveries in seq order (the partial index serves
    // it), so a receiver with a long backlog yields only its first ones.
    auto done = read_rows(
        "SELECT " DEVIN_ORCH_DELIVERY_COLUMNS " FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY sink ORDER BY seq) AS place "
        "  FROM notify_deliveries WHERE state = 'pending') AS d "
        "JOIN notify_events AS e ON e.seq = d.seq WHERE d.place <= ?1 ORDER BY d.seq, d.sink",
        [&](Statement& s) { s.bind(1, static_cast<std::int64_t>(per_sink_limit)); },
        [&](const Statement& row) {
          deliveries.push_back(read_delivery(row));
          return true;
        });
    if (!done) return done.error();
    return deliveries;
  });
}

StoreResult<void> SqliteStore::record_attempt(const DeliveryAttempt& attempt, core::TimePoint now) {
  return answer([&]() -> result<void> {
    const std::int64_t at = core::to_epoch_ms(now);
    return write_outbox(
        [&]() -> result<void> {
          auto updated = execute_counting(
              "UPDATE notify_deliveries SET state = ?3, attempts = ?4, next_attempt_at = ?5, "
              "last_error = ?6, delivered_at = CASE WHEN ?3 = 'delivered' THEN ?7 END, "
              "updated_at = ?7 WHERE seq = ?1 AND sink = ?2 AND state = 'pending'",
              [&](Statement& s) {
                s.bind(1, attempt.seq);
                s.bind(2, attempt.sink);
                s.bind(3, to_string(attempt.state));
                s.bind(4, attempt.attempts);
                s.bind(5, attempt.next_attempt_at_ms);
                s.bind(6, attempt.error);
                s.bind(7, at);
              });
          if (!updated) return updated.error();
          return {};
        },
        /*fenced=*/true);
  });
}

StoreResult<OutboxCounts> SqliteStore::outbox_counts() {
  return answer([&]() -> result<OutboxCounts> {
    OutboxCounts counts;
    auto unrouted = read_rows(
        "SELECT count(*) FROM notify_events WHERE routed_at IS NULL", [](Statement&) {},
        [&](const Statement& row) {
          counts.unrouted = row.int64_at(0);
          return false;
        });
    if (!unrouted) return unrouted.error();
    auto states = read_rows(
        "SELECT state, count(*) FROM notify_deliveries GROUP BY state", [](Statement&) {},
        [&](const Statement& row) {
          const auto state = parse_delivery_state(row.text_at(0));
          const std::int64_t n = row.int64_at(1);
          if (state == DeliveryState::pending) counts.pending = n;
          if (state == DeliveryState::delivered) counts.delivered = n;
          if (state == DeliveryState::dead) counts.dead = n;
          return true;
        });
    if (!states) return states.error();
    return counts;
  });
}

StoreResult<std::vector<Delivery>> SqliteStore::list_deliveries(const DeliveryFilter& filter) {
  return answer([&]() -> result<std::vector<Delivery>> {
    std::vector<Delivery> deliveries;
    auto done = read_rows(
        "SELECT " DEVIN_ORCH_DELIVERY_COLUMNS
        " FROM notify_deliveries AS d JOIN notify_events AS e ON e.seq = d.seq "
        "WHERE (?1 IS NULL OR d.state IN (SELECT value FROM json_each(?1))) "
        "AND (?2 IS NULL OR e.id = ?2) AND (?3 IS NULL OR e.job_key = ?3) "
        "ORDER BY d.seq, d.sink LIMIT ?4",
        [&](Statement& s) {
          s.bind(1, states_json(filter.states));
          s.bind(2, filter.event_id);
          s.bind(3, filter.job_key);
          s.bind(4, filter.limit ? static_cast<std::int64_t>(*filter.limit) : std::int64_t{-1});
        },
        [&](const Statement& row) {
          deliveries.push_back(read_delivery(row));
          return true;
        });
    if (!done) return done.error();
    return deliveries;
  });
}

StoreResult<std::int64_t> SqliteStore::retry_deliveries(std::optional<std::string> event_id,
                                                        core::TimePoint now) {
  return answer([&]() -> result<std::int64_t> {
    const std::int64_t at = core::to_epoch_ms(now);
    std::int64_t retried = 0;
    auto done = write_outbox(
        [&]() -> result<void> {
          auto updated = execute_counting(
              "UPDATE notify_deliveries SET state = 'pending', next_attempt_at = ?2, "
              "age_from = ?2, updated_at = ?2 WHERE state = 'dead' AND (?1 IS NULL OR seq = "
              "(SELECT seq FROM notify_events WHERE id = ?1))",
              [&](Statement& s) {
                s.bind(1, event_id);
                s.bind(2, at);
              });
          if (!updated) return updated.error();
          retried = *updated;
          return {};
        },
        /*fenced=*/false);
    if (!done) return done.error();
    return retried;
  });
}

StoreResult<std::int64_t> SqliteStore::prune_events(core::TimePoint cutoff) {
  return answer([&]() -> result<std::int64_t> {
    std::int64_t pruned = 0;
    auto done = write_outbox(
        [&]() -> result<void> {
          auto deleted = execute_counting(
              "DELETE FROM notify_events WHERE created_at < ?1 AND routed_at IS NOT NULL "
              "AND NOT EXISTS (SELECT 1 FROM notify_deliveries AS d "
              "WHERE d.seq = notify_events.seq AND d.state = 'pending')",
              [&](Statement& s) { s.bind(1, core::to_epoch_ms(cutoff)); });
          if (!deleted) return deleted.error();
          pruned = *deleted;
          return {};
        },
        /*fenced=*/false);
    if (!done) return done.error();
    return pruned;
  });
}

}  // namespace devin_orch::store
