#pragma once
// Model runtimes: a trained model predicts from rows of features (row-major floats, NaN for a
// missing feature) and explains each prediction by each feature's contribution. XGBoost
// (through its C API) is one runtime; another engine implements the same interface.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::ml {

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string_view runtime() const = 0;  // "xgboost", "linear"
  virtual size_t features() const = 0;
  // One output per row.
  virtual Status predict(const float* rows, size_t count, std::vector<float>& out) const = 0;
  // Per row, each feature's contribution and then the bias: features() + 1 values, summing to
  // the prediction (SHAP values for trees).
  virtual Status contributions(const float* rows, size_t count, std::vector<float>& out) const = 0;
  // The artifact that load() reads back.
  virtual Result<std::string> save() const = 0;
};

struct XgboostOptions {
  std::string objective = "reg:squarederror";  // or binary:logistic
  int rounds = 300;
  int max_depth = 5;
  double eta = 0.05;
  double subsample = 0.8;
  double colsample = 0.8;
  double min_child_weight = 1;
  int threads = 2;
  uint64_t seed = 1;
};

// Trains on `count` rows of `width` features (row-major) with targets `labels`.
Result<std::unique_ptr<Model>> train_xgboost(const std::vector<float>& rows, size_t width, const std::vector<float>& labels,
                                            const XgboostOptions& options);
// The built-in runtime for the smallest edges: ridge regression, or logistic regression with
// an L2 penalty (Newton's method), on features standardised with the training rows' mean and
// spread; a missing feature counts as its mean. Contributions are each feature's term and the
// bias (for logistic, in log-odds, like XGBoost's).
struct LinearOptions {
  bool logistic = false;
  double l2 = 1.0;
};
Result<std::unique_ptr<Model>> train_linear(const std::vector<float>& rows, size_t width, const std::vector<float>& labels,
                                           const LinearOptions& options);
Result<std::unique_ptr<Model>> load_linear(std::string_view json, size_t width);

// An XGBoost JSON model; `width` features expected (a model that expects another number is
// refused: a mismatch is found when the model is loaded, not when it serves).
Result<std::unique_ptr<Model>> load_xgboost(std::string_view json, size_t width);

}  // namespace fieldline::ml
