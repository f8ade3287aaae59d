// Proof of life for a lease holder on this machine: the holder of epoch E keeps an open-file-
// description lock on byte E of a file beside the database, which the kernel drops when the
// holder dies however it dies. A successor that finds the byte free need not wait for the lease
// to lapse. Private to the store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace devin_orch::store {

class EpochLocks {
 public:
  explicit EpochLocks(std::string path) : path_{std::move(path)} {}
  ~EpochLocks();
  EpochLocks(const EpochLocks&) = delete;
  EpochLocks& operator=(const EpochLocks&) = delete;

  // Holds the lock of `epoch` (and lets go of any other). Best effort: without it a successor
  // simply waits for the lease to lapse.
  void hold(std::int64_t epoch);
  void let_go();
  // True only when no process on this kernel holds `epoch`'s lock: its holder is gone. False
  // when it is held, or when the file cannot be locked at all (a filesystem without locks).
  bool provably_abandoned(std::int64_t epoch);

 private:
  bool open_file();

  std::string path_;
  int fd_ = -1;
  std::optional<std::int64_t> held_;
};

}  // namespace devin_orch::store
