#pragma once
// Outcome KPIs: what a fleet's operation cost, computed from what its devices report. A KPI
// definition (TOML, versioned per profile like contracts) names the metrics that carry a
// device's state and events and what they cost:
//
//   kpi = "pump_outcomes"
//   profile = "pump"
//   running = "running"          # 1 running, 0 stopped (sent with every reading)
//   failure = "failure"          # an event: sent (any value) in the reading that stops the device
//   maintenance = "maintenance"  # an event: a planned stop
//   cost_failure = 12000         # per failure (parts, call-out)
//   cost_maintenance = 1500      # per planned maintenance
//   cost_downtime_hour = 800     # per hour of unplanned downtime (lost output)
//   energy = "energy_kwh"        # optional: a cumulative counter...
//   output = "flow"              # ...per unit of this rate integrated over hours (m³/h -> m³)
//   alarm_type = "maintenance"   # alert precision: alarms of this type...
//   horizon = "7d"               # ...followed by a failure of the device within this
//
// A stop is unplanned unless a maintenance event opened it (a failure event, or none: an
// unexplained stop is unplanned too). Downtime runs from the first reading with running 0 to
// the next with running 1 (or the end of the range). Errors name the line and the key.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::ops::kpi {

struct Definition {
  std::string name, profile;
  std::string running = "running", failure = "failure", maintenance = "maintenance";
  double cost_failure = 0, cost_maintenance = 0, cost_downtime_hour = 0;
  std::string energy, output;  // empty: no energy KPI
  std::string alarm_type = "maintenance";
  int64_t horizon_ns = 7LL * 86'400'000'000'000;
};
Result<Definition> parse_definition(std::string_view toml);

struct Point {
  int64_t ts_ns = 0;
  double value = 0;
};

// One device's series over the range (each in time order) and its alarms' raise times.
struct DeviceSeries {
  std::string device;
  std::vector<Point> running, failure, maintenance, energy, output;
  std::vector<int64_t> alarms;
};

struct Values {
  int64_t from_ns = 0, to_ns = 0;
  uint32_t devices = 0;
  double observed_hours = 0, uptime_hours = 0, unplanned_downtime_hours = 0, planned_downtime_hours = 0;
  uint64_t failures = 0, maintenance = 0;
  double mtbf_hours = 0;    // uptime per failure (NaN: no failure)
  double mttr_hours = 0;    // unplanned downtime per failure (NaN: no failure)
  double availability = 0;  // uptime / observed (NaN: nothing observed)
  double maintenance_cost = 0;
  double energy = 0, output = 0, energy_per_output = 0;  // NaN without an output
  uint64_t alarms = 0, alarms_before_failure = 0;
  double alert_precision = 0;  // NaN: no alarms
};

// The KPIs of `devices` over [from, to): events and alarms in the range count; downtime and
// uptime are clipped to it.
Values compute(const Definition& d, const std::vector<DeviceSeries>& devices, int64_t from, int64_t to);

}  // namespace fieldline::ops::kpi
