#pragma once
// Query model: selectors over labels, step-bucket aggregates with mergeable partial states
// (so shards and blocks can be queried separately and merged), and a quantile sketch.

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/tsdb/types.h"

namespace fieldline::tsdb {

struct Matcher {
  enum class Op { eq, neq, re, nre };
  std::string label;
  Op op = Op::eq;
  std::string value;
  std::shared_ptr<const std::regex> regex;  // shared: matchers are copied per shard, the regex is immutable

  // Builds a matcher; a bad regular expression is an invalid_query error.
  static Result<Matcher> make(std::string label, Op op, std::string value);
  bool matches(SeriesLabels key) const;
};

struct Selector {
  std::vector<Matcher> matchers;
  bool matches(SeriesLabels key) const;
  // Parses "{device=\"p1\",site=~\"north.*\"}" or "metric{...}" or "device/metric".
  static Result<Selector> parse(std::string_view text);
  // The device the selector pins with an equality matcher, if any (index fast path).
  const std::string* pinned_device() const;
};

enum class Agg { none, avg, min, max, sum, count, first, last, stddev, p50, p90, p99 };
Result<Agg> parse_agg(std::string_view name);
const char* to_string(Agg agg);
inline bool is_quantile(Agg a) { return a == Agg::p50 || a == Agg::p90 || a == Agg::p99; }
// Aggregates that 1-minute and 1-hour rollups (min, max, sum, count) can answer.
inline bool rollup_answers(Agg a) {
  return a == Agg::avg || a == Agg::min || a == Agg::max || a == Agg::sum || a == Agg::count;
}

// DDSketch-style log-bucket quantile sketch with 1% relative accuracy; merging two sketches
// gives exactly the sketch of the union.
class QuantileSketch {
 public:
  void add(double v, uint64_t n = 1);
  void merge(const QuantileSketch& other);
  double quantile(double q) const;
  uint64_t count() const { return count_; }

 private:
  std::map<int, uint64_t> positive_, negative_;
  uint64_t zeros_ = 0, count_ = 0;
};

// Partial aggregate of one bucket; merge() combines partials from shards, blocks and head.
struct AggState {
  uint64_t count = 0;
  double sum = 0, min = 0, max = 0;
  // For stddev: sums of (x - shift) and (x - shift)^2, shift = the bucket's first value, which
  // avoids the cancellation of a plain sum of squares without a division per sample.
  double shift = 0, dsum = 0, dsum2 = 0;
  int64_t first_ts = 0, last_ts = 0;
  double first = 0, last = 0;
  std::unique_ptr<QuantileSketch> sketch;

  // Widens min and max to [lo, hi] and takes `value` at ts as first or last where it is;
  // the bucket's first value also becomes the shift of the stddev sums. REQUIRES: before
  // count grows.
  void observe(int64_t ts, double lo, double hi, double value) {
    if (count == 0) {
      min = lo;
      max = hi;
      first = last = shift = value;
      first_ts = last_ts = ts;
      return;
    }
    if (lo < min) min = lo;
    if (hi > max) max = hi;
    if (ts < first_ts) {
      first_ts = ts;
      first = value;
    }
    if (ts >= last_ts) {
      last_ts = ts;
      last = value;
    }
  }
  // Inline: called once per sample on the query hot path.
  void add(int64_t ts, double v, bool with_sketch) {
    observe(ts, v, v, v);
    ++count;
    sum += v;
    double d = v - shift;
    dsum += d;
    dsum2 += d * d;
    if (with_sketch) add_to_sketch(v);
  }
  // Samples of one bucket in time order, as add() would take them one by one (NaN skipped):
  // the hot loop of raw aggregation, with the bucket found once per run.
  void add_run(const int64_t* ts, const double* v, size_t n) {
    size_t i = 0;
    while (i < n && std::isnan(v[i])) ++i;
    if (i == n) return;
    add(ts[i], v[i], false);
    double run_min = min, run_max = max, run_sum = 0, run_dsum = 0, run_dsum2 = 0;
    uint64_t run_count = 0;
    size_t last_index = i;
    for (++i; i < n; ++i) {
      const double x = v[i];
      if (std::isnan(x)) continue;
      run_min = x < run_min ? x : run_min;
      run_max = x > run_max ? x : run_max;
      run_sum += x;
      const double d = x - shift;
      run_dsum += d;
      run_dsum2 += d * d;
      ++run_count;
      last_index = i;
    }
    if (run_count == 0) return;
    min = run_min;
    max = run_max;
    sum += run_sum;
    dsum += run_dsum;
    dsum2 += run_dsum2;
    count += run_count;
    if (ts[last_index] >= last_ts) {
      last_ts = ts[last_index];
      last = v[last_index];
    }
  }
  void add_to_sketch(double v);
  void add_rollup(int64_t ts, double mn, double mx, double sm, uint64_t n);
  // A rollup's sum and count only: a state fed this way answers avg, sum and count and
  // nothing else (what long-range dashboards ask for, over millions of rollup points).
  void add_sum_count(double sm, uint64_t n) {
    count += n;
    sum += sm;
  }
  void merge(const AggState& o);
  double result(Agg agg) const;
};

struct AggregateQuery {
  Selector selector;
  int64_t from = 0, to = 0;  // [from, to)
  int64_t step = 0;          // bucket width; 0 = one bucket for the whole range
  Agg agg = Agg::avg;
  std::vector<std::string> group_by;  // empty: one group per series
  bool use_rollups = true;
};

// One output series: its group labels and buckets keyed by start time.
struct AggregateGroup {
  std::vector<std::pair<std::string, std::string>> labels;
  std::map<int64_t, AggState> buckets;
};

struct AggregateResult {
  std::map<std::string, AggregateGroup> groups;  // by canonical group key
  uint64_t samples_read = 0;
  uint64_t rollup_points_read = 0;
  void merge(AggregateResult&& other);
};

// Group labels of a series under `group_by` (empty group_by: all of the series' labels).
std::vector<std::pair<std::string, std::string>> group_labels(SeriesLabels key,
                                                              const std::vector<std::string>& group_by);

}  // namespace fieldline::tsdb
