// The built-in linear runtime (for the smallest edges): ridge regression and L2 logistic
// regression on standardised features; it learns known functions, its artifact reads back to
// the same predictions, contributions add up, missing features count as the mean, and
// artifacts that do not fit are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "fieldline/ml/model.h"

namespace fieldline::ml {
namespace {

TEST(LinearModel, RegressionLearnsSavesLoadsAndExplains) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> x, y;
  for (int i = 0; i < 1000; ++i) {
    const float a = 10 + 2 * n(rng), b = n(rng), c = n(rng);
    x.insert(x.end(), {a, b, c});
    y.push_back(3 * a - 2 * b + 5 + 0.01f * n(rng));
  }
  auto model = train_linear(x, 3, y, {.logistic = false, .l2 = 1e-3});
  ASSERT_TRUE(model) << model.error().message();
  EXPECT_EQ((*model)->runtime(), "linear");
  std::vector<float> probe{12, 0.5f, -1}, out;
  ASSERT_TRUE((*model)->predict(probe.data(), 1, out));
  EXPECT_NEAR(out[0], 3 * 12 - 2 * 0.5 + 5, 0.05);
  std::vector<float> why;
  ASSERT_TRUE((*model)->contributions(probe.data(), 1, why));
  ASSERT_EQ(why.size(), 4u);
  EXPECT_NEAR(why[0] + why[1] + why[2] + why[3], out[0], 1e-3);
  EXPECT_LT(std::fabs(why[2]), 0.05) << "c does not matter";
  auto json = (*model)->save();
  ASSERT_TRUE(json);
  auto loaded = load_linear(*json, 3);
  ASSERT_TRUE(loaded) << loaded.error().message();
  std::vector<float> again;
  ASSERT_TRUE((*loaded)->predict(probe.data(), 1, again));
  EXPECT_EQ(again, out) << "the artifact reads back to the same model";
  std::vector<float> missing{NAN, 0.5f, -1};
  ASSERT_TRUE((*loaded)->predict(missing.data(), 1, again));
  EXPECT_NEAR(again[0], 3 * 10 - 2 * 0.5 + 5, 0.2) << "a missing feature counts as its training mean";
  EXPECT_FALSE(load_linear(*json, 4));
  EXPECT_FALSE(load_linear("[1, 2]", 3));
  EXPECT_FALSE(load_linear(R"({"kind": "regression", "mean": [0], "scale": [0], "weights": [1], "bias": 0})", 1)) << "a zero scale";
}

TEST(LinearModel, LogisticLearnsASeparatingDirectionAndNeedsBothLabels) {
  std::mt19937 rng(4);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> x, y;
  for (int i = 0; i < 2000; ++i) {
    const float a = n(rng), b = n(rng);
    x.insert(x.end(), {a, b});
    y.push_back(2 * a - b + 0.3f * n(rng) > 0 ? 1.0f : 0.0f);
  }
  auto model = train_linear(x, 2, y, {.logistic = true, .l2 = 1});
  ASSERT_TRUE(model) << model.error().message();
  std::vector<float> probe{2, -1, -2, 1}, out;
  ASSERT_TRUE((*model)->predict(probe.data(), 2, out));
  EXPECT_GT(out[0], 0.95);
  EXPECT_LT(out[1], 0.05);
  std::vector<float> ones(10, 1.0f), rows(20, 0.5f);
  auto refused = train_linear(rows, 2, ones, {.logistic = true});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("both 0 and 1"), std::string::npos);
  EXPECT_FALSE(train_linear(rows, 3, ones, {}));
}

}  // namespace
}  // namespace fieldline::ml
