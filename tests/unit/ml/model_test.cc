// The XGBoost runtime: it learns a known function, its saved model predicts the same after a
// load, each prediction's contributions add up to it, and a model that does not fit the
// feature view or is not a model at all is refused when loaded. And `fieldline eval cmapss`'s
// pipeline on the shared FD001 data.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "fieldline/ml/cmapss.h"
#include "fieldline/ml/model.h"

namespace fieldline::ml {
namespace {

// y = 3·x0 − 2·x1 + noise; x2 is noise only.
void data(size_t n, std::vector<float>& x, std::vector<float>& y) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1, 1);
  for (size_t i = 0; i < n; ++i) {
    const float a = u(rng), b = u(rng), c = u(rng);
    x.insert(x.end(), {a, b, c});
    y.push_back(3 * a - 2 * b + 0.05f * u(rng));
  }
}

TEST(Xgboost, LearnsSavesLoadsAndExplains) {
  std::vector<float> x, y;
  data(2000, x, y);
  XgboostOptions options;
  options.rounds = 300;
  options.eta = 0.2;
  auto model = train_xgboost(x, 3, y, options);
  ASSERT_TRUE(model) << model.error().message();
  std::vector<float> probe{0.5f, -0.5f, 0.0f, -0.2f, 0.3f, 0.9f}, out;
  ASSERT_TRUE((*model)->predict(probe.data(), 2, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NEAR(out[0], 2.5, 0.2);
  EXPECT_NEAR(out[1], -1.2, 0.2);

  auto json = (*model)->save();
  ASSERT_TRUE(json);
  auto loaded = load_xgboost(*json, 3);
  ASSERT_TRUE(loaded) << loaded.error().message();
  std::vector<float> again;
  ASSERT_TRUE((*loaded)->predict(probe.data(), 2, again));
  EXPECT_EQ(again, out) << "a loaded model predicts exactly what it did when saved";

  std::vector<float> why;
  ASSERT_TRUE((*loaded)->contributions(probe.data(), 2, why));
  ASSERT_EQ(why.size(), 2u * 4);
  for (size_t r = 0; r < 2; ++r) {
    float sum = 0;
    for (size_t j = 0; j < 4; ++j) sum += why[r * 4 + j];
    EXPECT_NEAR(sum, out[r], 1e-3) << "contributions and bias add up to the prediction";
    EXPECT_LT(std::fabs(why[r * 4 + 2]), std::fabs(why[r * 4 + 0])) << "the noise feature explains less than x0";
  }
  std::vector<float> missing{NAN, -0.5f, 0.0f};
  EXPECT_TRUE((*loaded)->predict(missing.data(), 1, out)) << "a missing feature takes the trees' default branch";

  auto wrong = load_xgboost(*json, 5);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("expects 3 features, the feature view gives 5"), std::string::npos) << wrong.error().message();
  EXPECT_FALSE(load_xgboost("{\"not\": \"a model\"}", 3));
  EXPECT_FALSE(load_xgboost(json->substr(0, json->size() / 2), 3)) << "a truncated artifact";
  EXPECT_FALSE(train_xgboost(x, 4, y, options)) << "rows that are not a whole number of 4 features";
}

// Predictions walk the trees here (not through the C API, tens of microseconds a call): they
// must be what XGBoost itself computes, for regression and logistic models, with missing
// values: XGBoost's contributions add up to its own margin.
TEST(Xgboost, TreesEvaluatedHereAgreeWithXgboost) {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> x, y, labels01;
  for (int i = 0; i < 3000; ++i) {
    float a = n(rng), b = n(rng), c = n(rng);
    if (i % 7 == 0) b = NAN;
    x.insert(x.end(), {a, b, c});
    y.push_back(2 * a + (std::isnan(b) ? 0 : b * b) - c);
    labels01.push_back(a + c > 0.3f ? 1.0f : 0.0f);
  }
  for (const char* objective : {"reg:squarederror", "binary:logistic"}) {
    XgboostOptions options;
    options.objective = objective;
    options.rounds = 120;
    options.max_depth = 6;
    auto model = train_xgboost(x, 3, std::string(objective) == "binary:logistic" ? labels01 : y, options);
    ASSERT_TRUE(model) << model.error().message();
    std::vector<float> out, why;
    ASSERT_TRUE((*model)->predict(x.data(), 500, out));
    ASSERT_TRUE((*model)->contributions(x.data(), 500, why));
    for (size_t r = 0; r < 500; ++r) {
      const float margin = why[r * 4] + why[r * 4 + 1] + why[r * 4 + 2] + why[r * 4 + 3];
      const float expected = std::string(objective) == "binary:logistic" ? 1 / (1 + std::exp(-margin)) : margin;
      ASSERT_NEAR(out[r], expected, 2e-4 * (1 + std::fabs(expected))) << objective << " row " << r;
    }
    auto loaded = load_xgboost(*(*model)->save(), 3);
    std::vector<float> again;
    ASSERT_TRUE((*loaded)->predict(x.data(), 500, again));
    EXPECT_EQ(again, out) << objective;
  }
}

TEST(CmapssEvaluation, PredictsRemainingUsefulLifeOnFD001) {
  const std::string dir = std::string(FIELDLINE_DATASETS) + "/cmapss";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "the shared datasets are not at " << dir;
  auto ev = cmapss::evaluate(dir, {});
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->train_units, 100u);
  EXPECT_EQ(ev->test_units, 100u);
  EXPECT_EQ(ev->train_rows, 20631u);
  EXPECT_EQ(ev->regimes, 1u);
  EXPECT_EQ(ev->sensors.size(), 14u - 0u - 2u) << "s1 s5 s10 s16 s18 s19 are constant in FD001, s6 nearly";
  EXPECT_LT(ev->rmse, 16.14) << "better than the deep LSTM of Zheng et al. (2017)";
  EXPECT_GT(ev->rmse, 5.0) << "far below the best published result would mean a leak";
  auto again = cmapss::evaluate(dir, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->training_set_sha256, ev->training_set_sha256) << "the training set is reproducible bit for bit";
  EXPECT_FALSE(cmapss::evaluate("/nonexistent", {}));
}

}  // namespace
}  // namespace fieldline::ml
