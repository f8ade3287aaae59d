// Contract: the URLs of a job's uploaded attachments, stored before its create intent so that
// a retry or a restart never uploads a file again; on every backend.
#include "contract.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace devin_orch::store::contract {
namespace {

using Urls = std::map<std::string, std::string>;

class AttachmentsContract : public StoreContract {};

TEST_P(AttachmentsContract, UrlsAreKeptPerJobAndPathAndSurviveAReconnect) {
  ASSERT_TRUE(intake().add_job(job("with-files"), "t", at(1)));
  ASSERT_TRUE(intake().add_job(job("other"), "t", at(1)));
  const auto id = id_of("with-files");
  EXPECT_EQ(queue().attachment_urls(id).value(), Urls{});
  ASSERT_TRUE(queue().record_attachment_url(id, "/srv/a.txt", "https://x/a", at(2)));
  ASSERT_TRUE(queue().record_attachment_url(id, "/srv/b.png", "https://x/b", at(3)));
  EXPECT_EQ(queue().attachment_urls(id).value(),
            (Urls{{"/srv/a.txt", "https://x/a"}, {"/srv/b.png", "https://x/b"}}));
  EXPECT_EQ(queue().attachment_urls(id_of("other")).value(), Urls{});
  // As a restarted daemon reads them.
  auto again = connect();
  EXPECT_EQ(again->attachment_urls(id).value().size(), 2U);
}

TEST_P(AttachmentsContract, ASecondRecordForAPathKeepsTheFirstUrl) {
  ASSERT_TRUE(intake().add_job(job("twice"), "t", at(1)));
  const auto id = id_of("twice");
  ASSERT_TRUE(queue().record_attachment_url(id, "/srv/a.txt", "https://x/first", at(2)));
  EXPECT_TRUE(queue().record_attachment_url(id, "/srv/a.txt", "https://x/second", at(3)));
  EXPECT_EQ(queue().attachment_urls(id).value(), (Urls{{"/srv/a.txt", "https://x/first"}}));
}

TEST_P(AttachmentsContract, AnUnknownJobIsNotFound) {
  const auto recorded = queue().record_attachment_url(4242, "/srv/a.txt", "https://x/a", at(1));
  ASSERT_FALSE(recorded);
  EXPECT_EQ(recorded.error(), errc::not_found);
}

TEST_P(AttachmentsContract, UrlsOutliveAnOperatorRetryAndGoWithTheJob) {
  ASSERT_TRUE(intake().add_job(job("kept"), "t", at(1)));
  const auto id = id_of("kept");
  ASSERT_TRUE(queue().record_attachment_url(id, "/srv/a.txt", "https://x/a", at(2)));
  ASSERT_TRUE(queue().finish(id, core::JobState::dead, "rejected", at(3)));
  ASSERT_TRUE(operators().retry("kept", at(4)));
  EXPECT_EQ(queue().attachment_urls(id).value().size(), 1U) << "a retry uploads nothing again";
  ASSERT_TRUE(queue().finish(id, core::JobState::dead, "rejected", at(5)));
  ASSERT_EQ(operators().delete_job("kept", at(6)).value(), DeleteResult::deleted);
  EXPECT_EQ(queue().attachment_urls(id).value(), Urls{});
}

DEVIN_ORCH_STORE_CONTRACT(AttachmentsContract);

}  // namespace
}  // namespace devin_orch::store::contract
