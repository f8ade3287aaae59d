// Which session a job keeps when its tag is carried by more than one.
#include "devin_orch/core/duplicates.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using testing::ElementsAre;

Session session(std::string id, std::int64_t created_at) {
  Session s;
  s.session_id = std::move(id);
  s.status = "running";
  s.created_at = created_at;
  return s;
}

TEST(Duplicates, OneSessionIsNoDuplicate) {
  const std::vector<Session> matches{session("a", 10)};
  EXPECT_FALSE(judge_duplicates("a", matches).has_value());
  EXPECT_FALSE(judge_duplicates("a", {}).has_value());
}

TEST(Duplicates, TheOldestIsKeptAndTheOthersEnded) {
  const std::vector<Session> matches{session("new", 30), session("old", 10), session("mid", 20)};
  const auto verdict = judge_duplicates("new", matches);
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->keep, "old");
  EXPECT_THAT(verdict->terminate, ElementsAre("mid", "new"));
}

TEST(Duplicates, TiesAreBrokenByIdSoEveryDaemonAgrees) {
  const std::vector<Session> matches{session("b", 10), session("a", 10)};
  EXPECT_EQ(judge_duplicates("b", matches)->keep, "a");
}

TEST(Duplicates, ChildrenAndArchivedSessionsAreNotDuplicates) {
  Session child = session("child", 5);
  child.parent_session_id = "own";
  Session ended = session("ended-duplicate", 1);
  ended.is_archived = true;
  const std::vector<Session> matches{session("own", 10), child, ended};
  EXPECT_FALSE(judge_duplicates("own", matches).has_value());
}

TEST(Duplicates, AJobThatEndedKeepsItsOwnSession) {
  const std::vector<Session> matches{session("old", 10), session("own", 20)};
  const auto verdict = judge_duplicates("own", matches, /*keep_current=*/true);
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->keep, "own");
  EXPECT_THAT(verdict->terminate, ElementsAre("old"));
}

TEST(Duplicates, AnEndedJobWhoseSessionTheListDoesNotShowYetEndsTheOneItShows) {
  const std::vector<Session> matches{session("other", 10)};
  const auto verdict = judge_duplicates("own", matches, /*keep_current=*/true);
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->keep, "own");
  EXPECT_THAT(verdict->terminate, ElementsAre("other"));
  EXPECT_FALSE(judge_duplicates("own", {}, true).has_value());
}

TEST(Duplicates, ASessionListedTwiceCountsOnce) {
  const std::vector<Session> matches{session("a", 10), session("a", 10)};
  EXPECT_FALSE(judge_duplicates("a", matches).has_value());
}

}  // namespace
}  // namespace devin_orch::core
