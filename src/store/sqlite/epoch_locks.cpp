// EpochLocks: OFD byte-range locks (F_OFD_SETLK / F_OFD_GETLK), one byte per lease and epoch.
// OFD locks belong to the open file, not the process, so two stores in one process exclude each
// other too.
#include "epoch_locks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devin_orch::store {
namespace {

// FNV-1a of the name in the high bits, the epoch's low 31 in the low ones: leases never share
// a byte (but for a hash collision, which only makes a successor wait for the lapse).
struct flock byte_of(std::string_view name, std::int64_t epoch, short type) {
  std::uint32_t hash = 2166136261U;
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619U;
  }
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>((static_cast<std::uint64_t>(hash & 0x7fffffffU) << 31U) |
                                    (static_cast<std::uint64_t>(epoch) & 0x7fffffffU));
  lock.l_len = 1;
  return lock;
}

}  // namespace

EpochLocks::~EpochLocks() {
  if (fd_ >= 0) ::close(fd_);
}

bool EpochLocks::open_file() {
  if (fd_ >= 0) return true;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  return fd_ >= 0;
}

void EpochLocks::hold(std::string_view name, std::int64_t epoch) {
  if (const auto it = held_.find(name); it != held_.end() && it->second == epoch) return;
  let_go(name);
  if (epoch < 0 || !open_file()) return;
  struct flock lock = byte_of(name, epoch, F_WRLCK);
  if (::fcntl(fd_, F_OFD_SETLK, &lock) == 0) held_.emplace(std::string(name), epoch);
}

void EpochLocks::let_go(std::string_view name) {
  const auto it = held_.find(name);
  if (it == held_.end() || fd_ < 0) return;
  struct flock lock = byte_of(name, it->second, F_UNLCK);
  ::fcntl(fd_, F_OFD_SETLK, &lock);
  held_.erase(it);
}

bool EpochLocks::provably_abandoned(std::string_view name, std::int64_t epoch) {
  if (epoch < 0 || !open_file()) return false;
  struct flock probe = byte_of(name, epoch, F_WRLCK);
  if (::fcntl(fd_, F_OFD_GETLK, &probe) != 0) return false;
  return probe.l_type == F_UNLCK;
}

}  // namespace devin_orch::store
