// Job files into a real store: chunked transactions, reloads, changed definitions (and what
// their report names), invalid jobs mended by a corrected file, and files that are unusable as a
// whole.
#include "devin_orch/app/jobs/job_loader.hpp"
#include "devin_orch/store/store.hpp"

#include "support/process.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
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

// The loader's log lines while it lives, for the tests of what a reload reports.
class CapturedLog {
 public:
  CapturedLog() {
    auto logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(text_));
    logger->set_pattern("[%l] %v");
    spdlog::set_default_logger(std::move(logger));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::vector<std::string> lines(std::string_view level) const {
    std::vector<std::string> out;
    std::istringstream in{text_.str()};
    const std::string prefix = "[" + std::string{level} + "] ";
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with(prefix)) out.push_back(line.substr(prefix.size()));
    }
    return out;
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_ = spdlog::default_logger();
};

// Issue 24: a reload used to log one identical line per changed job, at every reload, without
// saying what changed. Now one line per set of differing fields, naming them and the keys.
TEST_F(JobLoaderTest, AChangedDefinitionIsReportedWithTheFieldsThatDiffer) {
  const auto file = dir_.file("jobs.yaml");
  testing::write_file(file, jobs_yaml(8) + "- key: tagged\n  prompt: p\n");
  ASSERT_EQ(load_job_files_into(*store_, {file}, core::wall_now()).inserted, 9);
  testing::write_file(file, jobs_yaml(7, "other") + "- key: job-7\n  prompt: p\n" +
                                "- key: tagged\n  prompt: p\n  tags: [ci]\n  priority: 2\n");
  const CapturedLog log;
  const auto report = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(report.changed, 8);
  EXPECT_EQ(report.unchanged, 1);
  EXPECT_THAT(
      log.lines("warning"),
      ::testing::ElementsAre(
          file + ": 7 jobs differ from their stored definitions in prompt; the stored ones are "
                 "kept (a key is a job's identity: use a new key for a new job): 'job-0', "
                 "'job-1', 'job-2', 'job-3', 'job-4' and 2 more",
          file + ": job 'tagged' differs from its stored definition in priority, tags; the "
                 "stored one is kept (a key is a job's identity: use a new key for a new job)"));
}

// Issue 24: a typo made a job `invalid` for good; the corrected file now mends it on reload,
// and only it: the other jobs of the file are untouched.
TEST_F(JobLoaderTest, AReloadOfTheCorrectedFileMendsAnInvalidJob) {
  const auto file = dir_.file("jobs.yaml");
  testing::write_file(file,
                      "- key: good\n  prompt: p\n"
                      "- key: typo\n  promt: fix the docs\n  tags: [docs]\n");
  const auto first = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(first.invalid, 1);
  ASSERT_EQ(store_->find("typo").value()->state, core::JobState::invalid);

  testing::write_file(file,
                      "- key: good\n  prompt: p\n"
                      "- key: typo\n  prompt: fix the docs\n  tags: [docs]\n");
  const CapturedLog log;
  const auto reload = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(reload.mended, 1);
  EXPECT_EQ(reload.unchanged, 1);
  EXPECT_EQ(reload.changed, 0);
  EXPECT_EQ(reload.invalid, 0);
  const auto typo = store_->find("typo").value();
  ASSERT_TRUE(typo.has_value());
  EXPECT_EQ(typo->state, core::JobState::queued);
  EXPECT_EQ(typo->definition.spec.prompt, "fix the docs");
  EXPECT_EQ(typo->definition.spec.tags, std::vector<std::string>{"docs"});
  const auto history = store_->history(typo->id).value();
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history[1].event, "mended");
  EXPECT_EQ(history[1].message, "definition replaced by file:" + file + ": prompt, tags differ");
  EXPECT_THAT(log.lines("info"),
              ::testing::Contains(file + ": job 'typo' was invalid; this definition replaces it "
                                         "and it is queued again"));
  EXPECT_THAT(log.lines("warning"), ::testing::IsEmpty());

  const auto again = load_job_files_into(*store_, {file}, core::wall_now());
  EXPECT_EQ(again.mended, 0);
  EXPECT_EQ(again.unchanged, 2);
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
