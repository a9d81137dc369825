#include "fieldline/ingest/validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "fieldline/core/json.h"

namespace fieldline::ingest {

void ContractBook::publish(int64_t version, Contract contract) {
  std::string profile = contract.profile;
  Published::publish(profile, std::make_shared<const ActiveContract>(ActiveContract{version, std::move(contract)}),
                     [version](const ActiveContract& current) { return current.version >= version; });
}

const char* to_string(Quality q) {
  switch (q) {
    case Quality::good: return "good";
    case Quality::out_of_range: return "out_of_range";
    case Quality::rate_exceeded: return "rate_exceeded";
  }
  return "?";
}

const Result<UnitConversion>& UnitCache::get(std::string_view from, std::string_view to) {
  std::string key;
  key.reserve(from.size() + to.size() + 1);
  key.append(from).push_back('\0');
  key.append(to);
  auto it = by_pair_.find(key);
  if (it != by_pair_.end()) return it->second;
  // Bounded: units come from senders, and a hostile one could send a new unit per message.
  if (by_pair_.size() > 4096) by_pair_.clear();
  return by_pair_.emplace(std::move(key), unit_conversion(from, to)).first->second;
}

namespace {

std::string number(double v) {
  std::string out;
  core::append_json_number(out, v);
  return out;
}

std::string where(const ActiveContract& c) {
  return " (contract '" + c.contract.profile + "' version " + std::to_string(c.version) + ")";
}

const char* value_kind(const tsdb::Value& v) {
  switch (v.index()) {
    case 0: return "a float";
    case 1: return "an integer";
    case 2: return "a boolean";
    default: return "a string";
  }
}

// Converts `value` to the contract's type where that loses nothing.
Status coerce(const ActiveContract& c, const MetricSpec& spec, tsdb::Value& value) {
  auto wrong = [&] {
    return make_error(Errc::wrong_type, "'" + spec.name + "' must be " + to_string(spec.type) + ", got " + value_kind(value) + where(c));
  };
  switch (spec.type) {
    case MetricType::float64:
      if (auto* i = std::get_if<int64_t>(&value)) value = static_cast<double>(*i);
      if (!std::holds_alternative<double>(value)) return wrong();
      return {};
    case MetricType::int64:
      if (auto* d = std::get_if<double>(&value)) {
        // 2^63 as a double is out of range; anything below it with no fraction converts exactly.
        if (std::trunc(*d) != *d || std::fabs(*d) >= 9.2233720368547758e18) return wrong();
        value = static_cast<int64_t>(*d);
      }
      if (!std::holds_alternative<int64_t>(value)) return wrong();
      return {};
    case MetricType::boolean:
      if (!std::holds_alternative<bool>(value)) return wrong();
      return {};
    case MetricType::string:
      if (!std::holds_alternative<std::string>(value)) return wrong();
      return {};
  }
  return wrong();
}

}  // namespace

namespace {

void calibrate(const CalibrationSet& calibrations, std::vector<Point>& points, size_t i, Validation& out) {
  auto* d = std::get_if<double>(&points[i].value);
  if (!d) return;  // calibrations are for float readings
  const Calibration* cal = calibrations.at(points[i].metric, points[i].ts);
  if (!cal) return;
  *d = round_to_15_digits(cal->apply(*d));
  if (out.calibration.empty()) out.calibration.assign(points.size(), 0);
  out.calibration[i] = cal->id;
}
}  // namespace

void calibrate_message(const CalibrationSet& calibrations, std::vector<Point>& points, Validation& out) {
  out.reset();
  for (size_t i = 0; i < points.size(); ++i) calibrate(calibrations, points, i, out);
}

Status validate_message(const ActiveContract& c, std::vector<Point>& points, UnitCache& units,
                        const CalibrationSet* calibrations, Validation& out) {
  out.reset();
  // Required metrics seen, by index in the contract (a mask for the usual few dozen metrics).
  const auto& metrics = c.contract.metrics;
  uint64_t seen_mask = 0;
  std::vector<bool> seen_many;
  if (metrics.size() > 64) seen_many.assign(metrics.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    Point& p = points[i];
    const MetricSpec* spec = c.contract.metric(p.metric);
    if (!spec) return make_error(Errc::unknown_metric, "'" + p.metric + "' is not in the contract" + where(c));
    out.specs.push_back(spec);
    const auto index = static_cast<size_t>(spec - metrics.data());
    if (seen_many.empty()) seen_mask |= uint64_t{1} << index;
    else seen_many[index] = true;
    FL_TRY_STATUS(coerce(c, *spec, p.value));
    if (!p.unit.empty() && p.unit != spec->unit) {
      if (spec->unit.empty()) {
        return make_error(Errc::unit_mismatch, "'" + p.metric + "' has no unit in the contract, got '" + p.unit + "'" + where(c));
      }
      const auto& conv = units.get(p.unit, spec->unit);
      if (!conv) {
        return make_error(Errc::unit_mismatch, "'" + p.metric + "' in '" + p.unit + "': " + conv.error().context() + where(c));
      }
      if (auto* d = std::get_if<double>(&p.value)) {
        *d = round_to_15_digits(conv->apply(*d));
      } else if (auto* n = std::get_if<int64_t>(&p.value)) {
        double v = conv->apply(static_cast<double>(*n));
        if (std::trunc(v) != v) {
          return make_error(Errc::unit_mismatch, "'" + p.metric + "' is an integer metric; " + std::to_string(*n) + " " + p.unit +
                                                     " is not a whole number of " + spec->unit + where(c));
        }
        *n = static_cast<int64_t>(v);
      } else {
        return make_error(Errc::unit_mismatch, "'" + p.metric + "' is not a number and cannot have a unit" + where(c));
      }
      p.unit.clear();
    }
    if (calibrations) calibrate(*calibrations, points, i, out);
    if (spec->min || spec->max) {
      double v = 0;
      if (auto* d = std::get_if<double>(&p.value)) v = *d;
      else if (auto* n = std::get_if<int64_t>(&p.value)) v = static_cast<double>(*n);
      else continue;
      if ((spec->min && v < *spec->min) || (spec->max && v > *spec->max)) {
        out.flag(i, points.size(), Quality::out_of_range);
        if (out.flagged == 1) {
          out.first_warning = "'" + p.metric + "' = " + number(v) + " is outside [" + (spec->min ? number(*spec->min) : "") + ", " +
                              (spec->max ? number(*spec->max) : "") + "]" + where(c);
        }
      }
    }
  }
  for (size_t k = 0; k < metrics.size(); ++k) {
    if (!metrics[k].required) continue;
    bool present = seen_many.empty() ? (seen_mask >> k) & 1 : seen_many[k];
    if (!present) return make_error(Errc::missing_required, "required metric '" + metrics[k].name + "' is missing" + where(c));
  }
  return {};
}

bool admit_rate(RateState& s, int64_t ts, double max_hz) {
  if (!(max_hz > 0)) return true;
  const double interval = 1e9 / max_hz;
  if (s.seen && ts <= s.last) return true;  // backfill or resend: not part of the live rate
  const double tolerance = std::max(1e9, 2 * interval) - interval;
  if (!s.seen) {
    s.seen = true;
    s.tat = ts;
  }
  s.last = ts;
  if (static_cast<double>(ts) < static_cast<double>(s.tat) - tolerance) return false;
  s.tat = std::max(s.tat, ts) + static_cast<int64_t>(interval);
  return true;
}

}  // namespace fieldline::ingest
