#pragma once
// Calibration: per device and metric, what turns a sensor's reading into the true value —
// gain and offset, or a polynomial — from a point in time on, with the reference of the
// certificate behind it and when it is due again. Applied at ingestion (after the unit
// conversion, before the range check); each calibrated series carries the calibration's id
// as the tag `calibration`, and the reading as sent can be recovered by inverting it.

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/ingest/published.h"

namespace fieldline::ingest {

struct Calibration {
  int64_t id = 0;  // assigned by the registry; also the series tag
  std::string device, metric;
  // value = c[0] + c[1]·raw + c[2]·raw² + … (gain and offset: {offset, gain}).
  std::vector<double> coefficients;
  // Where a polynomial of degree 2 or more is monotonic, hence invertible (required for it).
  double raw_min = -std::numeric_limits<double>::infinity();
  double raw_max = std::numeric_limits<double>::infinity();
  int64_t valid_from_ns = 0;
  int64_t due_ns = 0;  // 0: no due date
  std::string reference;  // certificate or reference-instrument id

  double apply(double raw) const;
  // The reading that gave `value` (nullopt outside the invertible range).
  std::optional<double> invert(double value) const;
};

// Checks a calibration before it is stored: 1 to 6 finite coefficients, a non-zero slope,
// and for a polynomial a finite raw range over which it is strictly monotonic. Errors name
// the field.
Status check_calibration(const Calibration& c);

// Parses the JSON a user sends: {"metric": "temperature", "gain": 1.02, "offset": -0.3} or
// {"metric": ..., "polynomial": [c0, c1, c2], "raw_min": ..., "raw_max": ...}, with
// "valid_from" and "due" (RFC 3339 or epoch ms) and "reference". `now_ns` is the default
// valid_from.
Result<Calibration> parse_calibration(std::string_view json, int64_t now_ns);
// The stored form (canonical JSON, no device or id).
std::string calibration_json(const Calibration& c);

// A device's calibrations: which one applies to a metric's sample at a time (the latest
// valid_from at or before it).
class CalibrationSet {
 public:
  explicit CalibrationSet(std::vector<Calibration> all);
  const Calibration* at(std::string_view metric, int64_t ts) const;
  const Calibration* by_id(int64_t id) const;
  bool empty() const { return by_metric_.empty(); }

 private:
  std::map<std::string, std::vector<Calibration>, std::less<>> by_metric_;  // ascending valid_from
};

// The calibrations ingestion applies, by device; a device's set is replaced whole.
class CalibrationBook : public Published<CalibrationSet> {
 public:
  void publish(const std::string& device, std::vector<Calibration> all);
};

}  // namespace fieldline::ingest
