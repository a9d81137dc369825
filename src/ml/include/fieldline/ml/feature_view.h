#pragma once
// A feature view: which features a profile's devices get, declared in a TOML document that is
// versioned like contracts and detector documents. The same view drives the online features
// (updated in the owning shard as samples arrive) and the offline training sets (computed
// point in time from stored samples); see features.h.
//
//   view = "pump_health"
//   profile = "pump"
//   [[metrics]]
//   metric = "vibration"
//   windows = ["10m", "1h", "24h"]
//   aggregates = ["mean", "std", "min", "max", "slope", "count", "p50", "p90"]
//   last = true                # vibration_last
//   ewma = "10m"               # vibration_ewma_10m: half-life 10 minutes
//   [[ratios]]
//   name = "flow_per_current"  # last flow / last current
//   numerator = "flow"
//   denominator = "current"
//   [since]
//   events = ["maintenance"]   # since_maintenance_s: seconds since its last sample
//
// Feature names: <metric>_<aggregate>_<window> (vibration_mean_1h), <metric>_last,
// <metric>_ewma_<half-life>, the ratio's name, since_<event>_s; in that order, metric by
// metric, as the document lists them.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::ml {

enum class Aggregate : uint8_t { mean, std, min, max, slope, count, percentile };

struct AggregateSpec {
  Aggregate kind = Aggregate::mean;
  double quantile = 0;  // percentile: 0.5 for p50
  std::string name;     // as written: "mean", "p90"
};

struct MetricFeatures {
  std::string metric;
  std::vector<int64_t> windows_ns;
  std::vector<std::string> window_names;  // as written: "10m"
  std::vector<AggregateSpec> aggregates;
  bool last = false;
  int64_t ewma_half_life_ns = 0;  // 0: none
  std::string ewma_name;          // "10m"
};

struct Ratio {
  std::string name, numerator, denominator;
};

struct FeatureView {
  std::string name, profile;
  std::vector<MetricFeatures> metrics;
  std::vector<Ratio> ratios;
  std::vector<std::string> since;  // event metrics
  // Every feature's name, in column order.
  std::vector<std::string> feature_names() const;
  // Every metric the view reads (its metrics, ratio operands, events), each once.
  std::vector<std::string> inputs() const;
  // How far before its newest sample `metric`'s features look: its longest window, or 20
  // half-lives of its EWMA (older samples weigh less than 1e-6 in it), whichever is longer;
  // 0 when they need only the newest sample (last, ratios, time since an event).
  int64_t memory_ns(std::string_view metric) const;
};

// Errors name the line and the key ("line 4: metrics[0].windows: ...").
Result<FeatureView> parse_feature_view(std::string_view toml);

}  // namespace fieldline::ml
