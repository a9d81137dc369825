#pragma once
// The raw log: every accepted message as it arrived, with what ingestion did with it — the
// lineage of the samples it became. One per shard under <data_dir>/raw/shard-<i>:
//
//   <first id>.active                          the segment being written
//   <first id>-<last id>-<last received>.log   sealed (size or age), waiting for compression
//   <first id>-<last id>-<last received>.zst   sealed and compressed (zstd), kept for the retention
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
#include <string>
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
};

struct RawLogOptions {
  uint64_t segment_bytes = 64ull << 20;
  int64_t segment_age_ns = 3600LL * 1'000'000'000;
  int64_t retention_ns = 7LL * 86400 * 1'000'000'000;  // 0: keep forever
};

// Decodes the whole records at the start of a segment's bytes, stopping at the first torn or
// damaged one; returns how many bytes they span. (The reader of recovery and scans; a fuzz
// target.)
size_t decode_raw_records(std::string_view data, const std::function<void(RawEntry)>& each);

class RawLog {
 public:
  static Result<std::unique_ptr<RawLog>> open(core::Env& env, std::string dir, uint32_t shard, RawLogOptions options);
  ~RawLog();

  // Gives the entry its id and buffers it for the next flush().
  uint64_t add(RawEntry& entry);
  // Writes what is buffered to the active segment, in one write.
  Status flush();
  Status sync();
  // Seals the active segment when it is big or old enough; returns sealed segments for
  // compress() (to run off the shard).
  std::vector<std::string> rotate_if_due(int64_t now_ns);
  // Sealed segments that still wait for compression (after a restart).
  std::vector<std::string> pending_compression() const;
  static Status compress(core::Env& env, const std::string& sealed_path);
  // Deletes sealed segments whose last message is older than the retention.
  Status expire(int64_t now_ns);
  const std::string& dir() const { return dir_; }
  uint64_t bytes_written() const { return bytes_written_; }

  // Reads the segments of `dir` (any thread; tolerates segments that disappear meanwhile) and
  // returns the entries `match` accepts, newest first, at most `limit`. `first_id`, when set,
  // skips segments that cannot hold it.
  static Result<std::vector<RawEntry>> scan(core::Env& env, const std::string& dir,
                                            const std::function<bool(const RawEntry&)>& match, size_t limit,
                                            std::optional<uint64_t> id = std::nullopt);

 private:
  RawLog(core::Env& env, std::string dir, uint32_t shard, RawLogOptions options);
  Status start_segment(int64_t now_ns);

  core::Env& env_;
  std::string dir_;
  uint32_t shard_;
  RawLogOptions options_;
  uint64_t next_seq_ = 1;
  std::unique_ptr<core::WritableFile> active_;
  uint64_t active_first_ = 0, active_last_ = 0;
  int64_t active_started_ns_ = 0, active_last_received_ = 0;
  std::string buffer_;
  uint64_t bytes_written_ = 0;
};

}  // namespace fieldline::ingest
