// Job files -> store, with every diagnostic logged as "file:line:column: field: reason".
#include "devin_orch/app/job_loader.hpp"

#include "devin_orch/app/job_file.hpp"

#include <spdlog/spdlog.h>

namespace devin_orch::app {

LoadReport load_job_files_into(store::JobStore& store, const std::vector<std::string>& files,
                               core::TimePoint now) {
  LoadReport report;
  for (const auto& file : files) {
    const auto loaded = load_job_file(file);
    if (loaded.fatal) {
      spdlog::error("{}", loaded.fatal->to_string());
      ++report.fatal_errors;
      continue;
    }
    const std::string source = "file:" + file;
    for (const auto& invalid : loaded.invalid) {
      spdlog::error("invalid job skipped: {}", invalid.diagnostic.to_string());
      ++report.invalid;
      if (invalid.key) {
        (void)store.add_invalid(*invalid.key, source, invalid.diagnostic.to_string(), now);
      }
    }
    // One transaction for the whole file: one fsync instead of one per job.
    const auto added_all = store.add_jobs(loaded.jobs, source, now);
    if (!added_all) {
      spdlog::error("{}: cannot store its jobs: {}", file, added_all.error().message());
      ++report.fatal_errors;
      continue;
    }
    for (std::size_t i = 0; i < loaded.jobs.size(); ++i) {
      const auto& job = loaded.jobs[i];
      switch ((*added_all)[i]) {
        case store::AddResult::inserted: ++report.inserted; break;
        case store::AddResult::unchanged: ++report.unchanged; break;
        case store::AddResult::changed:
          ++report.changed;
          spdlog::warn("{}: job '{}' differs from the stored definition; the stored one is "
                       "kept (a key is a job's identity: use a new key for a new job)",
                       file, job.key);
          break;
      }
    }
    spdlog::info("{}: {} job(s), {} new, {} invalid", file, loaded.jobs.size() + loaded.invalid.size(),
                 report.inserted, loaded.invalid.size());
  }
  return report;
}

}  // namespace devin_orch::app
