// Feature views and features: the document's errors name line and key; each aggregate is
// checked against its definition computed from scratch; online (samples applied as they
// come, read at any moment) and offline (a training set built from the stored samples) agree
// to the last bit on a replayed stream; a row never reads data from its label's time or after.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "fieldline/ml/feature_view.h"
#include "fieldline/ml/features.h"
#include "fieldline/ml/training_set.h"

namespace fieldline::ml {
namespace {

constexpr int64_t kSec = 1'000'000'000LL;
constexpr int64_t kT0 = 1'795'400'000LL * kSec;

constexpr const char* kView = R"(
view = "pump_health"
profile = "pump"
[[metrics]]
metric = "vibration"
windows = ["10m", "1h"]
aggregates = ["mean", "std", "min", "max", "slope", "count", "p50", "p90"]
last = true
ewma = "10m"
[[metrics]]
metric = "temperature"
windows = ["30m"]
aggregates = ["mean", "max"]
[[ratios]]
name = "flow_per_current"
numerator = "flow"
denominator = "current"
[since]
events = ["maintenance"]
)";

std::shared_ptr<const FeatureView> view() {
  auto v = parse_feature_view(kView);
  EXPECT_TRUE(v) << v.error().message();
  return std::make_shared<const FeatureView>(*v);
}

TEST(FeatureView, NamesEveryFeatureInColumnOrder) {
  auto v = view();
  auto names = v->feature_names();
  ASSERT_EQ(names.size(), 2u * 8 + 2 + 2 + 1 + 1);
  EXPECT_EQ(names[0], "vibration_mean_10m");
  EXPECT_EQ(names[15], "vibration_p90_1h");
  EXPECT_EQ(names[16], "vibration_last");
  EXPECT_EQ(names[17], "vibration_ewma_10m");
  EXPECT_EQ(names[18], "temperature_mean_30m");
  EXPECT_EQ(names[20], "flow_per_current");
  EXPECT_EQ(names[21], "since_maintenance_s");
  EXPECT_EQ(v->inputs(), (std::vector<std::string>{"vibration", "temperature", "flow", "current", "maintenance"}));
  // How far back warming reads: the longest window or 20 EWMA half-lives; only the newest
  // sample for ratios and events.
  EXPECT_EQ(v->memory_ns("vibration"), 200 * 60 * kSec);
  EXPECT_EQ(v->memory_ns("temperature"), 30 * 60 * kSec);
  EXPECT_EQ(v->memory_ns("flow"), 0);
  EXPECT_EQ(v->memory_ns("maintenance"), 0);
}

TEST(FeatureView, ErrorsNameTheLineAndTheKey) {
  struct Case {
    const char* text;
    const char* expected;
  } cases[] = {
      {"view = \"v\"\n[[metrics]]\nmetric = \"t\"\nwindows = [\"10m\"]\naggregates = [\"median\"]\n",
       "line 5: metrics[0].aggregates: unknown aggregate 'median'"},
      {"view = \"v\"\n[[metrics]]\nmetric = \"t\"\nwindows = [\"ten minutes\"]\naggregates = [\"mean\"]\n",
       "line 4: metrics[0].windows: 'ten minutes' is not a duration"},
      {"view = \"v\"\n[[metrics]]\nmetric = \"t\"\nwindows = [\"10m\"]\n", "metrics[0]: windows need aggregates"},
      {"view = \"v\"\n[[metrics]]\nmetric = \"t\"\nlast = true\n[[metrics]]\nmetric = \"t\"\nlast = true\n", "'t' has features already"},
      {"view = \"v\"\n[[ratios]]\nname = \"r\"\nnumerator = \"a\"\n", "ratios[0]: needs name, numerator and denominator"},
      {"[[metrics]]\nmetric = \"t\"\nlast = true\n", "view: missing"},
      {"view = \"v\"\ncolour = 1\n", "line 2: colour: unknown key"},
      {"view = \"v\"\n[[metrics]]\nmetric = \"t\"\nwindows = [\"10m\"]\naggregates = [\"p100\"]\n", "unknown aggregate 'p100'"},
      {"view = [\n", "line "},
  };
  for (const auto& c : cases) {
    auto v = parse_feature_view(c.text);
    ASSERT_FALSE(v) << c.text;
    EXPECT_NE(v.error().message().find(c.expected), std::string::npos) << c.text << " -> " << v.error().message();
  }
}

// Each windowed aggregate against its definition over exactly the samples in the window.
TEST(Features, EachAggregateMeetsItsDefinition) {
  auto v = view();
  FeatureState state(v);
  const int vibration = state.input("vibration");
  ASSERT_GE(vibration, 0);
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 1);
  std::vector<Sample> all;
  int64_t t = kT0;
  for (int i = 0; i < 5000; ++i) {
    t += (1 + static_cast<int64_t>(rng() % 20)) * kSec;  // irregular, 1-20 s apart
    const double x = 100 + 0.01 * i + 3 * noise(rng);
    all.push_back({t, x});
    ASSERT_EQ(state.apply(vibration, t, x), FeatureState::Applied::yes);
    if (i % 997 != 996) continue;
    std::vector<double> got;
    state.snapshot(t, got);
    for (size_t w = 0; w < 2; ++w) {
      const int64_t width = w == 0 ? 600 * kSec : 3600 * kSec;
      std::vector<Sample> in;
      for (const auto& s : all) {
        if (s.ts_ns > t - width) in.push_back(s);
      }
      const double n = static_cast<double>(in.size());
      double mean = 0, tm = 0;
      for (const auto& s : in) {
        mean += s.value;
        tm += static_cast<double>(s.ts_ns - in[0].ts_ns) * 1e-9;
      }
      mean /= n;
      tm /= n;
      double var = 0, cov = 0, tvar = 0;
      for (const auto& s : in) {
        const double dt = static_cast<double>(s.ts_ns - in[0].ts_ns) * 1e-9 - tm;
        var += (s.value - mean) * (s.value - mean);
        cov += dt * (s.value - mean);
        tvar += dt * dt;
      }
      std::vector<double> sorted;
      for (const auto& s : in) sorted.push_back(s.value);
      std::sort(sorted.begin(), sorted.end());
      auto pct = [&](double q) {
        const double pos = q * (n - 1);
        const auto lo = static_cast<size_t>(pos);
        const size_t hi = std::min(lo + 1, sorted.size() - 1);
        return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
      };
      const double* f = got.data() + w * 8;
      EXPECT_NEAR(f[0], mean, 1e-9) << "mean, window " << w;
      EXPECT_NEAR(f[1], std::sqrt(var / (n - 1)), 1e-7) << "std";
      EXPECT_EQ(f[2], sorted.front()) << "min";
      EXPECT_EQ(f[3], sorted.back()) << "max";
      EXPECT_NEAR(f[4], cov / tvar, 1e-9) << "slope per second";
      EXPECT_EQ(f[5], n) << "count";
      EXPECT_DOUBLE_EQ(f[6], pct(0.5)) << "p50";
      EXPECT_DOUBLE_EQ(f[7], pct(0.9)) << "p90";
    }
    EXPECT_EQ(got[16], all.back().value) << "last";
  }
}

// Percentiles over long windows come from sorted blocks kept as samples come and go; with
// many repeated values and a drifting level they still equal the definition's order statistics.
TEST(Features, PercentilesOverLongWindowsMeetTheirDefinition) {
  auto parsed = parse_feature_view(
      "view = \"v\"\nprofile = \"p\"\n[[metrics]]\nmetric = \"x\"\nwindows = [\"1h\"]\naggregates = [\"p1\", \"p50\", \"p99\"]\n");
  ASSERT_TRUE(parsed) << parsed.error().message();
  FeatureState state(std::make_shared<const FeatureView>(*parsed));
  std::mt19937 rng(11);
  std::vector<double> all;
  std::vector<double> got;
  for (int i = 0; i < 20000; ++i) {
    const double x = std::round(20 * std::sin(i / 3000.0) + static_cast<double>(rng() % 30));  // few distinct values
    all.push_back(x);
    ASSERT_EQ(state.apply(0, kT0 + i * kSec, x), FeatureState::Applied::yes);
    if (i % 1000 != 999) continue;
    state.snapshot(kT0 + i * kSec, got);
    std::vector<double> window(all.end() - std::min<std::ptrdiff_t>(3600, static_cast<std::ptrdiff_t>(all.size())), all.end());
    std::sort(window.begin(), window.end());
    const double quantiles[] = {0.01, 0.5, 0.99};
    for (size_t k = 0; k < 3; ++k) {
      const double pos = quantiles[k] * static_cast<double>(window.size() - 1);
      const auto lo = static_cast<size_t>(pos);
      const double high = window[std::min(lo + 1, window.size() - 1)];
      EXPECT_EQ(got[k], window[lo] + (pos - static_cast<double>(lo)) * (high - window[lo])) << "p" << quantiles[k] * 100 << " at " << i;
    }
  }
}

TEST(Features, BadAndMissingInputIsNotAppliedAndReadsAsMissing) {
  auto v = view();
  FeatureState state(v);
  std::vector<double> got;
  state.snapshot(kT0, got);
  ASSERT_EQ(got.size(), v->feature_names().size());
  EXPECT_EQ(got[5], 0.0) << "an empty window counts 0";
  EXPECT_TRUE(std::isnan(got[0])) << "and has no mean";
  const int vibration = state.input("vibration");
  EXPECT_EQ(state.input("colour"), -1);
  EXPECT_EQ(state.apply(vibration, kT0, std::nan("")), FeatureState::Applied::not_finite);
  EXPECT_EQ(state.apply(vibration, kT0, 1.0), FeatureState::Applied::yes);
  EXPECT_EQ(state.apply(vibration, kT0, 2.0), FeatureState::Applied::late) << "a repeated time";
  EXPECT_EQ(state.apply(vibration, kT0 - kSec, 2.0), FeatureState::Applied::late);
  state.apply(state.input("flow"), kT0, 30);
  state.apply(state.input("current"), kT0, 0);
  state.snapshot(kT0, got);
  EXPECT_EQ(got[5], 1.0);
  EXPECT_TRUE(std::isnan(got[1])) << "one sample has no spread";
  EXPECT_TRUE(std::isnan(got[20])) << "a ratio over 0";
  EXPECT_TRUE(std::isnan(got[21])) << "no maintenance yet";
  state.apply(state.input("maintenance"), kT0 + 10 * kSec, 1);
  state.snapshot(kT0 + 70 * kSec, got);
  EXPECT_EQ(got[21], 60.0);
}

// A stream of four metrics, replayed: features read online after each sample equal, bit for
// bit, the offline rows labelled just after it; and no row reads a sample at its label's time.
TEST(Features, OnlineAndOfflineAgreeToTheLastBit) {
  auto v = view();
  std::mt19937 rng(4);
  std::normal_distribution<double> noise(0, 1);
  DeviceData data{"pump-1", {{"vibration", {}}, {"temperature", {}}, {"flow", {}}, {"current", {}}, {"maintenance", {}}}};
  FeatureState online(v);
  std::vector<Label> labels;
  std::vector<std::vector<double>> expected;
  int64_t t = kT0;
  for (int i = 0; i < 20000; ++i) {
    t += (1 + static_cast<int64_t>(rng() % 5)) * kSec;
    const size_t m = rng() % 4;
    const double x = m == 3 ? 10 + noise(rng) : 50 + 5 * std::sin(i * 0.001) + noise(rng);
    data.metrics[m].second.push_back({t, x});
    online.apply(online.input(data.metrics[m].first), t, x);
    if (i % 1500 == 700) {
      data.metrics[4].second.push_back({t + 1, 1});
      online.apply(online.input("maintenance"), t + 1, 1);
      t += 1;
    }
    if (i % 37 == 0) {
      // Labelled at the next sample's time: the row must not read that sample.
      const int64_t label_at = t + kSec;
      labels.push_back({label_at, static_cast<double>(i)});
      expected.emplace_back();
      online.snapshot(label_at, expected.back());
      const double marker = 1e6 + static_cast<double>(labels.size());  // a sample at the label's time, larger each time
      data.metrics[0].second.push_back({label_at, marker});
      online.apply(online.input("vibration"), label_at, marker);
      t = label_at;
    }
  }
  auto set = build_training_set(*v, 3, {data}, {labels});
  ASSERT_TRUE(set) << set.error().message();
  ASSERT_EQ(set->rows.size(), expected.size());
  for (size_t r = 0; r < expected.size(); ++r) {
    ASSERT_EQ(set->rows[r].features.size(), expected[r].size());
    EXPECT_EQ(std::memcmp(set->rows[r].features.data(), expected[r].data(), expected[r].size() * sizeof(double)), 0)
        << "row " << r << " differs";
    EXPECT_FALSE(set->rows[r].features[3] >= 1e6 + static_cast<double>(r + 1)) << "row " << r << " read the sample at its label's time";
  }
  EXPECT_EQ(set->lineage.view, "pump_health");
  EXPECT_EQ(set->lineage.view_version, 3);
  EXPECT_EQ(set->lineage.devices, std::vector<std::string>{"pump-1"});
  // Reproducible: the same inputs, the same bytes and hash; other labels, another hash.
  auto again = build_training_set(*v, 3, {data}, {labels});
  EXPECT_EQ(again->sha256, set->sha256);
  EXPECT_EQ(again->csv(), set->csv());
  EXPECT_EQ(set->sha256, sha256_hex(set->csv()));
  labels.back().value += 1;
  EXPECT_NE(build_training_set(*v, 3, {data}, {labels})->sha256, set->sha256);
}

TEST(TrainingSet, CsvReadsBackToTheSameBitsAndLabelsAreChecked) {
  auto v = view();
  DeviceData data{"pump-2", {{"vibration", {{kT0, 0.1}, {kT0 + kSec, 1.0 / 3}}}}};
  auto set = build_training_set(*v, 1, {data}, {{{kT0 + 2 * kSec, 7}}});
  ASSERT_TRUE(set);
  const std::string csv = set->csv();
  EXPECT_EQ(csv.substr(0, csv.find('\n')).rfind("device,time,label,vibration_mean_10m,", 0), 0u);
  const std::string row = csv.substr(csv.find('\n') + 1);
  EXPECT_EQ(row.rfind("pump-2,", 0), 0u);
  EXPECT_NE(row.find(",7,"), std::string::npos);
  // vibration_last, 1/3, printed with 17 digits, parses back to the same double.
  const std::string last = "0.33333333333333331";
  ASSERT_NE(row.find(last), std::string::npos) << row;
  EXPECT_EQ(std::strtod(last.c_str(), nullptr), 1.0 / 3);
  EXPECT_NE(row.find(",,"), std::string::npos) << "NaN features are empty cells";

  auto none = build_training_set(*v, 1, {data}, {{{kT0, 0}, {kT0 + kSec, 0}}}, LabelKind::classification);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("no positive labels"), std::string::npos) << none.error().message();
  auto odd = build_training_set(*v, 1, {data}, {{{kT0, 2}}}, LabelKind::classification);
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message().find("not 0 or 1"), std::string::npos);
  EXPECT_FALSE(build_training_set(*v, 1, {data}, {{}}));
  EXPECT_FALSE(build_training_set(*v, 1, {data}, {{{kT0, std::nan("")}}}));
}

TEST(TrainingSet, TimeToEventLabelsAreCappedAndUnknownAfterTheLastEvent) {
  auto l = time_to_event_labels({0, 10 * kSec, 50 * kSec, 90 * kSec}, {60 * kSec, 20 * kSec}, 30);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].value, 20);
  EXPECT_EQ(l[1].value, 10);
  EXPECT_EQ(l[2].value, 10);  // 50 s: the next event at 60 s
}

}  // namespace
}  // namespace fieldline::ml

namespace fieldline::ml {
namespace {

// Labels from events: a row every `every`, 1 when the event comes within the horizon (or the
// hours to it, capped), and no row whose outcome is not known by the end of the data.
TEST(TrainingSet, EventLabelsLookAheadToTheNextEventWithinTheHorizon) {
  auto parsed = parse_event_label("event:failure/2h/30m");
  ASSERT_TRUE(parsed && *parsed);
  EXPECT_EQ((*parsed)->metric, "failure");
  EXPECT_EQ((*parsed)->horizon_ns, 2 * 3600 * kSec);
  EXPECT_EQ((*parsed)->every_ns, 1800 * kSec);
  EXPECT_FALSE(*parse_event_label("rul")) << "a metric's name is not an event label";
  EXPECT_FALSE(parse_event_label("event:failure/2h"));
  EXPECT_FALSE(parse_event_label("event:/2h/1h"));
  std::vector<int64_t> times;
  for (int m = 0; m < 600; m += 10) times.push_back(kT0 + m * 60 * kSec);  // every 10 min for 10 h
  const std::vector<int64_t> events = {kT0 + 185 * 60 * kSec};             // a failure at 3h05
  const int64_t end = kT0 + 590 * 60 * kSec;
  auto c = event_labels(times, events, **parsed, end, LabelKind::classification);
  // Rows at 0, 30, 60... min; 1 from 1h05 before the failure on (rows at 90, 120, 150, 180 min).
  ASSERT_FALSE(c.empty());
  for (const auto& l : c) {
    const int64_t minute = (l.ts_ns - kT0) / (60 * kSec);
    EXPECT_EQ(minute % 30, 0);
    EXPECT_EQ(l.value, minute >= 65 && minute < 185 ? 1.0 : 0.0) << minute;
    if (l.value == 0) {
      EXPECT_LE(l.ts_ns + 2 * 3600 * kSec, end) << "a 0 only where the whole horizon was observed";
    }
  }
  EXPECT_EQ((c.back().ts_ns - kT0) / (60 * kSec), 450) << "7h30 + 2h is the last horizon inside the data";
  auto r = event_labels(times, events, **parsed, end, LabelKind::regression);
  ASSERT_EQ(r.size(), c.size());
  EXPECT_DOUBLE_EQ(r[0].value, 2.0) << "capped at the horizon";
  EXPECT_DOUBLE_EQ(r[5].value, 35.0 / 60) << "2h30: 35 min to the failure";
}

}  // namespace
}  // namespace fieldline::ml
