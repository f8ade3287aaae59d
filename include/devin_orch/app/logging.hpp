// Logging set-up: spdlog to stderr, human text or one JSON object per line, without
// timestamps under journald (it adds its own). While an event loop runs, the lines one turn of
// it logs reach stderr in one write.
#pragma once

#include "devin_orch/app/config/config.hpp"

#include <functional>
#include <optional>
#include <string>

namespace devin_orch::app {

// Returns an error message for an unknown level or format.
std::optional<std::string> setup_logging(const LogConfig& log);

// Runs `write` once the event loop has finished the work at hand (asio::post does that).
using PostLogWrite = std::function<void(std::function<void()> write)>;

// While alive, info and debug lines are buffered and written together when the posted write
// runs: a busy daemon logs a few lines per job, and one write(2) per line is a system call
// the event loop waits for each time. A warning or error, or 64 KiB of lines, writes the buffer
// at once, in order. Destruction writes what is left, so a guard must not outlive its loop:
// create it after the io_context.
class DeferredLogWrites {
 public:
  explicit DeferredLogWrites(PostLogWrite post);
  ~DeferredLogWrites();
  DeferredLogWrites(const DeferredLogWrites&) = delete;
  DeferredLogWrites& operator=(const DeferredLogWrites&) = delete;
};

}  // namespace devin_orch::app
