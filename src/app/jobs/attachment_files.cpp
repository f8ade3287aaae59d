// Reading a job's attachment files (attachment_files.hpp): one open, fstat and read per file,
// so what is checked is the file that is read.
#include "devin_orch/app/jobs/attachment_files.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devin_orch::app {
namespace {

class Descriptor {
 public:
  explicit Descriptor(int fd) noexcept : fd_{fd} {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// Opens `path` and checks it; reads its bytes into `bytes` when given.
std::optional<std::string> problem_with(const std::string& path, std::int64_t max_bytes,
                                        std::string* bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
  const Descriptor fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (fd.get() < 0) {
    const int error = errno;
    if (error == ENOENT) return "no such file";
    return std::string{"cannot be read: "} + std::strerror(error);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    return std::string{"cannot be read: "} + std::strerror(errno);
  }
  if (!S_ISREG(info.st_mode)) {
    return S_ISDIR(info.st_mode) ? "is a directory, not a file" : "is not a regular file";
  }
  if (info.st_size > max_bytes) {
    return "is " + std::to_string(info.st_size) + " bytes; the limit (attachments.max_bytes) is " +
           std::to_string(max_bytes);
  }
  if (bytes == nullptr) return std::nullopt;
  bytes->clear();
  bytes->reserve(static_cast<std::size_t>(info.st_size));
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::string{"cannot be read: "} + std::strerror(errno);
    if (got == 0) break;
    bytes->append(buffer, static_cast<std::size_t>(got));
    // It grew after the check: the limit holds for what would be sent.
    if (static_cast<std::int64_t>(bytes->size()) > max_bytes) {
      return "grew past the limit (attachments.max_bytes) of " + std::to_string(max_bytes) +
             " bytes while being read";
    }
  }
  return std::nullopt;
}

std::string last_part(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::optional<core::FieldError> check_attachment_files(const core::JobSpec& spec,
                                                       std::int64_t max_bytes) {
  for (std::size_t i = 0; i < spec.attachments.size(); ++i) {
    if (auto problem = problem_with(spec.attachments[i], max_bytes, nullptr)) {
      return core::FieldError{.field = "attachments[" + std::to_string(i) + "]",
                              .reason = spec.attachments[i] + ": " + *problem};
    }
  }
  return std::nullopt;
}

std::optional<AttachmentFile> read_attachment(const std::string& path, std::int64_t max_bytes,
                                              std::string* reason) {
  AttachmentFile file{.name = last_part(path)};
  if (auto problem = problem_with(path, max_bytes, &file.bytes)) {
    if (reason != nullptr) *reason = path + ": " + *problem;
    return std::nullopt;
  }
  return file;
}

}  // namespace devin_orch::app
