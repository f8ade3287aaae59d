// The pieces of an HTTP request the dashboard reads, parsed without sockets: the path's
// percent-decoded segments, query strings and form bodies (application/x-www-form-urlencoded),
// cookies and the bearer token.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devin_orch::app::dashboard {

using Params = std::vector<std::pair<std::string, std::string>>;

// %XX decoded ('+' as a space when `plus_is_space`, as forms and query strings encode it);
// nullopt for a malformed escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
// "%2F" and friends: every byte but unreserved ones escaped (for building links to a key).
std::string percent_encode(std::string_view text);

// "/api/v1/jobs/a%2Fb" -> {"api", "v1", "jobs", "a/b"}; nullopt when a segment is malformed.
// A trailing slash adds nothing ("/jobs/" is "/jobs").
std::optional<std::vector<std::string>> path_segments(std::string_view path);

// "a=1&b=x+y" -> {{"a","1"},{"b","x y"}}, in order; nullopt when malformed.
std::optional<Params> parse_params(std::string_view text);
// The first value of `name`, and every value of it.
std::optional<std::string> param(const Params& params, std::string_view name);
std::vector<std::string> params_named(const Params& params, std::string_view name);

// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);
// The token of an "Authorization: Bearer TOKEN" header; nullopt when absent or another scheme.
std::optional<std::string> bearer_token(std::string_view header);

}  // namespace devin_orch::app::dashboard
