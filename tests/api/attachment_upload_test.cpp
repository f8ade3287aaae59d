// The attachment upload as sent (multipart/form-data, one `file` part, the boundary in the
// header) and read back, and the create carrying the uploaded URLs in attachment_urls.
#include "devin_orch/api/devin_client.hpp"
#include "devin_orch/api/json_mapping.hpp"

#include "api/loopback_server.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace devin_orch::api {
namespace {

using namespace testing;
using core::CallClass;

struct Fixture {
  explicit Fixture(LoopbackServer::Responder respond,
                   core::ApiVersion version = core::ApiVersion::v3)
      : server{io, std::move(respond)},
        http{std::move(*HttpClient::create(
            io.get_executor(), {.base_url = server.url(), .bearer_token = "cog_test"}))},
        client{*http, version} {}

  template <class T>
  T operator()(net::awaitable<T> call) {
    return run(io, std::move(call));
  }

  net::io_context io;
  LoopbackServer server;
  std::unique_ptr<HttpClient> http;
  DevinClient client;
};

TEST(AttachmentUpload, PostsOneFilePartAndReadsTheUrl) {
  Fixture f{[](const ReceivedRequest&) {
    return response(200, R"({"attachment_id": "a-1", "name": "notes.txt",
                             "url": "https://app.devin.ai/attachments/a-1/notes.txt"})");
  }};
  const std::string bytes{"line\r\n\0\xff", 8};
  auto uploaded = f(f.client.upload_attachment("org 1", "notes.txt", bytes, "b0und4ry"));
  ASSERT_TRUE(uploaded.outcome.ok()) << uploaded.outcome.detail;
  ASSERT_TRUE(uploaded.value);
  EXPECT_EQ(uploaded.value->url, "https://app.devin.ai/attachments/a-1/notes.txt");
  EXPECT_EQ(uploaded.value->attachment_id, "a-1");
  ASSERT_EQ(f.server.requests.size(), 1U);
  const ReceivedRequest& request = f.server.requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/v3/organizations/org%201/attachments");
  EXPECT_EQ(request.header("content-type"), "multipart/form-data; boundary=b0und4ry");
  EXPECT_EQ(request.header("authorization"), "Bearer cog_test");
  EXPECT_EQ(request.body,
            "--b0und4ry\r\n"
            "Content-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" +
                bytes + "\r\n--b0und4ry--\r\n");
}

TEST(AttachmentUpload, RefusalsAndOddAnswersAreClassified) {
  Fixture rejected{[](const ReceivedRequest&) {
    return response(422, R"({"detail": [{"loc": ["body", "file"], "msg": "Field required",
                                         "type": "missing"}]})");
  }};
  auto refused = rejected(rejected.client.upload_attachment("org-1", "a", "x", "b"));
  EXPECT_EQ(refused.outcome.cls, CallClass::rejected);
  EXPECT_NE(refused.outcome.detail.find("Field required"), std::string::npos)
      << refused.outcome.detail;

  // Success without a URL: the server may have stored the file, but there is nothing to use.
  Fixture no_url{[](const ReceivedRequest&) { return response(200, R"({"name": "a"})"); }};
  auto odd = no_url(no_url.client.upload_attachment("org-1", "a", "x", "b"));
  EXPECT_EQ(odd.outcome.cls, CallClass::ambiguous);
  EXPECT_FALSE(odd.value);
}

TEST(AttachmentUpload, NothingIsSentWhenTheBoundaryIsInTheFileOrTheApiIsV1) {
  Fixture f{[](const ReceivedRequest&) { return response(200, "{}"); }};
  auto clash = f(f.client.upload_attachment("org-1", "a", "xx--b0und4ry--xx", "b0und4ry"));
  EXPECT_EQ(clash.outcome.cls, CallClass::not_sent);
  Fixture v1{[](const ReceivedRequest&) { return response(200, "{}"); },
             core::ApiVersion::v1};
  auto old = v1(v1.client.upload_attachment("org-1", "a", "x", "b"));
  EXPECT_EQ(old.outcome.cls, CallClass::not_sent);
  EXPECT_TRUE(f.server.requests.empty());
  EXPECT_TRUE(v1.server.requests.empty());
}

TEST(AttachmentUpload, AFileNameCannotBreakOutOfItsQuotes) {
  std::string content_type;
  const auto body = attachment_upload_body("a\"b\r\nX: y\\.txt", "z", "B", &content_type);
  EXPECT_NE(body.find("filename=\"a_b__X: y_.txt\"\r\n"), std::string::npos) << body;
  EXPECT_EQ(content_type, "multipart/form-data; boundary=B");
}

TEST(AttachmentUpload, TheCreateCarriesTheUploadedUrls) {
  const auto body = boost::json::parse(create_session_body(
      {.prompt = "p"}, "orch-k-g0", {}, {"https://x/a.txt", "https://x/b.png"}));
  EXPECT_EQ(body.at("attachment_urls"),
            (boost::json::array{"https://x/a.txt", "https://x/b.png"}));
  EXPECT_FALSE(boost::json::parse(create_session_body({.prompt = "p"}, "t"))
                   .as_object()
                   .contains("attachment_urls"));
}

}  // namespace
}  // namespace devin_orch::api
