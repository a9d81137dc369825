// Outcome KPIs from what devices report: definitions are checked with line and key, downtime
// is split by what opened it, and on a simulated fleet the KPIs agree with the ground truth.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "fieldline/ops/kpi.h"
#include "fieldline/sim/fleet.h"

namespace fieldline::ops::kpi {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kStart = 1'790'000'000LL * 1'000'000'000;

constexpr const char* kDefinition = R"(kpi = "pump_outcomes"
profile = "pump"
cost_failure = 12000
cost_maintenance = 1500
cost_downtime_hour = 800
energy = "energy_kwh"
output = "flow"
horizon = "7d"
)";

TEST(KpiDefinition, ParsesAndSaysWhatIsWrongWhere) {
  auto d = parse_definition(kDefinition);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->name, "pump_outcomes");
  EXPECT_EQ(d->running, "running");
  EXPECT_EQ(d->cost_failure, 12000);
  EXPECT_EQ(d->horizon_ns, 7 * kDay);
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"kpi = \"k\"\nprofile = \"pump\"\ncost_failure = -1\n", "line 3: cost_failure: expected a cost of 0 or more"},
      {"kpi = \"k\"\nprofile = \"pump\"\nhorizon = \"soon\"\n", "line 3: horizon: expected a duration"},
      {"kpi = \"k\"\nprofile = \"pump\"\ncolour = \"red\"\n", "line 3: colour: unknown key"},
      {"kpi = \"k\"\nprofile = \"pump\"\nenergy = \"e\"\n", "energy and output: give both"},
      {"profile = \"pump\"\n", "kpi: the definition needs a name"},
      {"kpi = \"k\"\nprofile = [", "line 2"},
  };
  for (const auto& c : cases) {
    auto r = parse_definition(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
  }
}

// One pump, hourly readings over 10 days: a failure on day 2 (down 6 h), maintenance on day 5
// (down 2 h), a stop with no event on day 8 (down 1 h: unplanned), and two alarms, one 3 days
// before the failure and one after it with nothing following.
TEST(Kpi, DowntimeIsSplitByWhatOpenedItAndCostsFollow) {
  auto d = parse_definition(kDefinition);
  ASSERT_TRUE(d);
  DeviceSeries s;
  s.device = "pump-1";
  for (int h = 0; h < 240; ++h) {
    const int64_t t = kStart + h * kHour;
    const bool down = (h >= 48 && h < 54) || (h >= 120 && h < 122) || h == 192;
    s.running.push_back({t, down ? 0.0 : 1.0});
    s.output.push_back({t, down ? 0.0 : 100.0});
    s.energy.push_back({t, 10.0 * h});
  }
  s.failure.push_back({kStart + 48 * kHour, 1});
  s.maintenance.push_back({kStart + 120 * kHour, 1});
  s.alarms = {kStart + 0 * kHour, kStart + 100 * kHour};
  auto v = compute(*d, {s}, kStart, kStart + 240 * kHour);
  EXPECT_EQ(v.devices, 1u);
  EXPECT_DOUBLE_EQ(v.observed_hours, 240);
  EXPECT_DOUBLE_EQ(v.unplanned_downtime_hours, 7);
  EXPECT_DOUBLE_EQ(v.planned_downtime_hours, 2);
  EXPECT_DOUBLE_EQ(v.uptime_hours, 231);
  EXPECT_EQ(v.failures, 1u);
  EXPECT_EQ(v.maintenance, 1u);
  EXPECT_DOUBLE_EQ(v.mtbf_hours, 231);
  EXPECT_DOUBLE_EQ(v.mttr_hours, 7);
  EXPECT_DOUBLE_EQ(v.availability, 231.0 / 240);
  EXPECT_DOUBLE_EQ(v.maintenance_cost, 12000 + 1500 + 7 * 800);
  EXPECT_DOUBLE_EQ(v.energy, 2390);
  EXPECT_DOUBLE_EQ(v.output, 100.0 * 230);  // the last reading's hour is past the range end
  EXPECT_EQ(v.alarms, 2u);
  EXPECT_EQ(v.alarms_before_failure, 1u);
  EXPECT_DOUBLE_EQ(v.alert_precision, 0.5);
  // A sub-range clips the downtime and counts only its own events.
  auto first_days = compute(*d, {s}, kStart, kStart + 50 * kHour);
  EXPECT_DOUBLE_EQ(first_days.unplanned_downtime_hours, 2);
  EXPECT_EQ(first_days.failures, 1u);
  EXPECT_EQ(first_days.maintenance, 0u);
  EXPECT_TRUE(std::isnan(compute(*d, {}, kStart, kStart + kHour).availability));
}

// The simulator's pumps, left to fail: the KPIs read from their readings count the failures
// the ground truth lists, and their unplanned downtime is the ground truth's to a reading.
TEST(Kpi, OnASimulatedFleetTheKpisMatchTheGroundTruth) {
  auto d = parse_definition(kDefinition);
  ASSERT_TRUE(d);
  sim::Options o;
  o.devices = 10;
  o.rate_hz = 1.0 / 600;
  o.faults_per_day = 0;
  auto fleet = sim::Fleet::make(o, kStart);
  ASSERT_TRUE(fleet);
  std::vector<DeviceSeries> series(10);
  std::map<size_t, int64_t> failed_at;
  double true_downtime_h = 0;
  uint64_t true_failures = 0;
  const int64_t end = kStart + 60 * kDay;
  (*fleet)->advance(
      end,
      [&](const sim::Reading& r) {
        auto& s = series[r.device];
        for (const auto& [name, value] : r.values) {
          const std::string_view n(name);
          if (n == "running") s.running.push_back({r.ts_ns, value});
          if (n == "failure") s.failure.push_back({r.ts_ns, value});
          if (n == "maintenance") s.maintenance.push_back({r.ts_ns, value});
        }
      },
      [&](const sim::Event& e) {
        if (e.kind == "failure") {
          ++true_failures;
          failed_at[e.device] = e.ts_ns;
        } else if (e.kind == "repaired") {
          true_downtime_h += static_cast<double>(e.ts_ns - failed_at[e.device]) / kHour;
          failed_at.erase(e.device);
        }
      });
  for (const auto& [device, at] : failed_at) true_downtime_h += static_cast<double>(end - at) / kHour;
  auto v = compute(*d, series, kStart, end);
  EXPECT_EQ(v.failures, true_failures);
  ASSERT_GT(true_failures, 5u);
  // Readings every 10 min: each stop is seen to within a reading at either end.
  EXPECT_NEAR(v.unplanned_downtime_hours, true_downtime_h, static_cast<double>(true_failures) * 2 / 6.0);
  EXPECT_EQ(v.planned_downtime_hours, 0);
}

}  // namespace
}  // namespace fieldline::ops::kpi
