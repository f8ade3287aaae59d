// devin-orch entry point: parses the subcommand and hands over to the CLI.
#include "devin_orch/app/cli.hpp"

int main(int argc, char** argv) { return devin_orch::app::run_cli(argc, argv); }
