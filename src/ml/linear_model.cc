#include <boost/json.hpp>

#include <cmath>
#include <limits>

#include "fieldline/core/errc.h"
#include "fieldline/core/json.h"
#include "fieldline/ml/model.h"

namespace fieldline::ml {

namespace {

namespace json = boost::json;

Error bad(const std::string& what) { return core::make_error(core::Errc::invalid_argument, "linear model: " + what); }

// Solves (A) x = b for a symmetric positive definite A (Cholesky, in place); false when A
// is not positive definite.
bool solve_spd(std::vector<double>& a, std::vector<double>& b, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    a[j * n + j] = d;
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
  }
  for (size_t i = 0; i < n; ++i) {  // L y = b
    double s = b[i];
    for (size_t k = 0; k < i; ++k) s -= a[i * n + k] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {  // Lᵀ x = y
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= a[k * n + i] * b[k];
    b[i] = s / a[i * n + i];
  }
  return true;
}

class LinearModel final : public Model {
 public:
  LinearModel(bool logistic, std::vector<double> mean, std::vector<double> scale, std::vector<double> weights, double bias)
      : logistic_(logistic), mean_(std::move(mean)), scale_(std::move(scale)), weights_(std::move(weights)), bias_(bias) {}

  std::string_view runtime() const override { return "linear"; }
  size_t features() const override { return weights_.size(); }

  Status predict(const float* rows, size_t count, std::vector<float>& out) const override {
    out.resize(count);
    for (size_t r = 0; r < count; ++r) {
      double margin = bias_;
      for (size_t j = 0; j < weights_.size(); ++j) margin += weights_[j] * z(rows[r * weights_.size() + j], j);
      out[r] = static_cast<float>(logistic_ ? 1 / (1 + std::exp(-margin)) : margin);
    }
    return {};
  }
  Status contributions(const float* rows, size_t count, std::vector<float>& out) const override {
    const size_t w = weights_.size();
    out.resize(count * (w + 1));
    for (size_t r = 0; r < count; ++r) {
      for (size_t j = 0; j < w; ++j) out[r * (w + 1) + j] = static_cast<float>(weights_[j] * z(rows[r * w + j], j));
      out[r * (w + 1) + w] = static_cast<float>(bias_);
    }
    return {};
  }
  Result<std::string> save() const override {
    json::array mean(mean_.begin(), mean_.end()), scale(scale_.begin(), scale_.end()), weights(weights_.begin(), weights_.end());
    return core::to_json(json::object{{"runtime", "linear"}, {"kind", logistic_ ? "logistic" : "regression"}, {"mean", std::move(mean)},
                                      {"scale", std::move(scale)}, {"weights", std::move(weights)}, {"bias", bias_}});
  }

 private:
  // A feature standardised with the training rows' mean and spread; a missing one is the mean.
  double z(float x, size_t j) const { return std::isnan(x) ? 0.0 : (static_cast<double>(x) - mean_[j]) / scale_[j]; }
  bool logistic_;
  std::vector<double> mean_, scale_, weights_;
  double bias_;
};

}  // namespace

Result<std::unique_ptr<Model>> train_linear(const std::vector<float>& rows, size_t width, const std::vector<float>& labels,
                                           const LinearOptions& options) {
  const size_t n = labels.size();
  if (width == 0 || n == 0 || rows.size() != n * width) {
    return bad(std::to_string(rows.size()) + " values are not " + std::to_string(n) + " rows of " + std::to_string(width));
  }
  std::vector<double> mean(width, 0), scale(width, 0), seen(width, 0);
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < width; ++j) {
      const float x = rows[r * width + j];
      if (std::isnan(x)) continue;
      mean[j] += x;
      seen[j] += 1;
    }
  }
  for (size_t j = 0; j < width; ++j) mean[j] = seen[j] > 0 ? mean[j] / seen[j] : 0;
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < width; ++j) {
      const float x = rows[r * width + j];
      if (!std::isnan(x)) scale[j] += (x - mean[j]) * (x - mean[j]);
    }
  }
  for (size_t j = 0; j < width; ++j) {
    const double sd = seen[j] > 1 ? std::sqrt(scale[j] / (seen[j] - 1)) : 0;
    scale[j] = sd > 0 ? sd : 1;  // a constant feature contributes nothing either way
  }
  auto z = [&](size_t r, size_t j) {
    const float x = rows[r * width + j];
    return std::isnan(x) ? 0.0 : (x - mean[j]) / scale[j];
  };
  double y_mean = 0;
  for (float y : labels) y_mean += y;
  y_mean /= static_cast<double>(n);
  std::vector<double> weights(width, 0);
  double bias = y_mean;
  if (!options.logistic) {
    // Ridge: (ZᵀZ + λI) w = Zᵀ(y − ȳ), bias ȳ.
    std::vector<double> a(width * width, 0), b(width, 0);
    for (size_t r = 0; r < n; ++r) {
      for (size_t i = 0; i < width; ++i) {
        const double zi = z(r, i);
        b[i] += zi * (labels[r] - y_mean);
        for (size_t k = 0; k <= i; ++k) a[i * width + k] += zi * z(r, k);
      }
    }
    for (size_t i = 0; i < width; ++i) {
      for (size_t k = 0; k < i; ++k) a[k * width + i] = a[i * width + k];
      a[i * width + i] += options.l2;
    }
    if (!solve_spd(a, b, width)) return bad("the normal equations are singular (raise l2)");
    weights = std::move(b);
  } else {
    for (float y : labels) {
      if (y != 0 && y != 1) return bad("a logistic model needs labels of 0 and 1");
    }
    if (y_mean <= 0 || y_mean >= 1) return bad("a logistic model needs labels of both 0 and 1");
    bias = std::log(y_mean / (1 - y_mean));
    // Newton's method on the L2-penalised log-likelihood (the bias unpenalised).
    const size_t p = width + 1;
    for (int iteration = 0; iteration < 50; ++iteration) {
      std::vector<double> h(p * p, 0), g(p, 0);
      for (size_t r = 0; r < n; ++r) {
        double margin = bias;
        for (size_t j = 0; j < width; ++j) margin += weights[j] * z(r, j);
        const double q = 1 / (1 + std::exp(-margin)), d = q * (1 - q), err = labels[r] - q;
        for (size_t i = 0; i < p; ++i) {
          const double zi = i < width ? z(r, i) : 1.0;
          g[i] += zi * err;
          for (size_t k = 0; k <= i; ++k) h[i * p + k] += d * zi * (k < width ? z(r, k) : 1.0);
        }
      }
      for (size_t i = 0; i < p; ++i) {
        for (size_t k = 0; k < i; ++k) h[k * p + i] = h[i * p + k];
        if (i < width) {
          h[i * p + i] += options.l2;
          g[i] -= options.l2 * weights[i];
        }
      }
      if (!solve_spd(h, g, p)) return bad("the Newton step is singular (raise l2)");
      double step = 0;
      for (size_t i = 0; i < width; ++i) {
        weights[i] += g[i];
        step = std::max(step, std::fabs(g[i]));
      }
      bias += g[width];
      if (step < 1e-9) break;
    }
  }
  return std::unique_ptr<Model>(std::make_unique<LinearModel>(options.logistic, std::move(mean), std::move(scale), std::move(weights), bias));
}

Result<std::unique_ptr<Model>> load_linear(std::string_view text, size_t width) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return bad("the artifact is not a JSON object");
  const auto& o = v.as_object();
  auto numbers = [&](const char* key) -> std::optional<std::vector<double>> {
    const auto* a = o.contains(key) ? o.at(key).if_array() : nullptr;
    if (!a) return std::nullopt;
    std::vector<double> out;
    for (const auto& x : *a) {
      if (!x.is_number()) return std::nullopt;
      out.push_back(x.to_number<double>());
      if (!std::isfinite(out.back())) return std::nullopt;
    }
    return out;
  };
  auto mean = numbers("mean"), scale = numbers("scale"), weights = numbers("weights");
  const auto* kind = o.contains("kind") ? o.at("kind").if_string() : nullptr;
  if (!mean || !scale || !weights || !kind || !o.contains("bias") || !o.at("bias").is_number() || (*kind != "logistic" && *kind != "regression")) {
    return bad("the artifact needs kind, mean, scale, weights and bias");
  }
  if (weights->size() != width || mean->size() != width || scale->size() != width) {
    return bad("the model expects " + std::to_string(weights->size()) + " features, the feature view gives " + std::to_string(width));
  }
  for (double s : *scale) {
    if (!(s > 0)) return bad("a feature's scale is not positive");
  }
  return std::unique_ptr<Model>(std::make_unique<LinearModel>(*kind == "logistic", std::move(*mean), std::move(*scale), std::move(*weights),
                                                              o.at("bias").to_number<double>()));
}

}  // namespace fieldline::ml
