// Db: queries over the head and blocks.

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <set>

#include "db_internal.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {
namespace {

// The chunk's numbers in [from, to) handed over at once (a chunk holds at most
// kMaxChunkSamples), in time order, so the caller can aggregate runs rather than samples.
template <typename F>
Status for_each_batch_in_chunk(std::string_view bytes, int64_t from, int64_t to, F&& f) {
  FL_TRY(it, ChunkIterator::open(bytes));
  int64_t ts[kMaxChunkSamples];
  double values[kMaxChunkSamples];
  size_t n = 0;
  while (n < kMaxChunkSamples && it.next()) {
    if (it.ts() < from) continue;
    if (it.ts() >= to) break;
    ts[n] = it.ts();
    values[n] = it.number();
    ++n;
  }
  if (!it.error().empty()) return make_error(Errc::corrupt, it.error());
  f(ts, values, n);
  return ok();
}

template <typename F>
Status for_each_in_chunk(std::string_view bytes, int64_t from, int64_t to, F&& f) {
  FL_TRY(it, ChunkIterator::open(bytes));
  while (it.next()) {
    if (it.ts() < from) continue;
    if (it.ts() >= to) break;
    f(it.ts(), it.value());
  }
  if (!it.error().empty()) return make_error(Errc::corrupt, it.error());
  return ok();
}

int64_t bucket_of(int64_t ts, int64_t from, int64_t step) {
  if (step <= 0) return from;
  return from + ((ts - from) / step) * step;
}

}  // namespace

void Db::collect(const MemSeries& s, int64_t from, int64_t to, std::vector<Sample>& out) const {
  size_t start = out.size();
  auto push = [&](int64_t ts, const Value& v) { out.push_back({ts, v}); };
  for (const auto& c : s.sealed) {
    if (c.max_ts < from || c.min_ts >= to) continue;
    (void)for_each_in_chunk(c.bytes, from, to, push);
  }
  if (s.open && s.open->count() > 0 && s.open->max_ts() >= from && s.open->min_ts() < to) {
    (void)for_each_in_chunk(s.open->finish(), from, to, push);
  }
  bool had_ooo = false;
  for (const auto& x : s.ooo) {
    if (x.ts >= from && x.ts < to) {
      out.push_back(x);
      had_ooo = true;
    }
  }
  if (had_ooo) {
    std::vector<Sample> part(out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
    sort_unique(part);
    out.resize(start);
    out.insert(out.end(), part.begin(), part.end());
  }
}

std::vector<SeriesInfo> Db::select(const Selector& selector) const {
  std::map<std::string, SeriesInfo> found;
  auto consider = [&](SeriesLabels key, ValueType type, int64_t mn, int64_t mx) {
    if (!selector.matches(key)) return;
    auto [it, inserted] = found.try_emplace(canonical_key(key), SeriesInfo{key.key(), type, mn, mx});
    if (!inserted) {
      it->second.min_ts = std::min(it->second.min_ts, mn);
      it->second.max_ts = std::max(it->second.max_ts, mx);
    }
  };
  const std::string* device = selector.pinned_device();
  if (device) {
    auto it = by_device_.find(*device);
    if (it != by_device_.end()) {
      for (SeriesRef ref : it->second) {
        const auto& s = series_[ref - 1];
        consider(s.labels(), s.type, s.min_ts(), s.max_ts);
      }
    }
  } else {
    for (const auto& s : series_) consider(s.labels(), s.type, s.min_ts(), s.max_ts);
  }
  for (const auto& b : blocks_) {
    for (const auto& s : b->series()) {
      if (device && s.key.device != *device) continue;
      int64_t mn = s.chunks.empty() ? b->meta().min_ts : s.chunks.front().min_ts;
      int64_t mx = s.chunks.empty() ? b->meta().max_ts - 1 : s.chunks.back().max_ts;
      consider(s.key, s.type, mn, mx);
    }
  }
  std::vector<SeriesInfo> out;
  out.reserve(found.size());
  for (auto& [k, v] : found) {
    if (v.max_ts == INT64_MIN) continue;  // created but never written
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<Sample>> Db::read(const SeriesKey& key, int64_t from, int64_t to) const {
  std::vector<Sample> out;
  std::string ck = canonical_key(key);
  for (const auto& b : blocks_) {
    if (b->meta().max_ts <= from || b->meta().min_ts >= to) continue;
    const BlockSeries* s = b->find(ck);
    if (!s) continue;
    for (const auto& c : s->chunks) {
      if (c.max_ts < from || c.min_ts >= to) continue;
      FL_TRY(bytes, b->chunk(c.offset));
      FL_TRY_STATUS(for_each_in_chunk(bytes, from, to, [&](int64_t ts, const Value& v) { out.push_back({ts, v}); }));
    }
  }
  if (const MemSeries* ms = head_series(key)) collect(*ms, from, to, out);
  sort_unique(out);
  return out;
}

void sort_unique(std::vector<Sample>& out) {
  std::stable_sort(out.begin(), out.end(), [](const Sample& a, const Sample& b) { return a.ts < b.ts; });
  out.erase(std::unique(out.begin(), out.end(), [](const Sample& a, const Sample& b) { return a.ts == b.ts; }),
            out.end());
}

Result<AggregateResult> Db::aggregate(const AggregateQuery& q) const {
  if (q.to <= q.from) return make_error(Errc::invalid_query, "empty time range (to must be after from)");
  if (q.step < 0) return make_error(Errc::invalid_query, "negative step");
  if (q.step > 0 && (q.to - q.from) / q.step > 10'000'000) {
    return make_error(Errc::invalid_query, "too many buckets; use a larger step");
  }
  const bool sketch = is_quantile(q.agg);
  AggregateResult result;
  // Rollups answer a bucket exactly when their buckets nest inside the query's.
  const bool sum_and_count = q.agg == Agg::avg || q.agg == Agg::sum || q.agg == Agg::count;
  // The head keeps 1-minute rollups, which answer any whole-minute step.
  const bool head_rollups = q.use_rollups && rollup_answers(q.agg) && q.step > 0 && q.step % core::kNsPerMinute == 0 &&
                            q.from % core::kNsPerMinute == 0 && q.to % core::kNsPerMinute == 0;
  auto rollup_step = [&](const BlockMeta&) -> int64_t {
    if (!q.use_rollups || !rollup_answers(q.agg) || q.step <= 0) return 0;
    if (q.step % core::kNsPerHour == 0 && q.from % core::kNsPerHour == 0 && q.to % core::kNsPerHour == 0) {
      return core::kNsPerHour;
    }
    if (q.step % core::kNsPerMinute == 0 && q.from % core::kNsPerMinute == 0 && q.to % core::kNsPerMinute == 0) {
      return core::kNsPerMinute;
    }
    return 0;
  };
  std::vector<Sample> head_samples;
  // Dense accumulation per group (a vector indexed by bucket), turned into the result's map
  // once at the end: map lookups per sample, or a vector per series merged into the map,
  // would dominate (a year of 1,000 series at 1-hour steps is 8.8 M rollup points). Groups
  // beyond the cell budget fall back to the map.
  constexpr size_t kMaxDenseCells = 1'000'000;
  const size_t nb = q.step > 0 ? static_cast<size_t>((q.to - q.from + q.step - 1) / q.step) : 1;
  std::unordered_map<std::string, std::vector<AggState>> dense_by_group;
  size_t dense_cells = 0;
  for (const auto& info : select(q.selector)) {
    if (info.max_ts < q.from || info.min_ts >= q.to) continue;
    if (info.type == ValueType::string && q.agg != Agg::count) continue;
    auto labels = group_labels(info.key, q.group_by);
    std::string gkey;
    for (const auto& [k, v] : labels) {
      gkey += k;
      gkey.push_back('\0');
      gkey += v;
      gkey.push_back('\0');
    }
    auto [git, inserted] = result.groups.try_emplace(gkey);
    if (inserted) git->second.labels = labels;
    auto& buckets = git->second.buckets;
    auto& dense = dense_by_group[gkey];
    if (dense.empty() && dense_cells + nb <= kMaxDenseCells) {
      dense.resize(nb);
      dense_cells += nb;
    }
    auto add = [&](int64_t ts, double v) {
      if (std::isnan(v)) return;
      size_t i = q.step > 0 ? static_cast<size_t>((ts - q.from) / q.step) : 0;
      if (!dense.empty()) dense[i].add(ts, v, sketch);
      else buckets[bucket_of(ts, q.from, q.step)].add(ts, v, sketch);
    };
    // Runs of samples in one bucket go to the bucket at once; the sketch and sparse buckets
    // take them one by one.
    auto add_batch = [&](const int64_t* ts, const double* values, size_t n) {
      if (dense.empty() || sketch || q.step <= 0) {
        for (size_t j = 0; j < n; ++j) add(ts[j], values[j]);
        return;
      }
      for (size_t j = 0; j < n;) {
        const auto b = static_cast<size_t>((ts[j] - q.from) / q.step);
        const int64_t end = q.from + static_cast<int64_t>(b + 1) * q.step;
        size_t k = j + 1;
        while (k < n && ts[k] < end) ++k;
        dense[b].add_run(ts + j, values + j, k - j);
        j = k;
      }
    };
    auto add_value = [&](int64_t ts, const Value& v) {
      double d;
      if (numeric_value(v, d)) add(ts, d);
      else if (q.agg == Agg::count) add(ts, 0);
    };
    auto add_points = [&](const std::vector<RollupPoint>& points) {
      // Points are in time order: find each one's bucket by stepping, not dividing.
      size_t i = 0;
      int64_t bucket_end = q.from + q.step;
      for (const auto& p : points) {
        if (p.ts < q.from || p.ts >= q.to) continue;
        ++result.rollup_points_read;
        if (p.ts >= bucket_end) {
          if (p.ts - bucket_end < 4 * q.step) {
            while (p.ts >= bucket_end) {
              ++i;
              bucket_end += q.step;
            }
          } else {
            i = static_cast<size_t>((p.ts - q.from) / q.step);
            bucket_end = q.from + static_cast<int64_t>(i + 1) * q.step;
          }
        }
        if (dense.empty()) buckets[bucket_of(p.ts, q.from, q.step)].add_rollup(p.ts, p.min, p.max, p.sum, p.count);
        else if (sum_and_count) dense[i].add_sum_count(p.sum, p.count);
        else dense[i].add_rollup(p.ts, p.min, p.max, p.sum, p.count);
      }
    };
    std::string ck = canonical_key(info.key);
    for (const auto& b : blocks_) {
      const auto& m = b->meta();
      if (m.max_ts <= q.from || m.min_ts >= q.to) continue;
      const BlockSeries* s = b->find(ck);
      if (!s) continue;
      int64_t rs = rollup_step(m);
      uint64_t roff = rs == core::kNsPerHour ? s->rollup_1h : rs == core::kNsPerMinute ? s->rollup_1m : 0;
      if (roff != 0) {
        FL_TRY(points, b->rollups(roff, q.agg == Agg::min || q.agg == Agg::max));
        add_points(points);
        continue;
      }
      for (const auto& c : s->chunks) {
        if (c.max_ts < q.from || c.min_ts >= q.to) continue;
        FL_TRY(bytes, b->chunk(c.offset));
        if (info.type == ValueType::string) FL_TRY_STATUS(for_each_in_chunk(bytes, q.from, q.to, add_value));
        else FL_TRY_STATUS(for_each_batch_in_chunk(bytes, q.from, q.to, add_batch));
        result.samples_read += c.count;
      }
    }
    if (const MemSeries* head = head_series(info.key)) {
      const MemSeries& ms = *head;
      if (head_rollups && !ms.minutes_off && info.type != ValueType::string) {
        // The head's minutes hold every sample of the head (out-of-order ones included).
        add_points(ms.minutes);
      } else if (ms.ooo.empty() && info.type != ValueType::string) {
        // In-order head: stream the chunks, no copies.
        for (const auto& c : ms.sealed) {
          if (c.max_ts < q.from || c.min_ts >= q.to) continue;
          FL_TRY_STATUS(for_each_batch_in_chunk(c.bytes, q.from, q.to, add_batch));
          result.samples_read += c.count;
        }
        if (ms.open && ms.open->count() > 0 && ms.open->max_ts() >= q.from && ms.open->min_ts() < q.to) {
          FL_TRY_STATUS(for_each_batch_in_chunk(ms.open->finish(), q.from, q.to, add_batch));
          result.samples_read += ms.open->count();
        }
      } else {
        head_samples.clear();
        collect(ms, q.from, q.to, head_samples);
        for (const auto& s : head_samples) add_value(s.ts, s.value);
        result.samples_read += head_samples.size();
      }
    }
  }
  for (auto& [gkey, dense] : dense_by_group) {
    auto& buckets = result.groups[gkey].buckets;
    for (size_t i = 0; i < dense.size(); ++i) {
      if (dense[i].count == 0) continue;
      int64_t start = q.step > 0 ? q.from + static_cast<int64_t>(i) * q.step : q.from;
      auto it = buckets.find(start);
      if (it == buckets.end()) buckets.emplace_hint(buckets.end(), start, std::move(dense[i]));
      else it->second.merge(dense[i]);
    }
  }
  for (auto it = result.groups.begin(); it != result.groups.end();) {
    if (it->second.buckets.empty()) it = result.groups.erase(it);
    else ++it;
  }
  return result;
}

std::vector<std::pair<std::string, ValueType>> Db::metrics_of(const std::string& device) const {
  std::map<std::string, ValueType> out;
  auto it = by_device_.find(device);
  if (it != by_device_.end()) {
    for (SeriesRef ref : it->second) {
      const auto& s = series_[ref - 1];
      if (s.max_ts != INT64_MIN) out.emplace(*s.metric, s.type);
    }
  }
  for (const auto& b : blocks_) {
    for (const auto& s : b->series()) {
      if (s.key.device == device) out.emplace(s.key.metric, s.type);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace fieldline::tsdb
