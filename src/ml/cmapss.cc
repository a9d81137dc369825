#include "fieldline/ml/cmapss.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "fieldline/core/errc.h"
#include "fieldline/ml/feature_view.h"
#include "fieldline/ml/training_set.h"

namespace fieldline::ml::cmapss {

namespace {

constexpr size_t kSensors = 21;

// A row's settings come first in Cycle::values, then its sensors.
constexpr size_t kSettings = 3;

Result<std::vector<Cycle>> read_rows(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::make_error(core::Errc::not_found, "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_file(text.str(), path);
}

// An operating regime: the settings rounded to what separates the six C-MAPSS conditions.
std::string regime_of(const Cycle& r) {
  return std::to_string(std::lround(r.values[0])) + "/" + std::to_string(std::lround(r.values[1] * 100)) + "/" +
         std::to_string(std::lround(r.values[2]));
}

struct Stats {
  double n = 0, mean = 0, m2 = 0;
  void add(double x) {
    n += 1;
    const double d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  double sd() const { return n > 1 ? std::sqrt(m2 / (n - 1)) : 0; }
};

}  // namespace

Result<std::vector<Cycle>> parse_file(std::string_view text, const std::string& where) {
  std::vector<Cycle> rows;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t eol = text.find('\n');
    const std::string line(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    std::istringstream cells(line);
    double unit = 0, cycle = 0;
    if (!(cells >> unit)) continue;  // a blank line
    Cycle c;
    c.values.resize(24);
    bool ok = static_cast<bool>(cells >> cycle);
    for (double& v : c.values) ok = ok && static_cast<bool>(cells >> v) && std::isfinite(v);
    if (!ok || !(unit >= 1 && unit <= 1e6) || !(cycle >= 1 && cycle <= 1e6) || unit != std::floor(unit) || cycle != std::floor(cycle)) {
      return core::make_error(core::Errc::invalid_argument,
                              where + ":" + std::to_string(number) + ": expected unit, cycle, 3 settings and 21 sensors (numbers)");
    }
    c.unit = static_cast<int>(unit);
    c.cycle = static_cast<int>(cycle);
    rows.push_back(std::move(c));
  }
  if (rows.empty()) return core::make_error(core::Errc::invalid_argument, where + ": no rows");
  return rows;
}

double phm08_score(const std::vector<double>& predicted, const std::vector<double>& actual) {
  double s = 0;
  for (size_t i = 0; i < predicted.size(); ++i) {
    const double d = predicted[i] - actual[i];
    s += d < 0 ? std::exp(-d / 13) - 1 : std::exp(d / 10) - 1;
  }
  return s;
}

Result<Prepared> prepare(const std::string& dir, const Options& options) {
  FL_TRY(train, read_rows(dir + "/data/train_" + options.subset + ".txt"));
  FL_TRY(test, read_rows(dir + "/data/test_" + options.subset + ".txt"));
  std::vector<double> truth;
  {
    const std::string path = dir + "/data/RUL_" + options.subset + ".txt";
    std::ifstream in(path);
    if (!in) return core::make_error(core::Errc::not_found, "cannot read " + path);
    for (double x; in >> x;) truth.push_back(x);
  }
  Prepared prepared;
  Evaluation& ev = prepared.summary;
  ev.subset = options.subset;

  // Per regime and sensor, the training rows' mean and spread; a sensor that does not vary
  // within any regime carries nothing and is left out.
  std::map<std::string, std::array<Stats, kSensors>> stats;
  for (const auto& r : train) {
    auto& s = stats[regime_of(r)];
    for (size_t j = 0; j < kSensors; ++j) s[j].add(r.values[kSettings + j]);
  }
  ev.regimes = stats.size();
  std::vector<size_t> kept;
  for (size_t j = 0; j < kSensors; ++j) {
    double within = 0, scale = 0;
    for (const auto& [regime, s] : stats) {
      within = std::max(within, s[j].sd());
      scale = std::max(scale, std::fabs(s[j].mean));
    }
    if (within > 1e-4 * std::max(scale, 1.0)) kept.push_back(j);
  }
  for (size_t j : kept) ev.sensors.push_back("s" + std::to_string(j + 1));

  // The feature view: per sensor the recent mean and trend, and the unit's age in cycles.
  std::string view = "view = \"cmapss_" + options.subset + "\"\nprofile = \"turbofan\"\n";
  auto list = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (const auto& i : items) out += (out.size() > 1 ? ", \"" : "\"") + i + "\"";
    return out + "]";
  };
  for (const auto& s : ev.sensors) {
    view += "[[metrics]]\nmetric = \"" + s + "\"\n";
    if (!options.windows.empty()) view += "windows = " + list(options.windows) + "\naggregates = " + list(options.aggregates) + "\n";
    view += options.ewma.empty() ? "last = true\n" : "ewma = \"" + options.ewma + "\"\n";
  }
  view += "[[metrics]]\nmetric = \"cycle\"\nlast = true\n";
  ev.view_document = view;
  FL_TRY(parsed, parse_feature_view(view));
  ev.features = parsed.feature_names();

  // Devices: each unit's normalised sensors and its cycle, a sample per cycle.
  auto devices_of = [&](const std::vector<Cycle>& rows, const std::string& prefix, std::map<int, int>& last_cycle) {
    std::map<int, DeviceData> by_unit;
    for (const auto& r : rows) {
      auto& d = by_unit[r.unit];
      if (d.device.empty()) {
        d.device = prefix + std::to_string(r.unit);
        for (const auto& s : ev.sensors) d.metrics.push_back({s, {}});
        d.metrics.push_back({"cycle", {}});
      }
      const int64_t ts = kStartNs + r.cycle * kCycleNs;
      auto it = stats.find(regime_of(r));
      for (size_t k = 0; k < kept.size(); ++k) {
        double x = std::nan("");  // a regime the training units never ran in: missing
        if (it != stats.end()) {
          const auto& s = it->second[kept[k]];
          x = s.sd() > 0 ? (r.values[kSettings + kept[k]] - s.mean) / s.sd() : 0;
        }
        d.metrics[k].second.push_back({ts, x});
      }
      d.metrics.back().second.push_back({ts, static_cast<double>(r.cycle)});
      last_cycle[r.unit] = std::max(last_cycle[r.unit], r.cycle);
    }
    std::vector<DeviceData> out;
    for (auto& [unit, d] : by_unit) out.push_back(std::move(d));
    return out;
  };
  std::map<int, int> train_last, test_last;
  auto train_devices = devices_of(train, "train-", train_last);
  auto test_devices = devices_of(test, "test-", test_last);
  ev.train_units = train_devices.size();
  ev.test_units = test_devices.size();
  if (truth.size() != test_devices.size()) {
    return core::make_error(core::Errc::invalid_argument, "RUL_" + options.subset + ".txt has " + std::to_string(truth.size()) +
                                                              " values for " + std::to_string(test_devices.size()) + " test units");
  }

  // Training rows: every cycle, labelled just after it with min(cap, cycles to failure).
  std::vector<std::vector<Label>> train_labels;
  for (const auto& d : train_devices) {
    const int unit = std::stoi(d.device.substr(6));
    std::vector<Label> labels;
    for (const auto& s : d.metrics.back().second) {
      const double cycle = s.value;
      labels.push_back({s.ts_ns + kLabelDelayNs, std::min(options.cap, train_last[unit] - cycle)});
    }
    train_labels.push_back(std::move(labels));
  }
  for (size_t i = 0; i < test_devices.size(); ++i) {
    const int unit = std::stoi(test_devices[i].device.substr(5));
    prepared.test_labels.push_back({kStartNs + test_last[unit] * kCycleNs + kLabelDelayNs, truth[static_cast<size_t>(unit - 1)]});
  }
  prepared.view = std::move(parsed);
  prepared.train = std::move(train_devices);
  prepared.test = std::move(test_devices);
  prepared.train_labels = std::move(train_labels);
  return prepared;
}

void score(Evaluation& ev, const std::vector<double>& predicted, double cap) {
  ev.predicted.clear();
  double se = 0;
  for (size_t i = 0; i < predicted.size() && i < ev.actual.size(); ++i) {
    const double p = std::clamp(predicted[i], 0.0, cap);
    ev.predicted.push_back(p);
    se += (p - ev.actual[i]) * (p - ev.actual[i]);
  }
  ev.rmse = ev.predicted.empty() ? 0 : std::sqrt(se / static_cast<double>(ev.predicted.size()));
  ev.score = phm08_score(ev.predicted, ev.actual);
}

Result<Evaluation> evaluate(const std::string& dir, const Options& options) {
  FL_TRY(prepared, prepare(dir, options));
  Evaluation ev = prepared.summary;
  FL_TRY(set, build_training_set(prepared.view, 1, prepared.train, prepared.train_labels));
  ev.training_set_sha256 = set.sha256;
  ev.train_rows = set.rows.size();
  std::vector<float> x, y;
  for (const auto& r : set.rows) {
    for (double f : r.features) x.push_back(static_cast<float>(f));
    y.push_back(static_cast<float>(r.label));
  }
  const auto started = std::chrono::steady_clock::now();
  FL_TRY(model, train_xgboost(x, ev.features.size(), y, options.model));
  ev.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // Test units: one row each, just after its last cycle; labelled with the true RUL.
  std::vector<std::vector<Label>> test_labels;
  for (const auto& l : prepared.test_labels) test_labels.push_back({l});
  FL_TRY(rows, build_training_set(prepared.view, 1, prepared.test, test_labels));
  std::vector<float> tx;
  for (const auto& r : rows.rows) {
    for (double f : r.features) tx.push_back(static_cast<float>(f));
    ev.actual.push_back(r.label);
  }
  std::vector<float> out;
  FL_TRY_STATUS(model->predict(tx.data(), rows.rows.size(), out));
  score(ev, std::vector<double>(out.begin(), out.end()), options.cap);
  return ev;
}

}  // namespace fieldline::ml::cmapss
