// The CLI's argument parser (args.hpp): one table-driven parser for every command.
#include "devin_orch/app/cli/args.hpp"

#include <algorithm>

namespace devin_orch::app {

bool ParsedArgs::has(std::string_view name) const {
  return switches_.contains(name) || values_.contains(name);
}

std::optional<std::string> ParsedArgs::value(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::all(std::string_view name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::optional<std::string> parse_args(const std::vector<std::string>& args,
                                      std::span<const OptionSpec> options, ParsedArgs& out) {
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    // "-" alone is a value (stdin, by convention), and "--" lets a key start with "-".
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      out.positional.push_back(std::move(arg));
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const auto option = std::find_if(options.begin(), options.end(), [&](const OptionSpec& o) {
      return o.name == arg || (!o.short_name.empty() && o.short_name == arg);
    });
    if (option == options.end()) return "unknown option '" + arg + "'";
    const std::string name{option->name};
    if (!option->takes_value) {
      if (inline_value) return name + " takes no value";
      out.switches_.insert(name);
      continue;
    }
    std::string value;
    if (inline_value) {
      value = std::move(*inline_value);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return name + " needs a value";
    }
    auto& slot = out.values_[name];
    if (!slot.empty() && !option->repeatable) return name + " given more than once";
    slot.push_back(std::move(value));
  }
  return std::nullopt;
}

}  // namespace devin_orch::app
