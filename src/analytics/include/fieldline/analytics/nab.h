#pragma once
// The Numenta Anomaly Benchmark's scoring, as NAB v1.1 defines it (nab/sweeper.py at commit
// ea702d7), so that `fieldline eval nab` is comparable with NAB's published scoreboard:
//
// - The first 15% of a file's rows (at most 750) is a probationary period, not scored.
// - A detection is a row whose anomaly score reaches the threshold. Inside a labelled window
//   the first detection earns tpWeight × σ(position) / σ(left edge), where position runs from
//   -1 at the window's left edge to 0 past its right edge and σ(x) = 2/(1+e^(5x)) − 1; a window
//   without a detection costs −fnWeight. A detection outside every window costs fpWeight ×
//   σ(distance past the previous window's right edge in that window's widths) (−fpWeight with
//   no window before it, or three widths past it).
// - One threshold per detector and profile, chosen for the best total over the whole corpus.
// - Normalised score = 100 × (raw − null) / (perfect − null), where null = −fnWeight and
//   perfect = tpWeight per scored window.
//
// Windows are matched to rows by exact timestamp, like NAB: a window starts at the row whose
// time equals its start and ends at the first row whose time equals its end.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fieldline/analytics/detectors.h"
#include "fieldline/core/result.h"

namespace fieldline::analytics::nab {

struct CostProfile {
  std::string name;
  double tp_weight = 1, fp_weight = 0.11, fn_weight = 1;
};
// NAB's three: standard, reward_low_FP_rate, reward_low_FN_rate.
const std::vector<CostProfile>& profiles();

// A labelled window, both ends inclusive, in microseconds since the epoch (naive times read
// as UTC).
struct Window {
  int64_t start_us = 0, end_us = 0;
};

// "YYYY-MM-DD HH:MM:SS[.ffffff]" as microseconds since the epoch.
Result<int64_t> parse_time(std::string_view text);
// combined_windows.json: data path relative to data/ -> its windows.
Result<std::map<std::string, std::vector<Window>>> load_windows(const std::string& path);
// The same from the file's text (`where` names it in errors).
Result<std::map<std::string, std::vector<Window>>> parse_windows(std::string_view json, const std::string& where);
// A NAB data file's text ("timestamp,value" rows): times in microseconds and values.
struct Series {
  std::vector<int64_t> times_us;
  std::vector<double> values;
};
Result<Series> parse_series(std::string_view csv, const std::string& where);

// A file's rows (time, anomaly score) with their sweep scores under one profile.
class ScoredFile {
 public:
  // `scores` are the detector's anomaly scores, one per row in row order.
  // `probation`: NAB's own rule (15% of the rows, at most 750) unless given (SKAB: none).
  static Result<ScoredFile> make(std::vector<int64_t> times_us, std::vector<double> scores,
                                 const std::vector<Window>& windows, const CostProfile& profile,
                                 std::optional<size_t> probation = std::nullopt);

  struct Counts {
    double score = 0;  // raw NAB score
    uint64_t tp = 0, tn = 0, fp = 0, fn = 0;  // scored rows, after thresholding
  };
  Counts at(double threshold) const;
  // Windows that reach past the probationary period (those the score counts).
  size_t scored_windows() const { return window_count_; }

  struct Row {
    double anomaly = 0;
    double sweep = 0;   // what a detection here adds (negative outside windows)
    int32_t window = -1;  // index of the window it is in, -1 outside, -2 probationary
  };
  const std::vector<Row>& rows() const { return rows_; }
  double fn_weight() const { return fn_weight_; }

 private:
  std::vector<Row> rows_;
  size_t window_count_ = 0;
  double fn_weight_ = 1;
};

// 100 × (raw − null) / (perfect − null) over `windows` scored windows.
double normalized(double raw, size_t windows, const CostProfile& profile);

// The threshold with the best raw total over all the files (NAB's corpus-wide sweep over
// every distinct anomaly score), and that total.
struct Sweep {
  double threshold = 1.1;
  double raw = 0;
};
Sweep best_threshold(const std::vector<const ScoredFile*>& files);

// A whole benchmark run: every file under `dir`/data that `dir`/labels/combined_windows.json
// lists is streamed row by row through a fresh detector from `make`; each profile gets its
// corpus-wide best threshold and normalised score.
struct Evaluation {
  struct Profile {
    std::string name;
    double threshold = 0, raw = 0, normalized = 0;
  };
  struct File {
    std::string name;
    size_t rows = 0, windows = 0;
    std::vector<double> raw;  // per profile, at that profile's threshold
  };
  std::vector<Profile> profiles;
  std::vector<File> files;
  size_t windows = 0, rows = 0;
  double detect_seconds = 0;  // time spent in the detectors
};
Result<Evaluation> evaluate(const std::string& dir, const std::function<std::unique_ptr<Detector>()>& make);

}  // namespace fieldline::analytics::nab
