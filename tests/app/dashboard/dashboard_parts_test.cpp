// The dashboard's pure pieces: HTML escaping, request parsing, token/cookie/CSRF checks.
#include "devin_orch/app/dashboard/html.hpp"
#include "devin_orch/app/dashboard/request_parts.hpp"
#include "devin_orch/app/dashboard/web_auth.hpp"

#include <gtest/gtest.h>

namespace devin_orch::app::dashboard {
namespace {

TEST(EscapeHtml, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(escape_html("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
  EXPECT_EQ(escape_html("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
  EXPECT_EQ(escape_html("a & b"), "a &amp; b");
  EXPECT_EQ(escape_html("&amp;"), "&amp;amp;");
}

TEST(EscapeHtml, KeepsUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(escape_html("caf\xC3\xA9 \xE2\x9C\x93"), "caf\xC3\xA9 \xE2\x9C\x93");
  EXPECT_EQ(escape_html("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(escape_html(std::string_view{"a\0b", 3}), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(escape_html("\xC3"), "\xEF\xBF\xBD");  // a sequence cut short
}

TEST(SafeHref, AllowsOnlyHttpLinks) {
  EXPECT_EQ(safe_href("https://app.devin.ai/sessions/x?a=1&b=2"),
            "https://app.devin.ai/sessions/x?a=1&amp;b=2");
  EXPECT_EQ(safe_href("HTTP://example.com/\"x"), "HTTP://example.com/&quot;x");
  EXPECT_EQ(safe_href("javascript:alert(1)"), "");
  EXPECT_EQ(safe_href(" https://x"), "");
  EXPECT_EQ(safe_href("data:text/html,<b>"), "");
}

TEST(RequestParts, DecodesPathSegments) {
  EXPECT_EQ(path_segments("/"), std::vector<std::string>{});
  EXPECT_EQ(path_segments("/api/v1/jobs/"), (std::vector<std::string>{"api", "v1", "jobs"}));
  EXPECT_EQ(path_segments("/jobs/a%2Fb%20c"), (std::vector<std::string>{"jobs", "a/b c"}));
  EXPECT_EQ(path_segments("/jobs/a+b"), (std::vector<std::string>{"jobs", "a+b"}));
  EXPECT_FALSE(path_segments("/jobs/%zz"));
  EXPECT_FALSE(path_segments("/jobs/%4"));
  EXPECT_FALSE(path_segments("/jobs/a%00"));
  EXPECT_FALSE(path_segments("jobs"));
}

TEST(RequestParts, ParsesQueryStringsAndForms) {
  const auto params = parse_params("state=queued&state=failed&q=a+b%26c&flag&=x");
  ASSERT_TRUE(params);
  EXPECT_EQ(params_named(*params, "state"), (std::vector<std::string>{"queued", "failed"}));
  EXPECT_EQ(param(*params, "q"), "a b&c");
  EXPECT_EQ(param(*params, "flag"), "");
  EXPECT_EQ(param(*params, "missing"), std::nullopt);
  EXPECT_FALSE(parse_params("a=%G1"));
  EXPECT_EQ(percent_encode("a/b c~"), "a%2Fb%20c~");
  EXPECT_EQ(percent_decode(percent_encode("k\xC3\xA9y/1?&"), false), "k\xC3\xA9y/1?&");
}

TEST(RequestParts, ReadsCookiesAndBearerTokens) {
  EXPECT_EQ(cookie_value("a=1; devin_orch_session=abc ;b=2", "devin_orch_session"), "abc");
  EXPECT_EQ(cookie_value("xdevin_orch_session=abc", "devin_orch_session"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer s3cret"), "s3cret");
  EXPECT_EQ(bearer_token("bearer  s3cret "), "s3cret");
  EXPECT_EQ(bearer_token("Basic dXNlcg=="), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token(""), std::nullopt);
}

TEST(WebAuth, ComparesInConstantTimeAndByContent) {
  EXPECT_TRUE(constant_time_equal("token", "token"));
  EXPECT_FALSE(constant_time_equal("token", "tokem"));
  EXPECT_FALSE(constant_time_equal("token", "token2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(WebAuth, ChecksTokenSessionAndCsrf) {
  const WebAuth auth{"s3cret", "process-secret"};
  EXPECT_TRUE(auth.writes_enabled());
  EXPECT_TRUE(auth.token_matches("s3cret"));
  EXPECT_FALSE(auth.token_matches("s3cre"));
  EXPECT_EQ(auth.session_value().size(), 64U);
  EXPECT_EQ(auth.session_value().find("s3cret"), std::string::npos);
  EXPECT_TRUE(auth.session_matches(auth.session_value()));
  EXPECT_FALSE(auth.session_matches("s3cret"));
  EXPECT_TRUE(auth.csrf_matches(auth.csrf_token()));
  EXPECT_FALSE(auth.csrf_matches(auth.session_value()));
  EXPECT_FALSE(auth.csrf_matches(""));
  // Another process (another secret) issues other values: old cookies and forms lapse.
  const WebAuth restarted{"s3cret", "another-secret"};
  EXPECT_FALSE(restarted.session_matches(auth.session_value()));
  EXPECT_FALSE(restarted.csrf_matches(auth.csrf_token()));
}

TEST(WebAuth, RefusesEverythingWithoutAToken) {
  const WebAuth auth{std::nullopt, "process-secret"};
  EXPECT_FALSE(auth.writes_enabled());
  EXPECT_FALSE(auth.token_matches(""));
  EXPECT_FALSE(auth.session_matches(""));
  EXPECT_FALSE(auth.csrf_matches(""));
  EXPECT_TRUE(auth.csrf_token().empty());
}

}  // namespace
}  // namespace devin_orch::app::dashboard
