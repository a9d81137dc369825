// Db: record encoding, cutting the head into blocks, WAL checkpoints, compaction, retention.

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cctype>
#include <cstring>
#include <map>
#include <set>

#include "db_internal.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

void encode_series_record(SeriesRef ref, const Db::MemSeries& s, std::string& out) {
  core::put_uvarint(out, ref);
  out.push_back(static_cast<char>(s.type));
  core::put_string(out, *s.device);
  core::put_string(out, *s.metric);
  core::put_uvarint(out, s.tags->size());
  for (const auto& [k, v] : *s.tags) {
    core::put_string(out, k);
    core::put_string(out, v);
  }
}

Result<SeriesRecord> decode_series_record(core::ByteReader& r) {
  SeriesRecord rec;
  auto ref = r.uvarint();
  auto type = r.u8();
  auto dev = r.string(), met = r.string();
  auto ntags = r.uvarint();
  if (!ref || !type || *type < 1 || *type > 4 || !dev || !met || !ntags || *ntags > r.remaining()) {
    return make_error(Errc::corrupt, "malformed series record");
  }
  rec.ref = *ref;
  rec.type = static_cast<ValueType>(*type);
  rec.key.device = *dev;
  rec.key.metric = *met;
  for (uint64_t i = 0; i < *ntags; ++i) {
    auto k = r.string(), v = r.string();
    if (!k || !v) return make_error(Errc::corrupt, "malformed series tags");
    rec.key.tags.emplace_back(*k, *v);
  }
  return rec;
}

void encode_value(const Value& v, std::string& out) {
  switch (v.index()) {
    case 0: {
      uint64_t bits;
      double d = std::get<0>(v);
      std::memcpy(&bits, &d, 8);
      core::put_u64(out, bits);
      break;
    }
    case 1: core::put_varint(out, std::get<1>(v)); break;
    case 2: out.push_back(std::get<2>(v) ? 1 : 0); break;
    case 3: core::put_string(out, std::get<3>(v)); break;
  }
}

Result<Value> decode_value(ValueType type, core::ByteReader& r) {
  switch (type) {
    case ValueType::float64: {
      auto bits = r.u64();
      if (!bits) break;
      double d;
      std::memcpy(&d, &*bits, 8);
      return Value(d);
    }
    case ValueType::int64: {
      auto v = r.varint();
      if (!v) break;
      return Value(*v);
    }
    case ValueType::boolean: {
      auto v = r.u8();
      if (!v) break;
      return Value(*v != 0);
    }
    case ValueType::string: {
      auto v = r.string();
      if (!v) break;
      return Value(std::string(*v));
    }
  }
  return make_error(Errc::corrupt, "truncated value");
}

std::optional<Value> Db::MemSeries::find(int64_t ts) const {
  auto pos = std::lower_bound(ooo.begin(), ooo.end(), ts, [](const Sample& a, int64_t t) { return a.ts < t; });
  if (pos != ooo.end() && pos->ts == ts) return pos->value;
  auto scan = [&](std::string_view bytes) -> std::optional<Value> {
    auto it = ChunkIterator::open(bytes);
    if (!it) return std::nullopt;
    while (it->next()) {
      if (it->ts() == ts) return it->value();
      if (it->ts() > ts) break;
    }
    return std::nullopt;
  };
  for (const auto& c : sealed) {
    if (ts >= c.min_ts && ts <= c.max_ts) {
      if (auto v = scan(c.bytes)) return v;
    }
  }
  if (open && open->count() > 0 && ts >= open->min_ts() && ts <= open->max_ts()) return scan(open->finish());
  return std::nullopt;
}

std::string block_name(int64_t min_ts, int64_t max_ts, uint32_t level, bool raw_dropped) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 "-L%u%s.blk", static_cast<uint64_t>(min_ts),
                static_cast<uint64_t>(max_ts), level, raw_dropped ? "r" : "");
  return buf;
}

void add_rollups(const std::vector<Sample>& samples, std::vector<RollupPoint>& r1m, std::vector<RollupPoint>& r1h) {
  for (auto* spec : {&r1m, &r1h}) {
    int64_t step = spec == &r1m ? core::kNsPerMinute : core::kNsPerHour;
    // Compensated (Neumaier) sums: a bucket of readings with two decimals then sums to the
    // correctly rounded decimal, which the packed rollup encoding stores in a few bits where
    // a sum carrying rounding noise would need its full mantissa.
    double compensation = 0;
    auto settle = [&] {
      if (!spec->empty()) spec->back().sum += compensation;
      compensation = 0;
    };
    for (const auto& s : samples) {
      double v;
      if (!numeric_value(s.value, v) || std::isnan(v)) continue;
      int64_t b = floor_to(s.ts, step);
      if (spec->empty() || spec->back().ts != b) {
        settle();
        spec->push_back({b, v, v, 0, 0});
      }
      auto& p = spec->back();
      p.min = std::min(p.min, v);
      p.max = std::max(p.max, v);
      double t = p.sum + v;
      compensation += std::fabs(p.sum) >= std::fabs(v) ? (p.sum - t) + v : (v - t) + p.sum;
      p.sum = t;
      ++p.count;
    }
    settle();
  }
}

void encode_samples(ValueType type, const std::vector<Sample>& samples, SeriesChunks& out) {
  // Chunks of kMaxChunkSamples. Numbers take the packed encoding, which picks decimal scaling
  // or XOR per chunk; bools and strings keep the head's encoding.
  const bool packed = type == ValueType::float64 || type == ValueType::int64;
  for (size_t begin = 0; begin < samples.size(); begin += kMaxChunkSamples) {
    size_t end = std::min(samples.size(), begin + kMaxChunkSamples);
    std::span<const Sample> part(samples.data() + begin, end - begin);
    if (packed) {
      out.chunks.push_back(encode_packed_chunk(type, part));
    } else {
      ChunkEncoder enc(type);
      for (const auto& s : part) enc.append(s.ts, s.value);
      out.chunks.push_back(enc.finish());
    }
    out.metas.push_back({samples[begin].ts, samples[end - 1].ts, static_cast<uint32_t>(end - begin), 0});
  }
}

Status Db::load_blocks() {
  FL_TRY(names, env_.list_dir(block_dir_));
  std::vector<std::unique_ptr<BlockReader>> loaded;
  for (const auto& name : names) {
    std::string path = core::join_path(block_dir_, name);
    if (name.ends_with(".tmp")) {
      // An interrupted write: never published, so nothing in it was relied on.
      FL_TRY_STATUS(env_.remove(path));
      continue;
    }
    if (!name.ends_with(".blk")) continue;
    FL_TRY(block, BlockReader::open(env_, path));
    loaded.push_back(std::move(block));
  }
  // A compaction that crashed after publishing leaves its sources behind: drop them.
  std::set<std::string> replaced;
  for (const auto& b : loaded) {
    for (const auto& s : b->meta().sources) replaced.insert(s);
  }
  for (auto& b : loaded) {
    if (replaced.count(b->name())) {
      std::string path = b->path();
      b.reset();
      FL_TRY_STATUS(env_.remove(path));
      continue;
    }
    persisted_until_ = std::max(persisted_until_, b->meta().max_ts);
    blocks_.push_back(std::move(b));
  }
  std::sort(blocks_.begin(), blocks_.end(),
            [](const auto& a, const auto& b) { return a->meta().min_ts < b->meta().min_ts; });
  return ok();
}

Status copy_series(const BlockReader& b, const BlockSeries& s, bool raw, bool rollups, SeriesChunks& out) {
  out.key = s.key;
  out.type = s.type;
  if (raw) {
    for (const auto& c : s.chunks) {
      FL_TRY(bytes, b.chunk(c.offset));
      out.chunks.emplace_back(bytes);
      out.metas.push_back(c);
    }
  }
  if (rollups) {
    for (auto [offset, points] : {std::pair{s.rollup_1m, &out.rollup_1m}, std::pair{s.rollup_1h, &out.rollup_1h}}) {
      if (offset == 0) continue;
      FL_TRY(decoded, b.rollups(offset));
      points->insert(points->end(), decoded.begin(), decoded.end());
    }
  }
  return ok();
}

void CutJobDeleter::operator()(CutJob* job) const { delete job; }

CutJobPtr Db::prepare_cut(bool force) {
  if (cut_pending_ || replace_pending_ || head_min_ts_ == INT64_MAX || head_max_ts_ == INT64_MIN) return nullptr;
  const int64_t r = options_.block_range_ns;
  // Hold back the newest data past the block by the out-of-order window (and at least half
  // a block), so that late samples still find their range in the head.
  const int64_t hold = std::max(options_.out_of_order_window_ns, r / 2);
  int64_t start = block_start(head_min_ts_);
  if (!force && head_max_ts_ < start + r + hold) return nullptr;
  CutJobPtr job(new CutJob);
  job->env = &env_;
  job->block_dir = block_dir_;
  job->crash_point = options_.crash_point;
  job->start = start;
  job->end = start + r;
  for (auto& s : series_) {
    // Chunks never span a block boundary: an open chunk that ends before the block's end is
    // complete (nothing before the end is accepted once the fence is up).
    if (s.open && s.open->count() > 0 && s.open->max_ts() < job->end) s.seal();
    CutJob::Part part;
    for (const auto& c : s.sealed) {
      if (c.max_ts < job->end) part.chunks.push_back(c.bytes);
    }
    for (const auto& x : s.ooo) {
      if (x.ts < job->end) part.ooo.push_back(x);
    }
    if (part.chunks.empty() && part.ooo.empty()) continue;
    part.key = s.labels().key();
    part.type = s.type;
    job->parts.push_back(std::move(part));
  }
  job->previous_persisted_until = persisted_until_;
  persisted_until_ = std::max(persisted_until_, job->end);
  cut_pending_ = true;
  return job;
}

Status Db::run_cut(CutJob& job, const std::atomic<bool>* cancel) {
  BlockMeta meta{job.start, job.end, 0, 1, false, {}};
  const std::string name = block_name(job.start, job.end, 1, false);
  std::unique_ptr<BlockWriter> writer;  // opened with the first series that has samples
  std::vector<Sample> samples;
  for (const auto& part : job.parts) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      return core::make_error(core::Errc::unsupported, "block cut cancelled (shutting down); its data stays in the WAL");
    }
    samples.clear();
    for (const auto& bytes : part.chunks) {
      FL_TRY(decoded, decode_chunk(bytes));
      samples.insert(samples.end(), decoded.begin(), decoded.end());
    }
    if (!part.ooo.empty()) {
      samples.insert(samples.end(), part.ooo.begin(), part.ooo.end());
      sort_unique(samples);
    }
    if (samples.empty()) continue;
    SeriesChunks sc;
    sc.key = part.key;
    sc.type = part.type;
    encode_samples(part.type, samples, sc);
    add_rollups(samples, sc.rollup_1m, sc.rollup_1h);
    // A rollup that does not at least halve the points costs more than the raw chunks it
    // summarizes (sparse series): drop it; queries then read the raw chunks.
    if (sc.rollup_1m.size() * 2 > samples.size()) sc.rollup_1m.clear();
    if (sc.rollup_1h.size() * 2 > samples.size()) sc.rollup_1h.clear();
    meta.samples += samples.size();
    if (!writer) {
      FL_TRY(created, BlockWriter::create(*job.env, job.block_dir, name, job.crash_point));
      writer = std::move(created);
    }
    FL_TRY_STATUS(writer->add(sc));
  }
  if (!writer) return ok();
  FL_TRY_STATUS(writer->finish(meta));
  FL_TRY(block, BlockReader::open(*job.env, core::join_path(job.block_dir, name)));
  job.block = std::move(block);
  return ok();
}

Status Db::finish_cut(CutJobPtr job, const Status& run_status) {
  cut_pending_ = false;
  if (!run_status) {
    // Nothing was published: the data is still in the head and the WAL; lift the fence.
    persisted_until_ = job->previous_persisted_until;
    return run_status;
  }
  if (job->block) {
    blocks_.push_back(std::move(job->block));
    std::sort(blocks_.begin(), blocks_.end(),
              [](const auto& a, const auto& b) { return a->meta().min_ts < b->meta().min_ts; });
  }
  FL_TRY_STATUS(crash_point("cut.block_published"));
  // Drop what is now in the block from the head: everything before the fence.
  const int64_t end = job->end;
  head_min_ts_ = INT64_MAX;
  for (auto& s : series_) {
    auto keep = std::remove_if(s.sealed.begin(), s.sealed.end(), [&](const SealedChunk& c) { return c.max_ts < end; });
    s.sealed.erase(keep, s.sealed.end());
    s.ooo.erase(std::remove_if(s.ooo.begin(), s.ooo.end(), [&](const Sample& x) { return x.ts < end; }), s.ooo.end());
    if (s.minutes_off) {
      // A new head range: a series that has become dense gets its rollups back (rebuilt from
      // its head); a sparse one, the common case, costs no decoding here.
      rebuild_minutes_if_dense(s);
    } else {
      auto& m = s.minutes;
      m.erase(m.begin(), std::lower_bound(m.begin(), m.end(), end, [](const RollupPoint& p, int64_t t) { return p.ts < t; }));
      if (m.capacity() > 2 * m.size() + 16) m.shrink_to_fit();
    }
    head_min_ts_ = std::min(head_min_ts_, s.min_ts());
  }
  return truncate_wal();
}

Status Db::truncate_wal() {
  // Segments go whole, oldest first, once every sample logged in them is older than the
  // fence (so in a durable block); each segment starts with the series definitions, so no
  // later one depends on them. When even the current segment is all persisted (a quiet
  // shard, an import), start a new one so that it can go too.
  auto holds_unpersisted = [&](uint32_t seq) {
    auto it = segment_max_ts_.find(seq);
    return it != segment_max_ts_.end() && it->second >= persisted_until_;
  };
  if (!holds_unpersisted(wal_->current_segment())) FL_TRY_STATUS(wal_->rotate());
  uint32_t keep_from = wal_->current_segment();
  for (const auto& [seq, max_ts] : segment_max_ts_) {
    if (seq < keep_from && max_ts >= persisted_until_) {
      keep_from = seq;
      break;
    }
  }
  FL_TRY_STATUS(wal_->remove_segments_before(keep_from));
  segment_max_ts_.erase(segment_max_ts_.begin(), segment_max_ts_.lower_bound(keep_from));
  return ok();
}

Status Db::maintain(int64_t now_ns) {
  FL_TRY_STATUS(check_disk(true));
  while (auto job = prepare_cut()) {
    auto st = run_cut(*job);
    FL_TRY_STATUS(finish_cut(std::move(job), st));
  }
  while (auto job = prepare_compaction()) {
    auto st = run_compaction(*job);
    FL_TRY_STATUS(finish_compaction(std::move(job), st));
  }
  return maintain_blocks(now_ns);
}

Status Db::maintain_blocks(int64_t now_ns) {
  // A running compaction reads its source blocks, which retention may rewrite or delete.
  if (!compaction_pending_ && !replace_pending_) FL_TRY_STATUS(apply_retention(now_ns));
  return check_disk(true);
}

Status Db::flush_head() {
  if (cut_pending_ || replace_pending_) return make_error(Errc::busy, "flush_head: a block cut or replacement is in progress");
  while (auto job = prepare_cut(true)) {
    auto st = run_cut(*job);
    FL_TRY_STATUS(finish_cut(std::move(job), st));
  }
  return ok();
}

void CompactJobDeleter::operator()(CompactJob* job) const { delete job; }

CompactJobPtr Db::prepare_compaction() {
  // A cut in flight has fenced a range whose block is not listed yet: its window must wait.
  if (cut_pending_ || compaction_pending_ || replace_pending_) return nullptr;
  // Level 2 merges the 2-hour blocks of an aligned 12-hour window, level 3 those of 3 days,
  // once the window is complete. Blocks are disjoint in time, so series chunks concatenate.
  const int64_t r = options_.block_range_ns;
  for (uint32_t level = 2; level <= 3; ++level) {
    int64_t window = level == 2 ? r * 6 : r * 36;
    std::map<int64_t, std::vector<const BlockReader*>> groups;
    for (const auto& b : blocks_) {
      const auto& m = b->meta();
      if (m.level >= level || m.raw_dropped) continue;
      int64_t w = floor_to(m.min_ts, window);
      if (m.max_ts <= w + window) groups[w].push_back(b.get());
    }
    for (auto& [w, sources] : groups) {
      if (sources.size() < 2 || w + window > persisted_until_) continue;
      CompactJobPtr job(new CompactJob);
      job->env = &env_;
      job->block_dir = block_dir_;
      job->crash_point = options_.crash_point;
      job->level = level;
      job->window_start = w;
      job->window_end = w + window;
      job->sources = std::move(sources);
      compaction_pending_ = true;
      return job;
    }
  }
  return nullptr;
}

Status Db::run_compaction(CompactJob& job, const std::atomic<bool>* cancel) {
  BlockMeta meta{job.window_start, job.window_end, 0, job.level, false, {}};
  // Which source blocks hold each series (sources are in time order, so its chunks come out
  // in order); the series are then merged and written one at a time, so the compaction holds
  // one series' data, not the block's.
  std::map<std::string, std::vector<std::pair<const BlockReader*, const BlockSeries*>>> where;
  for (const BlockReader* source : job.sources) {
    meta.samples += source->meta().samples;
    meta.sources.push_back(source->name());
    for (const auto& s : source->series()) where[canonical_key(s.key)].emplace_back(source, &s);
  }
  std::string name = block_name(job.window_start, job.window_end, job.level, false);
  if (job.crash_point) FL_TRY_STATUS(job.crash_point("compact.begin"));
  FL_TRY(writer, BlockWriter::create(*job.env, job.block_dir, name, job.crash_point));
  for (const auto& [k, parts] : where) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      return core::make_error(core::Errc::unsupported, "compaction cancelled (shutting down)");
    }
    SeriesChunks sc;
    // A rollup resolution survives the merge only if every source block had it for the series.
    bool has_1m = true, has_1h = true;
    for (const auto& [b, s] : parts) {
      if (!s->chunks.empty()) {
        has_1m = has_1m && s->rollup_1m != 0;
        has_1h = has_1h && s->rollup_1h != 0;
      }
      FL_TRY_STATUS(copy_series(*b, *s, true, true, sc));
    }
    // Re-encode into full chunks: the small chunks of short blocks waste their headers
    // and first samples (a sparse series gets several times smaller).
    if (sc.chunks.size() > 1 && sc.metas.front().count < kMaxChunkSamples) {
      std::vector<Sample> all;
      for (const auto& bytes : sc.chunks) {
        FL_TRY(part, decode_chunk(bytes));
        all.insert(all.end(), part.begin(), part.end());
      }
      SeriesChunks fresh;
      encode_samples(sc.type, all, fresh);
      sc.chunks = std::move(fresh.chunks);
      sc.metas = std::move(fresh.metas);
    }
    if (!has_1m) sc.rollup_1m.clear();
    if (!has_1h) sc.rollup_1h.clear();
    FL_TRY_STATUS(writer->add(sc));
  }
  FL_TRY_STATUS(writer->finish(meta));
  if (job.crash_point) FL_TRY_STATUS(job.crash_point("compact.published"));
  FL_TRY(block, BlockReader::open(*job.env, core::join_path(job.block_dir, name)));
  job.block = std::move(block);
  return ok();
}

Status Db::finish_compaction(CompactJobPtr job, const Status& run_status) {
  compaction_pending_ = false;
  // On failure nothing was published (or a published block names its sources, which open
  // resolves): the sources stay listed.
  if (!run_status) return run_status;
  std::set<const BlockReader*> gone(job->sources.begin(), job->sources.end());
  std::vector<std::string> paths;
  std::vector<std::unique_ptr<BlockReader>> kept;
  for (auto& b : blocks_) {
    if (gone.count(b.get())) paths.push_back(b->path());
    else kept.push_back(std::move(b));
  }
  kept.push_back(std::move(job->block));
  blocks_ = std::move(kept);
  std::sort(blocks_.begin(), blocks_.end(),
            [](const auto& a, const auto& b) { return a->meta().min_ts < b->meta().min_ts; });
  for (const auto& p : paths) FL_TRY_STATUS(env_.remove(p));
  return env_.sync_dir(block_dir_);
}

std::pair<int64_t, int64_t> Db::retention_of(SeriesLabels key) const {
  for (const auto& rule : options_.retention_rules) {
    if (rule.selector.matches(key)) return {rule.raw_ns, rule.rollup_ns};
  }
  return {options_.retention_ns, options_.rollup_retention_ns};
}

Status Db::apply_retention(int64_t now_ns) {
  // No series can expire from a block newer than the shortest retention: skip those without
  // looking at their series (this runs on every maintenance tick).
  int64_t shortest = std::min(options_.retention_ns, options_.rollup_retention_ns);
  for (const auto& rule : options_.retention_rules) shortest = std::min({shortest, rule.raw_ns, rule.rollup_ns});
  for (size_t i = 0; i < blocks_.size();) {
    const auto& b = *blocks_[i];
    const auto& m = b.meta();
    if (m.max_ts >= now_ns - shortest) {
      ++i;
      continue;
    }
    // What each series of the block keeps, by its own retention; blocks are rewritten only
    // when something in them expired, and dropped once nothing is left.
    struct Expiry {
      bool raw, rollups;
    };
    std::vector<Expiry> expired;
    bool changed = false, any_raw_dropped = m.raw_dropped;
    for (const auto& s : b.series()) {
      auto [raw_ns, rollup_ns] = retention_of(s.key);
      Expiry e{m.max_ts < now_ns - raw_ns, m.max_ts < now_ns - rollup_ns};
      changed = changed || (e.raw && !s.chunks.empty()) || (e.rollups && (s.rollup_1m != 0 || s.rollup_1h != 0));
      expired.push_back(e);
    }
    if (!changed) {
      ++i;
      continue;
    }
    std::vector<SeriesChunks> kept;
    for (size_t k = 0; k < b.series().size(); ++k) {
      const auto& s = b.series()[k];
      SeriesChunks sc;
      FL_TRY_STATUS(copy_series(b, s, !expired[k].raw, !expired[k].rollups, sc));
      if (expired[k].raw && !s.chunks.empty()) any_raw_dropped = true;
      if (!sc.chunks.empty() || !sc.rollup_1m.empty() || !sc.rollup_1h.empty()) kept.push_back(std::move(sc));
    }
    std::string old_path = b.path();
    if (kept.empty()) {
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
      FL_TRY_STATUS(env_.remove(old_path));
      FL_TRY_STATUS(env_.sync_dir(block_dir_));
      continue;
    }
    BlockMeta meta = m;
    meta.raw_dropped = any_raw_dropped;
    meta.sources = {b.name()};
    meta.samples = 0;
    for (const auto& sc : kept) {
      for (const auto& c : sc.metas) meta.samples += c.count;
    }
    // A fresh name each rewrite: the old block stays valid until the new one is published,
    // and a crash in between leaves the new one, which names the old one as its source.
    std::string name = block_name(m.min_ts, m.max_ts, m.level, true);
    name.insert(name.size() - 4, "-" + std::to_string(now_ns));
    FL_TRY_STATUS(write_block(env_, block_dir_, name, meta, kept, options_.crash_point));
    FL_TRY(block, BlockReader::open(env_, core::join_path(block_dir_, name)));
    blocks_[i] = std::move(block);
    FL_TRY_STATUS(env_.remove(old_path));
    FL_TRY_STATUS(env_.sync_dir(block_dir_));
    ++i;
  }
  return ok();
}

Result<std::vector<RetentionRule>> parse_retention_rules(std::string_view text, int64_t default_raw_ns,
                                                         int64_t default_rollup_ns) {
  std::vector<RetentionRule> rules;
  size_t n = 0;
  while (!text.empty()) {
    size_t end = text.find(';');
    std::string_view part = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++n;
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.front()))) part.remove_prefix(1);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.back()))) part.remove_suffix(1);
    if (part.empty()) continue;
    auto where = [&](const std::string& what) {
      return core::make_error(core::Errc::invalid_argument, "retention rule " + std::to_string(n) + " ('" + std::string(part) + "'): " + what);
    };
    size_t close = part.rfind('}');
    if (close == std::string_view::npos) return where("expected a selector such as {site=\"lab\"} first");
    auto selector = Selector::parse(part.substr(0, close + 1));
    if (!selector) return where(selector.error().context());
    RetentionRule rule{std::move(*selector), default_raw_ns, default_rollup_ns};
    std::string_view rest = part.substr(close + 1);
    bool any = false;
    while (!rest.empty()) {
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      if (rest.empty()) break;
      size_t sp = rest.find(' ');
      std::string_view kv = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos) return where("expected raw=DURATION or rollups=DURATION, got '" + std::string(kv) + "'");
      auto d = core::parse_duration(kv.substr(eq + 1));
      if (!d || *d <= 0) return where("'" + std::string(kv) + "' is not a positive duration");
      if (kv.substr(0, eq) == "raw") rule.raw_ns = *d;
      else if (kv.substr(0, eq) == "rollups") rule.rollup_ns = *d;
      else return where("unknown setting '" + std::string(kv.substr(0, eq)) + "' (raw or rollups)");
      any = true;
    }
    if (!any) return where("give raw=DURATION and/or rollups=DURATION");
    if (rule.rollup_ns < rule.raw_ns) return where("rollups must be kept at least as long as raw samples");
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace fieldline::tsdb
