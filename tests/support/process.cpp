// POSIX process control for the integration tests (posix_spawn, waitpid with a deadline).
#include "support/process.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace devin_orch::testing {
namespace {

std::vector<std::string> build_environment(const ProcessOptions& options) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text{*entry};
    const auto name = text.substr(0, text.find('='));
    bool drop = false;
    for (const auto& [key, value] : options.env) drop = drop || key == name;
    for (const auto& key : options.unset_env) drop = drop || key == name;
    if (!drop) result.push_back(std::move(text));
  }
  for (const auto& [key, value] : options.env) result.push_back(key + "=" + value);
  return result;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Process::Process(const ProcessOptions& options) {
  if (options.args.empty()) throw std::runtime_error("Process: no arguments");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!options.stdout_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, options.stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (!options.stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options.stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (const auto& arg : options.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  auto environment = build_environment(options);
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const int rc = posix_spawn(&pid_, options.args[0].c_str(), &actions, nullptr, argv.data(),
                             envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("posix_spawn " + options.args[0] + ": " + std::strerror(rc));
  }
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

Process::Process(Process&& other) noexcept : pid_{other.pid_}, status_{other.status_} {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  std::swap(pid_, other.pid_);
  std::swap(status_, other.status_);
  return *this;
}

void Process::signal(int sig) const {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t rc = ::waitpid(pid_, &status, WNOHANG);
    if (rc == pid_) {
      status_ = decode_status(status);
      return status_;
    }
    if (rc < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
}

bool Process::running() { return !wait_for(std::chrono::milliseconds{0}).has_value(); }

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

RunResult run_command(const ProcessOptions& options, std::chrono::milliseconds timeout) {
  TempDir dir;
  ProcessOptions captured = options;
  captured.stdout_path = dir.file("out");
  captured.stderr_path = dir.file("err");
  Process process{captured};
  RunResult result;
  const auto status = process.wait_for(timeout);
  if (!status) {
    process.signal(SIGKILL);
    process.wait_for(std::chrono::seconds{5});
    throw std::runtime_error("command timed out: " + options.args[0]);
  }
  result.exit_code = *status;
  result.out = read_file(dir.file("out"));
  result.err = read_file(dir.file("err"));
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string{base != nullptr ? base : "/tmp"} + "/devin-orch-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string{"mkdtemp: "} + std::strerror(errno));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  // DEVIN_ORCH_KEEP_TEST_DIRS keeps each test's files (database, logs, config) to look into.
  if (std::getenv("DEVIN_ORCH_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace devin_orch::testing
