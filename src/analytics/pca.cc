#include "fieldline/analytics/pca.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "fieldline/core/errc.h"

namespace fieldline::analytics {

void symmetric_eigen(std::vector<std::vector<double>> a, std::vector<double>& values, std::vector<std::vector<double>>& vectors) {
  const size_t n = a.size();
  std::vector<std::vector<double>> v(n, std::vector<double>(n, 0.0));
  for (size_t i = 0; i < n; ++i) v[i][i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) off += a[p][q] * a[p][q];
    }
    if (off < 1e-22) break;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) {
        if (std::fabs(a[p][q]) < 1e-300) continue;
        // The rotation that zeroes a[p][q].
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < n; ++k) {
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return a[x][x] > a[y][y]; });
  values.clear();
  vectors.assign(n, std::vector<double>(n));
  for (size_t r = 0; r < n; ++r) {
    values.push_back(a[order[r]][order[r]]);
    for (size_t k = 0; k < n; ++k) vectors[r][k] = v[k][order[r]];
  }
}

namespace {

double quantile(std::vector<double> xs, double q) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const double at = q * static_cast<double>(xs.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(at));
  const size_t hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (at - static_cast<double>(lo)) * (xs[hi] - xs[lo]);
}

}  // namespace

Result<PcaMonitor> PcaMonitor::fit(const std::vector<std::vector<double>>& reference, Options options) {
  if (reference.empty()) return core::make_error(core::Errc::invalid_argument, "PCA: no reference rows");
  PcaMonitor m;
  m.width_ = reference.front().size();
  const size_t n = reference.size(), p = m.width_;
  if (p == 0 || n < p + 2) {
    return core::make_error(core::Errc::invalid_argument, "PCA: needs at least " + std::to_string(p + 2) + " reference rows of " +
                                                               std::to_string(p) + " metrics, got " + std::to_string(n));
  }
  for (const auto& r : reference) {
    if (r.size() != p) return core::make_error(core::Errc::invalid_argument, "PCA: reference rows of different widths");
    for (double x : r) {
      if (!std::isfinite(x)) return core::make_error(core::Errc::invalid_argument, "PCA: a reference value is not a finite number");
    }
  }
  // Which metrics drift: mean square successive difference against the variance.
  m.drifting_.assign(p, false);
  m.change_rows_ = std::max<size_t>(options.change_rows, 1);
  for (size_t j = 0; j < p; ++j) {
    double mean = 0, variance = 0, successive = 0;
    for (const auto& r : reference) mean += r[j];
    mean /= static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) {
      variance += (reference[i][j] - mean) * (reference[i][j] - mean);
      if (i > 0) successive += (reference[i][j] - reference[i - 1][j]) * (reference[i][j] - reference[i - 1][j]);
    }
    variance /= static_cast<double>(n);
    successive /= static_cast<double>(n - 1);
    m.drifting_[j] = variance > 0 && successive < options.drift_ratio * variance;
  }
  std::vector<std::vector<double>> rows;
  rows.reserve(n);
  for (const auto& r : reference) {
    rows.push_back(m.features(r));
    m.remember(r);
  }
  m.mean_.assign(p, 0.0);
  m.scale_.assign(p, 0.0);
  for (const auto& r : rows) {
    for (size_t j = 0; j < p; ++j) m.mean_[j] += r[j];
  }
  for (auto& x : m.mean_) x /= static_cast<double>(n);
  for (const auto& r : rows) {
    for (size_t j = 0; j < p; ++j) m.scale_[j] += (r[j] - m.mean_[j]) * (r[j] - m.mean_[j]);
  }
  for (size_t j = 0; j < p; ++j) {
    // A metric constant over the reference keeps unit scale: any change in it then stands out.
    const double sd = std::sqrt(m.scale_[j] / static_cast<double>(n - 1));
    m.scale_[j] = sd > 1e-12 * (1 + std::fabs(m.mean_[j])) ? sd : 1e-6 * (1 + std::fabs(m.mean_[j]));
  }
  std::vector<std::vector<double>> cov(p, std::vector<double>(p, 0.0));
  for (const auto& r : rows) {
    for (size_t a = 0; a < p; ++a) {
      const double za = (r[a] - m.mean_[a]) / m.scale_[a];
      for (size_t b = a; b < p; ++b) cov[a][b] += za * (r[b] - m.mean_[b]) / m.scale_[b];
    }
  }
  for (size_t a = 0; a < p; ++a) {
    for (size_t b = a; b < p; ++b) cov[b][a] = cov[a][b] /= static_cast<double>(n - 1);
  }
  std::vector<double> values;
  std::vector<std::vector<double>> vectors;
  symmetric_eigen(cov, values, vectors);
  const double total = std::accumulate(values.begin(), values.end(), 0.0, [](double s, double v) { return s + std::max(v, 0.0); });
  double explained = 0;
  m.k_ = 0;
  while (m.k_ < p - 1 && (total <= 0 || explained / total < options.explained)) explained += std::max(values[m.k_++], 0.0);
  m.k_ = std::max<size_t>(m.k_, 1);
  for (size_t i = 0; i < m.k_; ++i) {
    m.eigenvalues_.push_back(std::max(values[i], 1e-12));
    m.loadings_.push_back(vectors[i]);
  }
  std::vector<double> t2s, qs;
  for (const auto& r : rows) {
    auto s = m.assess(r);
    t2s.push_back(s.t2);
    qs.push_back(s.q);
  }
  m.t2_limit_ = std::max(quantile(t2s, options.limit_quantile), 1e-12);
  m.q_limit_ = std::max(quantile(qs, options.limit_quantile), 1e-12);
  return m;
}

std::vector<double> PcaMonitor::features(const std::vector<double>& row) const {
  std::vector<double> out(width_, std::numeric_limits<double>::quiet_NaN());
  // Until change_rows rows have been seen (early in the reference), the change since the first.
  const std::vector<double>* earlier = recent_.empty()                    ? nullptr
                                       : recent_.size() < change_rows_ ? &recent_.front()
                                                                        : &recent_[recent_next_];
  for (size_t j = 0; j < width_ && j < row.size(); ++j) out[j] = !drifting_[j] ? row[j] : earlier ? row[j] - (*earlier)[j] : 0.0;
  return out;
}

void PcaMonitor::remember(const std::vector<double>& row) {
  std::vector<double> kept(width_);
  for (size_t j = 0; j < width_; ++j) {
    // A missing value: the last one seen stands in for it, so one gap is not a jump twice.
    const double previous = recent_.empty() ? 0.0 : recent_[(recent_next_ + recent_.size() - 1) % recent_.size()][j];
    kept[j] = j < row.size() && std::isfinite(row[j]) ? row[j] : previous;
  }
  if (recent_.size() < change_rows_) {
    recent_.push_back(std::move(kept));
  } else {
    recent_[recent_next_] = std::move(kept);
    recent_next_ = (recent_next_ + 1) % change_rows_;
  }
}

PcaMonitor::Statistics PcaMonitor::observe(const std::vector<double>& row) {
  auto s = assess(features(row));
  remember(row);
  return s;
}

PcaMonitor::Statistics PcaMonitor::assess(const std::vector<double>& row) const {
  Statistics s;
  std::vector<double> z(width_);
  for (size_t j = 0; j < width_; ++j) {
    const double x = j < row.size() && std::isfinite(row[j]) ? row[j] : mean_[j];  // a missing value: as expected
    z[j] = (x - mean_[j]) / scale_[j];
  }
  std::vector<double> residual = z;
  for (size_t i = 0; i < k_; ++i) {
    double score = 0;
    for (size_t j = 0; j < width_; ++j) score += loadings_[i][j] * z[j];
    s.t2 += score * score / eigenvalues_[i];
    for (size_t j = 0; j < width_; ++j) residual[j] -= score * loadings_[i][j];
  }
  s.contributions.resize(width_);
  for (size_t j = 0; j < width_; ++j) {
    s.contributions[j] = residual[j] * residual[j];
    s.q += s.contributions[j];
  }
  if (s.q > 0) {
    for (auto& c : s.contributions) c /= s.q;
  }
  s.t2_ratio = s.t2 / t2_limit_;
  s.q_ratio = s.q / q_limit_;
  return s;
}

}  // namespace fieldline::analytics
