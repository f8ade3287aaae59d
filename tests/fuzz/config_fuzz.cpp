// libFuzzer target for the configuration loader (app::load_config). It only reads from a path,
// so each input is written to one memfd reopened through /proc/self/fd: no disk, no cleanup.
#include "devin_orch/app/config/config.hpp"

#include "fuzz_check.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int config_fd() {
  static const int fd = [] {
    // Overrides from the environment would mask what the file says.
    ::unsetenv("DEVIN_ORCH_BASE_URL");
    ::unsetenv("DEVIN_ORCH_ORG_ID");
    ::unsetenv("DEVIN_ORCH_DATABASE");
    const int created = ::memfd_create("devin-orch-fuzz-config", MFD_CLOEXEC);
    if (created < 0) std::abort();
    return created;
  }();
  return fd;
}

bool write_all(int fd, const std::uint8_t* data, std::size_t size) {
  if (::ftruncate(fd, 0) != 0) return false;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace app = devin_orch::app;
  const int fd = config_fd();
  if (!write_all(fd, data, size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  const app::ConfigLoad load = app::load_config(path);
  DEVIN_ORCH_FUZZ_CHECK(load.config.has_value() == load.errors.empty(),
                        "config set although errors were reported, or neither");
  if (!load.config) return 0;

  // What render_config prints must load back to the same settings: operators copy it.
  const std::string rendered = app::render_config(*load.config);
  if (!write_all(fd, reinterpret_cast<const std::uint8_t*>(rendered.data()), rendered.size())) {
    std::abort();
  }
  const app::ConfigLoad again = app::load_config(path);
  if (!again.config) {
    std::fprintf(stderr, "rendered configuration:\n%s\nfirst error: %s\n", rendered.c_str(),
                 again.errors.empty() ? "" : again.errors.front().reason.c_str());
  }
  DEVIN_ORCH_FUZZ_CHECK(again.config.has_value(), "render_config output does not load back");
  DEVIN_ORCH_FUZZ_CHECK(app::render_config(*again.config) == rendered,
                        "render_config is not stable across a reload");
  return 0;
}
