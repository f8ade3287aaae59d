// The build's stamp (cmake/build_stamp.cmake writes the version and commit at every build) and
// the compiler, as the preprocessor knows it.
#include "devin_orch/app/build_info.hpp"

#include "devin_orch/build_stamp.hpp"

#define DEVIN_ORCH_TEXT_(x) #x
#define DEVIN_ORCH_TEXT(x) DEVIN_ORCH_TEXT_(x)
#if defined(__clang__)
#define DEVIN_ORCH_COMPILER                                                             \
  "clang " DEVIN_ORCH_TEXT(__clang_major__) "." DEVIN_ORCH_TEXT(__clang_minor__) "." \
      DEVIN_ORCH_TEXT(__clang_patchlevel__)
#elif defined(__GNUC__)
#define DEVIN_ORCH_COMPILER                                                     \
  "gcc " DEVIN_ORCH_TEXT(__GNUC__) "." DEVIN_ORCH_TEXT(__GNUC_MINOR__) "." \
      DEVIN_ORCH_TEXT(__GNUC_PATCHLEVEL__)
#else
#define DEVIN_ORCH_COMPILER "unknown"
#endif

namespace devin_orch::app {

const BuildInfo& build_info() noexcept {
  static constexpr BuildInfo info{.version = DEVIN_ORCH_STAMP_VERSION,
                                  .git_commit = DEVIN_ORCH_STAMP_GIT_COMMIT,
                                  .compiler = DEVIN_ORCH_COMPILER};
  return info;
}

}  // namespace devin_orch::app
