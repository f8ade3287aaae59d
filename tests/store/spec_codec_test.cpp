// Tests for the JobSpec JSON codec: canonical encoding, round trips and every rejection reason.
#include "devin_orch/store/spec_codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devin_orch::store {
namespace {

core::JobSpec full_spec() {
  return core::JobSpec{
      .prompt = "Fix the flaky test in 'ci'; \"quote\" \\ back\nnew line \xC3\xBC \xF0\x9F\x99\x82",
      .title = "t\xC3\xADtulo",
      .tags = {"team:infra", "a\"b"},
      .create_as_user_id = "user-1",
      .playbook_id = "playbook-9",
      .knowledge_ids = std::vector<std::string>{"k1", "k2"},
      .secret_ids = std::vector<std::string>{},
      .repos = {"owner/repo"},
      .max_acu_limit = 12,
      .structured_output_schema = R"({"type":"object","properties":{"ok":{"type":"boolean"}}})",
      .devin_mode = "fast",
      .resumable = false,
      .attachments = {"/srv/jobs/notes.txt", "/srv/jobs/tr\xC3\xA1" "ce.bin"},
      .concurrency_key = "repo:acme/backend",
  };
}

std::string reason_for(std::string_view json) {
  std::string reason;
  auto decoded = decode_spec(json, &reason);
  EXPECT_FALSE(decoded) << json;
  if (!decoded) {
    EXPECT_EQ(decoded.error(), errc::invalid_argument);
  }
  return reason;
}

TEST(SpecCodec, FullSpecRoundTrips) {
  const core::JobSpec spec = full_spec();
  auto decoded = decode_spec(encode_spec(spec));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, spec);
}

TEST(SpecCodec, EncodesFieldsInFixedOrder) {
  EXPECT_EQ(
      encode_spec(full_spec()),
      R"({"prompt":"Fix the flaky test in 'ci'; \"quote\" \\ back\nnew line )"
      "\xC3\xBC \xF0\x9F\x99\x82"
      R"(","title":"t)"
      "\xC3\xAD"
      R"(tulo","tags":["team:infra","a\"b"],"create_as_user_id":"user-1",)"
      R"("playbook_id":"playbook-9","knowledge_ids":["k1","k2"],"secret_ids":[],)"
      R"("repos":["owner/repo"],"max_acu_limit":12,)"
      R"("structured_output_schema":{"type":"object","properties":{"ok":{"type":"boolean"}}},)"
      R"("devin_mode":"fast","resumable":false,)"
      R"("attachments":["/srv/jobs/notes.txt","/srv/jobs/tr)"
      "\xC3\xA1"
      R"(ce.bin"],"concurrency_key":"repo:acme/backend"})");
}

TEST(SpecCodec, AbsentOptionalsAreOmitted) {
  EXPECT_EQ(encode_spec(core::JobSpec{.prompt = "p"}), R"({"prompt":"p"})");
}

TEST(SpecCodec, EqualSpecsEncodeEquallyWhateverTheInputLayout) {
  auto a =
      decode_spec(R"({"prompt":"p","tags":["x"],"structured_output_schema":{"a":1,"b":[1,2]}})");
  auto b = decode_spec(
      "{ \"structured_output_schema\" : { \"a\" : 1 , \"b\" : [ 1 , 2 ] } ,\n"
      "  \"tags\": [\"x\"], \"prompt\": \"p\" }");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(encode_spec(*a), encode_spec(*b));
}

TEST(SpecCodec, SchemaWhitespaceDoesNotChangeTheEncoding) {
  const core::JobSpec spaced{.prompt = "p", .structured_output_schema = "{ \"a\" : [ 1, 2 ] }"};
  const core::JobSpec compact{.prompt = "p", .structured_output_schema = R"({"a":[1,2]})"};
  EXPECT_EQ(encode_spec(spaced), encode_spec(compact));
}

TEST(SpecCodec, NullAndEmptyIdListsAreDistinct) {
  auto null_lists = decode_spec(R"({"prompt":"p","knowledge_ids":null,"secret_ids":null})");
  ASSERT_TRUE(null_lists);
  EXPECT_FALSE(null_lists->knowledge_ids.has_value());
  EXPECT_FALSE(null_lists->secret_ids.has_value());
  EXPECT_EQ(encode_spec(*null_lists), R"({"prompt":"p"})");

  auto empty_lists = decode_spec(R"({"prompt":"p","knowledge_ids":[],"secret_ids":[]})");
  ASSERT_TRUE(empty_lists);
  ASSERT_TRUE(empty_lists->knowledge_ids.has_value());
  EXPECT_TRUE(empty_lists->knowledge_ids->empty());
  EXPECT_EQ(encode_spec(*empty_lists), R"({"prompt":"p","knowledge_ids":[],"secret_ids":[]})");
}

TEST(SpecCodec, NullTitleMeansNoTitle) {
  auto decoded = decode_spec(R"({"prompt":"p","title":null})");
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(decoded->title.has_value());
}

TEST(SpecCodec, PassesAnyDevinModeThroughAndAcceptsALargeAcuLimit) {
  // The API's set of modes is open (docs/queue.md): the known ones and one it may add.
  for (const std::string mode : {"normal", "fast", "lite", "ultra", "fusion", "hyper"}) {
    auto decoded = decode_spec(R"({"prompt":"p","devin_mode":")" + mode +
                               R"(","max_acu_limit":9223372036854775807})");
    ASSERT_TRUE(decoded) << mode;
    EXPECT_EQ(decoded->devin_mode, mode);
    EXPECT_EQ(decoded->max_acu_limit, 9223372036854775807LL);
  }
}

struct TypeErrorCase {
  const char* json;
  const char* reason;
};

TEST(SpecCodec, EachFieldReportsItsTypeError) {
  const std::vector<TypeErrorCase> cases{
      {R"({"prompt":5})", "field 'prompt': expected a string"},
      {R"({"prompt":""})", "field 'prompt': must not be empty or only whitespace"},
      {R"({"prompt":" \n"})", "field 'prompt': must not be empty or only whitespace"},
      {R"({"prompt":"p","title":7})", "field 'title': expected a string or null"},
      {R"({"prompt":"p","tags":"x"})", "field 'tags': expected an array of strings"},
      {R"({"prompt":"p","tags":["x",1]})", "field 'tags': expected an array of strings"},
      {R"({"prompt":"p","tags":null})", "field 'tags': expected an array of strings"},
      {R"({"prompt":"p","create_as_user_id":1})", "field 'create_as_user_id': expected a string"},
      {R"({"prompt":"p","playbook_id":["x"]})", "field 'playbook_id': expected a string"},
      {R"({"prompt":"p","knowledge_ids":"k"})",
       "field 'knowledge_ids': expected an array of strings or null"},
      {R"({"prompt":"p","secret_ids":[null]})",
       "field 'secret_ids': expected an array of strings or null"},
      {R"({"prompt":"p","repos":{}})", "field 'repos': expected an array of strings"},
      {R"({"prompt":"p","attachments":"/a"})", "field 'attachments': expected an array of strings"},
      {R"({"prompt":"p","attachments":["a.txt"]})",
       "field 'attachments[0]': must be an absolute path"},
      {R"({"prompt":"p","max_acu_limit":0})",
       "field 'max_acu_limit': must be a positive integer, got 0"},
      {R"({"prompt":"p","max_acu_limit":-3})",
       "field 'max_acu_limit': must be a positive integer, got -3"},
      {R"({"prompt":"p","max_acu_limit":2.5})", "field 'max_acu_limit': expected a 64-bit integer"},
      {R"({"prompt":"p","max_acu_limit":"5"})", "field 'max_acu_limit': expected a 64-bit integer"},
      {R"({"prompt":"p","max_acu_limit":18446744073709551615})",
       "field 'max_acu_limit': expected a 64-bit integer"},
      {R"({"prompt":"p","structured_output_schema":"{}"})",
       "field 'structured_output_schema': expected an object"},
      {R"({"prompt":"p","devin_mode":""})",
       "field 'devin_mode': must not be empty; leave the field out instead"},
      {R"({"prompt":"p","devin_mode":null})", "field 'devin_mode': expected a string"},
      {R"({"prompt":"p","session_secrets":[{"key":5,"from_env":"V"}]})",
       "field 'session_secrets': unexpected or malformed 'key'"},
      {R"({"prompt":"p","session_secrets":[{"key":"","from_env":"V"}]})",
       "field 'session_secrets[0].key': must not be empty"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(reason_for(c.json), c.reason) << c.json;
  }
}

TEST(SpecCodec, UnknownFieldIsNamed) {
  EXPECT_EQ(reason_for(R"({"prompt":"p","tgas":["x"]})"), "unknown field 'tgas'");
}

TEST(SpecCodec, MissingPromptIsRejected) {
  EXPECT_EQ(reason_for(R"({"title":"t"})"), "field 'prompt' is required");
  EXPECT_EQ(reason_for("{}"), "field 'prompt' is required");
}

TEST(SpecCodec, NonObjectsAndBrokenJsonAreRejected) {
  EXPECT_EQ(reason_for(R"(["prompt"])"), "expected a JSON object");
  EXPECT_EQ(reason_for(R"("p")"), "expected a JSON object");
  EXPECT_EQ(reason_for(R"({"prompt":"p")").rfind("not valid JSON: ", 0), 0U);
  EXPECT_EQ(reason_for("").rfind("not valid JSON: ", 0), 0U);
}

TEST(SpecCodec, PromptAtTheLimitIsAcceptedAndOneByteMoreIsNot) {
  const std::string at_limit(64 * 1024, 'a');
  auto decoded = decode_spec(encode_spec(core::JobSpec{.prompt = at_limit}));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->prompt.size(), at_limit.size());

  const std::string huge(64 * 1024 + 1, 'a');
  EXPECT_EQ(reason_for(encode_spec(core::JobSpec{.prompt = huge})),
            "field 'prompt': is 65537 bytes; the limit is 65536");
}

TEST(SpecCodec, OversizedSchemaIsRejected) {
  const std::string schema = R"({"description":")" + std::string(64 * 1024, 'd') + R"("})";
  const std::string reason =
      reason_for(encode_spec(core::JobSpec{.prompt = "p", .structured_output_schema = schema}));
  EXPECT_EQ(reason.rfind("field 'structured_output_schema': ", 0), 0U) << reason;
  EXPECT_NE(reason.find("bytes as JSON; the limit is 65536"), std::string::npos) << reason;
}

TEST(SpecCodec, NestingDeeperThanTheLimitIsRejected) {
  auto nested = [](int depth) {
    return R"({"prompt":"p","structured_output_schema":)" + std::string(depth, '[') +
           std::string(depth, ']') + "}";
  };
  // The outer object plus the schema value already use two levels.
  const std::string shallow = R"({"prompt":"p","structured_output_schema":{"a":)" +
                              std::string(60, '[') + std::string(60, ']') + "}}";
  EXPECT_TRUE(decode_spec(shallow));
  EXPECT_EQ(reason_for(nested(200)).rfind("not valid JSON: ", 0), 0U);
}

TEST(SpecCodec, EmbeddedNulAndControlCharactersRoundTrip) {
  const core::JobSpec spec{.prompt = std::string("a\0b\x01\x1f", 5)};
  auto decoded = decode_spec(encode_spec(spec));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->prompt, spec.prompt);
}

TEST(SpecCodec, NonObjectSchemaTextIsKeptSoDecodeCanExplain) {
  const core::JobSpec spec{.prompt = "p", .structured_output_schema = "[1,2]"};
  EXPECT_EQ(reason_for(encode_spec(spec)), "field 'structured_output_schema': expected an object");
}

}  // namespace
}  // namespace devin_orch::store

namespace devin_orch::store {
namespace {

TEST(SpecCodecSessionSecrets, ReferencesRoundTripAndLiteralValuesAreRefused) {
  core::JobSpec spec{.prompt = "p"};
  spec.session_secrets = {
      {.key = "DB_PASSWORD", .source = core::SessionSecretRef::Source::env, .name = "DB_PW"},
      {.key = "TOKEN", .source = core::SessionSecretRef::Source::file, .name = "/run/secrets/t",
       .sensitive = false}};
  const auto encoded = encode_spec(spec);
  EXPECT_EQ(encoded.find("\"value\""), std::string::npos);
  const auto decoded = decode_spec(encoded);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, spec);

  std::string reason;
  EXPECT_FALSE(decode_spec(R"({"prompt": "p", "session_secrets": [{"key": "K", "value": "v"}]})",
                           &reason));
  EXPECT_NE(reason.find("from_env or from_file"), std::string::npos) << reason;
  EXPECT_FALSE(decode_spec(
      R"({"prompt": "p", "session_secrets": [{"key": "K", "from_env": "A", "from_file": "B"}]})",
      &reason));
}

TEST(ControlsCodec, StallControlsRoundTripAndBadOnesAreNamed) {
  core::JobControls controls;
  controls.stall = {.after = core::Duration{90'000}, .action = core::StallAction::message};
  const std::string text = encode_controls(controls);
  EXPECT_EQ(text, R"({"stall_after_ms":90000,"stall_action":"message"})");
  core::JobControls decoded;
  ASSERT_TRUE(decode_controls(text, decoded));
  EXPECT_EQ(decoded, controls);
  EXPECT_EQ(encode_controls(core::JobControls{}), "") << "no stall controls: nothing stored";

  std::string reason;
  core::JobControls ignored;
  EXPECT_FALSE(decode_controls(R"({"stall_after_ms": "30m"})", ignored, &reason));
  EXPECT_EQ(reason, "controls: field 'stall_after_ms': expected an integer");
  EXPECT_FALSE(decode_controls(R"({"stall_action": "kill"})", ignored, &reason));
  EXPECT_EQ(reason,
            R"(controls: field 'stall_action': expected "report", "message" or "terminate")");
}

}  // namespace
}  // namespace devin_orch::store
