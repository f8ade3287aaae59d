// Job files -> store, with every diagnostic logged as "file:line:column: field: reason". Jobs
// are stored in chunks as the file is read, so loading holds a chunk, not the whole file.
#include "devin_orch/app/jobs/job_loader.hpp"

#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/app/logging.hpp"

#include <spdlog/spdlog.h>

namespace devin_orch::app {
namespace {

// One transaction (one fsync) per chunk: a chunk of definitions is ~230 KB, and a file at the
// 100,000-job limit takes 391 fsyncs.
constexpr std::size_t kJobsPerTransaction = 256;

struct FileCounts {
  int jobs = 0;
  int inserted = 0;
  int invalid = 0;
  bool store_failed = false;
};

}  // namespace

LoadReport load_job_files_into(store::JobIntake& store, const std::vector<std::string>& files,
                               core::TimePoint now) {
  LoadReport report;
  std::vector<core::JobDefinition> chunk;
  for (const auto& file : files) {
    const std::string source = "file:" + file;
    FileCounts counts;
    chunk.clear();
    const auto store_chunk = [&] {
      if (chunk.empty() || counts.store_failed) return;
      const auto added = store.add_jobs(chunk, source, now);
      if (!added) {
        spdlog::error("{}: cannot store its jobs: {}", file, added.error().message());
        counts.store_failed = true;
        return;
      }
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        switch ((*added)[i]) {
          case store::AddResult::inserted: ++counts.inserted; break;
          case store::AddResult::unchanged: ++report.unchanged; break;
          case store::AddResult::changed:
            ++report.changed;
            spdlog::warn("{}: job '{}' differs from the stored definition; the stored one is "
                         "kept (a key is a job's identity: use a new key for a new job)",
                         file, chunk[i].key);
            break;
        }
      }
      chunk.clear();
    };
    const JobSink sink{
        .job =
            [&](core::JobDefinition&& job) {
              ++counts.jobs;
              if (counts.store_failed) return;  // reported once; the rest of the file waits
              chunk.push_back(std::move(job));
              if (chunk.size() >= kJobsPerTransaction) store_chunk();
            },
        .invalid =
            [&](InvalidJob&& invalid) {
              ++counts.jobs;
              ++counts.invalid;
              log_event(spdlog::level::err,
                        {.event = "job_invalid", .key = invalid.key.value_or(""),
                         .state = "invalid"},
                        "invalid job skipped: {}", invalid.diagnostic.to_string());
              if (invalid.key) {
                (void)store.add_invalid(*invalid.key, source, invalid.diagnostic.to_string(),
                                        now);
              }
            },
    };
    if (const auto fatal = read_job_file(file, sink)) {
      log_event(spdlog::level::err, {.event = "job_file_unusable"}, "{}", fatal->to_string());
      ++report.fatal_errors;
      continue;
    }
    store_chunk();
    report.inserted += counts.inserted;
    report.invalid += counts.invalid;
    if (counts.store_failed) {
      ++report.fatal_errors;
      continue;
    }
    log_event(spdlog::level::info, {.event = "job_file_loaded"},
              "{}: {} job(s), {} new, {} invalid", file, counts.jobs, counts.inserted,
              counts.invalid);
  }
  return report;
}

}  // namespace devin_orch::app
