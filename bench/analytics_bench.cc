// Google Benchmark of the streaming detectors: samples per second through one series' default
// detector set (issue 5's target: at least 2 million per core) and through each member.
#include <benchmark/benchmark.h>

#include <random>

#include "fieldline/analytics/detectors.h"

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

}  // namespace
}  // namespace fieldline::analytics

BENCHMARK_MAIN();
