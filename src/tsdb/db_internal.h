#pragma once
// Private parts of Db shared by db.cc, db_blocks.cc and db_query.cc.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fieldline/core/bytes.h"
#include "fieldline/tsdb/chunk.h"
#include "fieldline/tsdb/db.h"

namespace fieldline::tsdb {

struct SealedChunk {
  std::string bytes;
  int64_t min_ts = 0, max_ts = 0;
  uint32_t count = 0;
};

// One series in the head: sealed chunks, the open chunk and out-of-order samples (sorted,
// all older than max_ts and within the window). Chunks never span a block boundary.
// Kept small, since a gateway holds one per sensor reading: labels point into the Db's
// interned names and tag sets, and an idle series holds no encoder.
inline constexpr uint64_t kMinSamplesPerRollup = 10;

struct Db::MemSeries {
  const std::string* device = nullptr;  // a key of Db::by_device_
  const std::string* metric = nullptr;  // in Db::metric_names_
  const Tags* tags = nullptr;           // in Db::tag_sets_
  int64_t max_ts = INT64_MIN;
  uint32_t key_hash = 0;  // of canonical_key, for Db::by_key_ (its ref is its place in Db::series_)
  ValueType type = ValueType::float64;
  bool minutes_off = false;
  std::vector<SealedChunk> sealed;
  std::unique_ptr<ChunkEncoder> open;
  std::vector<Sample> ooo;
  // 1-minute rollups of the head's numeric samples, kept as they arrive (hourly ones are
  // summed from them at query time). A series too sparse for them to pay (under
  // kMinSamplesPerRollup a minute) drops them until the head is next cut.
  std::vector<RollupPoint> minutes;

  SeriesLabels labels() const { return {*device, *metric, *tags}; }
  void roll_up(int64_t ts, const Value& v);
  void seal() {
    if (!open || open->count() == 0) return;
    sealed.push_back({open->finish(), open->min_ts(), open->max_ts(), open->count()});
    open.reset();
  }
  // The stored value at ts, if any (slow path for out-of-order samples).
  std::optional<Value> find(int64_t ts) const;
  int64_t min_ts() const {
    int64_t m = INT64_MAX;
    if (!sealed.empty()) m = sealed.front().min_ts;
    else if (open && open->count() > 0) m = open->min_ts();
    if (!ooo.empty()) m = std::min(m, ooo.front().ts);
    return m;
  }
};

// The start of the `step`-wide interval holding ts (rounding down for negative times too).
inline int64_t floor_to(int64_t ts, int64_t step) {
  int64_t q = ts / step;
  if (ts % step < 0) --q;
  return q * step;
}

// Sorts by time and keeps the first sample of each timestamp.
void sort_unique(std::vector<Sample>& out);

struct CutJob {
  core::Env* env = nullptr;
  std::string block_dir;
  std::function<Status(std::string_view)> crash_point;
  int64_t start = 0, end = 0;
  int64_t previous_persisted_until = 0;
  struct Part {
    SeriesKey key;
    ValueType type = ValueType::float64;
    std::vector<std::string> chunks;  // sealed chunks, all inside [start, end)
    std::vector<Sample> ooo;          // out-of-order samples in [start, end)
  };
  std::vector<Part> parts;
  std::unique_ptr<BlockReader> block;  // run_cut's result (null: nothing to write)
};

struct CompactJob {
  core::Env* env = nullptr;
  std::string block_dir;
  std::function<Status(std::string_view)> crash_point;
  uint32_t level = 2;
  int64_t window_start = 0, window_end = 0;
  std::vector<const BlockReader*> sources;  // stay listed (and mapped) until finish
  std::unique_ptr<BlockReader> block;       // run's result
};

struct ReplaceJob {
  core::Env* env = nullptr;
  std::string block_dir;
  std::function<Status(std::string_view)> crash_point;
  std::string device;
  int64_t from = 0, to = 0;
  int64_t fence = 0;  // [from, fence) is in blocks, [fence, to) in the head
  struct NewSeries {
    SeriesKey key;
    ValueType type = ValueType::float64;
    std::vector<Sample> samples;  // time order
  };
  // A block range the replacement rewrites: an existing block, or a new one where the
  // persisted part of the range had none.
  struct Target {
    const BlockReader* source = nullptr;  // null: a new block
    int64_t start = 0, end = 0;
    uint32_t level = 1;
    std::map<std::string, NewSeries> series;  // by canonical key: the samples it receives
    std::unique_ptr<BlockReader> block;       // run's result (null: the block ends up empty)
    std::string written_path;
  };
  std::vector<Target> targets;
  std::vector<SampleIn> head;  // samples at or after the fence
  uint64_t removed_from_blocks = 0, written_to_blocks = 0;
};

struct SeriesRecord {
  uint64_t ref = 0;
  ValueType type = ValueType::float64;
  SeriesKey key;
};

// Block file name: "<min_ts hex>-<max_ts hex>-L<level>[r].blk".
std::string block_name(int64_t min_ts, int64_t max_ts, uint32_t level, bool raw_dropped);
// 1-minute and 1-hour rollups of samples in time order.
void add_rollups(const std::vector<Sample>& samples, std::vector<RollupPoint>& r1m, std::vector<RollupPoint>& r1h);
// Samples in time order encoded into chunks of kMaxChunkSamples (numbers packed).
void encode_samples(ValueType type, const std::vector<Sample>& samples, SeriesChunks& out);
// Appends a block series' raw chunks and/or rollups to `out` (compaction, retention).
Status copy_series(const BlockReader& b, const BlockSeries& s, bool raw, bool rollups, SeriesChunks& out);

void encode_series_record(SeriesRef ref, const Db::MemSeries& s, std::string& out);
Result<SeriesRecord> decode_series_record(core::ByteReader& r);
void encode_value(const Value& v, std::string& out);
Result<Value> decode_value(ValueType type, core::ByteReader& r);

}  // namespace fieldline::tsdb
