// Job definitions from YAML files: a top-level list (or a map with a `jobs:` list) of jobs,
// each with a unique `key` and a `prompt`. Invalid jobs are reported with file, line, column,
// field and reason and skipped; valid ones are returned.
#pragma once

#include "devin_orch/app/diagnostic.hpp"
#include "devin_orch/core/job.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace devin_orch::app {

struct JobFileLimits {
  std::size_t max_file_bytes = 16U << 20U;
  std::size_t max_prompt_bytes = 64U << 10U;
  std::size_t max_jobs = 100'000;
  int max_depth = 32;
  // A parsed node costs ~500 bytes in yaml-cpp: this bounds a file's parse to under 1 GB.
  std::size_t max_nodes = 1'500'000;
};

// One entry per invalid job, describing its first problem. A job repeating an earlier key has
// no key here: the key belongs to the earlier definition, which wins.
struct InvalidJob {
  std::optional<std::string> key;  // when the job had a usable key
  Diagnostic diagnostic;
};

struct JobFileLoad {
  std::vector<core::JobDefinition> jobs;
  std::vector<InvalidJob> invalid;
  std::optional<Diagnostic> fatal;  // the file as a whole is unusable (unreadable, bad YAML)
};

JobFileLoad load_job_file(const std::string& path, const JobFileLimits& limits = {});

// Same, from text already in memory (`name` is used in diagnostics).
JobFileLoad parse_job_text(const std::string& text, const std::string& name,
                           const JobFileLimits& limits = {});

}  // namespace devin_orch::app
