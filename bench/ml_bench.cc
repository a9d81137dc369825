// Online features (issue 6): the cost of one sample's update per window (target ≤ 1 µs), and
// of reading a device's features, on a 1 Hz series.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>

#include "fieldline/ml/feature_view.h"
#include "fieldline/ml/features.h"
#include "fieldline/ml/model.h"

namespace fieldline::ml {
namespace {

constexpr int64_t kSec = 1'000'000'000LL;

std::shared_ptr<const FeatureView> view(const char* aggregates) {
  const std::string text = std::string("view = \"bench\"\n[[metrics]]\nmetric = \"vibration\"\nwindows = [\"10m\", \"1h\", \"24h\"]\n") +
                           "aggregates = " + aggregates + "\nlast = true\newma = \"10m\"\n";
  return std::make_shared<const FeatureView>(*parse_feature_view(text));
}

// Every aggregate, without and with percentiles (p50 and p90 keep the window's values in
// sorted blocks): items are sample-windows, so the time per item is the update cost per
// sample per window.
void BM_FeatureUpdate(benchmark::State& state) {
  auto v = view(state.range(0) ? R"(["mean", "std", "min", "max", "slope", "count", "p50", "p90"])"
                               : R"(["mean", "std", "min", "max", "slope", "count"])");
  FeatureState features(v);
  const int input = features.input("vibration");
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(50, 2);
  int64_t t = 1'795'400'000LL * kSec;
  for (int i = 0; i < 86'400; ++i) features.apply(input, t += kSec, noise(rng));  // a day in the windows
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) features.apply(input, t += kSec, noise(rng));
  }
  state.SetItemsProcessed(state.iterations() * 1000 * 3);
}
BENCHMARK(BM_FeatureUpdate)->Arg(0)->Arg(1);

// A read of all features of a device whose 24 h window holds 86,400 samples, with and without
// percentiles (p50 and p90: two walks over the window's sorted blocks).
void BM_FeatureSnapshot(benchmark::State& state) {
  auto v = view(state.range(0) ? R"(["mean", "std", "min", "max", "slope", "count", "p50", "p90"])"
                               : R"(["mean", "std", "min", "max", "slope", "count"])");
  FeatureState features(v);
  const int input = features.input("vibration");
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(50, 2);
  int64_t t = 1'795'400'000LL * kSec;
  for (int i = 0; i < 86'400; ++i) features.apply(input, t += kSec, noise(rng));
  std::vector<double> out;
  for (auto _ : state) {
    features.snapshot(t, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_FeatureSnapshot)->Arg(0)->Arg(1);

// Serving one device (issue 6's inference target: p99 ≤ 50 µs per device for a 300-tree
// model): a sample updates its features, the features are read, a 300-tree XGBoost model
// (depth 5, 12 sensors × 4 windows × 2 aggregates + EWMA, like eval cmapss: 108 features)
// predicts and explains one row. Arg: 0 prediction only, 1 with the contributions.
void BM_ServeOneDevice(benchmark::State& state) {
  std::string text = "view = \"bench\"\n";
  for (int m = 0; m < 12; ++m) {
    text += "[[metrics]]\nmetric = \"s" + std::to_string(m) + "\"\nwindows = [\"10m\", \"30m\", \"60m\", \"120m\"]\n"
            "aggregates = [\"mean\", \"slope\"]\newma = \"10m\"\n";
  }
  auto v = std::make_shared<const FeatureView>(*parse_feature_view(text));
  const size_t width = v->feature_names().size();
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0, 1);
  std::vector<float> x, y;
  for (size_t r = 0; r < 2000; ++r) {
    float target = 0;
    for (size_t j = 0; j < width; ++j) {
      x.push_back(noise(rng));
      if (j % 9 == 0) target += x.back();
    }
    y.push_back(target);
  }
  XgboostOptions options;
  options.rounds = 300;
  auto model = train_xgboost(x, width, y, options);
  FeatureState features(v);
  int64_t t = 1'795'400'000LL * kSec;
  for (int i = 0; i < 7200; ++i) {
    t += kSec;
    for (int m = 0; m < 12; ++m) features.apply(m, t, noise(rng));
  }
  std::vector<double> snapshot;
  std::vector<float> row, out, why;
  int metric = 0;
  for (auto _ : state) {
    features.apply(metric, t += kSec, noise(rng));
    metric = (metric + 1) % 12;
    features.snapshot(t, snapshot);
    row.assign(snapshot.begin(), snapshot.end());
    (void)(*model)->predict(row.data(), 1, out);
    if (state.range(0)) (void)(*model)->contributions(row.data(), 1, why);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_ServeOneDevice)->Arg(0)->Arg(1);

}  // namespace
}  // namespace fieldline::ml

BENCHMARK_MAIN();
