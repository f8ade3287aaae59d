// A SQLite VFS that forwards everything to the default one and counts the fsyncs of WAL files:
// what a test needs to tell which commits reach the disk before the call returns.
#pragma once

#include <sqlite3.h>

#include <utility>

namespace devin_orch::test {

class SyncCountingVfs {
 public:
  // Installs itself as the default VFS: connections opened from now on go through it.
  SyncCountingVfs() {
    base_ = sqlite3_vfs_find(nullptr);
    vfs_ = *base_;
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + base_->szOsFile;
    vfs_.zName = "sync-counting";
    vfs_.pAppData = this;
    vfs_.xOpen = &open;
    sqlite3_vfs_register(&vfs_, 1);
  }
  ~SyncCountingVfs() {
    sqlite3_vfs_unregister(&vfs_);
    sqlite3_vfs_register(base_, 1);
  }
  SyncCountingVfs(const SyncCountingVfs&) = delete;
  SyncCountingVfs& operator=(const SyncCountingVfs&) = delete;

  // fsyncs of WAL files since the last call.
  int take_wal_syncs() { return std::exchange(wal_syncs_, 0); }

  // From now on every fsync of a WAL file fails, as on a disk that returned EIO.
  void fail_wal_syncs() { fail_wal_syncs_ = true; }

 private:
  // Our header, then the base VFS's file object (szOsFile reserves room for both).
  struct File {
    sqlite3_file base;  // pMethods points at our methods
    SyncCountingVfs* owner;
    bool wal;
    sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };

  static File* self(sqlite3_file* file) { return reinterpret_cast<File*>(file); }

  static int open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                  int* out_flags) {
    auto* owner = static_cast<SyncCountingVfs*>(vfs->pAppData);
    auto* wrapped = self(file);
    wrapped->owner = owner;
    wrapped->wal = (flags & SQLITE_OPEN_WAL) != 0;
    wrapped->base.pMethods = nullptr;
    const int rc = owner->base_->xOpen(owner->base_, name, wrapped->real(), flags, out_flags);
    if (wrapped->real()->pMethods == nullptr) return rc;
    owner->methods_ = *wrapped->real()->pMethods;
    owner->methods_.xClose = &close;
    owner->methods_.xRead = [](sqlite3_file* f, void* p, int n, sqlite3_int64 o) {
      return self(f)->real()->pMethods->xRead(self(f)->real(), p, n, o);
    };
    owner->methods_.xWrite = [](sqlite3_file* f, const void* p, int n, sqlite3_int64 o) {
      return self(f)->real()->pMethods->xWrite(self(f)->real(), p, n, o);
    };
    owner->methods_.xTruncate = [](sqlite3_file* f, sqlite3_int64 size) {
      return self(f)->real()->pMethods->xTruncate(self(f)->real(), size);
    };
    owner->methods_.xSync = [](sqlite3_file* f, int flags) {
      if (self(f)->wal) {
        ++self(f)->owner->wal_syncs_;
        if (self(f)->owner->fail_wal_syncs_) return SQLITE_IOERR_FSYNC;
      }
      return self(f)->real()->pMethods->xSync(self(f)->real(), flags);
    };
    owner->methods_.xFileSize = [](sqlite3_file* f, sqlite3_int64* size) {
      return self(f)->real()->pMethods->xFileSize(self(f)->real(), size);
    };
    owner->methods_.xLock = [](sqlite3_file* f, int level) {
      return self(f)->real()->pMethods->xLock(self(f)->real(), level);
    };
    owner->methods_.xUnlock = [](sqlite3_file* f, int level) {
      return self(f)->real()->pMethods->xUnlock(self(f)->real(), level);
    };
    owner->methods_.xCheckReservedLock = [](sqlite3_file* f, int* out) {
      return self(f)->real()->pMethods->xCheckReservedLock(self(f)->real(), out);
    };
    owner->methods_.xFileControl = [](sqlite3_file* f, int op, void* arg) {
      return self(f)->real()->pMethods->xFileControl(self(f)->real(), op, arg);
    };
    owner->methods_.xSectorSize = [](sqlite3_file* f) {
      return self(f)->real()->pMethods->xSectorSize(self(f)->real());
    };
    owner->methods_.xDeviceCharacteristics = [](sqlite3_file* f) {
      return self(f)->real()->pMethods->xDeviceCharacteristics(self(f)->real());
    };
    owner->methods_.xShmMap = [](sqlite3_file* f, int page, int size, int extend,
                                 void volatile** out) {
      return self(f)->real()->pMethods->xShmMap(self(f)->real(), page, size, extend, out);
    };
    owner->methods_.xShmLock = [](sqlite3_file* f, int offset, int n, int flags) {
      return self(f)->real()->pMethods->xShmLock(self(f)->real(), offset, n, flags);
    };
    owner->methods_.xShmBarrier = [](sqlite3_file* f) {
      self(f)->real()->pMethods->xShmBarrier(self(f)->real());
    };
    owner->methods_.xShmUnmap = [](sqlite3_file* f, int remove) {
      return self(f)->real()->pMethods->xShmUnmap(self(f)->real(), remove);
    };
    // No memory-mapped reads: they would hand out the base file's pages behind our back.
    owner->methods_.iVersion = 2;
    owner->methods_.xFetch = nullptr;
    owner->methods_.xUnfetch = nullptr;
    wrapped->base.pMethods = &owner->methods_;
    return rc;
  }

  static int close(sqlite3_file* file) {
    const int rc = self(file)->real()->pMethods->xClose(self(file)->real());
    self(file)->base.pMethods = nullptr;
    return rc;
  }

  sqlite3_vfs* base_ = nullptr;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};
  int wal_syncs_ = 0;
  bool fail_wal_syncs_ = false;
};

}  // namespace devin_orch::test
