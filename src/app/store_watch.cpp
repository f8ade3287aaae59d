// inotify on the database's directory, read on the daemon's event loop (see the header).
#include "devin_orch/app/store_watch.hpp"

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
  InotifyStoreWatch(net::io_context& io, int fd, std::string database_name,
                    std::function<void()> on_write)
      : descriptor_{io, fd},
        database_name_{std::move(database_name)},
        wal_name_{database_name_ + "-wal"},
        on_write_{std::move(on_write)} {}

  void read_next() {
    descriptor_.async_read_some(
        net::buffer(buffer_), [this](const boost::system::error_code& error, std::size_t size) {
          // Stopped (the handler may run after this object is gone: touch nothing) or the
          // descriptor broke, in which case the once-a-second look still finds every commit.
          if (error) return;
          if (touches_store(size)) on_write_();
          read_next();
        });
  }

  void stop() override {
    boost::system::error_code ignored;
    descriptor_.cancel(ignored);
    descriptor_.close(ignored);
  }

  ~InotifyStoreWatch() override { stop(); }

 private:
  bool touches_store(std::size_t size) const {
    bool touched = false;
    for (std::size_t offset = 0; offset + sizeof(inotify_event) <= size;) {
      inotify_event event{};
      std::memcpy(&event, buffer_.data() + offset, sizeof event);
      const char* name = buffer_.data() + offset + sizeof event;
      const std::string_view file = event.len > 0 ? std::string_view{name} : std::string_view{};
      // IN_Q_OVERFLOW: events were dropped, so assume the worst.
      if ((event.mask & IN_Q_OVERFLOW) != 0 || file == database_name_ || file == wal_name_) {
        touched = true;
      }
      offset += sizeof event + event.len;
    }
    return touched;
  }

  net::posix::stream_descriptor descriptor_;
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
  if (inotify_add_watch(fd, directory.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
    const int error = errno;
    ::close(fd);
    return boost::system::error_code{error, boost::system::system_category()};
  }
  auto watch = std::make_unique<InotifyStoreWatch>(io, fd, path.filename().string(),
                                                   std::move(on_write));
  watch->read_next();
  return std::unique_ptr<StoreWatch>{std::move(watch)};
}

}  // namespace devin_orch::app
