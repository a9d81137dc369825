// Google Benchmark of the streaming detectors: samples per second through one series' default
// detector set (issue 5's target: at least 2 million per core) and through each member.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "fieldline/analytics/alarm_service.h"
#include "fieldline/analytics/detectors.h"
#include "fieldline/analytics/stream.h"
#include "fieldline/tsdb/db.h"

namespace fieldline::analytics {
namespace {

std::vector<double> sensor(size_t n) {
  // A noisy sensor with a slow daily swing, an occasional spike.
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 0.5);
  std::vector<double> xs(n);
  for (size_t i = 0; i < n; ++i) xs[i] = 60 + 5 * std::sin(static_cast<double>(i) / 1440.0 * 6.283) + noise(rng) + (i % 5000 == 0 ? 8 : 0);
  return xs;
}

template <typename D>
void run(benchmark::State& state) {
  const auto xs = sensor(100'000);
  for (auto _ : state) {
    D d;
    int64_t ts = 1'795'400'000'000'000'000LL;
    double sum = 0;
    for (double x : xs) sum += d.update(ts += 60'000'000'000LL, x).score;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(xs.size()));
}

void BM_Ensemble(benchmark::State& s) { run<Ensemble>(s); }
void BM_RobustZ(benchmark::State& s) { run<RobustZ>(s); }
void BM_Ewma(benchmark::State& s) { run<Ewma>(s); }
void BM_Cusum(benchmark::State& s) { run<Cusum>(s); }
void BM_Flatline(benchmark::State& s) { run<Flatline>(s); }
BENCHMARK(BM_Ensemble)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RobustZ)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ewma)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cusum)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Flatline)->Unit(benchmark::kMillisecond);

// What a shard pays per stored sample for detection (StreamDetection::observe): 1,000 or
// 10,000 devices of 5 metrics (the second far beyond the caches, as 10,000 connected devices
// are), each message's 5 samples shown together, as the pipeline does; the default set on each
// metric.
void BM_StreamDetection(benchmark::State& state) {
  const auto dir = std::filesystem::temp_directory_path() / ("fl-bench-stream-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto env = core::make_posix_env();
  ops::Metrics metrics;
  auto db = tsdb::Db::open(*env, (dir / "tsdb").string(), tsdb::DbOptions{}, nullptr);
  AlarmService::Options o;
  o.path = (dir / "alarms.db").string();
  auto alarms = AlarmService::open(*env, metrics, o);
  if (!db || !alarms) {
    state.SkipWithError("cannot open the database");
    return;
  }
  DetectorBook book;
  StreamDetection detection({1, "", 0}, book, **alarms, *env, metrics);
  const auto devices = static_cast<size_t>(state.range(0));
  const size_t per_device = 5;
  std::vector<tsdb::SeriesRef> refs;
  const tsdb::Tags tags{{"profile", "pump"}};
  for (size_t d = 0; d < devices; ++d) {
    for (size_t m = 0; m < per_device; ++m) {
      refs.push_back(*(*db)->series({"dev-" + std::to_string(d), "m" + std::to_string(m), tags}, tsdb::ValueType::float64));
    }
  }
  const auto xs = sensor(4096);
  std::vector<tsdb::SampleIn> message(per_device);
  int64_t ts = 1'795'400'000'000'000'000LL;
  size_t round = 0;
  for (auto _ : state) {
    ts += 1'000'000'000LL;
    for (size_t d = 0; d < devices; ++d) {
      for (size_t m = 0; m < per_device; ++m) message[m] = {refs[d * per_device + m], ts, xs[(round + d + m) % xs.size()]};
      detection.observe(0, **db, message);
    }
    ++round;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(devices * per_device));
  (*alarms)->flush();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StreamDetection)->Arg(20)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->MinTime(3);

}  // namespace
}  // namespace fieldline::analytics

BENCHMARK_MAIN();
