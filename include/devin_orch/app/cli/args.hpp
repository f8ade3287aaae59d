// The CLI's one argument parser: each command declares its options in a table and gets the
// parsed values back. `--flag value`, `--flag=value`, a short alias (`-c`), `--` ends options.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devin_orch::app {

struct OptionSpec {
  std::string_view name;  // "--config"
  bool takes_value = false;
  bool repeatable = false;       // may be given more than once (all() collects them)
  std::string_view short_name;  // "-c", or empty
};

class ParsedArgs {
 public:
  bool help = false;                    // --help or -h, accepted by every command
  std::vector<std::string> positional;  // arguments that are not options, in order

  bool has(std::string_view name) const;
  // The option's value (the last one for a repeatable option).
  std::optional<std::string> value(std::string_view name) const;
  std::vector<std::string> all(std::string_view name) const;

 private:
  friend std::optional<std::string> parse_args(const std::vector<std::string>&,
                                               std::span<const OptionSpec>, ParsedArgs&);
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::set<std::string, std::less<>> switches_;
};

// Parses `args` against `options` into `out`. Returns why it is bad usage, naming the option:
// unknown option, a missing value, a value given to a switch, a repeated option.
std::optional<std::string> parse_args(const std::vector<std::string>& args,
                                      std::span<const OptionSpec> options, ParsedArgs& out);

}  // namespace devin_orch::app
