// Which Devin API the daemon speaks: v3 (the Organization API) or the legacy v1 (apk_ keys).
// One fact shared by the config, the job validation and the API client.
#pragma once

#include <optional>
#include <string_view>

namespace devin_orch::core {

enum class ApiVersion { v1, v3 };

constexpr std::string_view to_string(ApiVersion version) noexcept {
  return version == ApiVersion::v1 ? "v1" : "v3";
}

constexpr std::optional<ApiVersion> parse_api_version(std::string_view text) noexcept {
  if (text == "v1") return ApiVersion::v1;
  if (text == "v3") return ApiVersion::v3;
  return std::nullopt;
}

}  // namespace devin_orch::core
