// Session secret resolution from the environment and from owner-only files.
#include "devin_orch/app/daemon/session_secrets.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

namespace devin_orch::app {
namespace {

constexpr std::size_t kMaxValueBytes = 65536;  // the API's limit for a secret's value

}  // namespace

std::optional<std::vector<api::SessionSecret>> resolve_session_secrets(
    const std::vector<core::SessionSecretRef>& refs, std::string* error) {
  std::vector<api::SessionSecret> secrets;
  for (const auto& ref : refs) {
    const std::string where = "session secret '" + ref.key + "'";
    std::string value;
    if (ref.source == core::SessionSecretRef::Source::env) {
      const char* text = std::getenv(ref.name.c_str());
      if (text == nullptr) {
        *error = where + ": environment variable " + ref.name + " is not set";
        return std::nullopt;
      }
      value = text;
    } else {
      struct stat info {};
      if (::stat(ref.name.c_str(), &info) != 0) {
        *error = where + ": cannot read " + ref.name + ": " + std::strerror(errno);
        return std::nullopt;
      }
      if ((info.st_mode & 077) != 0) {
        *error = where + ": " + ref.name + " is readable by group or others; chmod 600 it";
        return std::nullopt;
      }
      std::ifstream in{ref.name, std::ios::binary};
      std::ostringstream content;
      content << in.rdbuf();
      if (!in) {
        *error = where + ": cannot read " + ref.name;
        return std::nullopt;
      }
      value = content.str();
      while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    }
    if (value.empty() || value.size() > kMaxValueBytes) {
      *error = where + ": the value must be 1 to " + std::to_string(kMaxValueBytes) + " bytes";
      return std::nullopt;
    }
    secrets.push_back({.key = ref.key, .value = std::move(value), .sensitive = ref.sensitive});
  }
  return secrets;
}

}  // namespace devin_orch::app
