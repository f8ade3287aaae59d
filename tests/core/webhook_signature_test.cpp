// Tests for HMAC-SHA256 and the Stripe-style signature header.
#include "devin_orch/core/webhook_signature.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devin_orch::core {
namespace {

std::string hex(const std::array<std::uint8_t, 32>& digest) {
  std::string out;
  char buffer[3];
  for (const auto byte : digest) {
    std::snprintf(buffer, sizeof buffer, "%02x", byte);
    out += buffer;
  }
  return out;
}

// RFC 4231 test cases 1, 2 and 6 (a key longer than the block is hashed first).
TEST(HmacSha256, MatchesRfc4231) {
  EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'),
                            "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(SignatureHeader, SignsTimestampDotBody) {
  const std::string body = R"({"id":"evt_1","type":"job.finished"})";
  const std::string header = signature_header("s3cret", 1700000000, body);
  EXPECT_EQ(header, "t=1700000000,v1=" + hex(hmac_sha256("s3cret", "1700000000." + body)));
}

TEST(SignatureHeader, VerifiesOnlyTheRightSecretBodyAndTime) {
  const std::string body = R"({"id":"evt_1"})";
  const std::string header = signature_header("s3cret", 1000, body);
  EXPECT_TRUE(verify_signature(header, "s3cret", body, 1000, 300));
  EXPECT_TRUE(verify_signature(header, "s3cret", body, 1300, 300));
  EXPECT_FALSE(verify_signature(header, "s3cret", body, 1301, 300));  // too old: a replay
  EXPECT_FALSE(verify_signature(header, "other", body, 1000, 300));
  EXPECT_FALSE(verify_signature(header, "s3cret", body + " ", 1000, 300));
  EXPECT_FALSE(verify_signature("t=1000", "s3cret", body, 1000, 300));
  EXPECT_FALSE(verify_signature("t=x,v1=" + std::string(64, '0'), "s3cret", body, 1000, 300));
  // The timestamp is signed too: moving it breaks the signature.
  std::string moved = header;
  moved.replace(2, 4, "1001");
  EXPECT_FALSE(verify_signature(moved, "s3cret", body, 1000, 300));
}

}  // namespace
}  // namespace devin_orch::core
