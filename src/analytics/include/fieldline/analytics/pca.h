#pragma once
// A multivariate monitor for one asset's metrics (pump-like data): a PCA of a reference window
// of normal operation, then for each new row Hotelling's T² (how unusual it is inside the
// normal subspace) and the SPE or Q statistic (how far it lies outside it), with control limits
// from the reference window and each metric's share of the deviation, so an alarm can say
// which sensors moved.
//
// A metric that drifts through the reference window (a temperature warming up: successive
// differences carry less than `drift_ratio` times its variance, where white noise has 2, the
// von Neumann ratio) is judged by its change over the last `change_rows` rows, not by its
// level: a level learnt from a few minutes of a slow drift is out of date minutes later (on
// SKAB's pump, the temperatures keep the level a fault left after it ends).

#include <cstddef>
#include <string>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::analytics {

class PcaMonitor {
 public:
  struct Options {
    double explained = 0.90;  // components kept: the fewest explaining this share of variance
    double limit_quantile = 0.99;  // control limits: this quantile of the reference rows' statistics
    double drift_ratio = 1.0;
    size_t change_rows = 10;
  };
  // Fits on `reference` (rows of equal width, at least width + 2 of them).
  static Result<PcaMonitor> fit(const std::vector<std::vector<double>>& reference, Options options);
  static Result<PcaMonitor> fit(const std::vector<std::vector<double>>& reference) { return fit(reference, Options{}); }

  struct Statistics {
    double t2 = 0, q = 0;
    double t2_ratio = 0, q_ratio = 0;  // to their control limits: > 1 is out of control
    std::vector<double> contributions;  // per metric, its share of Q (summing to 1)
  };
  // Scores the next row (rows in time order, following the reference) and remembers it for
  // the drifting metrics' changes. A missing or non-finite value counts as expected.
  Statistics observe(const std::vector<double>& row);
  size_t components() const { return k_; }
  const std::vector<bool>& drifting() const { return drifting_; }

 private:
  // The row as the PCA sees it: drifting metrics as their change over change_rows rows.
  std::vector<double> features(const std::vector<double>& row) const;
  void remember(const std::vector<double>& row);
  Statistics assess(const std::vector<double>& features) const;
  size_t width_ = 0, k_ = 0;
  std::vector<bool> drifting_;
  size_t change_rows_ = 10;
  std::vector<std::vector<double>> recent_;  // the last change_rows_ rows (a ring; oldest at recent_next_)
  size_t recent_next_ = 0;
  std::vector<double> mean_, scale_;
  std::vector<std::vector<double>> loadings_;  // k_ eigenvectors of width_
  std::vector<double> eigenvalues_;
  double t2_limit_ = 1, q_limit_ = 1;
};

// Eigen-decomposition of a symmetric matrix (cyclic Jacobi): eigenvalues descending, with
// their eigenvectors as rows.
void symmetric_eigen(std::vector<std::vector<double>> a, std::vector<double>& values, std::vector<std::vector<double>>& vectors);

}  // namespace fieldline::analytics
