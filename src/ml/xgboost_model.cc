#include <xgboost/c_api.h>

#include <boost/json.hpp>

#include <cmath>
#include <mutex>
#include <optional>
#include <string>

#include "fieldline/core/errc.h"
#include "fieldline/ml/model.h"

namespace fieldline::ml {

namespace {

// The trees of an XGBoost model (squared error or logistic), evaluated here: a single-row
// prediction through the C API costs tens of microseconds of per-call overhead, walking 300
// trees of depth 5 about one microsecond. Built from the model's own JSON; models it cannot
// read (other objectives, boosters) are left to the C API.
class Forest {
 public:
  static std::optional<Forest> from_json(std::string_view text, size_t width) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (ec) return std::nullopt;
    try {
      const auto& learner = doc.at("learner").as_object();
      const std::string objective(learner.at("objective").at("name").as_string());
      if (objective != "reg:squarederror" && objective != "binary:logistic") return std::nullopt;
      const auto& booster = learner.at("gradient_booster").as_object();
      if (booster.at("name").as_string() != "gbtree") return std::nullopt;
      Forest f;
      f.logistic_ = objective == "binary:logistic";
      const double base = std::stod(std::string(learner.at("learner_model_param").at("base_score").as_string()));
      f.base_ = f.logistic_ ? std::log(base / (1 - base)) : base;
      for (const auto& t : booster.at("model").at("trees").as_array()) {
        const auto& tree = t.as_object();
        const auto& left = tree.at("left_children").as_array();
        const auto& right = tree.at("right_children").as_array();
        const auto& index = tree.at("split_indices").as_array();
        const auto& cond = tree.at("split_conditions").as_array();
        const auto& missing_left = tree.at("default_left").as_array();
        const auto root = static_cast<int32_t>(f.nodes_.size());
        f.roots_.push_back(root);
        for (size_t n = 0; n < left.size(); ++n) {
          Node node;
          const int64_t l = left[n].to_number<int64_t>(), r = right[n].to_number<int64_t>();
          node.leaf = l < 0;
          node.left = node.leaf ? -1 : root + static_cast<int32_t>(l);
          node.right = node.leaf ? -1 : root + static_cast<int32_t>(r);
          node.feature = static_cast<uint32_t>(index[n].to_number<int64_t>());
          node.value = static_cast<float>(cond[n].to_number<double>());
          node.missing_left = missing_left[n].to_number<int64_t>() != 0;
          if (!node.leaf && node.feature >= width) return std::nullopt;
          if (!node.leaf && (l >= static_cast<int64_t>(left.size()) || r >= static_cast<int64_t>(left.size()))) return std::nullopt;
          f.nodes_.push_back(node);
        }
      }
      return f;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  float predict(const float* row) const {
    double margin = base_;
    for (int32_t root : roots_) {
      const Node* n = &nodes_[static_cast<size_t>(root)];
      while (!n->leaf) {
        const float x = row[n->feature];
        const bool go_left = std::isnan(x) ? n->missing_left : x < n->value;
        n = &nodes_[static_cast<size_t>(go_left ? n->left : n->right)];
      }
      margin += n->value;
    }
    return static_cast<float>(logistic_ ? 1 / (1 + std::exp(-margin)) : margin);
  }

 private:
  struct Node {
    int32_t left = -1, right = -1;
    uint32_t feature = 0;
    float value = 0;  // the split threshold, or a leaf's value
    bool leaf = true, missing_left = true;
  };
  std::vector<Node> nodes_;
  std::vector<int32_t> roots_;
  double base_ = 0;
  bool logistic_ = false;
};

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
  // Evaluates the trees here from now on (see Forest), when it can read them.
  void compile() {
    if (auto json = save()) forest_ = Forest::from_json(*json, width_);
  }
  ~XgboostModel() override { XGBoosterFree(booster_); }
  XgboostModel(const XgboostModel&) = delete;
  XgboostModel& operator=(const XgboostModel&) = delete;

  std::string_view runtime() const override { return "xgboost"; }
  size_t features() const override { return width_; }
  Status predict(const float* rows, size_t count, std::vector<float>& out) const override {
    if (!forest_) return run(rows, count, 0, out);
    out.resize(count);
    for (size_t r = 0; r < count; ++r) out[r] = forest_->predict(rows + r * width_);
    return {};
  }
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
  std::optional<Forest> forest_;
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
  model->compile();
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
  model->compile();
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fieldline::ml
