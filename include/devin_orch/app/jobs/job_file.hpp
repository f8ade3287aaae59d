// Job definitions from YAML files: a top-level list (or a map with a `jobs:` list) of jobs,
// each with a unique `key` and a `prompt`. Invalid jobs are reported with file, line, column,
// field and reason and skipped; valid ones are delivered one by one or returned together.
#pragma once

#include "devin_orch/app/formats/diagnostic.hpp"
#include "devin_orch/core/api_version.hpp"
#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::app {

// How much of a file is read at all. The limits on a job's fields are core's
// (core/job_validation.hpp), the same for every way a job comes in.
// The whole check of a job against the API its organisation's sessions are created through
// (api.organizations: app/config/job_api.hpp's validate_for_api).
using JobApiCheck = std::function<std::optional<core::FieldError>(const core::JobDefinition&)>;

struct JobFileLimits {
  std::size_t max_file_bytes = 16U << 20U;
  std::size_t max_jobs = 100'000;
  int max_depth = 32;
  // Bounds the screening parse (and one job's tree).
  std::size_t max_nodes = 1'500'000;
  // The screening parse's events are kept, up to this many bytes, and replayed to build the
  // jobs; a larger file (some 8,000 short jobs) is parsed a second time instead. 0: always.
  std::size_t max_replay_bytes = 2U << 20U;
  // The API the jobs will be created through: a job using a field that API lacks is invalid
  // (core::validate decides which, docs/api-v1.md lists them).
  core::ApiVersion api_version = core::ApiVersion::v3;
  // When set, decides instead of api_version, job by job (organisations on different APIs).
  JobApiCheck api_check;
  // Each attached file must be a readable regular file of at most this many bytes (config
  // attachments.max_bytes); relative paths resolve against the job file's directory.
  std::int64_t max_attachment_bytes = core::job_limits::default_max_attachment_bytes;
};

// One entry per invalid job, describing its first problem. A job repeating an earlier key has
// no key here: the key belongs to the earlier definition, which wins.
struct InvalidJob {
  std::optional<std::string> key;  // when the job had a usable key
  Diagnostic diagnostic;

  bool operator==(const InvalidJob&) const = default;
};

struct JobFileLoad {
  std::vector<core::JobDefinition> jobs;
  std::vector<InvalidJob> invalid;
  std::optional<Diagnostic> fatal;  // the file as a whole is unusable (unreadable, bad YAML)

  bool operator==(const JobFileLoad&) const = default;
};

// Where read_job_text hands a file's jobs, one at a time and in file order.
struct JobSink {
  std::function<void(core::JobDefinition&&)> job;
  std::function<void(InvalidJob&&)> invalid;
};

// Reads the jobs of `text` into `sink` while holding one job's tree at a time, whatever the
// file's size. Returns the problem that makes the file as a whole unusable; the sink has then
// received nothing (the whole text is screened, shape and job count included, first).
std::optional<Diagnostic> read_job_text(const std::string& text, const std::string& name,
                                        const JobSink& sink, const JobFileLimits& limits = {});
std::optional<Diagnostic> read_job_file(const std::string& path, const JobSink& sink,
                                        const JobFileLimits& limits = {});

// Collects everything read_job_text delivers (for validation and tests).
JobFileLoad load_job_file(const std::string& path, const JobFileLimits& limits = {});

// Same, from text already in memory (`name` is used in diagnostics).
JobFileLoad parse_job_text(const std::string& text, const std::string& name,
                           const JobFileLimits& limits = {});

}  // namespace devin_orch::app
