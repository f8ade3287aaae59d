// Job files into a real store: chunked transactions, reloads, changed definitions and files
// that are unusable as a whole.
#include "devin_orch/app/jobs/job_loader.hpp"
#include "devin_orch/store/store.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devin_orch::app {
namespace {

std::string jobs_yaml(int count, const std::string& prompt = "p") {
  std::string text;
  for (int i = 0; i < count; ++i) {
    text += "- key: job-" + std::to_string(i) + "\n  prompt: " + prompt + "\n";
  }
  return text;
}

class JobLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::open_store(store::StoreOptions{.path = dir_.file("orch.db")});
    ASSERT_TRUE(opened.has_value());
    store_ = std::move(*opened);
  }

  std::int64_t stored_jobs() {
    const auto all = store_->all_jobs();
    return all ? static_cast<std::int64_t>(all->size()) : -1;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(JobLoaderTest, AFileLargerThanOneChunkIsStoredWholeAndOnce) {
  const auto file = dir_.file("jobs.yaml");
  testing::write_file(file, jobs_yaml(700) + "- key: broken\n");
  const auto first = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(first.inserted, 700);
  EXPECT_EQ(first.invalid, 1);
  EXPECT_EQ(first.fatal_errors, 0);
  EXPECT_EQ(stored_jobs(), 701) << "the invalid job is recorded too";
  const auto last = store_->find("job-699");
  ASSERT_TRUE(last.has_value() && last->has_value());
  EXPECT_EQ((*last)->definition.spec.prompt, "p");

  const auto again = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(again.inserted, 0);
  EXPECT_EQ(again.unchanged, 700);
  EXPECT_EQ(stored_jobs(), 701);
}

TEST_F(JobLoaderTest, AChangedDefinitionIsReportedAndTheStoredOneKept) {
  const auto file = dir_.file("jobs.yaml");
  testing::write_file(file, jobs_yaml(3));
  ASSERT_EQ(load_job_files_into(*store_, {file}, core::wall_now()).inserted, 3);
  testing::write_file(file, jobs_yaml(3, "other"));
  const auto report = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(report.changed, 3);
  EXPECT_EQ(report.inserted, 0);
  const auto job = store_->find("job-1");
  ASSERT_TRUE(job.has_value() && job->has_value());
  EXPECT_EQ((*job)->definition.spec.prompt, "p");
}

TEST_F(JobLoaderTest, AFileUnusableAsAWholeStoresNothingAndTheNextFileStillLoads) {
  const auto bad = dir_.file("bad.yaml");
  const auto good = dir_.file("good.yaml");
  // The problem comes after 300 good jobs, past the first chunk.
  testing::write_file(bad, "jobs:\n" + [] {
    std::string text;
    for (int i = 0; i < 300; ++i) {
      text += "  - {key: bad-" + std::to_string(i) + ", prompt: p}\n";
    }
    return text;
  }() + "extra: 1\n");
  testing::write_file(good, jobs_yaml(2));
  const auto report =
      load_job_files_into(*store_, {bad, dir_.file("missing.yaml"), good}, core::wall_now());
  EXPECT_EQ(report.fatal_errors, 2);
  EXPECT_EQ(report.inserted, 2);
  EXPECT_EQ(stored_jobs(), 2);
}

// The reproduction, through what the daemon runs at start and on SIGHUP.
TEST_F(JobLoaderTest, AnUnterminatedQuotedScalarStoresNothing) {
  const auto file = dir_.file("jobs.yaml");
  for (const std::string quote : {"\"", "'"}) {
    testing::write_file(file,
                        "- key: m1\n  prompt: " + quote + "unterminated\n- key: m2\n  prompt: second\n");
    const auto report = load_job_files_into(*store_, {file}, core::wall_now());
    EXPECT_EQ(report.fatal_errors, 1) << quote;
    EXPECT_EQ(report.inserted, 0) << quote;
    EXPECT_EQ(report.invalid, 0) << quote;
    EXPECT_EQ(stored_jobs(), 0) << quote;
  }
}

// As README.md and docs/queue.md say: the valid jobs are stored, each invalid one with a usable
// key is recorded `invalid` with its located reason.
TEST_F(JobLoaderTest, AFileThatParsesStoresItsValidJobsAndRecordsTheInvalidOnes) {
  const auto file = dir_.file("jobs.yaml");
  testing::write_file(file,
                      "- key: good-1\n  prompt: p\n"
                      "- key: typo\n  promt: p\n"
                      "- key: good-2\n  prompt: p\n");
  const auto report = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(report.fatal_errors, 0);
  EXPECT_EQ(report.inserted, 2);
  EXPECT_EQ(report.invalid, 1);
  EXPECT_EQ(stored_jobs(), 3);
  const auto typo = store_->find("typo");
  ASSERT_TRUE(typo.has_value() && typo->has_value());
  EXPECT_EQ((*typo)->state, core::JobState::invalid);
  EXPECT_EQ((*typo)->last_error,
            file + ":4:3: jobs[1].promt: unknown field 'promt' (did you mean 'prompt'?)");
}

}  // namespace
}  // namespace devin_orch::app
