// The JSON form of a JobSpec as stored in jobs.spec (and written by queue producers).
// Field names are the API's; encoding is canonical so equal specs encode to equal text.
#pragma once

#include "devin_orch/core/error.hpp"
#include "devin_orch/core/job.hpp"

#include <string>
#include <string_view>

namespace devin_orch::store {

std::string encode_spec(const core::JobSpec& spec);

// On failure returns invalid_argument and, if `reason` is given, a readable reason naming the
// field (e.g. "field 'tags': expected an array of strings").
result<core::JobSpec> decode_spec(std::string_view json, std::string* reason = nullptr);

}  // namespace devin_orch::store
