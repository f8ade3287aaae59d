// Tests for concurrency groups: key and pattern rules, glob matching, first-match limits, and
// admission step by step (a full group waits, other keys go ahead, a reload frees slots).
#include "devin_orch/core/concurrency_groups.hpp"

#include <gtest/gtest.h>

namespace devin_orch::core {
namespace {

using Key = std::optional<std::string>;

ConcurrencyGroups groups_of(std::vector<ConcurrencyLimit> limits,
                            std::map<std::string, int, std::less<>> active = {}) {
  ConcurrencyGroups groups{std::move(limits)};
  groups.reload(std::move(active));
  return groups;
}

TEST(ConcurrencyGroups, KeysArePrintableWordsOfBoundedLength) {
  EXPECT_EQ(concurrency_key_problem("repo:acme/backend"), std::nullopt);
  EXPECT_EQ(concurrency_key_problem("team-a_1.x@y+z=w#v"), std::nullopt);
  EXPECT_EQ(concurrency_key_problem(""), "must not be empty");
  const auto space = concurrency_key_problem("repo: acme");
  ASSERT_TRUE(space);
  EXPECT_NE(space->find("got byte 32"), std::string::npos) << *space;
  const auto star = concurrency_key_problem("repo:*");
  ASSERT_TRUE(star);
  EXPECT_NE(star->find("got '*'"), std::string::npos) << *star;
  EXPECT_EQ(concurrency_key_problem(std::string(200, 'k')), std::nullopt);
  EXPECT_EQ(concurrency_key_problem(std::string(201, 'k')),
            "is 201 characters; the limit is 200");
  EXPECT_TRUE(concurrency_key_problem("caf\xc3\xa9"));  // non-ASCII
}

TEST(ConcurrencyGroups, PatternsMayHoldStars) {
  EXPECT_EQ(concurrency_pattern_problem("repo:*"), std::nullopt);
  EXPECT_EQ(concurrency_pattern_problem("*"), std::nullopt);
  EXPECT_EQ(concurrency_pattern_problem(""), "must not be empty");
  EXPECT_TRUE(concurrency_pattern_problem("repo:?"));
}

TEST(ConcurrencyGroups, GlobMatching) {
  EXPECT_TRUE(concurrency_pattern_matches("repo:acme/backend", "repo:acme/backend"));
  EXPECT_FALSE(concurrency_pattern_matches("repo:acme/backend", "repo:acme/backend2"));
  EXPECT_TRUE(concurrency_pattern_matches("repo:*", "repo:acme/backend"));
  EXPECT_TRUE(concurrency_pattern_matches("repo:*", "repo:"));
  EXPECT_FALSE(concurrency_pattern_matches("repo:*", "team:acme"));
  EXPECT_TRUE(concurrency_pattern_matches("*", "anything"));
  EXPECT_TRUE(concurrency_pattern_matches("repo:*/backend", "repo:acme/backend"));
  EXPECT_FALSE(concurrency_pattern_matches("repo:*/backend", "repo:acme/frontend"));
  EXPECT_TRUE(concurrency_pattern_matches("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(concurrency_pattern_matches("*a*b", "xxaxxbxx"));
  // Backtracking past a first, wrong match of the star's tail.
  EXPECT_TRUE(concurrency_pattern_matches("*ab", "aab"));
  EXPECT_TRUE(concurrency_pattern_matches("a*b*c", "abxbxc"));
}

TEST(ConcurrencyGroups, FirstMatchingPatternSetsTheLimit) {
  const auto groups = groups_of({{"repo:acme/backend", 1}, {"repo:*", 3}});
  ASSERT_NE(groups.limit_for("repo:acme/backend"), nullptr);
  EXPECT_EQ(groups.limit_for("repo:acme/backend")->max_active, 1);
  ASSERT_NE(groups.limit_for("repo:acme/web"), nullptr);
  EXPECT_EQ(groups.limit_for("repo:acme/web")->max_active, 3);
  EXPECT_EQ(groups.limit_for("team:a"), nullptr);
}

TEST(ConcurrencyGroups, JobsWithoutKeyOrLimitAreNeverHeld) {
  const auto groups = groups_of({{"repo:*", 1}}, {{"team:a", 50}});
  EXPECT_TRUE(groups.admit(std::nullopt).allowed);
  EXPECT_FALSE(groups.admit(std::nullopt).key);
  const auto unlimited = groups.admit(Key{"team:a"});
  EXPECT_TRUE(unlimited.allowed);
  EXPECT_FALSE(unlimited.key);
}

TEST(ConcurrencyGroups, AFullGroupWaitsStepByStep) {
  auto groups = groups_of({{"repo:*", 2}}, {{"repo:a", 1}});
  auto verdict = groups.admit(Key{"repo:a"});
  EXPECT_TRUE(verdict.allowed);
  EXPECT_EQ(verdict.active, 1);
  groups.started(Key{"repo:a"});
  verdict = groups.admit(Key{"repo:a"});
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.key, "repo:a");
  EXPECT_EQ(verdict.pattern, "repo:*");
  EXPECT_EQ(verdict.active, 2);
  EXPECT_EQ(verdict.max_active, 2);
  EXPECT_EQ(describe(verdict), "concurrency:repo:a 2/2");
  // Each distinct key of a glob has its own limit.
  EXPECT_TRUE(groups.admit(Key{"repo:b"}).allowed);
  // The store says one of repo:a's jobs ended: a slot is free again.
  groups.reload({{"repo:a", 1}});
  EXPECT_TRUE(groups.admit(Key{"repo:a"}).allowed);
  // A reload can also say more are active than we started (another daemon, a restart).
  groups.reload({{"repo:a", 3}});
  verdict = groups.admit(Key{"repo:a"});
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.active, 3);
}

TEST(ConcurrencyGroups, AdmitInOrderLetsOtherKeysGoAhead) {
  const auto groups = groups_of({{"repo:acme/backend", 2}}, {{"repo:acme/backend", 1}});
  const std::vector<Key> keys{Key{"repo:acme/backend"}, Key{"repo:acme/backend"}, std::nullopt,
                              Key{"repo:acme/backend"}, Key{"repo:other"}};
  const auto verdicts = admit_in_order(groups, keys);
  ASSERT_EQ(verdicts.size(), keys.size());
  EXPECT_TRUE(verdicts[0].allowed);
  EXPECT_EQ(verdicts[0].active, 1);
  EXPECT_FALSE(verdicts[1].allowed);
  EXPECT_EQ(describe(verdicts[1]), "concurrency:repo:acme/backend 2/2");
  EXPECT_TRUE(verdicts[2].allowed);
  EXPECT_FALSE(verdicts[3].allowed);
  EXPECT_TRUE(verdicts[4].allowed);
  // The groups given are not changed: the plan works on a copy.
  EXPECT_EQ(groups.active("repo:acme/backend"), 1);
}

TEST(ConcurrencyGroups, StartsOfUnlimitedKeysAreNotCounted) {
  ConcurrencyGroups groups{{{"repo:*", 1}}};
  groups.started(Key{"team:a"});
  EXPECT_EQ(groups.active("team:a"), 0);
  groups.started(Key{"repo:x"});
  EXPECT_EQ(groups.active("repo:x"), 1);
}

}  // namespace
}  // namespace devin_orch::core
