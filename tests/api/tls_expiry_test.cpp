// Certificate-chain checks of the HTTPS client against a throwaway CA made with openssl at test
// time: CA-issued and intermediate chains are accepted; expired, not-yet-valid, self-signed,
// incomplete and wrong-host certificates are refused before any byte of the request is sent.
#include "devin_orch/api/http_client.hpp"

#include "api/loopback_server.hpp"

#include <boost/asio/ssl.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace devin_orch::api {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
namespace ssl = net::ssl;
namespace fs = std::filesystem;

// `openssl ca` is used for the leaves because it is the one OpenSSL 3.0 command that sets both
// validity dates, which is how an expired or not-yet-valid certificate is made without a clock.
constexpr const char* kOpensslConfig = R"([req]
distinguished_name = dn
[dn]
[ca]
default_ca = test_ca
[test_ca]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[root_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
authorityKeyIdentifier = keyid
)";

// Root CA -> leaves (valid, expired, not yet valid), root -> intermediate -> leaf, and a
// self-signed leaf. Every leaf names DNS:localhost only and shares one key.
constexpr const char* kMakeCertificates = R"(set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
mkdir db && : > db/index.txt && echo 1000 > db/serial
key root.key && key intermediate.key && key leaf.key
openssl req -config ca.cnf -x509 -new -key root.key -days 2 -subj "/CN=devin-orch test root" \
  -extensions root_ext -out root.pem
openssl req -config ca.cnf -new -key intermediate.key -subj "/CN=devin-orch test intermediate" \
  -out intermediate.csr
openssl req -config ca.cnf -new -key leaf.key -subj /CN=localhost -out leaf.csr
sign() {  # issuer request output extensions date-options...
  issuer=$1 request=$2 out=$3 ext=$4; shift 4
  openssl ca -batch -notext -config ca.cnf -cert "$issuer.pem" -keyfile "$issuer.key" \
    -extensions "$ext" -in "$request" -out "$out" "$@"
}
sign root intermediate.csr intermediate.pem intermediate_ext -days 2
sign root leaf.csr leaf.pem leaf_ext -days 1
sign root leaf.csr expired.pem leaf_ext -startdate 20200101000000Z -enddate 20200102000000Z
sign root leaf.csr not-yet-valid.pem leaf_ext -startdate 20990101000000Z -enddate 20990102000000Z
sign intermediate leaf.csr leaf-via-intermediate.pem leaf_ext -days 1
cat leaf-via-intermediate.pem intermediate.pem > chain-via-intermediate.pem
openssl req -config ca.cnf -x509 -new -key leaf.key -days 1 -subj /CN=localhost \
  -extensions leaf_ext -out self-signed.pem
)";

class TlsChain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "devin-orch-tls-chain-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::ofstream{dir_ / "ca.cnf"} << kOpensslConfig;
    std::ofstream{dir_ / "make.sh"} << kMakeCertificates;
    const std::string command =
        "cd '" + dir_.string() + "' && sh ./make.sh >make.log 2>&1 || { cat make.log; exit 1; }";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string file(const std::string& name) { return (dir_ / name).string(); }

  // The server presents `chain` (leaf first, then any intermediates) with the shared leaf key.
  void serve(const std::string& chain) {
    server_tls_.use_certificate_chain_file(file(chain));
    server_tls_.use_private_key_file(file("leaf.key"), ssl::context::pem);
  }

  LoopbackServer::Handler https_handler() {
    return [this](tcp::socket socket, int index) -> net::awaitable<void> {
      ssl::stream<tcp::socket> stream{std::move(socket), server_tls_};
      auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
      if (ec) co_return;
      std::string buffer;
      auto request = co_await read_request(stream, buffer);
      if (!request) co_return;
      request->connection = index;
      requests_.push_back(*request);
      const std::string answer = response(200, R"({"tls":true})");
      co_await net::async_write(stream, net::buffer(answer), use_tuple);
    };
  }

  std::unique_ptr<HttpClient> client(const std::string& host, HttpClientOptions options) {
    return make_https_client(io_, host, server_.port(), "cog_tls_chain", std::move(options));
  }

  HttpResult get(HttpClient& http) { return get_self(io_, http); }

  // A refusal must happen in the handshake, before the request (and its token) leaves, and
  // say in words that the certificate was not accepted.
  void expect_refused(const HttpResult& r, const std::string& host, const std::string& cause) {
    EXPECT_EQ(static_cast<errc>(r.ec.value()), errc::tls_handshake_failed) << r.detail;
    EXPECT_FALSE(r.request_sent);
    EXPECT_TRUE(requests_.empty());
    EXPECT_THAT(r.detail, HasSubstr("TLS handshake with " + host + ":"));
    EXPECT_THAT(r.detail, HasSubstr("certificate verify failed"));
    EXPECT_THAT(r.detail, HasSubstr("(" + cause + ")")) << "the reason OpenSSL gives";
    EXPECT_THAT(r.detail, Not(HasSubstr("cog_tls_chain")));
  }

  inline static fs::path dir_;
  net::io_context io_;
  ssl::context server_tls_{ssl::context::tls_server};
  std::vector<ReceivedRequest> requests_;
  LoopbackServer server_{io_, https_handler()};
};

TEST_F(TlsChain, LeafIssuedByTheConfiguredCaIsAccepted) {
  serve("leaf.pem");
  auto http = client("localhost", {.ca_file = file("root.pem")});
  const HttpResult r = get(*http);
  ASSERT_FALSE(r.ec) << r.detail;
  EXPECT_EQ(r.response.status, 200);
  ASSERT_EQ(requests_.size(), 1U);
  EXPECT_EQ(requests_[0].header("authorization"), "Bearer cog_tls_chain");
}

TEST_F(TlsChain, ChainThroughAnIntermediateSentByTheServerIsAccepted) {
  serve("chain-via-intermediate.pem");
  auto http = client("localhost", {.ca_file = file("root.pem")});
  const HttpResult r = get(*http);
  ASSERT_FALSE(r.ec) << r.detail;
  EXPECT_EQ(r.response.status, 200);
}

TEST_F(TlsChain, LeafIssuedByTheCaIsRefusedWithoutTheCaFile) {
  serve("leaf.pem");
  auto http = client("localhost", {});
  expect_refused(get(*http), "localhost", "unable to get local issuer certificate");
}

TEST_F(TlsChain, ChainMissingItsIntermediateIsRefused) {
  serve("leaf-via-intermediate.pem");
  auto http = client("localhost", {.ca_file = file("root.pem")});
  expect_refused(get(*http), "localhost", "unable to get local issuer certificate");
}

TEST_F(TlsChain, ExpiredCertificateIsRefused) {
  serve("expired.pem");
  auto http = client("localhost", {.ca_file = file("root.pem")});
  expect_refused(get(*http), "localhost", "certificate has expired");
}

TEST_F(TlsChain, NotYetValidCertificateIsRefused) {
  serve("not-yet-valid.pem");
  auto http = client("localhost", {.ca_file = file("root.pem")});
  expect_refused(get(*http), "localhost", "certificate is not yet valid");
}

TEST_F(TlsChain, SelfSignedCertificateIsRefusedWhenOnlyTheCaIsTrusted) {
  serve("self-signed.pem");
  auto http = client("localhost", {.ca_file = file("root.pem")});
  expect_refused(get(*http), "localhost", "self-signed certificate");
}

TEST_F(TlsChain, CaIssuedCertificateForAnotherHostIsRefused) {
  serve("leaf.pem");
  auto http = client("127.0.0.1", {.ca_file = file("root.pem")});
  expect_refused(get(*http), "127.0.0.1", "the certificate is not valid for host 127.0.0.1");
}

TEST_F(TlsChain, CaFileThatHoldsNoCertificateIsAStartUpError) {
  std::string why;
  auto created = HttpClient::create(io_.get_executor(),
                                    {.base_url = "https://localhost:1", .ca_file = file("leaf.key")},
                                    &why);
  EXPECT_FALSE(created);
  EXPECT_THAT(why, HasSubstr("cannot load ca_file " + file("leaf.key")));
}

}  // namespace
}  // namespace devin_orch::api
