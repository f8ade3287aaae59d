// Tests for the shared job vocabulary: state names, terminal states, the creation tag, errc.
#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_state_list.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <set>

namespace devin_orch::core {
namespace {

constexpr JobState kAllStates[] = {
    JobState::queued, JobState::creating,  JobState::running, JobState::finished,
    JobState::failed, JobState::suspended, JobState::dead,    JobState::lost,
    JobState::invalid, JobState::cancelled, JobState::timed_out, JobState::stalled};

TEST(JobState, NamesRoundTripAndAreDistinct) {
  std::set<std::string_view> names;
  for (JobState s : kAllStates) {
    EXPECT_EQ(parse_job_state(to_string(s)), s) << to_string(s);
    names.insert(to_string(s));
  }
  EXPECT_EQ(names.size(), std::size(kAllStates));
  EXPECT_EQ(parse_job_state("Queued"), std::nullopt);
  EXPECT_EQ(parse_job_state(""), std::nullopt);
}

TEST(JobState, TheListHasEveryStateInDeclarationOrder) {
  const auto all = all_job_states();
  EXPECT_TRUE(std::equal(all.begin(), all.end(), std::begin(kAllStates), std::end(kAllStates)));
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(all[i]), i) << "listings sort by this order";
  }
}

TEST(JobState, OnlyQueuedCreatingAndRunningAreLive) {
  for (JobState s : kAllStates) {
    const bool live = s == JobState::queued || s == JobState::creating || s == JobState::running;
    EXPECT_EQ(is_terminal(s), !live) << to_string(s);
  }
}

TEST(CreationTag, IsStableAndSeparatesKeysAndGenerations) {
  const std::string tag = creation_tag("nightly/build-42", 0);
  EXPECT_EQ(tag, creation_tag("nightly/build-42", 0));
  EXPECT_TRUE(tag.starts_with("orch-"));
  EXPECT_TRUE(tag.ends_with("-g0"));
  EXPECT_EQ(tag.size(), std::string_view{"orch-"}.size() + 32 + 3);
  // Pinned: tags are persisted and looked up after upgrades, so the derivation must not drift.
  EXPECT_EQ(tag, "orch-0f93151302446a09407cf06de3e4b1a0-g0");
  EXPECT_NE(tag, creation_tag("nightly/build-43", 0));
  EXPECT_NE(tag, creation_tag("nightly/build-42", 1));
  std::set<std::string> tags;
  for (int i = 0; i < 10'000; ++i) tags.insert(creation_tag("job-" + std::to_string(i), 0));
  EXPECT_EQ(tags.size(), 10'000u);
}

}  // namespace
}  // namespace devin_orch::core

namespace devin_orch {
namespace {

TEST(Errc, IsAnErrorCodeWithReadableMessages) {
  const boost::system::error_code ec = errc::timeout;
  EXPECT_EQ(ec.category().name(), std::string{"devin_orch"});
  EXPECT_EQ(ec.message(), "timed out after the request was sent");
  EXPECT_TRUE(ec.failed());
  EXPECT_FALSE(boost::system::error_code{errc::ok}.failed());
  EXPECT_EQ(make_error_code(errc::conflict).message(), "conflict");
  EXPECT_EQ(boost::system::error_code(999, orch_category()).message(), "unknown devin_orch error");
  const result<int> failed = make_error_code(errc::not_found);
  EXPECT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error(), errc::not_found);
}

}  // namespace
}  // namespace devin_orch
