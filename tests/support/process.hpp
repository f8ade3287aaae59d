// Child processes for integration tests: spawn with arguments and extra environment, signal,
// wait with a deadline, capture output to files.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace devin_orch::testing {

struct ProcessOptions {
  std::vector<std::string> args;                             // args[0] is the executable path
  std::vector<std::pair<std::string, std::string>> env;      // added to (or replacing) ours
  std::vector<std::string> unset_env;                        // removed from the environment
  std::string stdout_path;                                   // empty: inherit
  std::string stderr_path;                                   // empty: inherit
};

class Process {
 public:
  explicit Process(const ProcessOptions& options);  // throws std::runtime_error on failure
  ~Process();                                       // SIGKILLs a child still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const;
  // Exit status (0..255), or 128+signal if killed; nullopt if still running at the deadline.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  bool running();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs to completion and captures stdout+stderr separately.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult run_command(const ProcessOptions& options,
                      std::chrono::milliseconds timeout = std::chrono::seconds{60});

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

// A fresh directory under $TMPDIR (or /tmp), removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace devin_orch::testing
