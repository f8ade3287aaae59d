// libFuzzer target for the job-file parser (app::parse_job_text): any text must yield jobs,
// located diagnostics or a fatal diagnostic, never a crash, accepted keys stay unique, and
// replaying recorded events gives what parsing again gives.
#include "devin_orch/app/jobs/job_file.hpp"
#include "devin_orch/core/job_validation.hpp"

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // Lower caps than production so that the caps themselves are reached by small inputs.
  const devin_orch::app::JobFileLimits limits{
      .max_file_bytes = 64U << 10U,
      .max_jobs = 64,
      .max_depth = 16,
      .max_nodes = 20'000,
  };
  const auto load = devin_orch::app::parse_job_text(text, "fuzz.yaml", limits);
  // Jobs built from the screening parse's recorded events, or from a second parse when the
  // recording does not fit its budget (here: none, or one that runs out part way), are the same.
  for (const std::size_t budget : {std::size_t{0}, size / 2}) {
    auto reparsing = limits;
    reparsing.max_replay_bytes = budget;
    DEVIN_ORCH_FUZZ_CHECK(devin_orch::app::parse_job_text(text, "fuzz.yaml", reparsing) == load,
                          "replayed events and a second parse disagree");
  }

  std::set<std::string> keys;
  for (const auto& job : load.jobs) {
    DEVIN_ORCH_FUZZ_CHECK(!job.key.empty(), "an accepted job has an empty key");
    DEVIN_ORCH_FUZZ_CHECK(keys.insert(job.key).second, "two accepted jobs share a key");
    DEVIN_ORCH_FUZZ_CHECK(!devin_orch::core::validate(job),
                          "an accepted job breaks one of core's rules");
  }
  DEVIN_ORCH_FUZZ_CHECK(load.jobs.size() <= limits.max_jobs, "more jobs than max_jobs");
  for (const auto& invalid : load.invalid) {
    DEVIN_ORCH_FUZZ_CHECK(invalid.diagnostic.file == "fuzz.yaml",
                          "a diagnostic names another file");
  }
  return 0;
}
