// Tests for notification event types, target filters, the receiver URL rule and event ids.
#include "devin_orch/core/notify_event.hpp"
#include "devin_orch/core/notify_target.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace devin_orch::core {
namespace {

TEST(EventType, EveryNameParsesBackToItsType) {
  std::set<std::string> names;
  for (const EventType type : kAllEventTypes) {
    const std::string name{to_string(type)};
    EXPECT_EQ(parse_event_type(name), type) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), std::size(kAllEventTypes));
  EXPECT_EQ(parse_event_type("job.finished"), EventType::job_finished);
  EXPECT_EQ(parse_event_type("org.paused"), EventType::org_paused);
  EXPECT_FALSE(parse_event_type("job.Finished"));
  EXPECT_FALSE(parse_event_type("finished"));
  EXPECT_TRUE(is_job_event(EventType::job_waiting_for_user));
  EXPECT_FALSE(is_job_event(EventType::org_resumed));
}

TEST(EndEvent, EveryEndButInvalidAnnouncesOne) {
  EXPECT_EQ(end_event(JobState::finished), EventType::job_finished);
  EXPECT_EQ(end_event(JobState::failed), EventType::job_failed);
  EXPECT_EQ(end_event(JobState::suspended), EventType::job_suspended);
  EXPECT_EQ(end_event(JobState::dead), EventType::job_dead);
  EXPECT_EQ(end_event(JobState::lost), EventType::job_lost);
  EXPECT_EQ(end_event(JobState::timed_out), EventType::job_timed_out);
  EXPECT_EQ(end_event(JobState::cancelled), EventType::job_cancelled);
  EXPECT_FALSE(end_event(JobState::invalid));
  EXPECT_FALSE(end_event(JobState::queued));
  EXPECT_FALSE(end_event(JobState::creating));
  EXPECT_FALSE(end_event(JobState::running));
}

TEST(NotifyTargetWants, FiltersOnEventsAndTags) {
  NotifyTarget all{.url = "https://example.com/hook"};
  const std::vector<std::string> tags{"ci", "team-a"};
  EXPECT_TRUE(wants(all, EventType::job_failed, tags));
  EXPECT_TRUE(wants(all, EventType::org_paused, {}));

  NotifyTarget failures{.url = "https://example.com/hook",
                        .events = {EventType::job_failed, EventType::job_dead}};
  EXPECT_TRUE(wants(failures, EventType::job_dead, tags));
  EXPECT_FALSE(wants(failures, EventType::job_finished, tags));

  NotifyTarget team{.url = "https://example.com/hook", .tags = {"team-b", "team-a"}};
  EXPECT_TRUE(wants(team, EventType::job_finished, tags));
  EXPECT_FALSE(wants(team, EventType::job_finished, std::vector<std::string>{"team-c"}));
  // An organisation's event has no tags, so a tag filter never takes it.
  EXPECT_FALSE(wants(team, EventType::org_paused, {}));
}

TEST(NotifyUrl, HttpsAnywhereHttpOnlyOnLoopback) {
  EXPECT_FALSE(notify_url_problem("https://hooks.example.com/devin?x=1"));
  EXPECT_FALSE(notify_url_problem("http://127.0.0.1:8080/hook"));
  EXPECT_FALSE(notify_url_problem("http://127.1.2.3/hook"));
  EXPECT_FALSE(notify_url_problem("http://localhost:9/x"));
  EXPECT_FALSE(notify_url_problem("http://[::1]:8080/x"));
  EXPECT_TRUE(notify_url_problem("http://hooks.example.com/hook"));
  EXPECT_TRUE(notify_url_problem("http://127.0.0.1.evil.com/hook"));
  EXPECT_TRUE(notify_url_problem("http://10.0.0.1/hook"));
  EXPECT_TRUE(notify_url_problem("ftp://example.com/"));
  EXPECT_TRUE(notify_url_problem("example.com/hook"));
  EXPECT_TRUE(notify_url_problem(""));
  EXPECT_TRUE(notify_url_problem("https://user:pw@example.com/"));
  EXPECT_TRUE(notify_url_problem("https://example.com/a b"));
  EXPECT_TRUE(notify_url_problem("https:///path"));
}

TEST(EventId, IsPrefixedHexAndDiffersEachTime) {
  Random random{42};
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_event_id(random);
    ASSERT_EQ(id.size(), 36U);
    ASSERT_TRUE(id.starts_with("evt_"));
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef", 4), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000U);
}

}  // namespace
}  // namespace devin_orch::core
