#pragma once
// The Skoltech Anomaly Benchmark's outlier-detection protocol (waico/SKAB's leaderboard): each
// file of a folder in SKAB's layout (data/<group>/<n>.csv, `;`-separated, the sensor columns
// then `anomaly` and `changepoint`) is one experiment; its first 400 rows fit a PcaMonitor
// (the normal reference), the rest are scored row by row in time order, and per-row F1, false-
// alarm rate and missed-alarm rate are computed over the scored rows of all files together.
//
// A row is called anomalous when T² or Q has been above its control limit in at least
// `confirm` of the last `of` rows: a pump's faults last minutes; one noisy second is not one.
// The limits are the reference rows' 90th percentile, so a single row beyond them says little
// and a majority of the last 40 s says a lot (at a 99th percentile, the rows within the
// limits during a fault cost more misses than the vote saves).

#include <string>
#include <string_view>
#include <vector>

#include "fieldline/analytics/pca.h"
#include "fieldline/core/result.h"

namespace fieldline::analytics::skab {

struct Options {
  size_t train_rows = 400;
  size_t confirm = 20, of = 40;
  PcaMonitor::Options pca{.limit_quantile = 0.9};
};

struct Evaluation {
  size_t files = 0, rows = 0;
  uint64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double f1 = 0, far = 0, mar = 0;  // far and mar in %
  // The metric that contributed most to Q at each true positive, counted (what an alarm says).
  std::vector<std::pair<std::string, uint64_t>> top_contributors;
  // Changepoint detection: the first row of each alarm is a predicted changepoint, scored
  // with NAB's rules (no probationary period) against a 60 s window to the right of each true
  // changepoint (windows that overlap merge): normalised standard, low-FP and low-FN scores.
  double nab_standard = 0, nab_low_fp = 0, nab_low_fn = 0;
  size_t changepoint_windows = 0, missed_changepoints = 0, changepoint_false_positives = 0;
};

Result<Evaluation> evaluate(const std::string& dir, const Options& options = {});

// One experiment file's text: the sensor columns' names, their rows, and the anomaly labels.
struct Experiment {
  std::vector<std::string> metrics;
  std::vector<std::vector<double>> rows;
  std::vector<bool> anomalous;
  std::vector<bool> changepoint;  // empty when the file has no changepoint column
  std::vector<int64_t> times_us;
};
Result<Experiment> parse_experiment(std::string_view text, const std::string& where);

}  // namespace fieldline::analytics::skab
