// Plain-text tables for the CLI: columns separated by two spaces, the last one not padded.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace devin_orch::app {

// `table` is rows of cells; the first row is usually the header. Must not be empty.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& table);

}  // namespace devin_orch::app
