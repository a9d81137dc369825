#include <xgboost/c_api.h>

#include <cmath>
#include <mutex>
#include <string>

#include "fieldline/core/errc.h"
#include "fieldline/ml/model.h"

namespace fieldline::ml {

namespace {

Error xgb_error(const std::string& what) {
  return core::make_error(core::Errc::invalid_argument, "xgboost: " + what + ": " + XGBGetLastError());
}

// A DMatrix that frees itself.
struct Matrix {
  DMatrixHandle handle = nullptr;
  ~Matrix() {
    if (handle) XGDMatrixFree(handle);
  }
};

class XgboostModel final : public Model {
 public:
  explicit XgboostModel(BoosterHandle booster, size_t width) : booster_(booster), width_(width) {}
  ~XgboostModel() override { XGBoosterFree(booster_); }
  XgboostModel(const XgboostModel&) = delete;
  XgboostModel& operator=(const XgboostModel&) = delete;

  std::string_view runtime() const override { return "xgboost"; }
  size_t features() const override { return width_; }
  Status predict(const float* rows, size_t count, std::vector<float>& out) const override { return run(rows, count, 0, out); }
  Status contributions(const float* rows, size_t count, std::vector<float>& out) const override { return run(rows, count, 2, out); }

  Result<std::string> save() const override {
    std::lock_guard lock(mutex_);
    bst_ulong length = 0;
    const char* data = nullptr;
    if (XGBoosterSaveModelToBuffer(booster_, R"({"format": "json"})", &length, &data) != 0) return xgb_error("saving the model");
    return std::string(data, length);
  }

 private:
  // The booster's result buffers are overwritten by its next call: one call at a time, copied out.
  Status run(const float* rows, size_t count, int type, std::vector<float>& out) const {
    Matrix m;
    if (XGDMatrixCreateFromMat(rows, count, width_, std::nanf(""), &m.handle) != 0) return xgb_error("reading rows");
    std::lock_guard lock(mutex_);
    const std::string config = R"({"type": )" + std::to_string(type) + R"(, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false})";
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDMatrix(booster_, m.handle, config.c_str(), &shape, &dims, &result) != 0) return xgb_error("predicting");
    size_t n = 1;
    for (bst_ulong d = 0; d < dims; ++d) n *= shape[d];
    out.assign(result, result + n);
    return {};
  }

  BoosterHandle booster_;
  size_t width_;
  mutable std::mutex mutex_;
};

}  // namespace

Result<std::unique_ptr<Model>> train_xgboost(const std::vector<float>& rows, size_t width, const std::vector<float>& labels,
                                            const XgboostOptions& o) {
  if (width == 0 || rows.size() != labels.size() * width || labels.empty()) {
    return core::make_error(core::Errc::invalid_argument, "xgboost: " + std::to_string(rows.size()) + " values are not " +
                                                              std::to_string(labels.size()) + " rows of " + std::to_string(width));
  }
  Matrix m;
  if (XGDMatrixCreateFromMat(rows.data(), labels.size(), width, std::nanf(""), &m.handle) != 0) return xgb_error("reading rows");
  if (XGDMatrixSetFloatInfo(m.handle, "label", labels.data(), labels.size()) != 0) return xgb_error("reading labels");
  BoosterHandle booster = nullptr;
  if (XGBoosterCreate(&m.handle, 1, &booster) != 0) return xgb_error("creating a booster");
  auto model = std::make_unique<XgboostModel>(booster, width);
  const std::pair<const char*, std::string> params[] = {
      {"objective", o.objective},
      {"max_depth", std::to_string(o.max_depth)},
      {"eta", std::to_string(o.eta)},
      {"subsample", std::to_string(o.subsample)},
      {"colsample_bytree", std::to_string(o.colsample)},
      {"min_child_weight", std::to_string(o.min_child_weight)},
      {"nthread", std::to_string(o.threads)},
      {"seed", std::to_string(o.seed)},
      {"tree_method", "hist"},
      {"verbosity", "0"},
  };
  for (const auto& [key, value] : params) {
    if (XGBoosterSetParam(booster, key, value.c_str()) != 0) return xgb_error(std::string("setting ") + key);
  }
  for (int i = 0; i < o.rounds; ++i) {
    if (XGBoosterUpdateOneIter(booster, i, m.handle) != 0) return xgb_error("training round " + std::to_string(i));
  }
  return std::unique_ptr<Model>(std::move(model));
}

Result<std::unique_ptr<Model>> load_xgboost(std::string_view json, size_t width) {
  BoosterHandle booster = nullptr;
  if (XGBoosterCreate(nullptr, 0, &booster) != 0) return xgb_error("creating a booster");
  auto model = std::make_unique<XgboostModel>(booster, width);
  if (XGBoosterLoadModelFromBuffer(booster, json.data(), json.size()) != 0) return xgb_error("loading the model");
  bst_ulong features = 0;
  if (XGBoosterGetNumFeature(booster, &features) != 0) return xgb_error("reading the model's feature count");
  if (features != width) {
    return core::make_error(core::Errc::invalid_argument, "xgboost: the model expects " + std::to_string(features) +
                                                              " features, the feature view gives " + std::to_string(width));
  }
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fieldline::ml
