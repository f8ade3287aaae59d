// json_text (json_text.hpp): Boost.JSON's own serializer for strings, which gets escaping right,
// and std::to_chars's shortest round-trip form for doubles.
#include "devin_orch/app/formats/json_text.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cmath>

namespace devin_orch::app {
namespace {

void append_double(std::string& out, double number) {
  if (!std::isfinite(number)) {
    out += "null";
    return;
  }
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, number);
  if (ec != std::errc{}) {
    out += boost::json::serialize(boost::json::value(number));  // cannot happen: 32 is enough
    return;
  }
  out.append(buffer, end);
}

void append(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::double_: append_double(out, value.get_double()); return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : value.get_array()) {
        if (!first) out += ',';
        first = false;
        append(out, element);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::string_view{key});
        out += ':';
        append(out, member);
      }
      out += '}';
      return;
    }
    default: out += boost::json::serialize(value); return;  // null, bool, integers, strings
  }
}

}  // namespace

std::string json_text(const boost::json::value& value) {
  std::string out;
  append(out, value);
  return out;
}

}  // namespace devin_orch::app
