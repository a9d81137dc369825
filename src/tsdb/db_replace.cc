// Db: replacing a device's samples in a time range (reprocessing), in blocks and in the head.

#include <algorithm>
#include <cinttypes>
#include <set>

#include "db_internal.h"
#include "fieldline/core/bytes.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

void ReplaceJobDeleter::operator()(ReplaceJob* job) const { delete job; }

namespace {

bool overlaps(const ChunkMeta& c, int64_t from, int64_t to) { return c.max_ts >= from && c.min_ts < to; }

// The device's series of a block that hold samples in [from, to).
bool touches(const BlockSeries& s, const std::string& device, int64_t from, int64_t to) {
  if (s.key.device != device) return false;
  return std::any_of(s.chunks.begin(), s.chunks.end(), [&](const ChunkMeta& c) { return overlaps(c, from, to); });
}

// A series' chunks and rollups from samples in time order; rollups dropped where they would
// not at least halve the points (as a block cut does).
SeriesChunks encode_series(const SeriesKey& key, ValueType type, const std::vector<Sample>& samples) {
  SeriesChunks sc;
  sc.key = key;
  sc.type = type;
  encode_samples(type, samples, sc);
  add_rollups(samples, sc.rollup_1m, sc.rollup_1h);
  if (sc.rollup_1m.size() * 2 > samples.size()) sc.rollup_1m.clear();
  if (sc.rollup_1h.size() * 2 > samples.size()) sc.rollup_1h.clear();
  return sc;
}

void put_samples(std::span<const SampleIn> samples, std::string& body) {
  core::put_uvarint(body, samples.size());
  int64_t prev_ts = 0;
  for (const auto& s : samples) {
    core::put_uvarint(body, s.ref);
    core::put_varint(body, s.ts - prev_ts);
    prev_ts = s.ts;
    encode_value(s.value, body);
  }
}

}  // namespace

Result<ReplaceJobPtr> Db::prepare_replace(const std::string& device, int64_t from, int64_t to, std::vector<SampleIn> samples) {
  if (!wal_) return make_error(Errc::closed, dir_);
  if (from >= to) return make_error(Errc::invalid_query, "replace: the range's start must come before its end");
  if (cut_pending_ || compaction_pending_ || replace_pending_) {
    return make_error(Errc::busy, "replace: a block cut, compaction or replacement is running in " + dir_);
  }
  for (const auto& s : samples) {
    if (s.ref == 0 || s.ref > series_.size() || *series_[s.ref - 1].device != device) {
      return make_error(Errc::invalid_query, "replace: a sample names a series that is not the device's");
    }
    if (type_of(s.value) != series_[s.ref - 1].type) {
      return make_error(Errc::type_mismatch, "replace: " + series_[s.ref - 1].labels().to_string() + " holds " +
                                                 to_string(series_[s.ref - 1].type) + " values");
    }
    if (s.ts < from || s.ts >= to) {
      return make_error(Errc::invalid_query, "replace: a sample at " + core::format_rfc3339(s.ts) + " lies outside the range");
    }
  }
  ReplaceJobPtr job(new ReplaceJob);
  job->env = &env_;
  job->block_dir = block_dir_;
  job->crash_point = options_.crash_point;
  job->device = device;
  job->from = from;
  job->to = to;
  job->fence = persisted_until_;
  const int64_t persisted_to = std::min(to, persisted_until_);
  // The blocks the persisted part of the range reaches; rollups alone cannot be corrected.
  std::map<int64_t, size_t> target_at;  // block start -> index in targets
  std::vector<char> touched;            // by target: the device has samples there or receives some
  for (const auto& b : blocks_) {
    const auto& m = b->meta();
    if (m.max_ts <= from || m.min_ts >= persisted_to) continue;
    if (m.raw_dropped) {
      return make_error(Errc::invalid_query, "replace: the range reaches " + b->name() +
                                                 ", whose raw samples retention has dropped (only rollups remain)");
    }
    bool has = std::any_of(b->series().begin(), b->series().end(), [&](const BlockSeries& s) { return touches(s, device, from, to); });
    target_at[m.min_ts] = job->targets.size();
    job->targets.push_back({b.get(), m.min_ts, m.max_ts, m.level, {}, nullptr, {}});
    touched.push_back(has);
  }
  std::sort(samples.begin(), samples.end(), [](const SampleIn& a, const SampleIn& b) {
    return a.ref != b.ref ? a.ref < b.ref : a.ts < b.ts;
  });
  for (auto& s : samples) {
    if (s.ts >= persisted_until_) {
      job->head.push_back(std::move(s));
      continue;
    }
    // The block holding ts, or a new one over its block range where the range had none.
    size_t index = SIZE_MAX;
    auto it = target_at.upper_bound(s.ts);
    if (it != target_at.begin() && s.ts < job->targets[std::prev(it)->second].end) index = std::prev(it)->second;
    if (index == SIZE_MAX) {
      const int64_t start = block_start(s.ts);
      index = target_at[start] = job->targets.size();
      job->targets.push_back({nullptr, start, start + options_.block_range_ns, 1, {}, nullptr, {}});
      touched.push_back(true);
    }
    touched[index] = true;
    const MemSeries& ms = series_[s.ref - 1];
    auto& ns = job->targets[index].series[canonical_key(ms.labels())];
    if (ns.samples.empty()) {
      ns.key = ms.labels().key();
      ns.type = ms.type;
    }
    if (!ns.samples.empty() && ns.samples.back().ts == s.ts) continue;  // first value of a time wins
    ns.samples.push_back({s.ts, std::move(s.value)});
  }
  // Blocks the device has nothing in and receives nothing: left alone.
  std::vector<ReplaceJob::Target> targets;
  for (size_t i = 0; i < job->targets.size(); ++i) {
    if (touched[i]) targets.push_back(std::move(job->targets[i]));
  }
  job->targets = std::move(targets);
  replace_pending_ = true;
  return job;
}

Status Db::run_replace(ReplaceJob& job, const std::atomic<bool>* cancel) {
  const std::string suffix = "-rp" + std::to_string(job.env->now_ns());
  for (auto& target : job.targets) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      return core::make_error(core::Errc::unsupported, "replacement cancelled (shutting down)");
    }
    BlockMeta meta{target.start, target.end, 0, target.level, false, {}};
    std::string name = block_name(target.start, target.end, target.level, false);
    name.insert(name.size() - 4, suffix);
    std::unique_ptr<BlockWriter> writer;  // opened with the first series
    auto add = [&](const SeriesChunks& sc) -> Status {
      if (!writer) {
        FL_TRY(created, BlockWriter::create(*job.env, job.block_dir, name, job.crash_point));
        writer = std::move(created);
      }
      for (const auto& c : sc.metas) meta.samples += c.count;
      return writer->add(sc);
    };
    std::set<std::string> merged;  // new series already merged into an existing one
    if (target.source) {
      meta.sources = {target.source->name()};
      for (const auto& s : target.source->series()) {
        const std::string key = canonical_key(s.key);
        auto incoming = target.series.find(key);
        if (!touches(s, job.device, job.from, job.to) && incoming == target.series.end()) {
          // Someone else's series, or the device's outside the range: copied as they are.
          SeriesChunks sc;
          FL_TRY_STATUS(copy_series(*target.source, s, true, true, sc));
          FL_TRY_STATUS(add(sc));
          continue;
        }
        std::vector<Sample> kept;
        for (const auto& c : s.chunks) {
          FL_TRY(bytes, target.source->chunk(c.offset));
          FL_TRY(decoded, decode_chunk(bytes));
          for (auto& x : decoded) {
            if (s.key.device == job.device && x.ts >= job.from && x.ts < job.to) ++job.removed_from_blocks;
            else kept.push_back(std::move(x));
          }
        }
        if (incoming != target.series.end()) {
          job.written_to_blocks += incoming->second.samples.size();
          kept.insert(kept.end(), incoming->second.samples.begin(), incoming->second.samples.end());
          std::sort(kept.begin(), kept.end(), [](const Sample& a, const Sample& b) { return a.ts < b.ts; });
          merged.insert(key);
        }
        if (kept.empty()) continue;
        FL_TRY_STATUS(add(encode_series(s.key, s.type, kept)));
      }
    }
    for (const auto& [key, ns] : target.series) {
      if (merged.count(key)) continue;
      job.written_to_blocks += ns.samples.size();
      FL_TRY_STATUS(add(encode_series(ns.key, ns.type, ns.samples)));
    }
    if (job.crash_point) FL_TRY_STATUS(job.crash_point("replace.block"));
    if (!writer) continue;  // nothing left in the block's range
    FL_TRY_STATUS(writer->finish(meta));
    target.written_path = core::join_path(job.block_dir, name);
    FL_TRY(block, BlockReader::open(*job.env, target.written_path));
    target.block = std::move(block);
  }
  return ok();
}

Result<ReplaceResult> Db::finish_replace(ReplaceJobPtr job, const Status& run_status, std::span<const SampleIn> late) {
  replace_pending_ = false;
  if (!run_status) {
    // Unpublish what was written, so that a restart does not put half the blocks in place.
    for (auto& t : job->targets) {
      t.block.reset();
      if (!t.written_path.empty()) (void)env_.remove(t.written_path);
    }
    (void)env_.sync_dir(block_dir_);
    return run_status.error();
  }
  ReplaceResult result;
  result.removed = job->removed_from_blocks;
  result.written = job->written_to_blocks;
  // The blocks: each new one in place of its source (or the source gone, when nothing is left).
  std::vector<std::string> old_paths;
  for (auto& t : job->targets) {
    ++result.blocks_rewritten;
    auto at = std::find_if(blocks_.begin(), blocks_.end(), [&](const auto& b) { return b.get() == t.source; });
    if (t.source && at != blocks_.end()) {
      old_paths.push_back(t.source->path());
      if (t.block) *at = std::move(t.block);
      else blocks_.erase(at);
    } else if (t.block) {
      blocks_.push_back(std::move(t.block));
    }
  }
  std::sort(blocks_.begin(), blocks_.end(), [](const auto& a, const auto& b) { return a->meta().min_ts < b->meta().min_ts; });
  for (const auto& p : old_paths) FL_TRY_STATUS(env_.remove(p));
  if (!job->targets.empty()) FL_TRY_STATUS(env_.sync_dir(block_dir_));
  FL_TRY_STATUS(crash_point("replace.blocks_published"));

  // The head: one WAL record for the part of the range at or after the fence, then applied.
  std::vector<SampleIn> head = std::move(job->head);
  for (const auto& s : late) {
    if (s.ref == 0 || s.ref > series_.size() || *series_[s.ref - 1].device != job->device) continue;
    if (s.ts >= std::max(job->from, persisted_until_) && s.ts < job->to && type_of(s.value) == series_[s.ref - 1].type) {
      head.push_back(s);
    }
  }
  std::stable_sort(head.begin(), head.end(), [](const SampleIn& a, const SampleIn& b) {
    return a.ref != b.ref ? a.ref < b.ref : a.ts < b.ts;
  });
  const int64_t head_from = std::max(job->from, persisted_until_);
  if (head_from >= job->to) return result;
  scratch_.clear();
  frame_unlogged_series(scratch_);
  std::string payload;
  core::put_string(payload, job->device);
  core::put_varint(payload, head_from);
  core::put_varint(payload, job->to);
  put_samples(head, payload);
  wal_frame(WalRecordType::replace, payload, scratch_);
  FL_TRY_STATUS(crash_point("replace.before_wal"));
  auto lsn = wal_->append(scratch_);
  if (!lsn) {
    if (core::is_no_space(lsn.error())) disk_full_ = true;
    return lsn.error();
  }
  unlogged_.clear();
  int64_t newest = std::min(job->to - 1, std::max(head_max_ts_, head_from));
  for (const auto& s : head) newest = std::max(newest, s.ts);
  auto& segment_max = segment_max_ts_.try_emplace(wal_->current_segment(), INT64_MIN).first->second;
  segment_max = std::max(segment_max, newest);
  result.lsn = *lsn;
  result.removed += apply_replace(job->device, head_from, job->to, head);
  result.written += head.size();
  return result;
}

Result<ReplaceResult> Db::replace(const std::string& device, int64_t from, int64_t to, std::vector<SampleIn> samples) {
  FL_TRY(job, prepare_replace(device, from, to, std::move(samples)));
  auto st = run_replace(*job);
  return finish_replace(std::move(job), st);
}

void Db::refill(MemSeries& s, const std::vector<Sample>& samples) {
  s.sealed.clear();
  s.open.reset();
  s.ooo.clear();
  std::vector<RollupPoint>().swap(s.minutes);
  s.minutes_off = false;
  s.max_ts = INT64_MIN;
  for (const auto& x : samples) {
    if (s.open && (s.open->full() || block_start(x.ts) != block_start(s.open->min_ts()))) s.seal();
    if (!s.open) s.open = std::make_unique<ChunkEncoder>(s.type);
    s.open->append(x.ts, x.value);
    s.roll_up(x.ts, x.value);
    s.max_ts = x.ts;
    head_max_ts_ = std::max(head_max_ts_, x.ts);
  }
}

uint64_t Db::apply_replace(const std::string& device, int64_t from, int64_t to, std::span<const SampleIn> samples) {
  uint64_t removed = 0;
  std::vector<Sample> all;
  auto rebuild = [&](SeriesRef ref, std::span<const SampleIn> incoming) {
    MemSeries& s = series_[ref - 1];
    all.clear();
    collect(s, INT64_MIN, INT64_MAX, all);
    const size_t before = all.size();
    std::erase_if(all, [&](const Sample& x) { return x.ts >= from && x.ts < to; });
    removed += before - all.size();
    for (const auto& x : incoming) {
      if (x.ts >= persisted_until_ && type_of(x.value) == s.type) all.push_back({x.ts, x.value});
    }
    std::stable_sort(all.begin(), all.end(), [](const Sample& a, const Sample& b) { return a.ts < b.ts; });
    all.erase(std::unique(all.begin(), all.end(), [](const Sample& a, const Sample& b) { return a.ts == b.ts; }), all.end());
    refill(s, all);
  };
  std::set<SeriesRef> done;
  for (size_t i = 0; i < samples.size();) {
    size_t j = i;
    while (j < samples.size() && samples[j].ref == samples[i].ref) ++j;
    if (samples[i].ref != 0 && samples[i].ref <= series_.size()) {
      rebuild(samples[i].ref, samples.subspan(i, j - i));
      done.insert(samples[i].ref);
    }
    i = j;
  }
  if (auto it = by_device_.find(device); it != by_device_.end()) {
    for (uint32_t ref : it->second) {
      if (done.count(ref)) continue;
      const MemSeries& s = series_[ref - 1];
      if (s.max_ts == INT64_MIN || s.max_ts < from || s.min_ts() >= to) continue;
      rebuild(ref, {});
    }
  }
  head_min_ts_ = INT64_MAX;
  for (const auto& s : series_) head_min_ts_ = std::min(head_min_ts_, s.min_ts());
  return removed;
}

}  // namespace fieldline::tsdb
