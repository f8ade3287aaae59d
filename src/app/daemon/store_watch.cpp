// inotify on the database, its WAL and (for files created later) their directory, read on the
// daemon's event loop (see the header).
#include "devin_orch/app/daemon/store_watch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace devin_orch::app {
namespace {

namespace net = boost::asio;

class InotifyStoreWatch final : public StoreWatch {
 public:
  InotifyStoreWatch(net::io_context& io, int fd, int directory_watch,
                    std::filesystem::path database, std::function<void()> on_write)
      : descriptor_{io, fd},
        directory_watch_{directory_watch},
        database_{std::move(database)},
        wal_{database_.string() + "-wal"},
        database_name_{database_.filename().string()},
        wal_name_{wal_.filename().string()},
        on_write_{std::move(on_write)} {
    watch_file(database_, database_watch_);
    watch_file(wal_, wal_watch_);
  }

  void read_next() {
    descriptor_.async_read_some(
        net::buffer(buffer_), [this](const boost::system::error_code& error, std::size_t size) {
          // Stopped (the handler may run after this object is gone: touch nothing) or the
          // descriptor broke, in which case the once-a-second look still finds every commit.
          if (error) return;
          if (touches_store(buffer_.data(), size)) on_write_();
          read_next();
        });
  }

  void stop() override {
    boost::system::error_code ignored;
    descriptor_.cancel(ignored);
    descriptor_.close(ignored);
  }

  bool take_pending() override {
    if (!descriptor_.is_open()) return false;
    // Not buffer_: a read the reactor already did may sit there, its handler not yet run.
    alignas(inotify_event) std::array<char, 4096> events;
    bool touched = false;
    for (;;) {
      const ssize_t got = ::read(descriptor_.native_handle(), events.data(), events.size());
      if (got <= 0) break;  // EAGAIN: all read (the descriptor is non-blocking)
      touched = touches_store(events.data(), static_cast<std::size_t>(got)) || touched;
    }
    return touched;
  }

  ~InotifyStoreWatch() override { stop(); }

 private:
  // Writes are watched on the two files themselves, not on the directory, where every line
  // of a log file kept beside the database would wake the loop too. A file that does not
  // exist yet (the WAL, before the first connection) is watched once it is created.
  void watch_file(const std::filesystem::path& path, int& watch) {
    const int added = inotify_add_watch(descriptor_.native_handle(), path.c_str(), IN_MODIFY);
    if (added >= 0) watch = added;
  }

  bool touches_store(const char* events, std::size_t size) {
    bool touched = false;
    for (std::size_t offset = 0; offset + sizeof(inotify_event) <= size;) {
      inotify_event event{};
      std::memcpy(&event, events + offset, sizeof event);
      const char* name = events + offset + sizeof event;
      const std::string_view file = event.len > 0 ? std::string_view{name} : std::string_view{};
      if ((event.mask & IN_Q_OVERFLOW) != 0) {
        touched = true;  // events were dropped, so assume the worst
      } else if (event.wd == directory_watch_) {
        // Created or renamed into place: a new file to watch, and a write is coming.
        if (file == database_name_) {
          watch_file(database_, database_watch_);
          touched = true;
        } else if (file == wal_name_) {
          watch_file(wal_, wal_watch_);
          touched = true;
        }
      } else if (event.wd == database_watch_ || event.wd == wal_watch_) {
        if ((event.mask & IN_MODIFY) != 0) touched = true;
        // The file is gone (deleted, or replaced by a rename): its watch went with it.
        if ((event.mask & IN_IGNORED) != 0) {
          (event.wd == database_watch_ ? database_watch_ : wal_watch_) = -1;
        }
      }
      offset += sizeof event + event.len;
    }
    return touched;
  }

  net::posix::stream_descriptor descriptor_;
  int directory_watch_;
  int database_watch_ = -1;
  int wal_watch_ = -1;
  std::filesystem::path database_;
  std::filesystem::path wal_;
  std::string database_name_;
  std::string wal_name_;
  std::function<void()> on_write_;
  alignas(inotify_event) std::array<char, 4096> buffer_{};
};

}  // namespace

result<std::unique_ptr<StoreWatch>> StoreWatch::start(net::io_context& io,
                                                      const std::string& database_path,
                                                      std::function<void()> on_write) {
  // SQLite keeps the WAL next to the file a symlinked database path points to: watch there.
  std::error_code ignored;
  std::filesystem::path path = std::filesystem::weakly_canonical(database_path, ignored);
  if (path.empty()) path = database_path;
  std::filesystem::path directory = path.parent_path();
  if (directory.empty()) directory = ".";
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return boost::system::error_code{errno, boost::system::system_category()};
  const int directory_watch = inotify_add_watch(fd, directory.c_str(), IN_CREATE | IN_MOVED_TO);
  if (directory_watch < 0) {
    const int error = errno;
    ::close(fd);
    return boost::system::error_code{error, boost::system::system_category()};
  }
  auto watch = std::make_unique<InotifyStoreWatch>(io, fd, directory_watch, path,
                                                   std::move(on_write));
  watch->read_next();
  return std::unique_ptr<StoreWatch>{std::move(watch)};
}

}  // namespace devin_orch::app
