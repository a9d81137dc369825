#include "fieldline/analytics/detectors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace fieldline::analytics {

double score_of_z(double z, double z0) {
  if (!(z > z0)) return 0.0;
  const double r = (z - z0) / z0;  // 1 at 2·z0
  return r * r / (1.0 + r * r);
}

namespace {

// One step of an exponentially weighted mean and variance with `weight` for x, the n-th
// sample. While fewer samples than the weight's memory have come, the plain average of them
// all: a slow average started from its first sample would lean on that one for hundreds more.
template <typename V>
void ew_step(double& mean, V& var, V& unweighted, uint64_t n, double x, double weight) {
  if (n == 1) {
    mean = x;
    return;
  }
  weight = std::max(weight, 1.0 / static_cast<double>(n));
  const double d = x - mean;
  mean += weight * d;
  var = static_cast<V>((1 - weight) * (var + weight * d * d));
  unweighted = static_cast<V>(unweighted * (1 - weight));
}

// Started from zero, the variance underestimates until it has seen about 1/alpha samples;
// divided by the weight it has gathered so far it does not.
double ew_sd(double var, double unweighted) { return unweighted < 1 ? std::sqrt(var / (1.0 - unweighted)) : 0.0; }

// The median of |x − median| over sorted values (the upper one of an even count), without
// sorting the deviations: those below the median, read downwards, and those above it, read
// upwards, are two sorted runs, and the k-th smallest of two sorted runs is a binary search.
double median_absolute_deviation(const std::vector<double>& sorted, double median) {
  const size_t n = sorted.size(), half = n / 2;
  auto below = [&](size_t i) { return median - sorted[half - 1 - i]; };  // i < half, ascending
  auto above = [&](size_t j) { return sorted[half + j] - median; };      // j < n - half, ascending
  const size_t a = half, b = n - half, k = n / 2;  // the k-th smallest (from 0) of the n deviations
  // Take i from `below` and k + 1 − i from `above`; the smallest i whose split is consistent.
  size_t lo = k + 1 > b ? k + 1 - b : 0, hi = std::min(a, k + 1);
  while (lo < hi) {
    const size_t i = (lo + hi) / 2, j = k + 1 - i;
    if (i < a && j > 0 && above(j - 1) > below(i)) lo = i + 1;
    else hi = i;
  }
  const size_t i = lo, j = k + 1 - lo;
  return std::max(i > 0 ? below(i - 1) : 0.0, j > 0 ? above(j - 1) : 0.0);
}

// The first of the n sorted values at `first` for which below_a() is false and the first for
// which below_b() is (each as std::partition_point), by halving without a branch on the
// comparison: a window's searches go either way at random, and std::lower_bound's
// mispredicted branches cost most of its time. The two searches are two independent chains
// of loads that the core runs side by side; one after the other, each waits for its loads in
// turn. Without a branch nothing is fetched ahead speculatively: both possible next midpoints
// are asked for (a window far from the caches otherwise waits for each step).
template <typename BelowA, typename BelowB>
std::pair<double*, double*> partition_points(double* first, size_t n, BelowA below_a, BelowB below_b) {
  if (n == 0) return {first, first};
  double *a = first, *b = first;
  while (n > 1) {
    const size_t half = n / 2;
    __builtin_prefetch(a + half / 2);
    __builtin_prefetch(a + half + half / 2);
    __builtin_prefetch(b + half / 2);
    __builtin_prefetch(b + half + half / 2);
    a = below_a(a[half]) ? a + half : a;
    b = below_b(b[half]) ? b + half : b;
    n -= half;
  }
  return {a + below_a(*a), b + below_b(*b)};
}

// The k-th smallest (from 0) of the n values at `v` (reordered), as std::nth_element finds
// it, by quickselect whose partitions do not branch on the comparison: arrival intervals are
// in random order around their median, and nth_element's mispredicted branches were most of
// Silence's time.
int64_t kth_smallest(int64_t* v, size_t n, size_t k) {
  // Moves the values `before` the pivot to the front of [lo, hi); returns where they end.
  auto partition = [v](size_t lo, size_t hi, auto before) {
    size_t store = lo;
    for (size_t i = lo; i < hi; ++i) {
      const int64_t x = v[i];
      v[i] = v[store];
      v[store] = x;
      store += before(x);
    }
    return store;
  };
  size_t lo = 0, hi = n;  // k is in [lo, hi)
  while (hi - lo > 1) {
    const int64_t a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1];
    const int64_t pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));  // median of three
    const size_t less = partition(lo, hi, [pivot](int64_t x) { return x < pivot; });
    if (k < less) {
      hi = less;
      continue;
    }
    // Equal values next: with them [lo, hi) shrinks even when every value is the pivot.
    const size_t equal = partition(less, hi, [pivot](int64_t x) { return x == pivot; });
    if (k < equal) return pivot;
    lo = equal;
  }
  return v[lo];
}

}  // namespace

void EwStats::add(double x, double weight) { ew_step(mean, var, unweighted, ++n, x, weight); }

double EwStats::sd() const { return ew_sd(var, unweighted); }

Verdict RobustZ::update(int64_t ts, double value) {
  Verdict v;
  v.detector = differences_ ? "robust_z_change" : "robust_z";
  v.actual = value;
  if (!std::isfinite(value)) return v;
  double x = value;
  if (differences_) {
    if (!has_previous_) {
      previous_ = value;
      has_previous_ = true;
      last_ts_ = ts;
      return v;
    }
    // Two readings with one timestamp have no rate of change between them to judge: their
    // difference is noise (a gateway's burst), not a jump.
    if (ts == last_ts_) return v;
    x = value - previous_;
  }
  const bool repeat = ts == last_ts_;
  if (sorted_.size() >= 16) {
    const size_t n = sorted_.size();
    const double median = n % 2 ? sorted_[n / 2] : 0.5 * (sorted_[n / 2 - 1] + sorted_[n / 2]);
    if (scale_age_ == 0) {
      // The spread moves slowly: computed afresh every 16 samples, not for each one.
      const double mad = median_absolute_deviation(sorted_, median);
      // A series that mostly repeats one value has a MAD of 0 but still a scale: its mean
      // absolute deviation (0.80 σ for normal data; more than the MAD says for heavy tails),
      // and at least a small share of its level. The sums of the halves, not |x − median|
      // term by term, each in order (other orders round otherwise) but both in one loop: two
      // independent chains of additions run side by side, one after the other wait in turn.
      double low = 0, high = 0;
      const size_t half = n / 2;
      for (size_t i = 0; i < half; ++i) {
        low += sorted_[i];
        high += sorted_[half + i];
      }
      if (n % 2) high += sorted_[n - 1];
      const double mean_dev =
          (high - low - median * static_cast<double>(n - 2 * (n / 2))) / static_cast<double>(n);
      scale_ = std::max({1.4826 * mad, 1.2533 * mean_dev, 1e-9 + 1e-3 * std::fabs(median)});
    }
    scale_age_ = (scale_age_ + 1) % 16;
    v.score = score_of_z(std::fabs(x - median) / scale_);
    v.expected = differences_ ? previous_ + median : median;
  }
  if (!repeat) {
    if (recent_.empty()) {
      // Exactly the window: grown by doubling, the two vectors of 288 doubles took 512 each,
      // 7 KiB more per series for the pair of members (a gateway keeps tens of thousands).
      recent_.reserve(window_);
      sorted_.reserve(window_);
    }
    double* const data = sorted_.data();
    const size_t n = sorted_.size();
    // Where x goes: after the values equal to it (std::upper_bound).
    auto goes_before_x = [x](double v) { return !(x < v); };
    if (recent_.size() < window_) {
      double* const in = partition_points(data, n, goes_before_x, goes_before_x).first;
      recent_.push_back(x);
      sorted_.insert(sorted_.begin() + (in - data), x);
    } else {
      // The oldest value leaves and x comes in with one shift of the values between their
      // places (erase then insert moved everything after each: twice the bytes).
      const double oldest = recent_[recent_next_];
      // Where the oldest is: the first of the values equal to it (std::lower_bound).
      const auto [in, out] = partition_points(data, n, goes_before_x, [oldest](double v) { return v < oldest; });
      if (in > out) {
        std::move(out + 1, in, out);
        *(in - 1) = x;
      } else {
        std::move_backward(in, out, out + 1);
        *in = x;
      }
      recent_[recent_next_] = x;
      if (++recent_next_ == window_) recent_next_ = 0;  // not %: a division per sample
    }
  }
  previous_ = value;
  last_ts_ = ts;
  return v;
}

Verdict Ewma::update(int64_t ts, double value) {
  Verdict v;
  v.detector = "ewma";
  v.actual = value;
  if (!std::isfinite(value)) return v;
  if (stats_.n >= 16 && stats_.var > 0) {
    v.score = score_of_z(std::fabs(value - stats_.mean) / stats_.sd());
    v.expected = stats_.mean;
  } else {
    v.expected = stats_.n ? stats_.mean : value;
  }
  if (ts != last_ts_) stats_.add(value);
  last_ts_ = ts;
  return v;
}

Verdict Cusum::update(int64_t ts, double value) {
  Verdict v;
  v.detector = "cusum";
  v.actual = value;
  if (!std::isfinite(value)) return v;
  v.expected = stats_.n ? stats_.mean : value;
  if (stats_.n >= 32 && stats_.var > 0) {
    const double z = (value - stats_.mean) / stats_.sd();
    up_ = std::max(0.0, up_ + z - k_);
    down_ = std::max(0.0, down_ - z - k_);
    const double s = std::max(up_, down_);
    // Continuous (a sweep over thresholds needs an order, not ties at 1): under 0.5 until
    // the decision interval, then on towards 1.
    v.score = s < h_ ? 0.5 * (s / h_) * (s / h_) : 1.0 - 0.5 * h_ / s;
    if (s >= h_) up_ = down_ = 0;
  }
  if (ts != last_ts_) stats_.add(value);
  last_ts_ = ts;
  return v;
}

Verdict Flatline::update(int64_t, double value) {
  Verdict v;
  v.detector = "flatline";
  v.actual = value;
  if (!std::isfinite(value)) return v;
  if (seen_ > 0 && value == last_) {
    ++run_;
  } else {
    if (seen_ > 0) ++changes_;
    longest_ = std::max(longest_, run_);
    run_ = 1;
  }
  last_ = value;
  ++seen_;
  v.expected = value;
  // Only a series that has been seen to vary can be stuck.
  // Rising past 0.5 once the run is half as long again as `min_run`, towards 0.8: a stuck
  // sensor deserves an alarm, rarely an urgent one.
  // A series that habitually holds a value (a quantised or idle metric) is judged against the
  // longest run it has shown before: twice that, at least `min_run`.
  const size_t stuck_after = std::max(min_run_, 2 * longest_);
  if (changes_ >= min_run_ && run_ >= stuck_after) {
    v.score = 0.8 * (1 - std::exp(-2.0 * static_cast<double>(run_ - stuck_after + 1) / static_cast<double>(min_run_)));
  }
  return v;
}

void Seasonal::Slot::add(double x, double weight) { ew_step(mean, var, unweighted, ++samples, x, weight); }

double Seasonal::Slot::sd() const { return ew_sd(var, unweighted); }

Seasonal::Seasonal(int64_t period_ns, size_t buckets, double seasons)
    : period_(period_ns), width_(std::max<int64_t>(1, period_ns / static_cast<int64_t>(std::max<size_t>(buckets, 1)))),
      seasons_(seasons), slots_(std::max<size_t>(buckets, 1)), overall_{1 - std::exp2(-1.0 / 1000)} {}

Verdict Seasonal::update(int64_t ts, double value) {
  Verdict v;
  v.detector = "seasonal";
  v.actual = value;
  if (!std::isfinite(value)) return v;
  const auto [period, at] = locate(ts);
  auto& slot = slots_[at];
  if (slot.periods >= 5 && slot.samples > 1) {
    const double sd = std::max(slot.sd(), overall_.n > 16 ? 0.25 * overall_.sd() : 0.0);
    v.expected = slot.mean;
    if (sd > 0) v.score = score_of_z(std::fabs(value - slot.mean) / sd);
  }
  if (ts != last_ts_) {
    // Periods are counted modulo 2^32: only "another period than the last" matters.
    const auto period32 = static_cast<int32_t>(static_cast<uint32_t>(period));
    if (period32 != slot.last_period || slot.periods == 0) {
      slot.last_period = period32;
      ++slot.periods;
    }
    // Half-life of `seasons_` periods, however many samples a period puts in the slot.
    const double per_period = static_cast<double>(slot.samples + 1) / static_cast<double>(slot.periods);
    slot.add(value, 1 - std::exp2(-1.0 / (seasons_ * per_period)));
    overall_.add(value);
  }
  last_ts_ = ts;
  return v;
}

Verdict Silence::score_gap(int64_t gap) const {
  Verdict v;
  v.detector = "silence";
  v.expected = static_cast<double>(usual_) / 1e9;  // seconds between samples
  v.actual = static_cast<double>(gap) / 1e9;
  if (usual_ > 0 && static_cast<double>(gap) > factor_ * static_cast<double>(usual_)) {
    // 0.5 at `factor` intervals, on towards 1 as the silence lasts.
    const double r = static_cast<double>(gap) / (factor_ * static_cast<double>(usual_));
    v.score = 1.0 - 0.5 / r;
  }
  return v;
}

Verdict Silence::update(int64_t ts, double) {
  Verdict v;
  if (last_ts_ != INT64_MIN && ts > last_ts_) {
    const int64_t gap = ts - last_ts_;
    v = score_gap(gap);
    if (intervals_count_ < kIntervals) {
      intervals_[intervals_count_++] = gap;
    } else {
      intervals_[intervals_next_] = gap;
      intervals_next_ = (intervals_next_ + 1) % kIntervals;
    }
    // The usual interval moves slowly: its median is taken every 8 intervals.
    if (intervals_count_ >= 8 && (usual_ == 0 || ++since_median_ % 8 == 0)) {
      std::array<int64_t, kIntervals> scratch;
      std::copy_n(intervals_.begin(), intervals_count_, scratch.begin());
      usual_ = kth_smallest(scratch.data(), intervals_count_, intervals_count_ / 2);
    }
  }
  v.detector = "silence";
  if (ts > last_ts_) last_ts_ = ts;  // a clock that jumps back is not a gap
  return v;
}

Verdict Silence::check(int64_t now) const {
  if (last_ts_ == INT64_MIN || now <= last_ts_) return Verdict{0, "silence", 0, 0};
  return score_gap(now - last_ts_);
}

void LikelihoodScore::judge(Verdict& v, double value) {
  if (!std::isfinite(value)) return;
  const double z = advance(v.score);
  v.score = std::isnan(z) ? 0.0 : score_of(z);
}

double LikelihoodScore::advance(double raw) {
  if (recent_.size() < short_window_) {
    recent_.push_back(raw);
  } else {
    short_sum_ -= recent_[recent_next_];
    recent_[recent_next_] = raw;
    if (++recent_next_ == short_window_) recent_next_ = 0;  // not %: a division per sample
  }
  short_sum_ += raw;
  double z = std::numeric_limits<double>::quiet_NaN();
  if (long_.n >= std::min<size_t>(long_window_, 300)) {
    const double sd = std::max(long_.sd(), 1e-3);
    z = (short_sum_ / static_cast<double>(recent_.size()) - long_.mean) / sd;
  }
  long_.add(raw);
  return z;
}

double LikelihoodScore::score_of(double z) {
  const double tail = 0.5 * std::erfc(z / std::sqrt(2.0));  // P(a normal deviate > z)
  // log scale: a tail of 1e-10 scores 1, 1e-2 scores 0.2.
  return std::clamp(std::log(tail + 1e-10) / std::log(1e-10), 0.0, 1.0);
}

void LikelihoodScore::prefetch() const {
  if (!recent_.empty()) __builtin_prefetch(recent_.data() + recent_next_, 1);
}

void RobustZ::prefetch() const {
  // The median and the first steps of the two binary searches, and the value that leaves.
  if (const size_t n = sorted_.size(); n > 0) {
    const double* d = sorted_.data();
    __builtin_prefetch(d + n / 4, 1);
    __builtin_prefetch(d + n / 2, 1);
    __builtin_prefetch(d + 3 * n / 4, 1);
  }
  if (!recent_.empty()) __builtin_prefetch(recent_.data() + recent_next_, 1);
}

void Seasonal::prefetch(int64_t ts) const { __builtin_prefetch(&slots_[locate(ts).second], 1); }

std::pair<int64_t, size_t> Seasonal::locate(int64_t ts) const {
  if (ts >= located_from_ && ts < located_to_) return {located_period_, located_slot_};
  const int64_t period = ts >= 0 ? ts / period_ : (ts - period_ + 1) / period_;
  const int64_t phase = ts - period * period_;
  const size_t slot = std::min(static_cast<size_t>(phase / width_), slots_.size() - 1);
  located_period_ = period;
  located_slot_ = slot;
  // The slot's time range in this period (the last slot runs to the period's end); a range
  // past the end of time stays empty rather than overflow.
  const int64_t from = period * period_ + static_cast<int64_t>(slot) * width_;
  int64_t to = 0;
  if (__builtin_add_overflow(from, slot + 1 == slots_.size() ? period_ - static_cast<int64_t>(slot) * width_ : width_, &to)) {
    to = from;
  }
  located_from_ = from;
  located_to_ = to;
  return {period, slot};
}

void Silence::prefetch() const { __builtin_prefetch(intervals_.data() + intervals_next_, 1); }

const std::vector<std::string>& detector_names() {
  static const std::vector<std::string> names{"robust_z", "robust_z_change", "ewma", "cusum", "flatline",
                                              "seasonal_daily", "seasonal_weekly", "silence"};
  return names;
}

Ensemble::Ensemble(const EnsembleConfig& config) : alarm_(config.alarm), refractory_(config.refractory) {
  // Raw deviations pass through the likelihood, so each series is judged against its own
  // usual deviations (windows as in Ahmad et al.: 10 samples against the last 2,000).
  constexpr int64_t kDay = 86'400'000'000'000LL;
  const auto& names = detector_names();
  for (const auto& name : config.members) {
    const auto at = std::find(names.begin(), names.end(), name);
    if (at == names.end()) continue;
    const auto m = static_cast<Member>(at - names.begin());
    switch (m) {
      case Member::robust_z: level_.emplace(config.window, false); break;
      case Member::robust_z_change: change_.emplace(config.window, true); break;
      case Member::ewma: ewma_.emplace(); break;
      case Member::cusum: cusum_.emplace(); break;
      case Member::flatline: flatline_.emplace(); break;
      // What the series usually does at this hour of the day and of the week (half-hour slots).
      case Member::seasonal_daily: daily_.emplace(kDay, 48); break;
      case Member::seasonal_weekly: weekly_.emplace(7 * kDay, 168); break;
      case Member::silence: silence_.emplace(); break;
    }
    order_[count_++] = m;
  }
}

const Detector& Ensemble::member(Member m) const {
  switch (m) {
    case Member::robust_z: return *level_;
    case Member::robust_z_change: return *change_;
    case Member::ewma: return *ewma_;
    case Member::cusum: return *cusum_;
    case Member::flatline: return *flatline_;
    case Member::seasonal_daily: return *daily_;
    case Member::seasonal_weekly: return *weekly_;
    case Member::silence: return *silence_;
  }
  return *silence_;  // not reached: every Member is named above
}
Detector& Ensemble::member(Member m) { return const_cast<Detector&>(std::as_const(*this).member(m)); }

const LikelihoodScore* Ensemble::likelihood_of(Member m) const {
  switch (m) {
    case Member::robust_z: return &level_likelihood_;
    case Member::robust_z_change: return &change_likelihood_;
    case Member::ewma: return &ewma_likelihood_;
    case Member::seasonal_daily: return &daily_likelihood_;
    default: return nullptr;
  }
}
LikelihoodScore* Ensemble::likelihood_of(Member m) { return const_cast<LikelihoodScore*>(std::as_const(*this).likelihood_of(m)); }

// Through the concrete types: calls the compiler can inline, no virtual dispatch. The raw
// verdict: update() passes it through the member's likelihood.
Verdict Ensemble::update_member(Member m, int64_t ts, double value) {
  switch (m) {
    case Member::robust_z: return level_->update(ts, value);
    case Member::robust_z_change: return change_->update(ts, value);
    case Member::ewma: return ewma_->update(ts, value);
    case Member::cusum: return cusum_->update(ts, value);
    case Member::flatline: return flatline_->update(ts, value);
    case Member::seasonal_daily: return daily_->update(ts, value);
    case Member::seasonal_weekly: return weekly_->update(ts, value);
    case Member::silence: return silence_->update(ts, value);
  }
  return {};  // not reached: every Member is named above
}

void Ensemble::prefetch(int64_t ts) const {
  // The ensemble itself first (its members are in it), then what each member points to.
  const char* self = reinterpret_cast<const char*>(this);
  const char* end = silence_ ? self + sizeof(Ensemble) : reinterpret_cast<const char*>(&silence_);
  for (const char* at = self + 64; at < end; at += 64) __builtin_prefetch(at);
  if (level_) level_->prefetch();
  if (change_) change_->prefetch();
  if (daily_) daily_->prefetch(ts);
  if (weekly_) weekly_->prefetch(ts);
  if (silence_) silence_->prefetch();
  for (size_t i = 0; i < count_; ++i) {
    if (const auto* likelihood = likelihood_of(order_[i])) likelihood->prefetch();
  }
}

Verdict Ensemble::update(int64_t ts, double value) {
  prefetch(ts);
  // The highest score wins (the first of equals, in member order). Of the members judged
  // through a likelihood, only the one with the largest z has its score computed: the others
  // score no more than it (score_of increases with z), so none of them can win over it, and
  // where it scores 0 they all do. (Two of them with equal scores from unequal z — where the
  // log scale saturates — are thereby told apart by their z, not by their order.) Only the
  // candidates are kept, not every member's verdict: zeroing and copying an array of them
  // was a third of this function's time.
  struct Candidate {
    Verdict verdict;
    size_t at = kMembers;  // its place in order_; kMembers: none
  };
  Candidate best;           // the first of the highest scores that need no likelihood mapping
  Candidate top;            // the likelihood member with the largest z
  Candidate first_pending;  // the first likelihood member with a z (all score 0 where top does)
  double top_z = 0;
  for (size_t i = 0; i < count_; ++i) {
    Verdict v = update_member(order_[i], ts, value);
    auto* likelihood = std::isfinite(value) ? likelihood_of(order_[i]) : nullptr;
    if (likelihood) {
      const double z = likelihood->advance(v.score);
      v.score = 0;  // a likelihood without enough history yet scores 0
      if (!std::isnan(z)) {
        if (first_pending.at == kMembers) first_pending = {v, i};
        if (top.at == kMembers || z > top_z) {
          top = {v, i};
          top_z = z;
        }
        continue;
      }
    }
    if (best.at == kMembers || v.score > best.verdict.score) best = {v, i};
  }
  if (top.at != kMembers) {
    top.verdict.score = LikelihoodScore::score_of(top_z);
    const Candidate& pending = top.verdict.score > 0 ? top : first_pending;
    if (best.at == kMembers || pending.verdict.score > best.verdict.score ||
        (pending.verdict.score == best.verdict.score && pending.at < best.at)) {
      best = pending;
    }
  }
  if (best.at == kMembers) best.verdict.actual = value;  // no members
  Verdict& result = best.verdict;
  result.unheld = result.score;
  const bool deviation = result.score >= alarm_;
  const bool routine = deviation && deviations_.routine(ts);
  if (deviation) deviations_.note(ts);
  if (quiet_for_ > 0) {
    --quiet_for_;
    result.score = std::min(result.score, alarm_ * 0.5);
  } else if (routine) {
    result.score = std::min(result.score, alarm_ * 0.5);
  } else if (deviation) {
    quiet_for_ = refractory_;
  }
  return result;
}

namespace {
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
constexpr int64_t kQuarterHour = 900'000'000'000LL;
}  // namespace

bool Ensemble::DailyDeviations::seen(int64_t slot) const {
  const int64_t day = floor_div(slot, kSlotsPerDay);
  const auto i = static_cast<size_t>(day & 3);
  const auto bit = static_cast<unsigned>(slot - day * kSlotsPerDay);
  return days_[i] == day && (slots_[i][bit / 64] >> (bit % 64) & 1);
}

void Ensemble::DailyDeviations::note(int64_t ts) {
  const int64_t slot = floor_div(ts, kQuarterHour);
  const int64_t day = floor_div(slot, kSlotsPerDay);
  const auto i = static_cast<size_t>(day & 3);
  if (days_[i] != day) {
    days_[i] = day;
    slots_[i][0] = slots_[i][1] = 0;
  }
  const auto bit = static_cast<unsigned>(slot - day * kSlotsPerDay);
  slots_[i][bit / 64] |= uint64_t{1} << (bit % 64);
}

bool Ensemble::DailyDeviations::routine(int64_t ts) const {
  const int64_t slot = floor_div(ts, kQuarterHour);
  for (int64_t days_ago = 1; days_ago <= 2; ++days_ago) {
    for (int64_t near = -2; near <= 2; ++near) {
      if (seen(slot - days_ago * kSlotsPerDay + near)) return true;
    }
  }
  return false;
}

}  // namespace fieldline::analytics
