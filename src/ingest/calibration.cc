#include "fieldline/ingest/calibration.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>

#include "fieldline/core/errc.h"
#include "fieldline/core/ids.h"
#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "fieldline/ingest/decode.h"

namespace fieldline::ingest {
namespace {

namespace json = boost::json;

Error bad(const std::string& field, const std::string& why) {
  return core::make_error(core::Errc::invalid_argument, field.empty() ? why : field + ": " + why);
}

double derivative(const std::vector<double>& c, double x) {
  double d = 0;
  for (size_t k = c.size() - 1; k >= 1; --k) d = d * x + static_cast<double>(k) * c[k];
  return d;
}

}  // namespace

double Calibration::apply(double raw) const {
  double v = 0;
  for (size_t k = coefficients.size(); k-- > 0;) v = v * raw + coefficients[k];
  return v;
}

std::optional<double> Calibration::invert(double value) const {
  if (coefficients.size() == 2) return (value - coefficients[0]) / coefficients[1];
  // Monotonic on [raw_min, raw_max] (checked when stored): bisection to the last bit.
  double lo = raw_min, hi = raw_max;
  double flo = apply(lo), fhi = apply(hi);
  const bool rising = fhi > flo;
  if (value < std::min(flo, fhi) || value > std::max(flo, fhi)) return std::nullopt;
  for (int i = 0; i < 200 && lo < hi; ++i) {
    double mid = lo + (hi - lo) / 2;
    if (mid == lo || mid == hi) break;
    if ((apply(mid) < value) == rising) lo = mid;
    else hi = mid;
  }
  return std::fabs(apply(lo) - value) <= std::fabs(apply(hi) - value) ? lo : hi;
}

Status check_calibration(const Calibration& c) {
  if (auto st = core::validate_metric_name(c.metric); !st) return bad("metric", st.error().context());
  if (c.coefficients.size() < 2 || c.coefficients.size() > 6) {
    return bad("polynomial", "expected 2 to 6 coefficients (c0 + c1·x + … + c5·x⁵)");
  }
  for (double k : c.coefficients) {
    if (!std::isfinite(k)) return bad("polynomial", "coefficients must be finite");
  }
  if (c.coefficients.size() == 2) {
    if (c.coefficients[1] == 0) return bad("gain", "a gain of 0 loses the reading");
    return {};
  }
  if (c.coefficients.back() == 0) return bad("polynomial", "the highest coefficient is 0: drop it");
  if (!std::isfinite(c.raw_min) || !std::isfinite(c.raw_max) || !(c.raw_min < c.raw_max)) {
    return bad("raw_min", "a polynomial needs the raw range it is valid for (raw_min < raw_max), so it can be inverted");
  }
  // Strictly monotonic: the derivative keeps one sign over the range (sampled finely, ends included).
  constexpr int kSamples = 4096;
  int sign = 0;
  for (int i = 0; i <= kSamples; ++i) {
    double x = c.raw_min + (c.raw_max - c.raw_min) * i / kSamples;
    double d = derivative(c.coefficients, x);
    int s = d > 0 ? 1 : d < 0 ? -1 : 0;
    if (s == 0 || (sign != 0 && s != sign)) {
      return bad("polynomial", "not monotonic between raw_min and raw_max (its slope is 0 or changes sign near " +
                                   std::to_string(x) + "), so readings could not be recovered");
    }
    sign = s;
  }
  return {};
}

Result<Calibration> parse_calibration(std::string_view text, int64_t now_ns) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return bad("", "expected a JSON object such as {\"metric\": \"temperature\", \"gain\": 1.02, \"offset\": -0.3}");
  }
  const auto& o = v.get_object();
  Calibration c;
  auto number = [&](const char* key) -> Result<std::optional<double>> {
    const auto* x = o.if_contains(key);
    if (!x) return std::optional<double>();
    if (x->is_double()) return std::optional<double>(x->get_double());
    if (x->is_int64()) return std::optional<double>(static_cast<double>(x->get_int64()));
    if (x->is_uint64()) return std::optional<double>(static_cast<double>(x->get_uint64()));
    return bad(key, "expected a number");
  };
  auto time = [&](const char* key) -> Result<std::optional<int64_t>> {
    const auto* x = o.if_contains(key);
    if (!x) return std::optional<int64_t>();
    if (x->is_string()) {
      auto t = core::parse_time(std::string_view(x->get_string()), now_ns, core::EpochUnit::milliseconds);
      if (!t) return bad(key, t.error().context());
      return std::optional<int64_t>(*t);
    }
    if (x->is_int64()) {
      auto t = core::epoch_to_ns(x->get_int64(), core::EpochUnit::milliseconds);
      if (!t) return bad(key, t.error().context());
      return std::optional<int64_t>(*t);
    }
    return bad(key, "expected an RFC 3339 time or epoch milliseconds");
  };
  for (const auto& [k, x] : o) {
    static constexpr std::string_view known[] = {"metric", "gain", "offset", "polynomial", "raw_min", "raw_max",
                                                 "valid_from", "due", "reference"};
    if (std::find(std::begin(known), std::end(known), std::string_view(k)) == std::end(known)) {
      return bad(std::string(k), "unknown field (metric, gain, offset, polynomial, raw_min, raw_max, valid_from, due, reference)");
    }
  }
  const auto* metric = o.if_contains("metric");
  if (!metric || !metric->is_string()) return bad("metric", "missing");
  c.metric = std::string(metric->get_string());
  FL_TRY(gain, number("gain"));
  FL_TRY(offset, number("offset"));
  const auto* poly = o.if_contains("polynomial");
  if (poly && (gain || offset)) return bad("polynomial", "give gain and offset, or a polynomial, not both");
  if (poly) {
    if (!poly->is_array()) return bad("polynomial", "expected an array of coefficients [c0, c1, …]");
    for (const auto& k : poly->get_array()) {
      if (!k.is_number()) return bad("polynomial", "expected numbers");
      c.coefficients.push_back(k.to_number<double>());
    }
  } else {
    if (!gain && !offset) return bad("gain", "give gain and/or offset, or a polynomial");
    c.coefficients = {offset ? *offset : 0.0, gain ? *gain : 1.0};
  }
  FL_TRY(raw_min, number("raw_min"));
  FL_TRY(raw_max, number("raw_max"));
  if (raw_min) c.raw_min = *raw_min;
  if (raw_max) c.raw_max = *raw_max;
  FL_TRY(valid_from, time("valid_from"));
  FL_TRY(due, time("due"));
  c.valid_from_ns = valid_from ? *valid_from : now_ns;
  c.due_ns = due ? *due : 0;
  if (c.due_ns && c.due_ns <= c.valid_from_ns) return bad("due", "must be after valid_from");
  if (const auto* r = o.if_contains("reference")) {
    if (!r->is_string() || r->get_string().size() > 200) return bad("reference", "expected a string of at most 200 bytes");
    c.reference = std::string(r->get_string());
  }
  FL_TRY_STATUS(check_calibration(c));
  return c;
}

std::string calibration_json(const Calibration& c) {
  json::object o;
  o["metric"] = c.metric;
  json::array k;
  for (double x : c.coefficients) k.push_back(x);
  o["polynomial"] = std::move(k);
  if (std::isfinite(c.raw_min)) o["raw_min"] = c.raw_min;
  if (std::isfinite(c.raw_max)) o["raw_max"] = c.raw_max;
  o["valid_from"] = core::format_rfc3339(c.valid_from_ns);
  if (c.due_ns) o["due"] = core::format_rfc3339(c.due_ns);
  if (!c.reference.empty()) o["reference"] = c.reference;
  return core::to_json(o);
}

CalibrationSet::CalibrationSet(std::vector<Calibration> all) {
  for (auto& c : all) by_metric_[c.metric].push_back(std::move(c));
  for (auto& [m, list] : by_metric_) {
    std::stable_sort(list.begin(), list.end(), [](const Calibration& a, const Calibration& b) {
      return a.valid_from_ns != b.valid_from_ns ? a.valid_from_ns < b.valid_from_ns : a.id < b.id;
    });
  }
}

const Calibration* CalibrationSet::at(std::string_view metric, int64_t ts) const {
  auto it = by_metric_.find(metric);
  if (it == by_metric_.end()) return nullptr;
  const auto& list = it->second;
  // The last one valid at ts (for equal valid_from, the later record wins).
  auto after = std::upper_bound(list.begin(), list.end(), ts, [](int64_t t, const Calibration& c) { return t < c.valid_from_ns; });
  return after == list.begin() ? nullptr : &*std::prev(after);
}

const Calibration* CalibrationSet::by_id(int64_t id) const {
  for (const auto& [m, list] : by_metric_) {
    for (const auto& c : list) {
      if (c.id == id) return &c;
    }
  }
  return nullptr;
}

void CalibrationBook::publish(const std::string& device, std::vector<Calibration> all) {
  auto set = std::make_shared<const CalibrationSet>(std::move(all));
  Published::publish(device, set->empty() ? nullptr : std::move(set), [](const CalibrationSet&) { return false; });
}

}  // namespace fieldline::ingest
