// `devin-orch events ls|retry`: the notification outbox as the operator sees it: deliveries
// (pending, delivered, dead-lettered) and sending dead letters again.
#include "command.hpp"

#include "devin_orch/app/cli/text_table.hpp"
#include "devin_orch/app/formats/timestamp.hpp"
#include "devin_orch/store/outbox_store.hpp"

#include <boost/json.hpp>

#include <array>

namespace devin_orch::app {
namespace {

namespace json = boost::json;

constexpr std::string_view kEventsHelp =
    R"(Usage: devin-orch events ls [--config FILE] [--dead | --pending | --delivered] [--job KEY]
                          [--event ID] [--limit N] [--json]
       devin-orch events retry [--config FILE] (EVENT_ID | --all-dead) [--json]

Notifications (docs/notifications.md): each event goes to every receiver that wants it, one
delivery each, retried with backoff until notify.max_age, then dead-lettered.
  ls                list deliveries in event order: event id, type, job, receiver, state,
                    attempts, last error
  retry EVENT_ID    send the event's dead-lettered deliveries again (the daemon does it at
                    once; the maximum age counts from now)
  retry --all-dead  the same for every dead-lettered delivery
  -c, --config FILE  configuration file (YAML); default: $DEVIN_ORCH_CONFIG, then
                     /etc/devin-orch/devin-orch.yaml
  --dead, --pending, --delivered   only deliveries in that state (may be combined)
  --job KEY      only the events of this job
  --event ID     only this event
  --limit N      at most N deliveries
  --json         ls: one JSON array of {"event_id", "seq", "type", "job_key", "receiver",
                 "state", "attempts", "created_at", "next_attempt_at", "delivered_at",
                 "last_error"}; retry: {"retried": N}

Exit codes: 0 ok, 1 database failure, 2 bad usage, 3 retry: no dead delivery for that event.
)";

constexpr std::array<OptionSpec, 10> kEventsFlags{{{"--dead"},
                                                   {"--pending"},
                                                   {"--delivered"},
                                                   {"--job", true},
                                                   {"--event", true},
                                                   {"--limit", true},
                                                   {"--all-dead"},
                                                   kJsonOption,
                                                   kConfigOption}};

ExitCode list_events(Command& command, Opened& opened) {
  const ParsedArgs& args = command.args();
  store::DeliveryFilter filter;
  if (args.has("--pending")) filter.states.push_back(store::DeliveryState::pending);
  if (args.has("--delivered")) filter.states.push_back(store::DeliveryState::delivered);
  if (args.has("--dead")) filter.states.push_back(store::DeliveryState::dead);
  filter.job_key = args.value("--job");
  filter.event_id = args.value("--event");
  if (const auto limit = args.value("--limit")) {
    const auto n = parse_int(*limit);
    if (!n || *n < 1) return command.usage("--limit needs a positive whole number");
    filter.limit = static_cast<std::size_t>(*n);
  }
  const auto deliveries = opened.outbox->list_deliveries(filter);
  if (!deliveries) return command.database_error(deliveries.error());
  std::ostream& out = command.out();
  if (command.json()) {
    json::array items;
    for (const auto& d : *deliveries) {
      items.push_back(json::object{
          {"event_id", d.event_id},
          {"seq", d.seq},
          {"type", core::to_string(d.type)},
          {"job_key", nullable(d.job_key)},
          {"receiver", d.target.url},
          {"format", d.target.format == core::NotifyTarget::Format::slack ? "slack" : "webhook"},
          {"state", store::to_string(d.state)},
          {"attempts", d.attempts},
          {"created_at", format_timestamp_ms(d.event_created_at_ms)},
          {"next_attempt_at", d.state == store::DeliveryState::pending
                                  ? json::value(format_timestamp_ms(d.next_attempt_at_ms))
                                  : json::value(nullptr)},
          {"delivered_at", timestamp_or_null(d.delivered_at_ms)},
          {"last_error", nullable(d.last_error)},
      });
    }
    out << json::serialize(items) << '\n';
    return ExitCode::ok;
  }
  if (deliveries->empty()) {
    out << "no deliveries\n";
    return ExitCode::ok;
  }
  std::vector<std::vector<std::string>> table{
      {"EVENT", "TYPE", "JOB", "RECEIVER", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR"}};
  for (const auto& d : *deliveries) {
    table.push_back({d.event_id, std::string{core::to_string(d.type)},
                     d.job_key ? *d.job_key : "org " + d.org_id, shorten(d.target.url, 48),
                     std::string{store::to_string(d.state)}, std::to_string(d.attempts),
                     format_timestamp_ms(d.event_created_at_ms),
                     shorten(dash(d.last_error), kMaxErrorColumn)});
  }
  print_table(out, table);
  return ExitCode::ok;
}

ExitCode retry_events(Command& command, Opened& opened) {
  const ParsedArgs& args = command.args();
  const bool all = args.has("--all-dead");
  if (all == (args.positional.size() == 2)) {
    return command.usage("events retry takes one EVENT_ID or --all-dead");
  }
  std::optional<std::string> event_id;
  if (!all) event_id = args.positional[1];
  const auto retried = opened.outbox->retry_deliveries(event_id, command.io().now);
  if (!retried) return command.database_error(retried.error());
  if (command.json()) {
    command.out() << json::serialize(json::object{{"retried", *retried}}) << '\n';
  } else {
    command.out() << "queued " << *retried << " dead-lettered deliver"
                  << (*retried == 1 ? "y" : "ies") << " again\n";
  }
  if (!all && *retried == 0) {
    return command.fail(ExitCode::unknown_job, "no dead-lettered delivery for event " + *event_id);
  }
  return ExitCode::ok;
}

ExitCode cmd_events(Command& command) {
  const ParsedArgs& args = command.args();
  if (args.positional.empty()) return command.usage("give a subcommand: ls or retry");
  const std::string& sub = args.positional[0];
  if (sub != "ls" && sub != "retry") {
    return command.usage("unknown subcommand '" + sub + "'; expected ls or retry");
  }
  if (sub == "ls" && args.positional.size() > 1) return command.usage("events ls takes no argument");
  if (sub == "ls" && args.has("--all-dead")) return command.usage("--all-dead goes with retry");
  Opened opened;
  if (const auto stop = command.open(opened)) return *stop;
  return sub == "ls" ? list_events(command, opened) : retry_events(command, opened);
}

}  // namespace

constinit const CommandInfo events_info{
    .name = "events",
    .group = CommandInfo::Group::jobs,
    .summary = "list notification deliveries, or send dead-lettered ones again",
    .help = kEventsHelp,
    .options = kEventsFlags,
    .run = cmd_events,
};

}  // namespace devin_orch::app
