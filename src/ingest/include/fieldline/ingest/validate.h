#pragma once
// Validation at ingestion: a decoded message checked against its device profile's data
// contract. Each message is accepted, accepted with warnings (out-of-range or too-frequent
// values are stored, flagged with a quality tag) or rejected (it goes to quarantine whole).
//
// ContractBook holds the version of each profile's contract that ingestion uses. A new
// version is published as one immutable object, and a message is validated against the one
// it looked up, so no message ever sees a half-applied contract.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/ingest/calibration.h"
#include "fieldline/ingest/contract.h"
#include "fieldline/ingest/decode.h"
#include "fieldline/ingest/published.h"

namespace fieldline::ingest {

struct ActiveContract {
  int64_t version = 0;
  Contract contract;
};

// Each profile's contract version, by profile.
class ContractBook : public Published<ActiveContract> {
 public:
  // Makes `version` the profile's contract unless a newer one is already published.
  void publish(int64_t version, Contract contract);
};

// A value's quality: good, or the warning it is stored with (as the series tag
// quality=<name>, so flagged values stay queryable and can be filtered out).
enum class Quality : uint8_t { good = 0, out_of_range, rate_exceeded };
const char* to_string(Quality q);

// Conversions between unit pairs, parsed once per pair (a shard keeps one).
class UnitCache {
 public:
  const Result<UnitConversion>& get(std::string_view from, std::string_view to);

 private:
  std::unordered_map<std::string, Result<UnitConversion>> by_pair_;
};

struct Validation {
  std::vector<const MetricSpec*> specs;  // per point: its metric in the contract
  std::vector<Quality> quality;          // per point; empty while nothing is flagged
  std::vector<int64_t> calibration;      // per point: the calibration applied (0: none); empty while none is
  int64_t calibration_of(size_t point) const { return calibration.empty() ? 0 : calibration[point]; }
  uint32_t flagged = 0;
  std::string first_warning;
  Quality quality_of(size_t point) const { return quality.empty() ? Quality::good : quality[point]; }
  void reset() {
    specs.clear();
    quality.clear();
    calibration.clear();
    flagged = 0;
    first_warning.clear();
  }
  void flag(size_t point, size_t points, Quality q) {
    if (quality.empty()) quality.assign(points, Quality::good);
    quality[point] = q;
    ++flagged;
  }
};

// Checks `points` (one message) against `contract`, converting in place: values to the
// contract's type (an integer for a float metric, an integral number for an int one) and unit.
// Fails with unknown_metric, wrong_type, unit_mismatch or missing_required, naming the metric
// and the contract version. Rates are the caller's (they need each series' history).
// `out` is reused between messages (its vectors keep their capacity). `calibrations` (may be
// null) are the device's: a float value is calibrated after its unit conversion and before
// the range check.
Status validate_message(const ActiveContract& contract, std::vector<Point>& points, UnitCache& units,
                        const CalibrationSet* calibrations, Validation& out);
// Calibration alone, for a device whose profile has no contract.
void calibrate_message(const CalibrationSet& calibrations, std::vector<Point>& points, Validation& out);

// A maximum rate as a generic cell rate algorithm over sample timestamps: a series may burst
// up to one second's worth of samples (at least two) and must average no more than `max_hz`.
// Samples older than the series' latest (backfill, resends) are not counted.
struct RateState {
  int64_t tat = 0;   // theoretical arrival time of the next sample
  int64_t last = 0;  // latest timestamp seen
  bool seen = false;
};
// True when a sample at `ts` keeps the series within `max_hz`.
bool admit_rate(RateState& state, int64_t ts, double max_hz);

}  // namespace fieldline::ingest
