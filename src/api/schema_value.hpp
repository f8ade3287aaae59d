// How a job's structured_output_schema goes into a create body, the same for v1 and v3: the
// parsed object, or, should a stored definition hold something that is not a JSON object, the
// text itself, so that the API rejects it with a readable 422 instead of the daemon dropping it.
#pragma once

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <string>

namespace devin_orch::api::detail {

inline boost::json::value structured_output_schema_value(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value schema = boost::json::parse(text, ec);
  if (!ec && schema.is_object()) return schema;
  return boost::json::value(text);
}

}  // namespace devin_orch::api::detail
