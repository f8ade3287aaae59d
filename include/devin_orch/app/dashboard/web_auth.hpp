// Who may change the queue through the dashboard: the bearer token of dashboard.token_file
// (compared in constant time), the session cookie a browser gets for it at the login form, and
// the CSRF token its forms carry. Cookie and CSRF values are HMACs under a per-process secret,
// so neither reveals the token and both lapse when the daemon restarts.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace devin_orch::app::dashboard {

// Equal contents, in a time that does not depend on where they differ (nor, beyond hashing,
// on their lengths).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

class WebAuth {
 public:
  // `token`: nullopt when none is configured (every write refused). `secret`: random bytes
  // drawn once per process.
  WebAuth(std::optional<std::string> token, std::string secret);

  bool writes_enabled() const noexcept { return token_.has_value(); }
  bool token_matches(std::string_view candidate) const noexcept;

  // The session cookie's value for a browser that presented the token; empty without a token.
  const std::string& session_value() const noexcept { return session_; }
  bool session_matches(std::string_view cookie) const noexcept;

  // The hidden field of every form that changes something; empty without a token.
  const std::string& csrf_token() const noexcept { return csrf_; }
  bool csrf_matches(std::string_view field) const noexcept;

 private:
  std::optional<std::string> token_;
  std::string secret_;
  std::string session_;
  std::string csrf_;
};

}  // namespace devin_orch::app::dashboard
