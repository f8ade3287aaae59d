// The files a job attaches, on this machine: whether each is usable (a readable regular file
// within attachments.max_bytes) when the job is read, and its bytes when the daemon uploads it.
#pragma once

#include "devin_orch/core/job.hpp"
#include "devin_orch/core/job_validation.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace devin_orch::app {

struct AttachmentFile {
  std::string name;   // the file's own name (the path's last part), as the upload names it
  std::string bytes;
};

// The first attachment of `spec` that cannot be uploaded, as "attachments[i]: reason".
std::optional<core::FieldError> check_attachment_files(const core::JobSpec& spec,
                                                       std::int64_t max_bytes);

// The file's name and bytes; nullopt with `reason` ("no such file", "is 12 bytes; the limit
// ...") when it cannot be read or is too large. Never blocks on a FIFO or device.
std::optional<AttachmentFile> read_attachment(const std::string& path, std::int64_t max_bytes,
                                              std::string* reason);

}  // namespace devin_orch::app
