#pragma once
// Immutable blocks (spec: docs/format/block.md): all chunks of a time range [mint, maxt) for
// many series, an index of series to chunk offsets, per-series 1-minute and 1-hour rollups,
// a CRC32C on every chunk and on the index. Written atomically: temporary file, fsync,
// rename, fsync of the directory. Read through mmap.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fieldline/core/env.h"
#include "fieldline/core/result.h"
#include "fieldline/tsdb/chunk.h"
#include "fieldline/tsdb/types.h"

namespace fieldline::tsdb {

inline constexpr char kBlockMagic[4] = {'F', 'L', 'B', 'K'};
// Version 2 stores rollups bit-packed (encode_rollups); version 1 blocks are still read.
inline constexpr uint32_t kBlockVersion = 3;
inline constexpr size_t kBlockFooter = 24;

struct ChunkMeta {
  int64_t min_ts = 0, max_ts = 0;
  uint32_t count = 0;
  uint64_t offset = 0;  // of the chunk's frame in the file
};

struct BlockSeries {
  SeriesKey key;
  ValueType type = ValueType::float64;
  std::vector<ChunkMeta> chunks;
  uint64_t rollup_1m = 0;  // frame offsets, 0 = none
  uint64_t rollup_1h = 0;
};

struct BlockMeta {
  int64_t min_ts = 0, max_ts = 0;  // covers [min_ts, max_ts)
  uint64_t samples = 0;
  uint32_t level = 1;
  bool raw_dropped = false;           // raw chunks removed by retention, rollups remain
  std::vector<std::string> sources;   // blocks this one replaces (compaction)
};

// Input of the writer: one series with its encoded chunks (in time order) and rollups.
struct SeriesChunks {
  SeriesKey key;
  ValueType type = ValueType::float64;
  std::vector<std::string> chunks;
  std::vector<ChunkMeta> metas;  // offsets ignored
  std::vector<RollupPoint> rollup_1m, rollup_1h;
};

// Writes a block file series by series, so a cut or a compaction holds one series at a time
// rather than the whole block: frames go to dir/name.tmp as they come (buffered), the index
// stays in memory until finish(), which writes it with the footer, fsyncs, renames to
// dir/name and fsyncs the directory. Abandoned before finish(), nothing is published (the
// .tmp is deleted on the next open). Calls `crash_point` between steps (tests).
class BlockWriter {
 public:
  static Result<std::unique_ptr<BlockWriter>> create(core::Env& env, std::string dir, std::string name,
                                                     std::function<Status(std::string_view)> crash_point);
  Status add(const SeriesChunks& series);
  // `meta.samples` and `meta.sources` as the caller counted them; series as added.
  Status finish(const BlockMeta& meta);

 private:
  BlockWriter() = default;
  Status flush();
  core::Env* env_ = nullptr;
  std::string dir_, name_;
  std::function<Status(std::string_view)> crash_point_;
  std::unique_ptr<core::WritableFile> file_;
  std::string buffer_;     // frames not yet appended to the file
  uint64_t offset_ = 0;    // file offset of buffer_'s first byte
  std::string entries_;    // index entries of the series added so far
  uint64_t series_count_ = 0;
};

// The same for a block whose series are all at hand (tests, retention rewrites).
Status write_block(core::Env& env, const std::string& dir, const std::string& name, const BlockMeta& meta,
                   const std::vector<SeriesChunks>& series, const std::function<Status(std::string_view)>& crash_point);

// An open block. Thread-safe for reads (immutable after open).
class BlockReader {
 public:
  // Maps the file and checks the footer and the index checksum; chunks are checked as read.
  static Result<std::unique_ptr<BlockReader>> open(core::Env& env, const std::string& path);

  const BlockMeta& meta() const { return meta_; }
  const std::vector<BlockSeries>& series() const { return series_; }
  const BlockSeries* find(const std::string& canonical_key) const;
  // The bytes of a chunk after checking its CRC; the error names file and offset.
  Result<std::string_view> chunk(uint64_t offset) const;
  // `extremes`: see decode_rollups (blocks of versions 1 and 2 always decode them).
  Result<std::vector<RollupPoint>> rollups(uint64_t offset, bool extremes = true) const;
  uint64_t file_bytes() const { return file_->bytes().size(); }
  const std::string& path() const { return file_->path(); }
  std::string name() const;
  // Checks every chunk's CRC and decodes it; returns the problems found ("file at offset N: why").
  std::vector<std::string> verify() const;

 private:
  std::unique_ptr<core::MappedFile> file_;
  uint32_t version_ = kBlockVersion;
  BlockMeta meta_;
  std::vector<BlockSeries> series_;
  std::unordered_map<std::string, size_t> by_key_;
};

// "device\0metric\0k\0v\0..." used as a hash key.
std::string canonical_key(SeriesLabels key);

}  // namespace fieldline::tsdb
