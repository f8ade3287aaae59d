// devin-sim entry point: flags, the World, the server, the port file and the ready line.
#include "devin_orch/sim/flags.hpp"
#include "devin_orch/sim/server.hpp"
#include "devin_orch/sim/world.hpp"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace {

// Readers poll the file: they must never see it half-written, hence tmp + rename.
bool write_port_file(const std::string& path, unsigned short port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << port << '\n';
    out.flush();
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace devin_orch::sim;
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_flags(args);
  if (!parsed.options) {
    std::cerr << "devin-sim: " << parsed.error << "\n(see devin-sim --help)\n";
    return 2;
  }
  auto& options = *parsed.options;
  if (options.help) {
    std::cout << usage();
    return 0;
  }
  try {
    options.server.handle_signals = true;
    World world{options.world};
    Server server{world, options.server};
    if (!options.port_file.empty() && !write_port_file(options.port_file, server.port())) {
      std::cerr << "devin-sim: cannot write port file " << options.port_file << '\n';
      return 1;
    }
    const std::string host = options.server.host.find(':') != std::string::npos
                                 ? "[" + options.server.host + "]"
                                 : options.server.host;
    std::cout << "devin-sim listening on " << (server.tls() ? "https" : "http") << "://" << host
              << ':' << server.port() << std::endl;
    server.run();
  } catch (const std::exception& e) {
    std::cerr << "devin-sim: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
