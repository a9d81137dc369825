#pragma once
// Streaming anomaly detectors for one series: each sees samples in time order (no lookahead)
// and answers each with a score in [0, 1] and an explanation (what it expected, what it saw).
// A detector is owned by one thread (the series' shard); it keeps O(window) state.
//
// Non-finite values are not learnt from and score 0 (a NaN is a data-quality matter, flagged
// at ingestion); a repeated timestamp is scored but not learnt twice.

#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fieldline/core/bytes.h"
#include "fieldline/core/result.h"

namespace fieldline::analytics {

struct Verdict {
  double score = 0;       // 0: as expected; 1: certainly anomalous
  std::string_view detector;  // which one said so (the highest scorer, in an ensemble); a literal
  double expected = 0, actual = 0;
  // An ensemble's score before it held it down after an alarm (see Ensemble): whether the
  // deviation has passed, which clearing judges. Set by Ensemble only.
  double unheld = 0;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual Verdict update(int64_t ts_ns, double value) = 0;
  // Checkpoints: what the detector has learnt, so that a restart does not start from nothing.
  // load() returns false, leaving the detector unusable until reset, for bytes that are
  // damaged or were saved by another kind or configuration of detector.
  virtual void save(std::string& out) const = 0;
  virtual bool load(core::ByteReader& in) = 0;
};

// A detector's checkpoint with a header and a checksum; restore() refuses anything else with
// a reason.
std::string checkpoint(const Detector& d);
Status restore(Detector& d, std::string_view bytes);

// A shard's detector checkpoint file: for each metric (key "device\0metric") the version of the
// detector document its detectors were made from and their checkpoint() bytes, with a header
// and a CRC32C over the whole. Decoding refuses damage with a reason.
struct SavedDetectors {
  std::string key;
  int64_t document_version = 0;
  std::string ensemble, silence;  // checkpoint() bytes; empty: none
};
std::string encode_detector_file(const std::vector<SavedDetectors>& entries);
Result<std::vector<SavedDetectors>> decode_detector_file(std::string_view bytes);

// How far a deviation of z robust standard deviations is from normal, in [0, 1]: 0 up to
// `z0`, rising smoothly to 0.5 at 2·z0 and on towards 1.
double score_of_z(double z, double z0 = 3.0);

// Median and MAD of the last `window` samples; z = |x − median| / (1.4826 · MAD). With
// `differences`, the same on the change from the previous sample (spikes and jumps).
class RobustZ final : public Detector {
 public:
  explicit RobustZ(size_t window = 288, bool differences = false) : window_(window), differences_(differences) {}
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;
  // Asks the caches for what the next update() reads (an ensemble asks for all its members at once).
  void prefetch() const;

 private:
  size_t window_;
  bool differences_;
  std::vector<double> recent_;  // a ring in arrival order (oldest at recent_next_ once full)
  size_t recent_next_ = 0;
  std::vector<double> sorted_;  // the same, sorted
  double scale_ = 1;
  unsigned scale_age_ = 0;  // samples since the scale was computed, mod 16
  double previous_ = 0;
  bool has_previous_ = false;
  int64_t last_ts_ = INT64_MIN;
};

// Exponentially weighted mean and variance (weight `alpha` for the newest sample).
struct EwStats {
  double alpha;
  double mean = 0, var = 0;
  uint64_t n = 0;
  double unweighted = 1;  // the weight the variance has not gathered yet (its bias)
  void add(double x) { add(x, alpha); }
  void add(double x, double weight);  // with another weight for this sample
  double sd() const;  // bias-corrected while the variance has seen few samples
  void save(std::string& out) const;
  bool load(core::ByteReader& in);
};

// EWMA control chart: exponentially weighted mean and variance (half-life `half_life`
// samples); z of the sample against them.
class Ewma final : public Detector {
 public:
  explicit Ewma(double half_life = 100) : stats_{1 - std::exp2(-1.0 / half_life)} {}
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;

 private:
  EwStats stats_;
  int64_t last_ts_ = INT64_MIN;
};

// Two-sided CUSUM on the sample standardised by a slow EWMA (a level shift too small for
// any one sample to stand out): slack `k`, decision interval `h` standard deviations. Restarts
// after it signals.
class Cusum final : public Detector {
 public:
  explicit Cusum(double k = 0.5, double h = 8, double half_life = 500)
      : k_(k), h_(h), stats_{1 - std::exp2(-1.0 / half_life)} {}
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;

 private:
  double k_, h_;
  EwStats stats_;
  double up_ = 0, down_ = 0;
  int64_t last_ts_ = INT64_MIN;
};

// A stuck sensor: the same value `min_run` times in a row (and twice as long as any run seen
// before) from a series that used to vary.
class Flatline final : public Detector {
 public:
  explicit Flatline(size_t min_run = 30) : min_run_(min_run) {}
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;

 private:
  size_t min_run_;
  double last_ = 0;
  size_t run_ = 0, longest_ = 0;
  uint64_t changes_ = 0, seen_ = 0;
};

// A seasonal baseline: the sample against what the series usually does at this time of the
// period (a day, a week): `buckets` slots of the period, each with its own exponentially
// weighted mean and spread over its last few periods (half-life `seasons` periods, whatever
// the sampling rate). Silent until a slot has seen five periods: after three, a slot's spread
// is still a guess.
class Seasonal final : public Detector {
 public:
  Seasonal(int64_t period_ns, size_t buckets, double seasons = 4);
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;
  void prefetch(int64_t ts_ns) const;  // as RobustZ::prefetch

 private:
  // Compact (a weekly baseline has many slots per metric, and a shard many metrics): the
  // exponentially weighted mean and variance of the slot's samples (as EwStats), its period
  // count and the period it last saw.
  struct Slot {
    double mean = 0;
    float var = 0, unweighted = 1;
    uint32_t samples = 0, periods = 0;
    int32_t last_period = INT32_MIN;
    void add(double x, double weight);
    double sd() const;
  };
  // The period number of a time and the slot it falls in. The slot's time range is remembered
  // (the next samples most likely fall in it too): two 64-bit divisions per sample otherwise.
  std::pair<int64_t, size_t> locate(int64_t ts_ns) const;
  int64_t period_, width_;
  double seasons_;
  std::vector<Slot> slots_;
  mutable int64_t located_from_ = 0, located_to_ = 0, located_period_ = 0;  // empty until the first locate()
  mutable size_t located_slot_ = 0;
  EwStats overall_;  // a floor for a slot's spread: a quiet slot must not make noise an alarm
  int64_t last_ts_ = INT64_MIN;
};

// Missing data: learns the series' usual interval between samples (median of the last 64) and
// scores a gap of more than `factor` intervals — when the late sample arrives (update), or
// while none has (check, called on a timer: a silent device sends nothing to be scored).
class Silence final : public Detector {
 public:
  explicit Silence(double factor = 5) : factor_(factor) {}
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;
  void prefetch() const;  // as RobustZ::prefetch
  Verdict check(int64_t now_ns) const;
  static constexpr size_t kIntervals = 64;  // the usual interval is the median of this many

 private:
  Verdict score_gap(int64_t gap_ns) const;
  double factor_;
  unsigned since_median_ = 0;
  int64_t last_ts_ = INT64_MIN;
  int64_t usual_ = 0;
  // A ring of the last kIntervals (oldest at intervals_next_ once full), in the detector
  // itself: on the heap it was one more cache miss per sample after the detector's own.
  uint32_t intervals_count_ = 0, intervals_next_ = 0;
  std::array<int64_t, kIntervals> intervals_{};
};

// How unusual a detector's recent scores are for this series (the "anomaly likelihood" idea
// of Ahmad et al., 2017): the mean of the last `short_window` raw scores against the mean and
// spread of the long run (exponentially weighted with the memory of `long_window` samples, a
// plain average until it has seen that many: O(1) state per series, not a window of them), as
// a tail probability mapped onto [0, 1] on a log scale. A series whose deviations are always
// large (noisy by nature) stops alarming; a quiet one alarms at its first real excursion.
// LikelihoodScore is that judgement on its own, for whoever owns the inner detector (an
// ensemble keeps its members in itself); Likelihood wraps a detector with it.
class LikelihoodScore {
 public:
  explicit LikelihoodScore(size_t short_window = 10, size_t long_window = 2000)
      : short_window_(short_window), long_window_(long_window), long_{2.0 / (static_cast<double>(long_window) + 1)} {}
  // Replaces the raw score of the inner detector's verdict on a sample of `value` with this one.
  void judge(Verdict& inner, double value);
  // judge() in two steps, for an owner that needs only the highest of several scores:
  // advance() takes a raw score into the windows and says how unusual the short window now is
  // (a z; NaN while the long window has too few scores: the score is then 0), and
  // score_of() maps that z to the score. score_of() increases with z, so of several
  // likelihoods only the one with the largest z need be mapped (its erfc and log are most of
  // a likelihood's cost).
  double advance(double raw);
  static double score_of(double z);
  void save(std::string& out) const;
  bool load(core::ByteReader& in);
  void prefetch() const;

 private:
  size_t short_window_, long_window_;
  std::vector<double> recent_;  // a ring of the last short_window_ raw scores
  size_t recent_next_ = 0;
  double short_sum_ = 0;
  EwStats long_;
};

class Likelihood final : public Detector {
 public:
  Likelihood(std::unique_ptr<Detector> inner, size_t short_window = 10, size_t long_window = 2000)
      : inner_(std::move(inner)), score_(short_window, long_window) {}
  Verdict update(int64_t ts_ns, double value) override {
    Verdict v = inner_->update(ts_ns, value);
    score_.judge(v, value);
    return v;
  }
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;

 private:
  std::unique_ptr<Detector> inner_;
  LikelihoodScore score_;
};

// The default set: robust z on the level and on changes, EWMA, daily seasonal baseline (these
// through the likelihood), CUSUM, flatline, weekly seasonal baseline and silence (a gap,
// scored when the late sample comes); the highest score wins.
//
// Two things make an ensemble's alarms events an operator can act on rather than a stream of
// deviations:
// - One deviation is one alarm: after a score reaches `alarm`, every later score is held below
//   it for `refractory` samples (Verdict::unheld keeps the score before the hold).
// - A routine is not news: a deviation at the time of day (±30 min) at which one was seen on
//   either of the two previous days is held too (a nightly batch job, a shift change, a
//   daily backup), while the deviations themselves are still remembered, so the routine keeps
//   being recognised for as long as it recurs.
// Which members an ensemble runs and how (a profile's detector document, see
// parse_detector_document); the defaults are the default set.
struct EnsembleConfig {
  std::vector<std::string> members{"robust_z", "robust_z_change", "ewma", "cusum", "flatline", "seasonal_daily",
                                   "seasonal_weekly", "silence"};
  static constexpr double kDefaultAlarm = 0.6;
  size_t window = 288;  // robust z: samples in the rolling median/MAD
  double alarm = kDefaultAlarm;
  size_t refractory = 100;
};
// The member names an ensemble knows.
const std::vector<std::string>& detector_names();

class Ensemble final : public Detector {
 public:
  // REQUIRES: members named in detector_names().
  explicit Ensemble(const EnsembleConfig& config = {});
  Verdict update(int64_t ts_ns, double value) override;
  void save(std::string& out) const override;
  bool load(core::ByteReader& in) override;

 private:
  // detector_names() order.
  enum class Member : uint8_t { robust_z, robust_z_change, ewma, cusum, flatline, seasonal_daily, seasonal_weekly, silence };
  static constexpr size_t kMembers = 8;
  Verdict update_member(Member m, int64_t ts_ns, double value);
  const Detector& member(Member m) const;
  Detector& member(Member m);
  // The likelihood a member's raw scores pass through; null for members scored as they are.
  const LikelihoodScore* likelihood_of(Member m) const;
  LikelihoodScore* likelihood_of(Member m);
  // Asks for the memory this sample will touch, all at once: a shard's ensembles are far from
  // the caches, and touched one member after another each miss would wait for the last.
  void prefetch(int64_t ts_ns) const;

  // Which quarter hours of the last four days had a deviation (bit i of a day: minutes
  // 15·i to 15·i + 14 since midnight UTC): 80 bytes however many deviations there were.
  class DailyDeviations {
   public:
    void note(int64_t ts_ns);
    // Whether one was seen within two quarter hours of this time on either of the two
    // previous days.
    bool routine(int64_t ts_ns) const;
    void save(std::string& out) const;
    bool load(core::ByteReader& in);

   private:
    static constexpr int64_t kSlotsPerDay = 96;
    bool seen(int64_t slot) const;
    int64_t days_[4] = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};  // day number held at [day % 4]
    uint64_t slots_[4][2] = {};
  };
  // The members live in the ensemble itself, not one heap object each: a pointer per member
  // cost a cache miss per member per sample (a shard updates tens of thousands of ensembles).
  std::array<Member, kMembers> order_{};  // the configured members, in order
  size_t count_ = 0;
  std::optional<RobustZ> level_, change_;
  std::optional<Ewma> ewma_;
  std::optional<Cusum> cusum_;
  std::optional<Flatline> flatline_;
  std::optional<Seasonal> daily_, weekly_;
  // The likelihood over robust z (level and change), EWMA and the daily baseline.
  LikelihoodScore level_likelihood_, change_likelihood_, ewma_likelihood_, daily_likelihood_;
  double alarm_;
  size_t refractory_;
  size_t quiet_for_ = 0;
  DailyDeviations deviations_;
  // Last: the largest member (its ring is in it), and left out wherever missing data is
  // judged on its own (StreamDetection), so prefetch() need not ask for its lines then.
  std::optional<Silence> silence_;
};

}  // namespace fieldline::analytics
