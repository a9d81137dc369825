#pragma once
// NASA C-MAPSS remaining-useful-life evaluation (fieldline eval cmapss): each engine unit is
// a device whose cycles are minutes; every sensor that varies is normalised per operating
// regime (the rounded operational settings) with the training units' statistics, features
// come from a feature view through the feature store (offline, point in time), an XGBoost
// model learns the piecewise-linear RUL target (capped), and each test unit's RUL is
// predicted at its last cycle: RMSE and the PHM08 score against RUL_<subset>.txt.

#include <string>
#include <string_view>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/ml/feature_view.h"
#include "fieldline/ml/model.h"
#include "fieldline/ml/training_set.h"

namespace fieldline::ml::cmapss {

struct Options {
  std::string subset = "FD001";
  double cap = 125;  // cycles: the target is min(cap, cycles to failure)
  // The feature view: per sensor, these aggregates over these windows (a cycle is a minute),
  // and an EWMA with this half-life; and the unit's age in cycles.
  std::vector<std::string> windows{"10m", "30m", "60m", "120m"};
  std::vector<std::string> aggregates{"mean", "slope"};
  std::string ewma = "10m";
  XgboostOptions model;
};

struct Evaluation {
  std::string subset;
  size_t train_units = 0, test_units = 0, train_rows = 0, regimes = 0;
  std::vector<std::string> sensors;  // those kept (varying within a regime)
  std::vector<std::string> features;
  std::string training_set_sha256;
  double rmse = 0, score = 0;
  double train_seconds = 0;
  std::vector<double> predicted, actual;  // per test unit
  std::string view_document;              // the feature view used
};

// The evaluation's data, ready for the feature store: each unit a device (train-<n>,
// test-<n>) whose metrics are its normalised sensors and its cycle, a sample per cycle at
// `start_ns` + cycle minutes; labels 1 ms after a cycle (the features read that cycle).
struct Prepared {
  Evaluation summary;  // subset, units, regimes, sensors, features, view_document
  FeatureView view;
  std::vector<DeviceData> train, test;
  std::vector<std::vector<Label>> train_labels;  // after each cycle: min(cap, cycles to failure)
  std::vector<Label> test_labels;                // per test device: after its last cycle, the true RUL
};
constexpr int64_t kStartNs = 1'700'000'000LL * 1'000'000'000LL;
constexpr int64_t kCycleNs = 60'000'000'000LL;
constexpr int64_t kLabelDelayNs = 1'000'000;
// `dir`: a folder with data/train_<subset>.txt, data/test_<subset>.txt, data/RUL_<subset>.txt.
Result<Prepared> prepare(const std::string& dir, const Options& options);

// The whole evaluation in memory: prepare(), a training set, XGBoost, a prediction per test
// unit. (`fieldline eval cmapss` runs the same through the platform.)
Result<Evaluation> evaluate(const std::string& dir, const Options& options);
// RMSE and PHM08 score of `predicted` (clipped to [0, cap]) against `actual`.
void score(Evaluation& ev, const std::vector<double>& predicted, double cap);

// One row of a C-MAPSS file: unit, cycle, the 3 operational settings and 21 sensors.
struct Cycle {
  int unit = 0, cycle = 0;
  std::vector<double> values;  // settings, then sensors
};
// A train_/test_ file's text (whitespace-separated); errors name the line.
Result<std::vector<Cycle>> parse_file(std::string_view text, const std::string& where);

// PHM08: Σ exp(−d/13) − 1 for early predictions (d = predicted − actual < 0), exp(d/10) − 1
// for late ones.
double phm08_score(const std::vector<double>& predicted, const std::vector<double>& actual);

}  // namespace fieldline::ml::cmapss
