// A full disk under the database: the daemon names the cause, sends no create it could not
// record, and carries on by itself once space is back, without a duplicate or a lost job.
// The database lives on a small tmpfs of its own (mounting needs root, as CI and the
// developers' machines have), filled up with a plain file for 15 s.
#include "daemon_fixture.hpp"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace devin_orch::testing {
namespace {

using Clock = std::chrono::steady_clock;

class FullDisk : public DaemonFixture {
 protected:
  void SetUp() override {
    state_dir_ = dir_.file("state");
    std::filesystem::create_directories(state_dir_);
    ASSERT_EQ(::mount("tmpfs", state_dir_.c_str(), "tmpfs", 0, "size=32m,mode=0700"), 0)
        << "cannot mount a tmpfs for the database (this test needs root): "
        << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(state_dir_.c_str(), MNT_DETACH);
  }

  // Writes zeros until the filesystem refuses more; returns the bytes written.
  std::size_t fill(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) return 0;
    std::vector<char> block(64 * 1024, 0);
    std::size_t total = 0;
    while (std::fwrite(block.data(), 1, block.size(), file) == block.size()) {
      total += block.size();
      if (std::fflush(file) != 0) break;
    }
    std::fclose(file);
    return total;
  }

  std::size_t ended_jobs() {
    const auto result = run_command(
        daemon_options({"status", "--config", dir_.file("config.yaml"), "--json"}));
    if (result.exit_code != 0) return 0;
    std::size_t n = 0;
    const boost::json::value rows = boost::json::parse(result.out);
    for (const auto& row : rows.as_array()) {
      const auto state = row.at("state").as_string();
      if (state != "queued" && state != "creating" && state != "running") ++n;
    }
    return n;
  }

  std::string state_dir_;
  bool mounted_ = false;
};

TEST_F(FullDisk, TheDaemonNamesAFullDiskAndResumesByItself) {
  constexpr int kJobs = 200;
  start_sim({"--time-factor", "0.01", "--seed", "44", "--fault-drop-after-create", "0.05"});
  DaemonSettings settings;
  settings.requests_per_minute = 900;  // creates spread over the whole run
  settings.burst = 10;
  write_config(settings);
  write_jobs(generate_jobs(kJobs, {"[sim:exit]", "[sim:finished]"}));
  auto daemon = spawn_daemon();
  // The disk fills once the daemon works (its database open and sessions being created), not
  // while a loaded machine is still starting it.
  const auto working_by = Clock::now() + std::chrono::seconds{60};
  while (read_file(dir_.file("daemon.log")).find("created session") == std::string::npos &&
         daemon->running() && Clock::now() < working_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  ASSERT_TRUE(daemon->running()) << read_file(dir_.file("daemon.log"));

  const std::string filler = state_dir_ + "/filler";
  const std::size_t filled = fill(filler);
  ASSERT_GT(filled, 0U);
  const std::size_t ended_while_full = ended_jobs();
  // `status` shows what the daemon says of itself: the cause, while it lasts.
  const int port = wait_for_metrics_port(dir_.file("daemon.log"));
  std::string status_while_full;
  const auto full_since = Clock::now();
  while (Clock::now() - full_since < std::chrono::seconds{15}) {
    if (status_while_full.find("disk is full") == std::string::npos) {
      status_while_full = run_command(daemon_options({"status", "--config", dir_.file("config.yaml"),
                                                      "--port", std::to_string(port)}))
                              .out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
  EXPECT_NE(status_while_full.find("disk is full"), std::string::npos)
      << "status does not say why nothing is written:\n" << status_while_full;
  EXPECT_TRUE(daemon->running()) << "the daemon gave up on a full disk\n"
                                 << read_file(dir_.file("daemon.log"));
  std::filesystem::remove(filler);
  const auto freed_at = Clock::now();

  // Progress resumes by itself: jobs end again within seconds of the space coming back.
  const std::size_t ended_at_free = ended_jobs();
  double resumed_after = -1;
  while (Clock::now() - freed_at < std::chrono::seconds{60}) {
    if (ended_jobs() > ended_at_free) {
      resumed_after = std::chrono::duration<double>(Clock::now() - freed_at).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  const auto status = daemon->wait_for(std::chrono::seconds{180});
  ASSERT_TRUE(status.has_value()) << "the daemon did not finish after the disk was freed";
  EXPECT_EQ(*status, 0);
  const std::string log = read_file(dir_.file("daemon.log"));
  EXPECT_NE(log.find("the database's disk is full"), std::string::npos)
      << "the log does not name the cause";
  // What an operator reads in the log: the cause, and when it passed.
  std::istringstream lines{log};
  for (std::string line; std::getline(lines, line);) {
    if (line.find("disk is full") != std::string::npos ||
        line.find("takes writes again") != std::string::npos ||
        line.find("lease") != std::string::npos) {
      std::cout << "  log: " << line << "\n";
    }
  }
  std::cout << "full disk: " << filled / 1024 << " KiB filler, " << ended_while_full
            << " jobs ended before the disk filled up, progress again " << resumed_after
            << " s after the space came back\n";
  EXPECT_GE(resumed_after, 0) << "no job ended within 60 s of freeing the disk";
  EXPECT_LT(resumed_after, 10.0);
  expect_consistent_with_sim(kJobs);
}

}  // namespace
}  // namespace devin_orch::testing
