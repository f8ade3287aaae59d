// libFuzzer target for the Devin JSON readers (api::parse_session, parse_session_page,
// parse_organization_page, error_detail): every body is mapped or refused, never a crash.
#include "devin_orch/api/json_mapping.hpp"

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  namespace api = devin_orch::api;

  (void)api::parse_session(body);
  (void)api::parse_session_page(body);
  (void)api::parse_organization_page(body);

  // The detail goes into logs and the database: bounded and free of control characters.
  const std::string detail = api::error_detail(body);
  DEVIN_ORCH_FUZZ_CHECK(detail.size() <= 500, "error_detail longer than its 500-byte cap");
  for (const char ch : detail) {
    const auto c = static_cast<unsigned char>(ch);
    DEVIN_ORCH_FUZZ_CHECK(c >= 0x20 && c != 0x7F, "error_detail kept a control character");
  }
  return 0;
}
