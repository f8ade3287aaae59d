// JSON as the CLI prints it: Boost.JSON's serializer writes the double 0.4 as `4E-1`, valid
// JSON but not what a person or a shell script expects. Numbers here come out as ordinary
// decimals (0.4, 2.5, 12), the shortest text that reads back as the same double.
#pragma once

#include <boost/json/value.hpp>

#include <string>

namespace devin_orch::app {

// One line, no spaces. A double that is not finite (which JSON cannot express) is null.
std::string json_text(const boost::json::value& value);

}  // namespace devin_orch::app
