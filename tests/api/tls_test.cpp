// Tests of the HTTPS path against a loopback TLS server with a throwaway certificate made at
// test time: verification against a CA file, host name checks, SNI, and the insecure escape.
#include "devin_orch/api/http_client.hpp"

#include "api/loopback_server.hpp"

#include <boost/asio/ssl.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace devin_orch::api {
namespace {

using namespace testing;
using namespace std::chrono_literals;
namespace ssl = net::ssl;
namespace fs = std::filesystem;

// The certificate names only DNS:localhost, so https://127.0.0.1 must fail the host check.
class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "devin-orch-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '" +
        (dir_ / "key.pem").string() + "' -out '" + (dir_ / "cert.pem").string() +
        "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string cert() { return (dir_ / "cert.pem").string(); }

  Tls() {
    server_tls_.use_certificate_chain_file(cert());
    server_tls_.use_private_key_file((dir_ / "key.pem").string(), ssl::context::pem);
  }

  // A keep-alive HTTPS server answering every request with 200 and recording the SNI name.
  LoopbackServer::Handler https_handler() {
    return [this](tcp::socket socket, int index) -> net::awaitable<void> {
      ssl::stream<tcp::socket> stream{std::move(socket), server_tls_};
      auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
      if (ec) co_return;
      if (const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) {
        server_names_.emplace_back(name);
      }
      std::string buffer;
      for (;;) {
        auto request = co_await read_request(stream, buffer);
        if (!request) co_return;
        request->connection = index;
        requests_.push_back(*request);
        const std::string answer = response(200, R"({"tls":true})");
        auto [write_ec, n] = co_await net::async_write(stream, net::buffer(answer), use_tuple);
        if (write_ec) co_return;
      }
    };
  }

  std::unique_ptr<HttpClient> client(const std::string& host, HttpClientOptions options) {
    return make_https_client(io_, host, server_.port(), "cog_tls", std::move(options));
  }

  HttpResult get(HttpClient& http) { return get_self(io_, http); }

  inline static fs::path dir_;
  net::io_context io_;
  ssl::context server_tls_{ssl::context::tls_server};
  std::vector<std::string> server_names_;
  std::vector<ReceivedRequest> requests_;
  LoopbackServer server_{io_, https_handler()};
};

errc code_of(const HttpResult& r) { return static_cast<errc>(r.ec.value()); }

TEST_F(Tls, VerifiedConnectionWithCaFileSendsSniAndIsReused) {
  auto http = client("localhost", {.ca_file = cert()});
  const HttpResult first = get(*http);
  ASSERT_FALSE(first.ec) << first.detail;
  EXPECT_EQ(first.response.status, 200);
  EXPECT_EQ(first.response.body, R"({"tls":true})");
  const HttpResult second = get(*http);
  ASSERT_FALSE(second.ec) << second.detail;
  EXPECT_EQ(server_.accepted(), 1);
  ASSERT_EQ(requests_.size(), 2U);
  EXPECT_EQ(requests_[0].header("authorization"), "Bearer cog_tls");
  EXPECT_EQ(server_names_, std::vector<std::string>{"localhost"});
}

TEST_F(Tls, UntrustedCertificateFailsBeforeSending) {
  auto http = client("localhost", {});
  const HttpResult r = get(*http);
  EXPECT_EQ(code_of(r), errc::tls_handshake_failed) << r.detail;
  EXPECT_FALSE(r.request_sent);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(Tls, HostNameMismatchFailsEvenWithTheRightCa) {
  auto http = client("127.0.0.1", {.ca_file = cert()});
  const HttpResult r = get(*http);
  EXPECT_EQ(code_of(r), errc::tls_handshake_failed) << r.detail;
  EXPECT_FALSE(r.request_sent);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(Tls, InsecureModeSkipsVerification) {
  auto http = client("127.0.0.1", {.allow_insecure_tls_for_tests = true});
  const HttpResult r = get(*http);
  ASSERT_FALSE(r.ec) << r.detail;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_TRUE(server_names_.empty());  // no SNI for an IP address
}

}  // namespace
}  // namespace devin_orch::api
