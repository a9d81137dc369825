#pragma once
// The raw log: every accepted message as it arrived, with what ingestion did with it — the
// lineage of the samples it became. One per shard under <data_dir>/raw/shard-<i>:
//
//   <first id>.active                          the segment being written
//   <first id>-<last id>-<last received>.log   sealed (size or age), waiting for compression
//   <first id>-<last id>-<last received>.zst   sealed and compressed (zstd), kept for the retention
//   spare-<first id>.free                      a compressed segment's file, kept to be written over
//                                              as a later active segment (freeing it cost a TRIM
//                                              that stalled the WAL's fsyncs on `discard` mounts)
//
// A record is [u32 length][u32 crc32c][body]; a torn tail (kill -9 mid-write) is cut at open.
// Entries are written once per round of the shard's event loop, before the round's samples
// go to the WAL, and synced with the WAL's policy (kill -9 loses nothing written; power loss
// at most one sync interval, like the WAL). Message ids are (shard << 48) | sequence, unique
// across shards and restarts.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "fieldline/core/env.h"
#include "fieldline/core/result.h"

namespace fieldline::ingest {

struct RawEntry {
  uint64_t id = 0;
  int64_t received_ns = 0;
  std::string device;
  std::string transport;
  std::string format;  // the decoder's label (see format_label)
  int64_t contract_version = 0;
  std::vector<int64_t> calibrations;  // calibration records applied
  std::vector<std::string> metrics;   // metrics it stored, sorted
  int64_t min_ts = 0, max_ts = 0;     // of its samples
  uint32_t samples = 0, flagged = 0;
  std::string payload;
  // What the device reported about itself (firmware, gateway), which became series tags.
  std::vector<std::pair<std::string, std::string>> reported;
};

// What add() writes: the same fields as views, so the ingest path builds no strings.
struct RawEntryView {
  int64_t received_ns = 0;
  std::string_view device, transport, format;
  int64_t contract_version = 0;
  std::span<const int64_t> calibrations;
  std::span<const std::string_view> metrics;  // sorted, unique
  int64_t min_ts = 0, max_ts = 0;
  uint32_t samples = 0, flagged = 0;
  std::string_view payload;
  std::span<const std::pair<std::string, std::string>> reported;
};

struct RawLogOptions {
  uint64_t segment_bytes = 64ull << 20;
  int64_t segment_age_ns = 3600LL * 1'000'000'000;
  int64_t retention_ns = 7LL * 86400 * 1'000'000'000;  // 0: keep forever
};

// Decodes the whole records at the start of a segment's bytes, stopping at the first torn or
// damaged one, or at one whose id is below `first_id` or not above its predecessor's (the
// stale tail of a recycled file); returns how many bytes they span. (The reader of recovery
// and scans; a fuzz target.)
size_t decode_raw_records(std::string_view data, const std::function<void(RawEntry)>& each, uint64_t first_id = 0);
// The same, telling `each` where its record ends in `data` (a long scan can let go of what it read).
size_t decode_raw_records(std::string_view data, const std::function<void(RawEntry, size_t end)>& each, uint64_t first_id);
// Where the same records end, by their framing, checksums and ids alone (their bodies are not
// decoded), telling `each` where each one ends.
size_t raw_records_end(std::string_view data, uint64_t first_id, const std::function<void(size_t end)>& each = {});

class RawLog {
 public:
  static Result<std::unique_ptr<RawLog>> open(core::Env& env, std::string dir, uint32_t shard, RawLogOptions options);
  ~RawLog();

  // Buffers the entry for the next flush() and returns the id it gets.
  uint64_t add(const RawEntryView& entry);
  // Writes what is buffered to the active segment, in one write.
  Status flush();
  // Bytes written since the last sync_requested(): what a sync would write back.
  uint64_t unsynced_bytes() const { return unsynced_bytes_; }
  void sync_requested() { unsynced_bytes_ = 0; }
  // The newest id written to a segment file (0: none yet).
  uint64_t flushed_through() const { return flushed_through_; }
  Status sync();
  // The active segment, for a sync off the owner's thread (a sync may overlap appends; the
  // shared handle keeps the file open until that sync is done, whatever the owner does).
  std::shared_ptr<core::WritableFile> active_file() const { return active_; }
  // Seals the active segment when it is big or old enough, with what the buffer holds written
  // to it first (a write and a rename: no wait for the disk); returns it for seal() off the
  // owner's thread.
  struct Sealed {
    std::string path;
    std::shared_ptr<core::WritableFile> file;  // still open: synced and closed by seal
  };
  std::optional<Sealed> rotate_if_due(int64_t now_ns);
  // Sealed segments that still wait for compression (after a restart).
  std::vector<std::string> pending_compression() const;
  static Status compress(core::Env& env, const std::string& sealed_path);
  // Syncs and closes a segment rotate_if_due() sealed (its messages are then as durable as
  // the sync policy promises); compress() it afterwards, when there is CPU to spare.
  static Status seal(core::Env& env, Sealed sealed);
  // Deletes sealed segments whose last message is older than the retention.
  Status expire(int64_t now_ns);
  const std::string& dir() const { return dir_; }

  // Reads the segments of `dir` (any thread; tolerates segments that disappear meanwhile) and
  // returns the entries `match` accepts, newest first, at most `limit`. `first_id`, when set,
  // skips segments that cannot hold it.
  static Result<std::vector<RawEntry>> scan(core::Env& env, const std::string& dir,
                                            const std::function<bool(const RawEntry&)>& match, size_t limit,
                                            std::optional<uint64_t> id = std::nullopt);
  // The entries with after < id <= through that `match` accepts, oldest first, reading only
  // the segments that can hold such ids and whose newest message was received at or after
  // `received_since` (any thread).
  static Status scan_range(core::Env& env, const std::string& dir, uint64_t after, uint64_t through, int64_t received_since,
                           const std::function<bool(const RawEntry&)>& match, const std::function<void(RawEntry)>& each);

 private:
  RawLog(core::Env& env, std::string dir, uint32_t shard, RawLogOptions options);
  Status start_segment(int64_t now_ns);

  core::Env& env_;
  std::string dir_;
  uint32_t shard_;
  RawLogOptions options_;
  uint64_t next_seq_ = 1;
  std::shared_ptr<core::WritableFile> active_;
  uint64_t active_first_ = 0, active_last_ = 0;
  uint64_t flushed_through_ = 0;
  uint64_t unsynced_bytes_ = 0;
  int64_t active_started_ns_ = 0, active_last_received_ = 0;
  std::string buffer_;
};

}  // namespace fieldline::ingest
