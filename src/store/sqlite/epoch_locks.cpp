// EpochLocks: OFD byte-range locks (F_OFD_SETLK / F_OFD_GETLK), one byte per epoch. OFD locks
// belong to the open file, not the process, so two stores in one process exclude each other too.
#include "epoch_locks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devin_orch::store {
namespace {

struct flock byte_of(std::int64_t epoch, short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>(epoch);
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

void EpochLocks::hold(std::int64_t epoch) {
  if (held_ == epoch) return;
  let_go();
  if (epoch < 0 || !open_file()) return;
  struct flock lock = byte_of(epoch, F_WRLCK);
  if (::fcntl(fd_, F_OFD_SETLK, &lock) == 0) held_ = epoch;
}

void EpochLocks::let_go() {
  if (!held_ || fd_ < 0) return;
  struct flock lock = byte_of(*held_, F_UNLCK);
  ::fcntl(fd_, F_OFD_SETLK, &lock);
  held_.reset();
}

bool EpochLocks::provably_abandoned(std::int64_t epoch) {
  if (epoch < 0 || !open_file()) return false;
  struct flock probe = byte_of(epoch, F_WRLCK);
  if (::fcntl(fd_, F_OFD_GETLK, &probe) != 0) return false;
  return probe.l_type == F_UNLCK;
}

}  // namespace devin_orch::store
