// Session secrets resolve from the environment or owner-only files, and no error names a value.
#include "devin_orch/app/daemon/session_secrets.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sys/stat.h>

namespace devin_orch::app {
namespace {

using Source = core::SessionSecretRef::Source;

TEST(SessionSecrets, ResolveFromEnvironmentAndOwnerOnlyFiles) {
  testing::TempDir dir;
  ::setenv("DEVIN_ORCH_TEST_SECRET", "from-the-environment", 1);
  testing::write_file(dir.file("secret"), "from-a-file\n");
  ::chmod(dir.file("secret").c_str(), 0600);
  std::string error;
  const auto secrets = resolve_session_secrets(
      {{.key = "A", .source = Source::env, .name = "DEVIN_ORCH_TEST_SECRET"},
       {.key = "B", .source = Source::file, .name = dir.file("secret"), .sensitive = false}},
      &error);
  ::unsetenv("DEVIN_ORCH_TEST_SECRET");
  ASSERT_TRUE(secrets) << error;
  ASSERT_EQ(secrets->size(), 2U);
  EXPECT_EQ((*secrets)[0].value, "from-the-environment");
  EXPECT_TRUE((*secrets)[0].sensitive);
  EXPECT_EQ((*secrets)[1].value, "from-a-file") << "the trailing newline is not part of it";
  EXPECT_FALSE((*secrets)[1].sensitive);
}

TEST(SessionSecrets, FailuresNameTheSecretButNeverItsValue) {
  testing::TempDir dir;
  testing::write_file(dir.file("loose"), "do-not-print-me");
  ::chmod(dir.file("loose").c_str(), 0644);
  std::string error;
  EXPECT_FALSE(resolve_session_secrets(
      {{.key = "LOOSE", .source = Source::file, .name = dir.file("loose")}}, &error));
  EXPECT_NE(error.find("session secret 'LOOSE'"), std::string::npos) << error;
  EXPECT_NE(error.find("readable by group or others"), std::string::npos) << error;
  EXPECT_EQ(error.find("do-not-print-me"), std::string::npos);

  ::unsetenv("DEVIN_ORCH_TEST_MISSING");
  EXPECT_FALSE(resolve_session_secrets(
      {{.key = "GONE", .source = Source::env, .name = "DEVIN_ORCH_TEST_MISSING"}}, &error));
  EXPECT_NE(error.find("DEVIN_ORCH_TEST_MISSING is not set"), std::string::npos) << error;
}

}  // namespace
}  // namespace devin_orch::app
