// What this binary was built from: its version, the git commit of its sources when the build
// knew it, and the compiler. Reported by `devin-orch version` and the devin_orch_build_info
// metric.
#pragma once

#include <string_view>

namespace devin_orch::app {

struct BuildInfo {
  std::string_view version;     // the project's version (CMakeLists.txt)
  std::string_view git_commit;  // full hash, "-dirty" when tracked files had changed; "unknown"
  std::string_view compiler;    // e.g. "gcc 12.2.0"
};

const BuildInfo& build_info() noexcept;

}  // namespace devin_orch::app
