#include "fieldline/ops/kpi.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>

#include "fieldline/core/errc.h"
#include "fieldline/core/toml_document.h"
#include "fieldline/core/time.h"

namespace fieldline::ops::kpi {

namespace {

constexpr double kHourNs = 3600e9;

Error bad(const toml::node& at, const std::string& key, const std::string& what) { return core::document_error(at, key, what); }

bool valid_name(std::string_view s) { return core::valid_document_name(s); }

}  // namespace

Result<Definition> parse_definition(std::string_view text) {
  toml::table doc;
  try {
    doc = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return core::make_error(core::Errc::invalid_argument, "line " + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  Definition d;
  for (const auto& [key, node] : doc) {
    const std::string k(key.str());
    std::string* name = k == "kpi" ? &d.name : k == "profile" ? &d.profile : k == "running" ? &d.running : k == "failure" ? &d.failure
                      : k == "maintenance" ? &d.maintenance : k == "energy" ? &d.energy : k == "output" ? &d.output
                      : k == "alarm_type" ? &d.alarm_type : nullptr;
    double* cost = k == "cost_failure" ? &d.cost_failure : k == "cost_maintenance" ? &d.cost_maintenance
                 : k == "cost_downtime_hour" ? &d.cost_downtime_hour : nullptr;
    if (name) {
      auto v = node.value<std::string>();
      if (!v || !valid_name(*v)) return bad(node, k, "expected a name (letters, digits, _ . -; at most 128)");
      *name = *v;
    } else if (cost) {
      auto v = node.value<double>();
      if (!v || !std::isfinite(*v) || *v < 0) return bad(node, k, "expected a cost of 0 or more");
      *cost = *v;
    } else if (k == "horizon") {
      auto v = node.value<std::string>();
      auto ns = v ? core::parse_duration(*v) : Result<int64_t>(core::make_error(core::Errc::invalid_argument, ""));
      if (!ns || *ns < 60'000'000'000LL || *ns > 400LL * 86'400'000'000'000LL) return bad(node, k, "expected a duration from 1m to 400d, such as \"7d\"");
      d.horizon_ns = *ns;
    } else {
      return bad(node, k, "unknown key (kpi, profile, running, failure, maintenance, cost_failure, cost_maintenance, "
                          "cost_downtime_hour, energy, output, alarm_type, horizon)");
    }
  }
  if (d.name.empty()) return core::make_error(core::Errc::invalid_argument, "kpi: the definition needs a name");
  if (d.profile.empty()) return core::make_error(core::Errc::invalid_argument, "profile: the definition needs the profile it measures");
  if (d.energy.empty() != d.output.empty()) {
    return core::make_error(core::Errc::invalid_argument, "energy and output: give both (energy per unit of output) or neither");
  }
  return d;
}

Values compute(const Definition& d, const std::vector<DeviceSeries>& devices, int64_t from, int64_t to) {
  Values v;
  v.from_ns = from;
  v.to_ns = to;
  auto in_range = [&](int64_t t) { return t >= from && t < to; };
  for (const auto& s : devices) {
    ++v.devices;
    // Events in the range.
    std::vector<int64_t> failures, maintenance;
    for (const auto& p : s.failure) if (in_range(p.ts_ns)) failures.push_back(p.ts_ns);
    for (const auto& p : s.maintenance) if (in_range(p.ts_ns)) maintenance.push_back(p.ts_ns);
    v.failures += failures.size();
    v.maintenance += maintenance.size();
    // Up and down time from the state readings, clipped to the range.
    int64_t previous_up = INT64_MIN;  // the last reading with running 1 before a stop
    bool planned = false;             // the current stop's kind
    for (size_t i = 0; i < s.running.size(); ++i) {
      const auto& p = s.running[i];
      if (p.ts_ns >= to) break;
      const int64_t end = i + 1 < s.running.size() ? std::min(s.running[i + 1].ts_ns, to) : to;
      const int64_t begin = std::max(p.ts_ns, from);
      const double hours = end > begin ? static_cast<double>(end - begin) / kHourNs : 0;
      if (p.value != 0) {
        v.uptime_hours += hours;
        previous_up = p.ts_ns;
        continue;
      }
      // A stop: planned when a maintenance event opened it (between the last running reading
      // and this one), else unplanned.
      const bool opening = i == 0 || s.running[i - 1].value != 0;
      if (opening) {
        planned = std::any_of(s.maintenance.begin(), s.maintenance.end(),
                              [&](const Point& m) { return m.ts_ns > previous_up && m.ts_ns <= p.ts_ns; });
      }
      (planned ? v.planned_downtime_hours : v.unplanned_downtime_hours) += hours;
    }
    // Energy per unit of output: the counter's increase over the output integrated over hours.
    if (!d.energy.empty()) {
      double first = NAN, last = NAN;
      for (const auto& p : s.energy) {
        if (!in_range(p.ts_ns)) continue;
        if (std::isnan(first)) first = p.value;
        last = p.value;
      }
      if (!std::isnan(first)) v.energy += last - first;
      for (size_t i = 0; i + 1 < s.output.size(); ++i) {
        const auto& p = s.output[i];
        if (!in_range(p.ts_ns)) continue;
        const int64_t end = std::min(s.output[i + 1].ts_ns, to);
        v.output += p.value * static_cast<double>(end - p.ts_ns) / kHourNs;
      }
    }
    // Alert precision: an alarm counts when the device failed within the horizon after it.
    for (int64_t a : s.alarms) {
      if (!in_range(a)) continue;
      ++v.alarms;
      const bool followed = std::any_of(s.failure.begin(), s.failure.end(),
                                        [&](const Point& f) { return f.ts_ns > a && f.ts_ns <= a + d.horizon_ns; });
      v.alarms_before_failure += followed;
    }
  }
  v.observed_hours = v.uptime_hours + v.unplanned_downtime_hours + v.planned_downtime_hours;
  v.mtbf_hours = v.failures ? v.uptime_hours / static_cast<double>(v.failures) : NAN;
  v.mttr_hours = v.failures ? v.unplanned_downtime_hours / static_cast<double>(v.failures) : NAN;
  v.availability = v.observed_hours > 0 ? v.uptime_hours / v.observed_hours : NAN;
  v.maintenance_cost = static_cast<double>(v.failures) * d.cost_failure + static_cast<double>(v.maintenance) * d.cost_maintenance +
                       v.unplanned_downtime_hours * d.cost_downtime_hour;
  v.energy_per_output = v.output > 0 ? v.energy / v.output : NAN;
  v.alert_precision = v.alarms ? static_cast<double>(v.alarms_before_failure) / static_cast<double>(v.alarms) : NAN;
  return v;
}

}  // namespace fieldline::ops::kpi
