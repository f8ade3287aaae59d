// The documentation against the code it describes, for the facts that drifted before (issue
// 24): the README's table of job states, the files the docs point to, the container example's
// job file and the config it mounts, and where the CLI finds its configuration.
#include "devin_orch/app/config/config.hpp"
#include "devin_orch/core/job_state_list.hpp"

#include "support/process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace devin_orch::app {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAreArray;

const fs::path kSource{DEVIN_ORCH_SOURCE_DIR};

std::string source_file(const fs::path& relative) {
  return devin_orch::testing::read_file((kSource / relative).string());
}

std::vector<fs::path> markdown_files() {
  std::vector<fs::path> files{"README.md"};
  for (const auto& entry : fs::directory_iterator(kSource / "docs")) {
    if (entry.path().extension() == ".md") files.push_back(fs::relative(entry.path(), kSource));
  }
  return files;
}

// The rows of the table under "### Job states": every state of core, in its order, no other.
TEST(Docs, TheReadmeTableHasEveryJobState) {
  std::istringstream readme{source_file("README.md")};
  std::vector<std::string> rows;
  bool in_section = false;
  for (std::string line; std::getline(readme, line);) {
    if (line.starts_with("#")) in_section = line == "### Job states";
    const std::regex row{R"(^\| `([a-z_]+)` \|)"};
    std::smatch match;
    if (in_section && std::regex_search(line, match, row)) rows.push_back(match[1]);
  }
  std::vector<std::string> states;
  for (const auto state : core::all_job_states()) states.emplace_back(core::to_string(state));
  EXPECT_THAT(rows, ElementsAreArray(states));
}

// A link to another page, or a page named in backquotes, is a file of the repository.
TEST(Docs, EveryPageTheDocsPointToExists) {
  const std::regex link{R"(\]\(([^)#\s]+\.md)(#[^)]*)?\))"};
  const std::regex named{R"(`([A-Za-z0-9_.-]+\.md)`)"};
  for (const auto& file : markdown_files()) {
    const std::string text = source_file(file);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), link); it != std::sregex_iterator();
         ++it) {
      const std::string target = (*it)[1];
      if (target.starts_with("http")) continue;
      EXPECT_TRUE(fs::exists(kSource / file.parent_path() / target))
          << file << " links to " << target;
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), named);
         it != std::sregex_iterator(); ++it) {
      const std::string name = (*it)[1];
      EXPECT_TRUE(fs::exists(kSource / name) || fs::exists(kSource / "docs" / name))
          << file << " names " << name;
    }
  }
}

// docs/deployment.md's `docker run`: a file mounted into /etc/devin-orch is the config or one
// of the job files the image's config reads; a whole directory there replaces the config.
TEST(Docs, TheContainerExampleMountsOnlyWhatTheConfigReads) {
  const std::string text = source_file("docs/deployment.md");
  const auto run = text.find("docker run");
  ASSERT_NE(run, std::string::npos);
  const std::string command = text.substr(run, text.find("```", run) - run);
  ::setenv("DEVIN_ORCH_ORG_ID", "org-docs", 1);  // the reference config leaves it to be set
  const ConfigLoad image = load_config((kSource / "config/devin-orch.yaml").string());
  ::unsetenv("DEVIN_ORCH_ORG_ID");
  ASSERT_TRUE(image.config) << image.errors.front().to_string();
  const std::regex mount{R"(-v [^ :]+:(/etc/devin-orch[^ :]*))"};
  int mounts = 0;
  for (auto it = std::sregex_iterator(command.begin(), command.end(), mount);
       it != std::sregex_iterator(); ++it) {
    ++mounts;
    const std::string target = (*it)[1];
    if (target == "/etc/devin-orch" || target == "/etc/devin-orch/devin-orch.yaml") continue;
    const auto& files = image.config->jobs.files;
    EXPECT_NE(std::find(files.begin(), files.end(), target), files.end())
        << target << " is mounted but config/devin-orch.yaml does not read it";
  }
  EXPECT_GT(mounts, 0) << "the example shows how the configuration gets in";
  EXPECT_NE(source_file("Dockerfile")
                .find("COPY config/devin-orch.yaml /etc/devin-orch/devin-orch.yaml"),
            std::string::npos)
      << "the image's config is the one this test reads";
}

// `-c` and the order the configuration is looked for in, where operators read about options.
TEST(Docs, TheConfigOptionAndItsDefaultsAreDocumented) {
  const auto mentions = [](const std::string& file, const std::string& text) {
    return source_file(file).find(text) != std::string::npos;
  };
  EXPECT_TRUE(mentions("docs/cli.md", "`--config FILE` (`-c FILE` for short)"));
  EXPECT_TRUE(mentions("docs/cli.md", "`DEVIN_ORCH_CONFIG`"));
  EXPECT_TRUE(mentions("docs/cli.md", "`/etc/devin-orch/devin-orch.yaml`"));
  EXPECT_TRUE(mentions("README.md", "`-c FILE` is short for `--config FILE`"));
}

}  // namespace
}  // namespace devin_orch::app
