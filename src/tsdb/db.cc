// Db: head (in-memory series), append path and WAL replay. Blocks, compaction and retention
// are in db_blocks.cc; queries in db_query.cc.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "db_internal.h"
#include "fieldline/core/bytes.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/db.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {

Db::Db(core::Env& env, std::string dir, DbOptions options)
    : env_(env),
      dir_(std::move(dir)),
      wal_dir_(core::join_path(dir_, "wal")),
      block_dir_(core::join_path(dir_, "blocks")),
      options_(std::move(options)) {}

Db::~Db() { (void)close(); }

Result<std::unique_ptr<Db>> Db::open(core::Env& env, std::string dir, DbOptions options,
                                     Wal::DurableCallback on_durable) {
  std::unique_ptr<Db> db(new Db(env, std::move(dir), std::move(options)));
  FL_TRY_STATUS(env.create_dirs(db->wal_dir_));
  FL_TRY_STATUS(env.create_dirs(db->block_dir_));
  FL_TRY_STATUS(db->load_blocks());
  FL_TRY_STATUS(db->replay());
  // Every segment starts with every known series: each process lifetime numbers series
  // afresh (so the first segment's records never refer to an earlier lifetime's numbers),
  // and older segments can then be deleted whole.
  auto series_records = [raw = db.get()] {
    std::string out, record;
    for (size_t i = 0; i < raw->series_.size(); ++i) {
      record.clear();
      encode_series_record(i + 1, raw->series_[i], record);
      wal_frame(WalRecordType::series, record, out);
    }
    return out;
  };
  FL_TRY(wal, Wal::open(env, db->wal_dir_, db->options_.wal, std::move(on_durable), series_records));
  db->wal_ = std::move(wal);
  FL_TRY_STATUS(db->wal_->sync_now());
  (void)db->check_disk(true);
  return db;
}

Status Db::close() {
  if (wal_) {
    auto st = wal_->sync_now();
    wal_->close();
    wal_.reset();
    return st;
  }
  return ok();
}

int64_t Db::block_start(int64_t ts) const { return floor_to(ts, options_.block_range_ns); }

size_t Db::find_slot(uint32_t hash, SeriesLabels key) const {
  const size_t mask = by_key_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    uint32_t ref = by_key_[i];
    if (ref == 0) return i;
    const MemSeries& s = series_[ref - 1];
    if (s.key_hash == hash && s.labels() == key) return i;
  }
}

namespace {
// The labels' hash, piece by piece (no canonical key string built): every ingested sample
// is resolved through it. Collisions are settled by find_slot comparing labels.
uint32_t label_hash(SeriesLabels key) {
  std::hash<std::string_view> hash;
  uint64_t h = hash(*key.device);
  auto mix = [&h, &hash](std::string_view s) { h = (h ^ hash(s)) * 0x9e3779b97f4a7c15ULL + (h >> 29); };
  mix(*key.metric);
  for (const auto& [k, v] : *key.tags) {
    mix(k);
    mix(v);
  }
  return static_cast<uint32_t>(h ^ (h >> 32));
}
}  // namespace

const Db::MemSeries* Db::head_series(SeriesLabels key) const {
  if (by_key_.empty()) return nullptr;
  uint32_t ref = by_key_[find_slot(label_hash(key), key)];
  return ref == 0 ? nullptr : &series_[ref - 1];
}

Result<SeriesRef> Db::series(SeriesLabels key, ValueType type) {
  const uint32_t hash = label_hash(key);
  if (by_key_.empty()) by_key_.assign(1024, 0);
  size_t slot = find_slot(hash, key);
  if (by_key_[slot] != 0) return by_key_[slot];
  if (series_.size() >= UINT32_MAX - 1) return make_error(Errc::invalid_query, "too many series in one shard");
  // A series continuing from blocks keeps the blocks' type.
  const std::string ck = canonical_key(key);
  for (const auto& b : blocks_) {
    if (const auto* bs = b->find(ck)) {
      type = bs->type;
      break;
    }
  }
  auto device = by_device_.try_emplace(*key.device).first;
  MemSeries& s = series_.emplace_back();
  s.device = &device->first;
  s.metric = &*metric_names_.insert(*key.metric).first;
  s.tags = &*tag_sets_.insert(*key.tags).first;
  s.key_hash = hash;
  s.type = type;
  const auto ref = static_cast<uint32_t>(series_.size());
  device->second.push_back(ref);
  by_key_[slot] = ref;
  if (series_.size() * 2 > by_key_.size()) {
    // Keep the table at most half full: rehash every series into one twice the size.
    std::vector<uint32_t> old(by_key_.size() * 2, 0);
    old.swap(by_key_);
    for (uint32_t r : old) {
      if (r != 0) by_key_[find_slot(series_[r - 1].key_hash, series_[r - 1].labels())] = r;
    }
  }
  unlogged_.push_back(ref);
  return ref;
}

ValueType Db::series_type(SeriesRef ref) const { return series_[ref - 1].type; }
SeriesKey Db::series_key(SeriesRef ref) const { return series_[ref - 1].labels().key(); }

Status Db::check_disk(bool force) {
  int64_t now = env_.monotonic_ns();
  if (!force && now - last_disk_check_ns_ < 1'000'000'000) return ok();
  last_disk_check_ns_ = now;
  bool full = false;
  if (options_.max_disk_bytes > 0) {
    auto used = env_.disk_usage(dir_);
    if (used && *used >= options_.max_disk_bytes) full = true;
  }
  if (options_.min_free_bytes > 0) {
    auto avail = env_.disk_available(dir_);
    if (avail && *avail < options_.min_free_bytes) full = true;
  }
  disk_full_ = full;
  return ok();
}

Result<AppendResult> Db::append(std::span<const SampleIn> samples) {
  AppendResult result;
  if (!wal_) return make_error(Errc::closed, dir_);
  FL_TRY_STATUS(check_disk(false));
  if (disk_full_) {
    ++disk_full_rejections_;
    return make_error(Errc::disk_full, "disk-usage limit reached under " + dir_ +
                                           "; writes resume when space is freed");
  }
  // Log first, then apply: the head only ever holds what the WAL has, and replay repeats the
  // same decisions in the same order, so rejections need not be logged specially.
  scratch_.clear();
  frame_unlogged_series(scratch_);
  std::vector<uint8_t> type_ok(samples.size(), 1);
  uint64_t n = 0;
  int64_t batch_max_ts = INT64_MIN;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (s.ref == 0 || s.ref > series_.size()) {
      type_ok[i] = 0;
      result.rejected.push_back({static_cast<uint32_t>(i), make_error(Errc::not_found, "unknown series reference")});
      continue;
    }
    const MemSeries& ms = series_[s.ref - 1];
    if (type_of(s.value) != ms.type) {
      type_ok[i] = 0;
      result.rejected.push_back({static_cast<uint32_t>(i),
                                 make_error(Errc::type_mismatch, ms.labels().to_string() + " holds " +
                                                                     to_string(ms.type) + " values, got " +
                                                                     to_string(type_of(s.value)))});
      continue;
    }
    ++n;
    batch_max_ts = std::max(batch_max_ts, s.ts);
  }
  if (n > 0) {
    std::string body;
    body.reserve(10 + n * 20);  // a sample's ref, time delta and value: rarely more than 20 bytes
    core::put_uvarint(body, n);
    int64_t prev_ts = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!type_ok[i]) continue;
      const auto& s = samples[i];
      core::put_uvarint(body, s.ref);
      core::put_varint(body, s.ts - prev_ts);
      prev_ts = s.ts;
      encode_value(s.value, body);
    }
    wal_frame(WalRecordType::samples, body, scratch_);
  }
  if (scratch_.empty()) return result;
  FL_TRY_STATUS(crash_point("wal.before_append"));
  auto lsn = wal_->append(scratch_);
  if (!lsn) {
    if (core::is_no_space(lsn.error())) disk_full_ = true;
    return lsn.error();
  }
  FL_TRY_STATUS(crash_point("wal.after_append"));
  unlogged_.clear();
  // A batch that declared many series (start-up, a fleet joining) would otherwise leave its
  // buffers' capacity behind for good: tens of bytes per series.
  if (unlogged_.capacity() > 4096) unlogged_.shrink_to_fit();
  if (scratch_.capacity() > (1u << 20)) {
    scratch_.clear();
    scratch_.shrink_to_fit();
  }
  auto& segment_max = segment_max_ts_.try_emplace(wal_->current_segment(), INT64_MIN).first->second;
  segment_max = std::max(segment_max, batch_max_ts);
  result.lsn = *lsn;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!type_ok[i]) continue;
    bool dup = false;
    auto st = insert(series_[samples[i].ref - 1], samples[i].ts, samples[i].value, dup);
    if (!st) result.rejected.push_back({static_cast<uint32_t>(i), st.error()});
    else if (dup) ++result.duplicates;
    else ++result.accepted;
  }
  std::sort(result.rejected.begin(), result.rejected.end(),
            [](const SampleRejection& a, const SampleRejection& b) { return a.index < b.index; });
  return result;
}

void Db::frame_unlogged_series(std::string& out) const {
  std::string payload;
  for (SeriesRef ref : unlogged_) {
    payload.clear();
    encode_series_record(ref, series_[ref - 1], payload);
    wal_frame(WalRecordType::series, payload, out);
  }
}

void Db::MemSeries::roll_up(int64_t ts, const Value& v) {
  double x;
  if (minutes_off || type == ValueType::string || !numeric_value(v, x) || std::isnan(x)) return;
  auto& points = minutes;
  auto it = points.empty() ? points.end() : points.end() - 1;
  // The newest minute, the common case, is found without a division.
  const bool newest = it != points.end() && ts >= it->ts && ts - it->ts < core::kNsPerMinute;
  if (!newest) {
    const int64_t bucket = floor_to(ts, core::kNsPerMinute);
    if (points.empty() || points.back().ts < bucket) {
      // Opening a minute: is this series dense enough for rollups to cost less than they save?
      if (points.size() >= 16) {
        uint64_t samples = 0;
        for (const auto& p : points) samples += p.count;
        if (samples < kMinSamplesPerRollup * points.size()) {
          std::vector<RollupPoint>().swap(minutes);
          minutes_off = true;
          return;
        }
      }
      it = points.insert(points.end(), RollupPoint{bucket, x, x, 0, 0});
    } else {
      // Out of order: its minute, found or inserted in place.
      it = std::lower_bound(points.begin(), points.end(), bucket, [](const RollupPoint& p, int64_t b) { return p.ts < b; });
      if (it == points.end() || it->ts != bucket) it = points.insert(it, RollupPoint{bucket, x, x, 0, 0});
    }
  }
  it->min = std::min(it->min, x);
  it->max = std::max(it->max, x);
  it->sum += x;
  ++it->count;
}

void Db::rebuild_minutes_if_dense(MemSeries& s) const {
  // Counted from the chunk headers: a series that stays sparse (the usual case) is not decoded.
  uint64_t count = s.ooo.size() + (s.open ? s.open->count() : 0);
  for (const auto& c : s.sealed) count += c.count;
  if (count == 0) {
    s.minutes_off = false;  // empty head: start afresh with the next sample
    return;
  }
  const auto span_minutes = static_cast<uint64_t>((s.max_ts - s.min_ts()) / core::kNsPerMinute + 1);
  if (count < kMinSamplesPerRollup * span_minutes) return;
  std::vector<Sample> samples;
  collect(s, INT64_MIN, INT64_MAX, samples);
  std::vector<RollupPoint>().swap(s.minutes);
  s.minutes_off = false;
  for (const auto& x : samples) s.roll_up(x.ts, x.value);
}

Status Db::insert(MemSeries& s, int64_t ts, const Value& v, bool& duplicate) {
  duplicate = false;
  if (ts < persisted_until_) {
    return make_error(Errc::too_old, s.labels().to_string() + " at " + std::to_string(ts) +
                                         ": time range already persisted (before " +
                                         std::to_string(persisted_until_) + ")");
  }
  if (s.max_ts == INT64_MIN || ts > s.max_ts) {
    if (s.open && (s.open->full() || block_start(ts) != block_start(s.open->min_ts()))) s.seal();
    if (!s.open) s.open = std::make_unique<ChunkEncoder>(s.type);
    s.open->append(ts, v);
    s.roll_up(ts, v);
    s.max_ts = ts;
    head_max_ts_ = std::max(head_max_ts_, ts);
    head_min_ts_ = std::min(head_min_ts_, ts);
    return ok();
  }
  if (ts == s.max_ts) {
    // A resent last reading (a retransmitted message) is the common duplicate: the open
    // chunk still has it at hand.
    auto last = s.open && s.open->count() > 0 && s.open->max_ts() == ts ? std::optional<Value>(s.open->last_value()) : s.find(ts);
    if (last && same_value(*last, v)) {
      duplicate = true;
      return ok();
    }
    return make_error(Errc::duplicate_conflict, s.labels().to_string() + " at " + std::to_string(ts));
  }
  if (ts < s.max_ts - options_.out_of_order_window_ns) {
    return make_error(Errc::out_of_order, s.labels().to_string() + " at " + std::to_string(ts) + " is more than " +
                                              std::to_string(options_.out_of_order_window_ns / 1'000'000) +
                                              " ms behind the newest sample");
  }
  if (auto existing = s.find(ts)) {
    if (same_value(*existing, v)) {
      duplicate = true;
      return ok();
    }
    return make_error(Errc::duplicate_conflict, s.labels().to_string() + " at " + std::to_string(ts));
  }
  auto pos = std::lower_bound(s.ooo.begin(), s.ooo.end(), ts, [](const Sample& a, int64_t t) { return a.ts < t; });
  s.ooo.insert(pos, Sample{ts, v});
  s.roll_up(ts, v);
  head_min_ts_ = std::min(head_min_ts_, ts);
  return ok();
}

Status Db::replay() {
  auto start = std::chrono::steady_clock::now();
  std::unordered_map<uint64_t, SeriesRef> refs;  // WAL number -> this lifetime's ref
  auto st = wal_replay(env_, wal_dir_, true, [&](WalRecordType type, std::string_view payload, uint32_t segment) -> Status {
    core::ByteReader r(payload);
    if (type == WalRecordType::series) {
      auto rec = decode_series_record(r);
      if (!rec) return rec.error();
      FL_TRY(ref, series(rec->key, rec->type));
      refs[rec->ref] = ref;
      return ok();
    }
    std::string replace_device;
    int64_t replace_from = 0, replace_to = 0;
    if (type == WalRecordType::replace) {
      auto device = r.string();
      auto from = r.varint(), to = r.varint();
      if (!device || !from || !to) return make_error(Errc::corrupt, "malformed replace record");
      replace_device = std::string(*device);
      replace_from = *from;
      replace_to = *to;
    }
    auto n = r.uvarint();
    if (!n) return make_error(Errc::corrupt, "samples record without a count");
    std::vector<SampleIn> replacement;
    int64_t ts = 0;
    auto& segment_max = segment_max_ts_.try_emplace(segment, INT64_MIN).first->second;
    for (uint64_t i = 0; i < *n; ++i) {
      auto wal_ref = r.uvarint();
      auto dts = r.varint();
      if (!wal_ref || !dts) return make_error(Errc::corrupt, "truncated sample");
      ts += *dts;
      segment_max = std::max(segment_max, ts);
      auto it = refs.find(*wal_ref);
      if (it == refs.end()) return make_error(Errc::corrupt, "sample for an undeclared series " + std::to_string(*wal_ref));
      MemSeries& s = series_[it->second - 1];
      auto v = decode_value(s.type, r);
      if (!v) return v.error();
      if (ts < persisted_until_) {
        ++replay_.skipped_persisted;
        continue;
      }
      if (type == WalRecordType::replace) {
        replacement.push_back({it->second, ts, std::move(*v)});
        continue;
      }
      bool dup = false;
      (void)insert(s, ts, *v, dup);  // rejections repeat the original decision
      ++replay_.samples;
    }
    if (type == WalRecordType::replace) {
      // Only the part of the range still in the head: the rest reached blocks after it applied.
      const int64_t from = std::max(replace_from, persisted_until_);
      if (from < replace_to) {
        replay_.samples += replacement.size();
        (void)apply_replace(replace_device, from, replace_to, replacement);
      }
      segment_max = std::max(segment_max, replace_to - 1);
    }
    return ok();
  });
  if (!st) return st.error();
  replay_.wal = std::move(*st);
  replay_.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  unlogged_.clear();
  return ok();
}

DbStats Db::stats() const {
  DbStats st;
  st.head_series = series_.size();
  for (const auto& s : series_) {
    st.head_chunks += s.sealed.size() + (s.open ? 1 : 0);
    for (const auto& c : s.sealed) {
      st.head_samples += c.count;
      st.head_bytes += c.bytes.size();
    }
    if (s.open) {
      st.head_samples += s.open->count();
      st.head_bytes += s.open->memory_bytes();
    }
    st.head_bytes += s.minutes.capacity() * sizeof(RollupPoint);
    st.head_samples += s.ooo.size();
  }
  st.blocks = blocks_.size();
  for (const auto& b : blocks_) {
    st.block_bytes += b->file_bytes();
    st.block_samples += b->meta().samples;
  }
  if (wal_) {
    st.wal_bytes_written = wal_->bytes_written();
    st.wal_syncs = wal_->syncs();
    st.wal_sync_ns_total = wal_->sync_ns_total();
  }
  st.disk_full = disk_full_;
  st.disk_full_rejections = disk_full_rejections_;
  st.persisted_until = persisted_until_;
  return st;
}

}  // namespace fieldline::tsdb
