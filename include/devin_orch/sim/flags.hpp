// devin-sim's command line: a hand-written parser over the World and Server settings, and the
// --help text that documents every flag with its default.
#pragma once

#include "devin_orch/sim/server.hpp"
#include "devin_orch/sim/world.hpp"

#include <optional>
#include <string>
#include <vector>

namespace devin_orch::sim {

struct Options {
  WorldConfig world{};
  ServerConfig server{};
  std::string port_file;  // written atomically (tmp + rename) once listening; empty: none
  bool help = false;
};

struct ParsedFlags {
  std::optional<Options> options;  // set on success
  std::string error;               // set on failure: what was wrong, for stderr
};

// `args` excludes the program name.
ParsedFlags parse_flags(const std::vector<std::string>& args);

std::string usage();

}  // namespace devin_orch::sim
