#pragma once
// Write-ahead log (spec: docs/format/wal.md). Segments of framed records, each with a
// CRC32C; group commit by a flusher thread under the configured fsync policy.
//
// Threading: one owner thread calls append()/rotate()/remove_segments_before(); the flusher
// thread syncs and reports the durable LSN through the callback given to open(). The callback
// runs on the flusher thread and must only hand the LSN to the owner (post, not work).
//
// Errors: append() returns core no_space / io_error from the Env; a partial record is cut off
// again so the log stays readable. A failed sync marks the log failed: the durable LSN stops
// advancing, failed() turns true and every later append() returns wal_failed, because after
// a failed fsync the kernel may have dropped the dirty pages (nothing unsynced can be trusted).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fieldline/core/config.h"
#include "fieldline/core/env.h"
#include "fieldline/core/result.h"

namespace fieldline::tsdb {

enum class WalRecordType : uint8_t { series = 1, samples = 2, replace = 3 };

inline constexpr char kWalMagic[4] = {'F', 'L', 'W', 'L'};
inline constexpr uint32_t kWalVersion = 1;
inline constexpr size_t kWalSegmentHeader = 8;
inline constexpr size_t kWalRecordHeader = 9;  // u32 length, u32 crc32c, u8 type
inline constexpr uint32_t kWalMaxRecord = 64u << 20;

// Appends one framed record to `out`.
void wal_frame(WalRecordType type, std::string_view payload, std::string& out);

struct WalReplayStats {
  uint32_t segments = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t dropped_bytes = 0;           // torn or corrupt bytes skipped
  std::vector<std::string> problems;    // "file at offset N: reason"
};

struct WalOptions {
  core::FsyncPolicy fsync = core::FsyncPolicy::interval;
  int64_t fsync_interval_ns = 10'000'000;
  uint64_t segment_bytes = 64u << 20;
};

// Reads every record of every segment under `dir` in order. A torn or corrupt record ends its
// segment (reported in the stats, the rest of the segment is skipped); a torn tail of the last
// segment is cut off when `repair` is set so appends after it stay readable.
// `on_record` also learns the segment each record came from.
Result<WalReplayStats> wal_replay(core::Env& env, const std::string& dir, bool repair,
                                  const std::function<Status(WalRecordType, std::string_view, uint32_t segment)>& on_record);

class Wal {
 public:
  using DurableCallback = std::function<void(uint64_t durable_lsn)>;

  // Opens a new segment after the existing ones (replay them first with wal_replay).
  // `preamble`, when given, returns framed records written at the start of every segment
  // (the owner's series definitions), so that any older segment can be deleted without
  // orphaning a reference.
  static Result<std::unique_ptr<Wal>> open(core::Env& env, std::string dir, WalOptions options,
                                           DurableCallback on_durable, std::function<std::string()> preamble = nullptr);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Writes framed records (built with wal_frame) and returns their LSN; durable once the
  // callback reports an LSN >= it. Rotates to a new segment when the current one is full.
  Result<uint64_t> append(std::string_view framed);
  // Starts a new segment and returns its sequence number.
  Result<uint32_t> rotate();
  // Deletes whole segments numbered below `seq`.
  Status remove_segments_before(uint32_t seq);
  // Makes everything appended durable now, on the calling thread, whatever the policy
  // (checkpoints, shutdown).
  Status sync_now();
  // Stops the flusher after a final sync.
  void close();

  uint64_t written_lsn() const { return written_lsn_.load(std::memory_order_acquire); }
  uint64_t durable_lsn() const { return durable_lsn_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  uint32_t current_segment() const { return current_seq_; }
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }
  // Histogram source: total and max fsync time in ns.
  uint64_t sync_ns_total() const { return sync_ns_total_.load(std::memory_order_relaxed); }
  const std::string& dir() const { return dir_; }

 private:
  Wal(core::Env& env, std::string dir, WalOptions options, DurableCallback on_durable);
  Status open_segment(uint32_t seq);
  void flusher_loop();
  void sync_pending(bool force);  // force: fsync even under the `never` policy

  core::Env& env_;
  std::string dir_;
  WalOptions options_;
  DurableCallback on_durable_;

  uint32_t current_seq_ = 0;
  std::function<std::string()> preamble_;
  uint64_t preamble_end_ = kWalSegmentHeader;  // where the current segment's own records start
  // Shared with the flusher, which may be syncing it while the owner rotates.
  std::shared_ptr<core::WritableFile> current_;

  std::mutex mu_;  // guards retired_, stop_ and the flusher's wait (never held during I/O)
  std::condition_variable cv_;
  std::vector<std::shared_ptr<core::WritableFile>> retired_;
  std::atomic<bool> sync_requested_{false};
  bool stop_ = false;

  std::atomic<uint64_t> written_lsn_{0};
  std::atomic<uint64_t> durable_lsn_{0};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> sync_ns_total_{0};
  std::mutex sync_mu_;  // serializes sync_pending between the flusher and sync_now
  uint64_t synced_lsn_ = 0;  // guarded by sync_mu_
  std::thread flusher_;
};

std::string wal_segment_name(uint32_t seq);
// Sequence numbers of the segments in `dir`, ascending.
Result<std::vector<uint32_t>> wal_segments(core::Env& env, const std::string& dir);

}  // namespace fieldline::tsdb
