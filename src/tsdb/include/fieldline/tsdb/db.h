#pragma once
// Db: one time-series database (a WAL, an in-memory head and immutable blocks) in one
// directory. The platform runs one Db per shard.
//
// Lifecycle: open() replays the WAL into the head; close() syncs the WAL. Threading: a Db is
// owned by one thread (its shard); every method must be called from it. Only the durable
// callback runs elsewhere (the WAL's flusher thread).
//
// Errors: append() rejects single samples with out_of_order, too_old, duplicate_conflict or
// type_mismatch and stores the rest; it fails as a whole with disk_full when the disk-usage
// limit is reached, or with the Env's error / wal_failed when the log cannot be written.
// Nothing a failed append() touched is acknowledged.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fieldline/core/env.h"
#include "fieldline/core/result.h"
#include "fieldline/tsdb/block.h"
#include "fieldline/tsdb/chunk.h"
#include "fieldline/tsdb/query.h"
#include "fieldline/tsdb/types.h"
#include "fieldline/tsdb/wal.h"

namespace fieldline::tsdb {

// Retention for the series a selector matches (first matching rule wins; series no rule
// matches keep DbOptions' defaults). Applied by rewriting or dropping whole blocks.
struct RetentionRule {
  Selector selector;
  int64_t raw_ns = 0;     // raw samples
  int64_t rollup_ns = 0;  // 1-minute and 1-hour rollups
};
// Parses "SELECTOR raw=DURATION [rollups=DURATION]; ..." e.g.
// '{site="lab"} raw=7d rollups=90d; {profile="energy-meter"} raw=400d'. An omitted duration
// takes the default given.
Result<std::vector<RetentionRule>> parse_retention_rules(std::string_view text, int64_t default_raw_ns,
                                                         int64_t default_rollup_ns);

struct DbOptions {
  WalOptions wal;
  int64_t block_range_ns = 2LL * 3600 * 1'000'000'000;
  int64_t out_of_order_window_ns = 3600LL * 1'000'000'000;
  int64_t retention_ns = 30LL * 86400 * 1'000'000'000;         // raw samples
  int64_t rollup_retention_ns = 400LL * 86400 * 1'000'000'000;  // 1-minute and 1-hour rollups
  std::vector<RetentionRule> retention_rules;
  uint64_t max_disk_bytes = 0;                                  // 0: unlimited
  uint64_t min_free_bytes = 0;
  // Fault injection (tests): called at named steps of the write, flush and compaction paths;
  // an error return aborts the operation there, as a crash would.
  std::function<Status(std::string_view step)> crash_point;
};

struct SampleIn {
  SeriesRef ref = 0;
  int64_t ts = 0;
  Value value;
};

struct SampleRejection {
  uint32_t index = 0;  // into the appended span
  Error error;
};

struct AppendResult {
  uint64_t lsn = 0;  // durable once the durable callback reports >= lsn (0: nothing written)
  uint32_t accepted = 0;
  uint32_t duplicates = 0;  // identical resends, dropped silently
  std::vector<SampleRejection> rejected;  // in index order
};

struct SeriesInfo {
  SeriesKey key;
  ValueType type = ValueType::float64;
  int64_t min_ts = 0, max_ts = 0;
};

struct DbStats {
  uint64_t head_series = 0, head_samples = 0, head_chunks = 0, head_bytes = 0;
  uint64_t blocks = 0, block_bytes = 0, block_samples = 0;
  uint64_t wal_bytes_written = 0, wal_syncs = 0, wal_sync_ns_total = 0;
  uint64_t disk_full_rejections = 0;
  int64_t persisted_until = 0;
  bool disk_full = false;
};

struct ReplayReport {
  WalReplayStats wal;
  uint64_t samples = 0;
  uint64_t skipped_persisted = 0;  // already in a block
  int64_t duration_ns = 0;
};

// A block cut in progress (see Db::prepare_cut).
struct CutJob;
struct CutJobDeleter {
  void operator()(CutJob* job) const;
};
using CutJobPtr = std::unique_ptr<CutJob, CutJobDeleter>;
// A compaction in progress (see Db::prepare_compaction).
struct CompactJob;
struct CompactJobDeleter {
  void operator()(CompactJob* job) const;
};
using CompactJobPtr = std::unique_ptr<CompactJob, CompactJobDeleter>;
// A replacement in progress (see Db::prepare_replace).
struct ReplaceJob;
struct ReplaceJobDeleter {
  void operator()(ReplaceJob* job) const;
};
using ReplaceJobPtr = std::unique_ptr<ReplaceJob, ReplaceJobDeleter>;

struct ReplaceResult {
  uint64_t lsn = 0;  // the head's part is durable once the durable callback reports >= lsn
  uint64_t removed = 0, written = 0;  // samples taken out of the range and put in
  uint32_t blocks_rewritten = 0;
};

class Db {
 public:
  static Result<std::unique_ptr<Db>> open(core::Env& env, std::string dir, DbOptions options,
                                          Wal::DurableCallback on_durable);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Finds or creates the series; the reference stays valid for the life of the Db.
  // A new series is written to the WAL with the next append.
  // Takes labels by view: finding an existing series allocates nothing (the ingest path
  // resolves every sample through here).
  Result<SeriesRef> series(SeriesLabels key, ValueType type);
  ValueType series_type(SeriesRef ref) const;
  SeriesKey series_key(SeriesRef ref) const;

  Result<AppendResult> append(std::span<const SampleIn> samples);

  // Cuts full time ranges of the head into blocks, truncates the WAL, compacts blocks and
  // applies retention. Call periodically (the platform does every few seconds).
  Status maintain(int64_t now_ns);

  // A block cut in three steps, so that the expensive middle one can run off the owner's
  // thread (a 2-hour block of 1,000 1 Hz series takes about a second to encode and write):
  //   prepare_cut (owner): snapshots the head's data of the next due block and fences its
  //     range off (later samples before its end are too old), or returns null when no block
  //     is due or a cut is already in progress; `force` cuts whatever the head holds;
  //   run_cut (any thread): encodes and writes the block; touches only the job;
  //   finish_cut (owner): publishes the block, drops its data from the head and checkpoints
  //     the WAL, or on failure lifts the fence (the data stayed in the head and the WAL).
  // maintain() and flush_head() run all three in line.
  CutJobPtr prepare_cut(bool force = false);
  // `cancel`, when set, makes a long run stop early with an error (shutdown).
  static Status run_cut(CutJob& job, const std::atomic<bool>* cancel = nullptr);
  Status finish_cut(CutJobPtr job, const Status& run_status);
  // Compaction in the same three steps: prepare (owner: picks the next complete window of
  // blocks to merge, or null when none is due or a cut or compaction is in progress), run
  // (any thread: reads the immutable source blocks and writes the merged one), finish
  // (owner: lists the new block and deletes the sources). Retention waits while a
  // compaction runs, since it may rewrite the sources.
  CompactJobPtr prepare_compaction();
  static Status run_compaction(CompactJob& job, const std::atomic<bool>* cancel = nullptr);
  Status finish_compaction(CompactJobPtr job, const Status& run_status);
  // Replacing a device's samples in a time range (reprocessing after a decoder or contract
  // change): afterwards [from, to) of the device's series holds exactly the given samples,
  // which may belong to series the range did not have (a new contract version tags new
  // series). Three steps, since rewriting the blocks the range reaches can take a while:
  //   prepare_replace (owner): checks the range and the samples (refs of the device's series,
  //     their types, times inside the range), takes the blocks the range reaches and holds
  //     off cuts, compaction and retention until finish; busy while another job runs;
  //   run_replace (any thread): writes each reached block again without the device's old
  //     samples in the range and with the new ones (and new blocks where the persisted part
  //     of the range had none); touches only the job;
  //   finish_replace (owner): puts the new blocks in place of their sources, then logs the
  //     head's part of the range as one WAL record and applies it. `late` are samples of the
  //     device that reached the head since prepare and belong in the range too.
  // Each block swap is atomic (a new block names its source, as compaction's do), and so is
  // the head's part, but the whole is not: a crash in between leaves the range partly
  // replaced, and running the replacement again completes it.
  Result<ReplaceJobPtr> prepare_replace(const std::string& device, int64_t from, int64_t to, std::vector<SampleIn> samples);
  static Status run_replace(ReplaceJob& job, const std::atomic<bool>* cancel = nullptr);
  Result<ReplaceResult> finish_replace(ReplaceJobPtr job, const Status& run_status, std::span<const SampleIn> late = {});
  // All three in line (tests, tools).
  Result<ReplaceResult> replace(const std::string& device, int64_t from, int64_t to, std::vector<SampleIn> samples);
  // Retention and the disk check: the part of maintain() after block cuts and compaction.
  Status maintain_blocks(int64_t now_ns);
  // Persists the whole head into blocks now (import, tests).
  Status flush_head();
  Status sync_wal() { return wal_->sync_now(); }

  std::vector<SeriesInfo> select(const Selector& selector) const;
  // Raw samples of one series in [from, to), head and blocks merged.
  Result<std::vector<Sample>> read(const SeriesKey& key, int64_t from, int64_t to) const;
  Result<AggregateResult> aggregate(const AggregateQuery& query) const;
  // Metric names of a device with their value types.
  std::vector<std::pair<std::string, ValueType>> metrics_of(const std::string& device) const;

  DbStats stats() const;
  const ReplayReport& replay_report() const { return replay_; }
  uint64_t durable_lsn() const { return wal_->durable_lsn(); }
  const std::vector<std::unique_ptr<BlockReader>>& blocks() const { return blocks_; }
  const std::string& dir() const { return dir_; }
  Status close();

  struct MemSeries;

 private:
  Db(core::Env& env, std::string dir, DbOptions options);
  Status replay();
  Status load_blocks();
  Status apply_wal_record(WalRecordType type, std::string_view payload);
  Status check_disk(bool force);
  // WAL records declaring the series created since the last append, framed onto `out`.
  void frame_unlogged_series(std::string& out) const;
  // Adds to the head without logging; REQUIRES: sample type matches.
  Status insert(MemSeries& s, int64_t ts, const Value& v, bool& duplicate);
  // Deletes the WAL segments whose samples are all in blocks (all older than the fence).
  Status truncate_wal();
  Status apply_retention(int64_t now_ns);
  // Raw and rollup retention of a series.
  std::pair<int64_t, int64_t> retention_of(SeriesLabels key) const;
  // by_key_: the slot of `key` (hash `hash`), holding its ref or 0 where it would go.
  size_t find_slot(uint32_t hash, SeriesLabels key) const;
  // The head's series with these labels, or null.
  const MemSeries* head_series(SeriesLabels key) const;
  void collect(const MemSeries& s, int64_t from, int64_t to, std::vector<Sample>& out) const;
  // The head's part of a replacement, live or replayed: the device's head samples in
  // [from, to) give way to `samples` (sorted by series, then time; none before the fence).
  // Returns the samples removed.
  uint64_t apply_replace(const std::string& device, int64_t from, int64_t to, std::span<const SampleIn> samples);
  // Empties the series' head and refills it with `samples` (time order, no duplicates).
  void refill(MemSeries& s, const std::vector<Sample>& samples);
  // Turns a sparse series' head minutes back on, rebuilt from its head, when the head now
  // holds at least kMinSamplesPerRollup samples per minute of its span.
  void rebuild_minutes_if_dense(MemSeries& s) const;
  int64_t block_start(int64_t ts) const;
  Status crash_point(std::string_view step) const {
    return options_.crash_point ? options_.crash_point(step) : Status{};
  }

  core::Env& env_;
  std::string dir_, wal_dir_, block_dir_;
  DbOptions options_;
  std::unique_ptr<Wal> wal_;
  std::deque<MemSeries> series_;  // index = ref - 1; a deque: stable, no allocation per series
  // Series by canonical key: open addressing over refs (0 = empty), at most half full; the
  // key is compared through the series' interned labels, so nothing is stored twice.
  std::vector<uint32_t> by_key_;
  std::unordered_map<std::string, std::vector<uint32_t>> by_device_;  // refs
  std::unordered_set<std::string> metric_names_;
  std::set<Tags> tag_sets_;
  std::vector<SeriesRef> unlogged_;  // created since the last append: log them with it
  std::vector<std::unique_ptr<BlockReader>> blocks_;  // sorted by min_ts
  int64_t persisted_until_ = INT64_MIN;  // samples before this live in blocks
  int64_t head_max_ts_ = INT64_MIN;
  int64_t head_min_ts_ = INT64_MAX;
  bool disk_full_ = false;
  bool cut_pending_ = false;
  bool compaction_pending_ = false;
  bool replace_pending_ = false;
  std::map<uint32_t, int64_t> segment_max_ts_;  // WAL segment -> newest sample time logged in it
  int64_t last_disk_check_ns_ = 0;
  uint64_t disk_full_rejections_ = 0;
  ReplayReport replay_;
  std::string scratch_;
};

}  // namespace fieldline::tsdb
