// Google Benchmark microbenchmarks of the time-series engine (bench/README.md has the figures).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <chrono>

#include <cmath>
#include <filesystem>
#include <random>

#include "fieldline/core/time.h"
#include "fieldline/tsdb/chunk.h"
#include "fieldline/tsdb/db.h"

namespace fieldline::tsdb {
namespace {

constexpr int64_t kSec = core::kNsPerSecond;
constexpr int64_t kT0 = 1'700'000'000LL * kSec;

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("fieldline-bench-" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

void BM_ChunkEncodeFloat(benchmark::State& state) {
  std::mt19937 rng(1);
  std::vector<double> values(kMaxChunkSamples);
  double v = 20;
  for (auto& x : values) x = (v += (static_cast<int>(rng() % 21) - 10) * 0.01);
  for (auto _ : state) {
    ChunkEncoder enc(ValueType::float64);
    for (uint32_t i = 0; i < kMaxChunkSamples; ++i) enc.append(kT0 + i * kSec, values[i]);
    benchmark::DoNotOptimize(enc.finish());
  }
  state.SetItemsProcessed(state.iterations() * kMaxChunkSamples);
}
BENCHMARK(BM_ChunkEncodeFloat);

void BM_ChunkDecodeFloat(benchmark::State& state) {
  ChunkEncoder enc(ValueType::float64);
  for (uint32_t i = 0; i < kMaxChunkSamples; ++i) enc.append(kT0 + i * kSec, 20.0 + std::sin(i * 0.1));
  std::string bytes = enc.finish();
  for (auto _ : state) {
    auto it = ChunkIterator::open(bytes);
    double sum = 0;
    while (it->next()) sum += std::get<double>(it->value());
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kMaxChunkSamples);
}
BENCHMARK(BM_ChunkDecodeFloat);

// Append into head + WAL (interval fsync), batches of `range(0)` samples over 10,000 series.
void BM_AppendHeadAndWal(benchmark::State& state) {
  auto env = core::make_posix_env();
  std::string dir = temp_dir("append");
  DbOptions o;
  auto db = Db::open(*env, dir, o, nullptr);
  std::vector<SeriesRef> refs;
  for (int s = 0; s < 10000; ++s) refs.push_back(*(*db)->series({"dev-" + std::to_string(s), "temp", {}}, ValueType::float64));
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<SampleIn> samples(batch);
  int64_t ts = kT0;
  size_t next_series = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      if (next_series == refs.size()) {
        next_series = 0;
        ts += kSec;
      }
      samples[i] = {refs[next_series], ts, 20.0 + static_cast<double>(next_series % 50) * 0.1};
      ++next_series;
    }
    auto r = (*db)->append(samples);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
  db->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendHeadAndWal)->Arg(1000)->Arg(5000)->UseRealTime();

// One day of a 1 Hz series aggregated into 1-minute buckets (target: <= 1 ms).
void BM_AggregateDayInMinuteBuckets(benchmark::State& state) {
  auto env = core::make_posix_env();
  std::string dir = temp_dir("agg");
  DbOptions o;
  o.out_of_order_window_ns = 60 * kSec;
  auto db = Db::open(*env, dir, o, nullptr);
  auto ref = *(*db)->series({"d", "temp", {}}, ValueType::float64);
  int64_t day = (kT0 / core::kNsPerDay) * core::kNsPerDay;
  std::vector<SampleIn> samples;
  for (int i = 0; i < 86400; ++i) samples.push_back({ref, day + i * kSec, 20.0 + std::sin(i * 0.001) * 5 + (i % 7) * 0.01});
  (void)(*db)->append(samples);
  // 0: the head's raw chunks; 1: a block's raw chunks; 2: a block's 1-minute rollups;
  // 3: the head's 1-minute rollups (kept as the samples arrived).
  if (state.range(0) == 1 || state.range(0) == 2) (void)(*db)->flush_head();
  AggregateQuery q;
  q.selector = *Selector::parse("d/temp");
  q.from = day;
  q.to = day + core::kNsPerDay;
  q.step = core::kNsPerMinute;
  q.agg = Agg::avg;
  q.use_rollups = state.range(0) >= 2;
  for (auto _ : state) {
    auto r = (*db)->aggregate(q);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 86400);
  db->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AggregateDayInMinuteBuckets)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond);

// One year of 1,000 series at 1-hour steps, answered from the 1-hour rollups (target: <= 100 ms).
void BM_YearOfThousandSeriesFromRollups(benchmark::State& state) {
  auto env = core::make_posix_env();
  std::string dir = temp_dir("year");
  DbOptions o;
  o.block_range_ns = 24 * core::kNsPerHour;
  o.out_of_order_window_ns = core::kNsPerHour;
  o.retention_ns = 10LL * 365 * core::kNsPerDay;
  o.rollup_retention_ns = 10LL * 365 * core::kNsPerDay;
  o.wal.fsync = core::FsyncPolicy::never;
  auto db = Db::open(*env, dir, o, nullptr);
  std::vector<SeriesRef> refs;
  for (int s = 0; s < 1000; ++s) refs.push_back(*(*db)->series({"dev-" + std::to_string(s), "energy", {{"site", s % 2 ? "a" : "b"}}}, ValueType::float64));
  int64_t start = (kT0 / core::kNsPerDay) * core::kNsPerDay;
  // One sample every 10 minutes per series for a year: 52.6 M samples.
  const int64_t step = 10 * core::kNsPerMinute;
  const int64_t per_day = core::kNsPerDay / step;
  std::vector<SampleIn> batch;
  for (int64_t d = 0; d < 365; ++d) {
    batch.clear();
    for (int64_t k = 0; k < per_day; ++k) {
      for (size_t s = 0; s < refs.size(); ++s) {
        batch.push_back({refs[s], start + d * core::kNsPerDay + k * step, static_cast<double>((s + static_cast<size_t>(k)) % 100)});
      }
    }
    (void)(*db)->append(batch);
    (void)(*db)->maintain(start + d * core::kNsPerDay);
  }
  (void)(*db)->flush_head();
  AggregateQuery q;
  q.selector = *Selector::parse("{metric=\"energy\"}");
  q.from = start;
  q.to = start + 365 * core::kNsPerDay;
  q.step = core::kNsPerHour;
  q.agg = Agg::avg;
  q.group_by = {"site"};
  for (auto _ : state) {
    auto r = (*db)->aggregate(q);
    if (!r || r->samples_read != 0) state.SkipWithError("rollups were not used");
    benchmark::DoNotOptimize(r);
  }
  db->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_YearOfThousandSeriesFromRollups)->Unit(benchmark::kMillisecond)->Iterations(10);

// WAL replay speed (target: >= 10 M samples/s).
void BM_WalReplay(benchmark::State& state) {
  auto env = core::make_posix_env();
  std::string dir = temp_dir("replay");
  const int64_t total = 5'000'000;
  {
    DbOptions o;
    o.wal.fsync = core::FsyncPolicy::never;
    o.block_range_ns = 30 * core::kNsPerDay;  // keep everything in the head and the WAL
    auto db = Db::open(*env, dir, o, nullptr);
    std::vector<SeriesRef> refs;
    for (int s = 0; s < 1000; ++s) refs.push_back(*(*db)->series({"dev-" + std::to_string(s), "m", {}}, ValueType::float64));
    std::vector<SampleIn> batch;
    for (int64_t i = 0; i < total / 1000; ++i) {
      batch.clear();
      for (size_t s = 0; s < refs.size(); ++s) batch.push_back({refs[s], kT0 + i * kSec, static_cast<double>(i % 100)});
      (void)(*db)->append(batch);
    }
  }
  DbOptions o;
  o.block_range_ns = 30 * core::kNsPerDay;
  for (auto _ : state) {
    auto db = Db::open(*env, dir, o, nullptr);
    state.counters["replayed"] = static_cast<double>((*db)->replay_report().samples);
    state.PauseTiming();
    db->reset();
    // Each open writes a fresh segment; drop it so every iteration replays the same log.
    auto segs = wal_segments(*env, dir + "/wal");
    std::filesystem::remove(dir + "/wal/" + wal_segment_name(segs->back()));
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * total);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalReplay)->Unit(benchmark::kMillisecond)->Iterations(3);

// Cutting a 2-hour block out of a head of 1,000 series at 1 Hz (3 hours held: the block plus
// the out-of-order hold), with the WAL checkpoint that follows. This runs on the shard that
// owns the series, so its duration is how long that shard's ingestion waits.
void BM_MaintainCutsBlock(benchmark::State& state) {
  auto env = core::make_posix_env();
  for (auto _ : state) {
    state.PauseTiming();
    std::string dir = temp_dir("cut");
    DbOptions o;
    auto db = Db::open(*env, dir, o, nullptr);
    std::vector<SeriesRef> refs;
    for (int s = 0; s < 1000; ++s) refs.push_back(*(*db)->series({"dev-" + std::to_string(s), "m", {}}, ValueType::float64));
    int64_t start = (kT0 / o.block_range_ns) * o.block_range_ns;
    std::vector<SampleIn> batch;
    for (int64_t i = 0; i < 3 * 3600 + 60; ++i) {
      batch.clear();
      for (size_t s = 0; s < refs.size(); ++s) batch.push_back({refs[s], start + i * kSec, 20.0 + static_cast<double>((i + s) % 100) * 0.1});
      (void)(*db)->append(batch);
    }
    state.ResumeTiming();
    // The owner's share (prepare and finish, which includes the WAL checkpoint) is what the
    // shard's ingestion waits for; the run goes to a background thread in the platform.
    auto t0 = std::chrono::steady_clock::now();
    auto job = (*db)->prepare_cut();
    auto t1 = std::chrono::steady_clock::now();
    auto run = Db::run_cut(*job);
    auto t2 = std::chrono::steady_clock::now();
    auto st = (*db)->finish_cut(std::move(job), run);
    auto t3 = std::chrono::steady_clock::now();
    state.PauseTiming();
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    state.counters["owner_prepare_ms"] = ms(t1 - t0);
    state.counters["background_run_ms"] = ms(t2 - t1);
    state.counters["owner_finish_ms"] = ms(t3 - t2);
    state.counters["blocks"] = static_cast<double>((*db)->blocks().size());
    db->reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_MaintainCutsBlock)->Unit(benchmark::kMillisecond)->Iterations(2);

// Heap per active series beyond its samples: 100,000 series (device, metric, two tags) with
// one sample each; heap growth (mallinfo2) minus the head's chunk bytes, per series.
void BM_MemoryPerActiveSeries(benchmark::State& state) {
  auto env = core::make_posix_env();
  for (auto _ : state) {
    std::string dir = temp_dir("mem");
    DbOptions o;
    o.wal.fsync = core::FsyncPolicy::never;
    auto db = Db::open(*env, dir, o, nullptr);
    const int n = 100000;
    // Heap in use, mmapped blocks included: large tables are mmapped or not depending on
    // what the process freed before (glibc raises its mmap threshold as it goes).
    auto in_use = [] {
      auto m = mallinfo2();
      return m.uordblks + m.hblkhd;
    };
    size_t before = in_use();
    {
      std::vector<SampleIn> batch;
      for (int s = 0; s < n; ++s) {
        auto ref = (*db)->series({"pump-" + std::to_string(s / 10), "metric-" + std::to_string(s % 10),
                                  {{"site", s % 2 ? "north" : "south"}, {"asset", "line-" + std::to_string(s / 1000)}}},
                                 ValueType::float64);
        batch.push_back({*ref, kT0, 20.5});
      }
      (void)(*db)->append(batch);
    }
    size_t after = in_use();
    auto stats = (*db)->stats();
    state.counters["bytes_per_series"] = static_cast<double>(after - before - stats.head_bytes) / n;
    state.counters["head_bytes_per_series"] = static_cast<double>(stats.head_bytes) / n;
    db->reset();
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_MemoryPerActiveSeries)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fieldline::tsdb

BENCHMARK_MAIN();
