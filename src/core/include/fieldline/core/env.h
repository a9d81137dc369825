#pragma once
// Env: every file and clock access of the storage engine goes through this interface
// (LevelDB's Env), so tests can inject short writes, I/O errors, ENOSPC and crashes.
//
// Thread-safety: an Env is safe to use from many threads; a WritableFile is owned by one
// thread at a time, except that sync() may run on a flusher thread while the owner appends
// (the POSIX implementation relies on write(2) and fdatasync(2) being safe to overlap).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fieldline/core/errc.h"
#include "fieldline/core/result.h"

namespace fieldline::core {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all bytes or returns an error (a short write is retried until done).
  virtual Status append(std::span<const char> data) = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual Status sync() = 0;
  virtual Status close() = 0;
  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

// A read-only view of a whole file, mapped into memory. The bytes stay valid for the life
// of the object.
class MappedFile {
 public:
  virtual ~MappedFile() = default;
  virtual std::span<const char> bytes() const = 0;
  virtual const std::string& path() const = 0;
  // A hint: the bytes before `end` will not be read again soon, so their memory may go back
  // (reading them again reads the file). A pass over a large file calls it as it goes, or the
  // whole file would count in the process's resident memory until the mapping is dropped.
  virtual void done_with(size_t end) const { (void)end; }
};

class Env {
 public:
  virtual ~Env() = default;

  // Opens a file for appending; truncates it first when `truncate` is set.
  virtual Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path, bool truncate) = 0;
  // Opens an existing file for writing over it from its start, keeping its blocks (a recycled
  // log segment: no blocks freed, so no TRIM on file systems mounted with `discard`, and no
  // allocation on the way); size() counts the bytes written. What lies past them is stale.
  virtual Result<std::unique_ptr<WritableFile>> overwrite_writable(const std::string& path) = 0;
  virtual Result<std::string> read_file(const std::string& path) = 0;
  virtual Result<std::unique_ptr<MappedFile>> map_file(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove(const std::string& path) = 0;
  virtual Status remove_all(const std::string& path) = 0;
  virtual Status create_dirs(const std::string& path) = 0;
  // fsync of a directory, so that a rename or create inside it is durable.
  virtual Status sync_dir(const std::string& path) = 0;
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
  // Names (not paths) of the entries in a directory, sorted.
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual Result<uint64_t> file_size(const std::string& path) = 0;
  // Bytes used by all regular files below `path`.
  virtual Result<uint64_t> disk_usage(const std::string& path) = 0;
  // Bytes available to unprivileged writers on the filesystem holding `path`.
  virtual Result<uint64_t> disk_available(const std::string& path) = 0;

  // Wall clock, nanoseconds since the Unix epoch.
  virtual int64_t now_ns() = 0;
  // Monotonic clock, nanoseconds from an arbitrary origin.
  virtual int64_t monotonic_ns() = 0;
};

// The real filesystem and clocks.
std::unique_ptr<Env> make_posix_env();

// Wraps another Env for tests: fails operations on demand and simulates a crash by cutting
// every file written through it back to the length it had at its last sync().
class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env& base);
  ~FaultInjectionEnv() override;

  // The next `count` appends after `after_appends` more successful ones fail with `error`.
  void fail_appends(int after_appends, int count, Errc error);
  // Every sync fails with an I/O error while set.
  void fail_syncs(bool fail);
  // Simulates power loss: unsynced bytes of every file written through this Env are dropped.
  // Files must be closed by their owners first (the engine is destroyed before calling this).
  Status drop_unsynced();
  // Simulates the process dying now: every later write, sync, rename or remove through this
  // Env fails, so destructors cannot make anything durable. Call drop_unsynced() and
  // restart() afterwards to get the state a restarted process would see.
  void crash();
  void restart();
  // Current wall clock can be overridden for deterministic tests (0 = pass through).
  void set_now_ns(int64_t now) { fixed_now_ns_ = now; }

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path, bool truncate) override;
  // Tests see a recycled file as a truncated one: its crash model tracks lengths, not contents.
  Result<std::unique_ptr<WritableFile>> overwrite_writable(const std::string& path) override { return open_writable(path, true); }
  Result<std::string> read_file(const std::string& path) override { return base_.read_file(path); }
  Result<std::unique_ptr<MappedFile>> map_file(const std::string& path) override { return base_.map_file(path); }
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status remove_all(const std::string& path) override;
  Status create_dirs(const std::string& path) override;
  Status sync_dir(const std::string& path) override;
  Status truncate(const std::string& path, uint64_t size) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override { return base_.list_dir(path); }
  bool exists(const std::string& path) override { return base_.exists(path); }
  Result<uint64_t> file_size(const std::string& path) override { return base_.file_size(path); }
  Result<uint64_t> disk_usage(const std::string& path) override { return base_.disk_usage(path); }
  Result<uint64_t> disk_available(const std::string& path) override { return base_.disk_available(path); }
  int64_t now_ns() override { return fixed_now_ns_ != 0 ? fixed_now_ns_ : base_.now_ns(); }
  int64_t monotonic_ns() override { return base_.monotonic_ns(); }

  struct State;

 private:
  bool is_crashed() const;
  Env& base_;
  std::unique_ptr<State> state_;
  int64_t fixed_now_ns_ = 0;
};

// Joins two path parts with exactly one '/'.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace fieldline::core
