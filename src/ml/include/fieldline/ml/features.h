#pragma once
// One device's features under one feature view, computed incrementally: each sample updates
// its metric's windows, last value and EWMA in O(1) amortised; a snapshot reads every feature
// as of a time. The online path (the owning shard, as samples arrive) and the offline path
// (training sets, replaying stored samples up to each label time) run this same code, so on
// the same samples they agree to the last bit.
//
// Each metric's state depends only on that metric's own samples, in time order: a window is
// the samples of the last W before the metric's newest sample. A sample not after its
// metric's newest (late, or a repeated time) and a non-finite value are not applied: the
// caller counts them. A window without samples reads NaN (its count 0); so does a ratio
// whose denominator is 0 or missing.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "fieldline/ml/feature_view.h"

namespace fieldline::ml {

// A window's values in order, for its percentiles: sorted blocks of at most 2·kBlock values,
// so adding or evicting a sample moves at most a block's values and the k-th smallest is a
// walk over the blocks' sizes (bench/ml.sh measures a read over 86,400 values).
class OrderStatistics {
 public:
  void insert(double x);
  void erase(double x);  // x is one of the values
  double kth(size_t k) const;  // k < size()
  size_t size() const { return size_; }

 private:
  static constexpr size_t kBlock = 128;
  size_t block_of(double x) const;  // the first block whose largest value is >= x (or the last)
  std::vector<std::vector<double>> blocks_;
  size_t size_ = 0;
};

class FeatureState {
 public:
  explicit FeatureState(std::shared_ptr<const FeatureView> view);

  // The index of a metric among the view's inputs(), or -1 if the view does not read it.
  int input(std::string_view metric) const;

  enum class Applied : uint8_t { yes, late, not_finite };
  Applied apply(int input, int64_t ts_ns, double value);

  // The features in feature_names() order as of `as_of_ns` (which only since_* reads: the
  // windows end at their metric's newest sample). `out` is resized.
  void snapshot(int64_t as_of_ns, std::vector<double>& out) const;
  // The newest sample applied, of any input (INT64_MIN: none).
  int64_t newest() const { return newest_; }
  const FeatureView& view() const { return *view_; }

 private:
  struct Sample {
    int64_t ts;
    double value;
  };
  // One window's running aggregates over a suffix of its metric's samples. Sums are kept
  // relative to an origin (a time and a value from the window) to keep them small, and
  // recomputed from the samples after as many evictions as the window holds, so rounding
  // cannot accumulate.
  struct Window {
    int64_t width = 0;
    uint64_t begin = 0;  // sequence number of its oldest sample
    uint64_t evicted = 0;
    int64_t origin_ts = 0;
    double origin_value = 0;
    double n = 0, sx = 0, sxx = 0, st = 0, stt = 0, stx = 0;
    std::deque<std::pair<uint64_t, double>> minima, maxima;  // monotonic: (sequence, value)
    std::optional<OrderStatistics> order;                    // with percentiles only
    bool wants_extremes = false, wants_sums = false;
  };
  struct Input {
    bool windowed = false, ewma = false;
    double ewma_half_life_s = 0;
    std::vector<Window> windows;
    std::deque<Sample> samples;  // those the longest window holds
    uint64_t next_seq = 0;       // sequence number of the next sample
    int64_t newest = INT64_MIN;
    double last = 0, ewma_value = 0;
  };
  static void accumulate(Window& w, const Sample& s, double sign);
  void add(Window& w, const Input& in, uint64_t seq, const Sample& s);
  void evict(Window& w, const Input& in);
  void recompute(Window& w, const Input& in);
  const Sample& at(const Input& in, uint64_t seq) const { return in.samples[seq - (in.next_seq - in.samples.size())]; }

  std::shared_ptr<const FeatureView> view_;
  std::vector<std::string> input_names_;
  std::vector<Input> inputs_;
  std::vector<int> metric_input_;  // view metric i -> its input
  std::vector<std::pair<int, int>> ratio_inputs_;
  std::vector<int> since_inputs_;
  int64_t newest_ = INT64_MIN;
};

}  // namespace fieldline::ml
