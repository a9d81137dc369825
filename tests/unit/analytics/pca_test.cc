// The PCA monitor: eigen-decomposition checked against its definition, T² for a row unusual
// inside the normal subspace, Q for one that leaves it, the contributing metric named, bad
// reference data refused; and SKAB's protocol run on the shared valve1 experiments.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "fieldline/analytics/pca.h"
#include "fieldline/analytics/skab.h"

namespace fieldline::analytics {
namespace {

TEST(Pca, EigenDecompositionMeetsItsDefinition) {
  std::vector<std::vector<double>> a{{4, 1, 0.5}, {1, 3, 0.2}, {0.5, 0.2, 1}};
  std::vector<double> values;
  std::vector<std::vector<double>> vectors;
  symmetric_eigen(a, values, vectors);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_GE(values[0], values[1]);
  EXPECT_GE(values[1], values[2]);
  EXPECT_NEAR(values[0] + values[1] + values[2], 8.0, 1e-9);  // the trace
  for (size_t r = 0; r < 3; ++r) {
    for (size_t i = 0; i < 3; ++i) {
      double av = 0;
      for (size_t j = 0; j < 3; ++j) av += a[i][j] * vectors[r][j];
      EXPECT_NEAR(av, values[r] * vectors[r][i], 1e-9);  // A v = λ v
    }
  }
}

// Three metrics: two that move together (pump speed drives flow and current), one independent.
std::vector<std::vector<double>> reference(size_t n) {
  std::mt19937 rng(5);
  std::normal_distribution<double> d(0, 1);
  std::vector<std::vector<double>> rows;
  for (size_t i = 0; i < n; ++i) {
    double speed = d(rng);
    rows.push_back({10 + 2 * speed + 0.05 * d(rng), 5 + speed + 0.05 * d(rng), 20 + 0.5 * d(rng)});
  }
  return rows;
}

TEST(Pca, TSquaredForAnUnusualRowQForABrokenRelationAndWhichMetric) {
  auto m = PcaMonitor::fit(reference(400));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->components(), 2u);
  auto normal = m->observe({10, 5, 20});
  EXPECT_LT(normal.t2_ratio, 1);
  EXPECT_LT(normal.q_ratio, 1);
  // Far along the shared direction: in the subspace, so T² and not Q.
  auto fast = m->observe({10 + 2 * 6, 5 + 6, 20});
  EXPECT_GT(fast.t2_ratio, 1);
  EXPECT_LT(fast.q_ratio, 1);
  // Flow without the current that should come with it: off the subspace, Q, and the two
  // related metrics carry the deviation.
  auto broken = m->observe({10 + 2 * 2, 5 - 2, 20});
  EXPECT_GT(broken.q_ratio, 1);
  EXPECT_GT(broken.contributions[0] + broken.contributions[1], 0.9);
}

// A temperature warming through the reference and on after it: judged by its change, its
// level ten minutes later is no alarm; a jump in it still is, and so is a broken relation
// between the other metrics.
TEST(Pca, ADriftingMetricIsJudgedByItsChangeNotItsLevel) {
  std::mt19937 rng(8);
  std::normal_distribution<double> d(0, 1);
  auto row = [&](size_t i) {
    const double speed = d(rng);
    return std::vector<double>{10 + 2 * speed + 0.05 * d(rng), 5 + speed + 0.05 * d(rng), 40 + 0.01 * static_cast<double>(i) + 0.02 * d(rng)};
  };
  std::vector<std::vector<double>> reference;
  for (size_t i = 0; i < 400; ++i) reference.push_back(row(i));
  auto m = PcaMonitor::fit(reference);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->drifting(), (std::vector<bool>{false, false, true}));
  size_t out = 0;
  for (size_t i = 400; i < 1000; ++i) {
    auto s = m->observe(row(i));  // 46 °C by the end: 6 degrees past anything in the reference
    out += s.t2_ratio > 2 || s.q_ratio > 2;
  }
  EXPECT_LT(out, 6u) << "the warming itself is not an alarm";
  auto jump = m->observe({10, 5, 54});  // the trend is at 50
  EXPECT_GT(std::max(jump.t2_ratio, jump.q_ratio), 2) << "a jump of 4 degrees in a second is";
  PcaMonitor::Options levels;
  levels.drift_ratio = 0;  // every metric judged by its level
  auto by_level = PcaMonitor::fit(reference, levels);
  ASSERT_TRUE(by_level);
  EXPECT_GT(std::max(by_level->observe(row(1000)).t2_ratio, by_level->observe(row(1001)).q_ratio), 2)
      << "judged by its level, the warmed metric is far out";
}

TEST(Pca, RefusesReferenceDataItCannotFit) {
  EXPECT_FALSE(PcaMonitor::fit({}));
  EXPECT_FALSE(PcaMonitor::fit({{1, 2}, {3, 4}}));  // fewer rows than metrics + 2
  auto rows = reference(50);
  rows[7][1] = std::nan("");
  auto nan = PcaMonitor::fit(rows);
  ASSERT_FALSE(nan);
  EXPECT_NE(nan.error().message().find("not a finite number"), std::string::npos);
  rows = reference(50);
  rows[3].push_back(1);
  EXPECT_FALSE(PcaMonitor::fit(rows));
}

// What `fieldline eval skab` runs, on the shared valve1 experiments.
TEST(SkabEvaluation, RunsTheProtocolOnTheSharedExperiments) {
  const std::string dir = std::string(FIELDLINE_DATASETS) + "/skab";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "the shared datasets are not at " << dir;
  auto ev = skab::evaluate(dir);
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->files, 16u);  // valve1; the anomaly-free file is not part of the protocol
  EXPECT_EQ(ev->rows, ev->tp + ev->fp + ev->tn + ev->fn);
  EXPECT_GT(ev->f1, 0.5) << "far better than a detector that never fires (F1 0)";
  EXPECT_LT(ev->mar, 50);
  EXPECT_LT(ev->far, 30) << "the temperatures' drift after the reference is not a fault";
  ASSERT_FALSE(ev->top_contributors.empty());
  // Changepoints: 3-4 per experiment, windows of 60 s (some merge), scored the NAB way.
  EXPECT_GE(ev->changepoint_windows, 32u);
  EXPECT_LE(ev->changepoint_windows, 64u);
  EXPECT_GT(ev->nab_standard, 0.0) << "better than never calling a changepoint";
  EXPECT_LE(ev->missed_changepoints, ev->changepoint_windows);
  EXPECT_FALSE(skab::evaluate("/nonexistent"));
}

}  // namespace
}  // namespace fieldline::analytics
