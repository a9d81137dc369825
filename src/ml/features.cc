#include "fieldline/ml/features.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fieldline::ml {

namespace {
constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
}  // namespace

FeatureState::FeatureState(std::shared_ptr<const FeatureView> view) : view_(std::move(view)), input_names_(view_->inputs()) {
  inputs_.resize(input_names_.size());
  for (const auto& m : view_->metrics) {
    const int i = input(m.metric);
    metric_input_.push_back(i);
    auto& in = inputs_[static_cast<size_t>(i)];
    in.ewma = m.ewma_half_life_ns > 0;
    in.ewma_half_life_s = static_cast<double>(m.ewma_half_life_ns) * 1e-9;
    in.windowed = !m.windows_ns.empty();
    const bool extremes = std::any_of(m.aggregates.begin(), m.aggregates.end(),
                                      [](const AggregateSpec& a) { return a.kind == Aggregate::min || a.kind == Aggregate::max; });
    const bool percentiles = std::any_of(m.aggregates.begin(), m.aggregates.end(),
                                         [](const AggregateSpec& a) { return a.kind == Aggregate::percentile; });
    for (int64_t width : m.windows_ns) {
      Window w;
      w.width = width;
      w.wants_extremes = extremes;
      if (percentiles) w.order.emplace();
      in.windows.push_back(std::move(w));
    }
  }
  for (const auto& r : view_->ratios) ratio_inputs_.emplace_back(input(r.numerator), input(r.denominator));
  for (const auto& e : view_->since) since_inputs_.push_back(input(e));
}

int FeatureState::input(std::string_view metric) const {
  for (size_t i = 0; i < input_names_.size(); ++i) {
    if (input_names_[i] == metric) return static_cast<int>(i);
  }
  return -1;
}

FeatureState::Applied FeatureState::apply(int index, int64_t ts, double value) {
  auto& in = inputs_[static_cast<size_t>(index)];
  if (!std::isfinite(value)) return Applied::not_finite;
  if (ts <= in.newest) return Applied::late;
  if (in.ewma) {
    if (in.newest == INT64_MIN) {
      in.ewma_value = value;
    } else {
      // Weighted by the time since the previous sample, so irregular sampling does not skew it.
      const double dt = static_cast<double>(ts - in.newest) * 1e-9;
      in.ewma_value += (1 - std::exp2(-dt / in.ewma_half_life_s)) * (value - in.ewma_value);
    }
  }
  in.newest = ts;
  in.last = value;
  newest_ = std::max(newest_, ts);
  if (!in.windowed) return Applied::yes;
  const uint64_t seq = in.next_seq++;
  in.samples.push_back({ts, value});
  uint64_t keep_from = seq;
  for (auto& w : in.windows) {
    add(w, in, seq, in.samples.back());
    evict(w, in);
    keep_from = std::min(keep_from, w.begin);
  }
  while (in.next_seq - in.samples.size() < keep_from) in.samples.pop_front();
  return Applied::yes;
}

// Adds (sign 1) or removes (sign −1) a sample's terms, relative to the window's origin.
void FeatureState::accumulate(Window& w, const Sample& s, double sign) {
  const double t = static_cast<double>(s.ts - w.origin_ts) * 1e-9, x = s.value - w.origin_value;
  w.n += sign;
  w.sx += sign * x;
  w.sxx += sign * (x * x);
  w.st += sign * t;
  w.stt += sign * (t * t);
  w.stx += sign * (t * x);
}

void FeatureState::add(Window& w, const Input&, uint64_t seq, const Sample& s) {
  if (w.n == 0) {
    w.begin = seq;
    w.origin_ts = s.ts;
    w.origin_value = s.value;
  }
  accumulate(w, s, 1);
  if (w.order) w.order->insert(s.value);
  if (w.wants_extremes) {
    while (!w.maxima.empty() && w.maxima.back().second <= s.value) w.maxima.pop_back();
    w.maxima.emplace_back(seq, s.value);
    while (!w.minima.empty() && w.minima.back().second >= s.value) w.minima.pop_back();
    w.minima.emplace_back(seq, s.value);
  }
}

void FeatureState::evict(Window& w, const Input& in) {
  const int64_t cutoff = in.newest - w.width;
  while (w.begin < in.next_seq && at(in, w.begin).ts <= cutoff) {
    accumulate(w, at(in, w.begin), -1);
    if (w.order) w.order->erase(at(in, w.begin).value);
    ++w.begin;
    ++w.evicted;
  }
  while (!w.maxima.empty() && w.maxima.front().first < w.begin) w.maxima.pop_front();
  while (!w.minima.empty() && w.minima.front().first < w.begin) w.minima.pop_front();
  if (w.evicted > 0 && w.evicted >= w.n) recompute(w, in);
}

void FeatureState::recompute(Window& w, const Input& in) {
  w.evicted = 0;
  w.n = w.sx = w.sxx = w.st = w.stt = w.stx = 0;
  if (w.begin >= in.next_seq) return;
  const Sample& first = at(in, w.begin);
  w.origin_ts = first.ts;
  w.origin_value = first.value;
  for (uint64_t q = w.begin; q < in.next_seq; ++q) accumulate(w, at(in, q), 1);
}

size_t OrderStatistics::block_of(double x) const {
  const auto it = std::lower_bound(blocks_.begin(), blocks_.end(), x, [](const std::vector<double>& b, double v) { return b.back() < v; });
  return it == blocks_.end() ? blocks_.size() - 1 : static_cast<size_t>(it - blocks_.begin());
}

void OrderStatistics::insert(double x) {
  ++size_;
  if (blocks_.empty()) {
    blocks_.emplace_back().reserve(2 * kBlock);
    blocks_[0].push_back(x);
    return;
  }
  const size_t i = block_of(x);
  auto& b = blocks_[i];
  b.insert(std::upper_bound(b.begin(), b.end(), x), x);
  if (b.size() >= 2 * kBlock) {
    std::vector<double> upper(b.begin() + kBlock, b.end());
    upper.reserve(2 * kBlock);
    b.resize(kBlock);
    blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(upper));
  }
}

void OrderStatistics::erase(double x) {
  const size_t i = block_of(x);
  auto& b = blocks_[i];
  const auto at = std::lower_bound(b.begin(), b.end(), x);
  if (at == b.end() || *at != x) return;  // not one of the values: nothing to erase
  b.erase(at);
  --size_;
  if (b.empty()) {
    blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
  } else if (b.size() < kBlock / 4 && i + 1 < blocks_.size() && b.size() + blocks_[i + 1].size() < 2 * kBlock) {
    // A small block joins its neighbour, so the walk in kth() stays short.
    auto& next = blocks_[i + 1];
    b.insert(b.end(), next.begin(), next.end());
    blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
  }
}

double OrderStatistics::kth(size_t k) const {
  for (const auto& b : blocks_) {
    if (k < b.size()) return b[k];
    k -= b.size();
  }
  return blocks_.back().back();
}

void FeatureState::snapshot(int64_t as_of, std::vector<double>& out) const {
  out.clear();
  for (size_t mi = 0; mi < view_->metrics.size(); ++mi) {
    const auto& spec = view_->metrics[mi];
    const auto& in = inputs_[static_cast<size_t>(metric_input_[mi])];
    for (const auto& w : in.windows) {
      const double n = w.n;
      for (const auto& a : spec.aggregates) {
        double f = kMissing;
        switch (a.kind) {
          case Aggregate::count: f = n; break;
          case Aggregate::mean: if (n > 0) f = w.origin_value + w.sx / n; break;
          case Aggregate::std:
            if (n >= 2) f = std::sqrt(std::max(0.0, (w.sxx - w.sx * w.sx / n) / (n - 1)));
            break;
          case Aggregate::min: if (!w.minima.empty()) f = w.minima.front().second; break;
          case Aggregate::max: if (!w.maxima.empty()) f = w.maxima.front().second; break;
          case Aggregate::slope:
            if (n >= 2) {
              const double d = n * w.stt - w.st * w.st;  // per second
              if (d > 0) f = (n * w.stx - w.st * w.sx) / d;
            }
            break;
          case Aggregate::percentile:
            if (w.order && w.order->size() > 0) {
              // Linear between the order statistics around q·(n − 1).
              const size_t size = w.order->size();
              const double pos = a.quantile * static_cast<double>(size - 1);
              const auto lo = static_cast<size_t>(pos);
              const double low = w.order->kth(lo);
              const double high = lo + 1 < size ? w.order->kth(lo + 1) : low;
              f = low + (pos - static_cast<double>(lo)) * (high - low);
            }
            break;
        }
        out.push_back(f);
      }
    }
    const bool seen = in.newest != INT64_MIN;
    if (spec.last) out.push_back(seen ? in.last : kMissing);
    if (spec.ewma_half_life_ns) out.push_back(seen ? in.ewma_value : kMissing);
  }
  for (const auto& [num, den] : ratio_inputs_) {
    const auto& a = inputs_[static_cast<size_t>(num)];
    const auto& b = inputs_[static_cast<size_t>(den)];
    out.push_back(a.newest != INT64_MIN && b.newest != INT64_MIN && b.last != 0 ? a.last / b.last : kMissing);
  }
  for (int e : since_inputs_) {
    const auto& in = inputs_[static_cast<size_t>(e)];
    out.push_back(in.newest != INT64_MIN ? static_cast<double>(as_of - in.newest) / 1e9 : kMissing);
  }
}

}  // namespace fieldline::ml
