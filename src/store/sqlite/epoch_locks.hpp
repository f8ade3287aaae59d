// Proof of life for a lease holder on this machine: the holder of lease N at epoch E keeps an
// open-file-description lock on one byte of a file beside the database (its offset made of a
// hash of N and of E), which the kernel drops when the holder dies however it dies. A
// successor that finds the byte free need not wait for the lease to lapse. One store holds
// several leases at once (an organisation's each, and its daemon's registry row). Private to
// the store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace devin_orch::store {

class EpochLocks {
 public:
  explicit EpochLocks(std::string path) : path_{std::move(path)} {}
  ~EpochLocks();
  EpochLocks(const EpochLocks&) = delete;
  EpochLocks& operator=(const EpochLocks&) = delete;

  // Holds the lock of lease `name` at `epoch` (and lets go of that lease's other epoch). Best
  // effort: without it a successor simply waits for the lease to lapse.
  void hold(std::string_view name, std::int64_t epoch);
  void let_go(std::string_view name);
  // True only when no process on this kernel holds the lock of `name` at `epoch`: its holder
  // is gone. False when it is held, or when the file cannot be locked at all (a filesystem
  // without locks).
  bool provably_abandoned(std::string_view name, std::int64_t epoch);

 private:
  bool open_file();

  std::string path_;
  int fd_ = -1;
  std::map<std::string, std::int64_t, std::less<>> held_;  // lease name -> epoch
};

}  // namespace devin_orch::store
