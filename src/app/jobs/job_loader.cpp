// Job files -> store, with every diagnostic logged as "file:line:column: field: reason". Jobs
// are stored in chunks as the file is read, so loading holds a chunk, not the whole file.
#include "devin_orch/app/jobs/job_loader.hpp"

#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/app/logging.hpp"
#include "devin_orch/core/job_diff.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace devin_orch::app {
namespace {

// One transaction (one fsync) per chunk: a chunk of definitions is ~230 KB, and a file at the
// 100,000-job limit takes 391 fsyncs.
constexpr std::size_t kJobsPerTransaction = 256;

// A report names this many keys of a group, then how many more there are.
constexpr std::size_t kKeysNamed = 5;

struct FileCounts {
  int jobs = 0;
  int inserted = 0;
  int mended = 0;
  int invalid = 0;
  bool store_failed = false;
};

// The jobs of one file whose definition differs from the stored one, grouped by the fields
// that differ, so a file edited in one place reports one line rather than one per job.
class ChangedJobs {
 public:
  void add(std::string fields, std::string key) {
    for (auto& [known, keys] : groups_) {
      if (known == fields) {
        keys.push_back(std::move(key));
        return;
      }
    }
    groups_.emplace_back(std::move(fields), std::vector<std::string>{std::move(key)});
  }

  void report(const std::string& file) const {
    constexpr std::string_view kWhy = "a key is a job's identity: use a new key for a new job";
    for (const auto& [fields, keys] : groups_) {
      const std::string where = fields.empty() ? "" : " in " + fields;
      if (keys.size() == 1) {
        spdlog::warn("{}: job '{}' differs from its stored definition{}; the stored one is kept "
                     "({})",
                     file, keys.front(), where, kWhy);
        continue;
      }
      std::string named;
      for (std::size_t i = 0; i < keys.size() && i < kKeysNamed; ++i) {
        named += (i == 0 ? "'" : ", '") + keys[i] + "'";
      }
      if (keys.size() > kKeysNamed) {
        named += " and " + std::to_string(keys.size() - kKeysNamed) + " more";
      }
      spdlog::warn("{}: {} jobs differ from their stored definitions{}; the stored ones are kept "
                   "({}): {}",
                   file, keys.size(), where, kWhy, named);
    }
  }

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> groups_;
};

// The fields in which `offered` differs from the job stored under its key ("" if unknown).
std::string differing_fields(store::JobIntake& store, const core::JobDefinition& offered) {
  const auto stored = store.find(offered.key);
  if (!stored || !*stored) return {};
  return core::join_fields(core::differing_fields((*stored)->definition, offered));
}

}  // namespace

LoadReport load_job_files_into(store::JobIntake& store, const std::vector<std::string>& files,
                               core::TimePoint now, const JobApiCheck& api_check,
                               std::int64_t max_attachment_bytes) {
  LoadReport report;
  std::vector<core::JobDefinition> chunk;
  for (const auto& file : files) {
    const std::string source = "file:" + file;
    FileCounts counts;
    ChangedJobs changed;
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
            changed.add(differing_fields(store, chunk[i]), chunk[i].key);
            break;
          case store::AddResult::mended:
            ++counts.mended;
            log_event(spdlog::level::info,
                      {.event = "job_mended", .key = chunk[i].key, .state = "queued"},
                      "{}: job '{}' was invalid; this definition replaces it and it is queued "
                      "again",
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
    if (const auto fatal = read_job_file(
            file, sink, {.api_check = api_check, .max_attachment_bytes = max_attachment_bytes})) {
      log_event(spdlog::level::err, {.event = "job_file_unusable"}, "{}", fatal->to_string());
      ++report.fatal_errors;
      continue;
    }
    store_chunk();
    changed.report(file);
    report.inserted += counts.inserted;
    report.mended += counts.mended;
    report.invalid += counts.invalid;
    if (counts.store_failed) {
      ++report.fatal_errors;
      continue;
    }
    log_event(spdlog::level::info, {.event = "job_file_loaded"},
              "{}: {} job(s), {} new, {} mended, {} invalid", file, counts.jobs, counts.inserted,
              counts.mended, counts.invalid);
  }
  return report;
}

}  // namespace devin_orch::app
