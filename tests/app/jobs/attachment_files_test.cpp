// A job's attachments as job files name them: relative paths resolved against the file's
// directory, and each file checked (exists, regular, within the size limit) with the job's
// located diagnostic; and reading a file's bytes for the upload.
#include "devin_orch/app/jobs/attachment_files.hpp"
#include "devin_orch/app/jobs/job_file.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

std::string only_problem(const JobFileLoad& load) {
  EXPECT_FALSE(load.fatal.has_value());
  EXPECT_TRUE(load.jobs.empty());
  if (load.invalid.size() != 1) {
    return "expected one invalid job, got " + std::to_string(load.invalid.size());
  }
  return load.invalid[0].diagnostic.to_string();
}

TEST(JobFileAttachments, RelativePathsResolveAgainstTheJobFilesDirectory) {
  testing::TempDir dir;
  ::mkdir(dir.file("files").c_str(), 0755);
  testing::write_file(dir.file("files/a.txt"), "alpha");
  testing::write_file(dir.file("b.log"), "beta");
  testing::write_file(dir.file("jobs.yaml"),
                      "- key: k1\n"
                      "  prompt: p\n"
                      "  attachments: [files/a.txt, ./files/../b.log, " + dir.file("b.log") +
                          "x]\n");
  testing::write_file(dir.file("b.logx"), "absolute");
  const JobFileLoad load = load_job_file(dir.file("jobs.yaml"));
  ASSERT_FALSE(load.fatal.has_value());
  ASSERT_TRUE(load.invalid.empty()) << load.invalid[0].diagnostic.to_string();
  ASSERT_EQ(load.jobs.size(), 1U);
  EXPECT_EQ(load.jobs[0].spec.attachments,
            (std::vector<std::string>{dir.file("files/a.txt"), dir.file("b.log"),
                                      dir.file("b.logx")}));
}

TEST(JobFileAttachments, AFileThatCannotBeUploadedMakesTheJobInvalidWhereItIsNamed) {
  testing::TempDir dir;
  testing::write_file(dir.file("ok.txt"), "fine");
  testing::write_file(dir.file("big.bin"), std::string(65, 'x'));
  ::mkdir(dir.file("folder").c_str(), 0755);
  ::mkfifo(dir.file("pipe").c_str(), 0644);
  const JobFileLimits limits{.max_attachment_bytes = 64};
  const auto load = [&](const std::string& list) {
    testing::write_file(dir.file("jobs.yaml"),
                        "- key: k1\n"            // 1
                        "  prompt: p\n"          // 2
                        "  attachments:\n"       // 3
                        "    - ok.txt\n"         // 4
                        "    - " + list + "\n");  // 5
    return load_job_file(dir.file("jobs.yaml"), limits);
  };
  const std::string at = dir.file("jobs.yaml") + ":5:7: jobs[0].attachments[1]: ";
  EXPECT_EQ(only_problem(load("missing.txt")), at + dir.file("missing.txt") + ": no such file");
  EXPECT_EQ(only_problem(load("big.bin")),
            at + dir.file("big.bin") +
                ": is 65 bytes; the limit (attachments.max_bytes) is 64");
  EXPECT_EQ(only_problem(load("folder")),
            at + dir.file("folder") + ": is a directory, not a file");
  EXPECT_EQ(only_problem(load("pipe")), at + dir.file("pipe") + ": is not a regular file");
  // Core's rules come first, with the same location.
  EXPECT_EQ(only_problem(load("ok.txt")), at + "repeats attachments[0]");
  // The limit itself is allowed.
  testing::write_file(dir.file("edge.bin"), std::string(64, 'x'));
  const auto edge = load("edge.bin");
  EXPECT_EQ(edge.jobs.size(), 1U);
}

TEST(JobFileAttachments, AListOfStringsOnly) {
  const JobFileLoad load =
      parse_job_text("- key: k1\n  prompt: p\n  attachments: a.txt\n", "jobs.yaml");
  EXPECT_EQ(only_problem(load),
            "jobs.yaml:3:16: jobs[0].attachments: expected a list of strings, got 'a.txt'");
}

TEST(AttachmentFiles, ReadGivesTheNameAndBytesOrWhyNot) {
  testing::TempDir dir;
  const std::string bytes{"line one\n\0binary\xff", 17};
  testing::write_file(dir.file("report.txt"), bytes);
  std::string reason;
  const auto file = read_attachment(dir.file("report.txt"), 1024, &reason);
  ASSERT_TRUE(file) << reason;
  EXPECT_EQ(file->name, "report.txt");
  EXPECT_EQ(file->bytes, bytes);

  EXPECT_FALSE(read_attachment(dir.file("report.txt"), 16, &reason));
  EXPECT_EQ(reason, dir.file("report.txt") +
                        ": is 17 bytes; the limit (attachments.max_bytes) is 16");
  EXPECT_FALSE(read_attachment(dir.file("gone.txt"), 1024, &reason));
  EXPECT_EQ(reason, dir.file("gone.txt") + ": no such file");
  EXPECT_FALSE(read_attachment(dir.path(), 1024, &reason));
  EXPECT_EQ(reason, dir.path() + ": is a directory, not a file");
}

TEST(AttachmentFiles, CheckNamesTheFirstUnusableFile) {
  testing::TempDir dir;
  testing::write_file(dir.file("a"), "a");
  core::JobSpec spec{.prompt = "p"};
  spec.attachments = {dir.file("a"), dir.file("b")};
  const auto problem = check_attachment_files(spec, 10);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->field, "attachments[1]");
  EXPECT_EQ(problem->reason, dir.file("b") + ": no such file");
  spec.attachments.pop_back();
  EXPECT_EQ(check_attachment_files(spec, 10), std::nullopt);
}

}  // namespace
}  // namespace devin_orch::app
