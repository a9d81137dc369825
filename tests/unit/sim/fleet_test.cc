// The fleet simulator's physics: deterministic under a seed, each device on its own stream,
// pumps that wear out and fail unless maintained, HVAC units whose energy per degree rises
// with fouling, meters with working-day load shapes, sensor faults with their ground truth.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cmath>
#include <map>

#include "fieldline/sim/fleet.h"
#include "fieldline/sim/mqtt_fleet.h"

namespace fieldline::sim {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kStart = 1'790'000'000LL * 1'000'000'000;  // 2026-09-21

struct Run {
  std::vector<Reading> readings;
  std::vector<Event> events;
};

Run simulate(const Options& o, int64_t duration, const std::function<void(Fleet&, int64_t)>& each_day = nullptr) {
  auto fleet = Fleet::make(o, kStart);
  EXPECT_TRUE(fleet) << fleet.error().message();
  Run run;
  for (int64_t t = kStart + kDay; t <= kStart + duration; t += kDay) {
    (*fleet)->advance(t, [&](const Reading& r) { run.readings.push_back(r); }, [&](const Event& e) { run.events.push_back(e); });
    if (each_day) each_day(**fleet, t);
  }
  return run;
}

double value(const Reading& r, const char* name) {
  for (const auto& [n, v] : r.values) {
    if (std::string_view(n) == name) return v;
  }
  return NAN;
}

TEST(Fleet, TheSameSeedGivesTheSameFleetAndEachDeviceItsOwnStream) {
  Options o;
  o.devices = 6;
  o.profile = "mixed";
  o.rate_hz = 1.0 / 600;
  auto a = simulate(o, 10 * kDay), b = simulate(o, 10 * kDay);
  ASSERT_EQ(a.readings.size(), b.readings.size());
  for (size_t i = 0; i < a.readings.size(); ++i) {
    ASSERT_EQ(a.readings[i].ts_ns, b.readings[i].ts_ns);
    ASSERT_EQ(a.readings[i].values, b.readings[i].values);
  }
  ASSERT_EQ(a.events.size(), b.events.size());
  // A bigger fleet leaves the first device's readings as they were.
  o.devices = 12;
  auto c = simulate(o, 10 * kDay);
  std::vector<Reading> first_a, first_c;
  for (const auto& r : a.readings) if (r.device == 0) first_a.push_back(r);
  for (const auto& r : c.readings) if (r.device == 0) first_c.push_back(r);
  ASSERT_EQ(first_a.size(), first_c.size());
  for (size_t i = 0; i < first_a.size(); ++i) EXPECT_EQ(first_a[i].values, first_c[i].values);
  // Another seed, other readings.
  o.devices = 6;
  o.seed = 2;
  auto d = simulate(o, 10 * kDay);
  EXPECT_NE(a.readings[0].values, d.readings[0].values);
}

TEST(Fleet, MixedFleetsAreSevenPumpsTwoHvacUnitsAndAMeterInTen) {
  Options o;
  o.devices = 20;
  o.profile = "mixed";
  o.sites = 2;
  auto devices = fleet_of(o);
  ASSERT_TRUE(devices);
  std::map<Kind, int> kinds;
  for (const auto& d : *devices) ++kinds[d.kind];
  EXPECT_EQ(kinds[Kind::pump], 14);
  EXPECT_EQ(kinds[Kind::hvac], 4);
  EXPECT_EQ(kinds[Kind::energy_meter], 2);
  EXPECT_EQ((*devices)[0].id, "pump-0001");
  EXPECT_EQ((*devices)[0].site, "site-1");
  EXPECT_EQ((*devices)[1].site, "site-2");
  EXPECT_EQ((*devices)[9].id, "meter-0001");
  o.profile = "windmill";
  EXPECT_FALSE(fleet_of(o));
}

// Left alone, pumps wear out: vibration and bearing temperature climb until the bearing fails,
// the pump stops (running 0) for 12-36 h and comes back with a new bearing.
TEST(Fleet, PumpsWearOutFailAndComeBackRepaired) {
  Options o;
  o.devices = 20;
  o.rate_hz = 1.0 / 600;
  o.faults_per_day = 0;
  auto run = simulate(o, 120 * kDay);
  std::map<size_t, std::vector<const Event*>> failures;
  for (const auto& e : run.events) {
    if (e.kind == "failure") failures[e.device].push_back(&e);
  }
  EXPECT_EQ(failures.size(), 20u) << "every pump fails in 120 days without maintenance";
  double before = 0, after = 0;
  int compared = 0;
  for (const auto& [device, fails] : failures) {
    const Event& f = *fails.front();
    if (f.detail != "bearing") continue;
    // The last day before the failure against the first day after the repair.
    int64_t repaired = 0;
    for (const auto& e : run.events) {
      if (e.device == device && e.kind == "repaired" && e.ts_ns > f.ts_ns) {
        repaired = e.ts_ns;
        break;
      }
    }
    ASSERT_GT(repaired, 0);
    EXPECT_GE(repaired - f.ts_ns, 12 * kHour - 600'000'000'000LL);
    EXPECT_LE(repaired - f.ts_ns, 36 * kHour + 600'000'000'000LL);
    double b = 0, a = 0;
    int nb = 0, na = 0;
    for (const auto& r : run.readings) {
      if (r.device != device) continue;
      if (r.ts_ns > f.ts_ns - kDay && r.ts_ns < f.ts_ns) b += value(r, "vibration"), ++nb;
      if (r.ts_ns > repaired && r.ts_ns < repaired + kDay) a += value(r, "vibration"), ++na;
      if (r.ts_ns > f.ts_ns && r.ts_ns < repaired) {
        EXPECT_EQ(value(r, "running"), 0) << "down between failure and repair";
      }
    }
    if (nb && na) {
      before += b / nb;
      after += a / na;
      ++compared;
    }
  }
  ASSERT_GT(compared, 5);
  EXPECT_GT(before / compared, after / compared + 2) << "vibration before a bearing failure is well above a new bearing's";
}

// Maintenance renews a pump: no failure within the horizon right after it, 4 h down, and a
// pump maintained on its first day and every 10 days after does not fail.
TEST(Fleet, MaintenanceRenewsAPumpAndPreventsItsFailure) {
  Options o;
  o.devices = 10;
  o.rate_hz = 1.0 / 600;
  o.faults_per_day = 0;
  auto run = simulate(o, 90 * kDay, [](Fleet& fleet, int64_t t) {
    if ((t - kStart) / kDay % 10 != 1) return;  // day 1, 11, 21...: the fleet starts part-worn
    for (size_t i = 0; i < fleet.devices().size(); ++i) {
      fleet.maintain(i, [](const Event&) {});
      EXPECT_FALSE(fleet.fails_within(i, 3 * kDay));
      EXPECT_TRUE(fleet.down(i));
      EXPECT_FALSE(fleet.maintain(i, [](const Event&) {})) << "not while it is down";
    }
  });
  int failures = 0;
  for (const auto& e : run.events) failures += e.kind == "failure" && e.detail == "bearing";
  EXPECT_EQ(failures, 0) << "bearings renewed every 10 days do not fail (median life 30 days)";
}

// HVAC: fouling lowers the COP, so energy per degree above the setpoint rises until cleaning.
TEST(Fleet, HvacEnergyPerDegreeRisesWithFouling) {
  Options o;
  o.devices = 5;
  o.profile = "hvac";
  o.rate_hz = 1.0 / 600;
  o.faults_per_day = 0;
  auto run = simulate(o, 40 * kDay);
  auto per_degree = [&](int64_t from, int64_t to) {
    double power = 0, degrees = 0;
    for (const auto& r : run.readings) {
      if (r.ts_ns < from || r.ts_ns >= to || value(r, "running") != 1) continue;
      const double d = value(r, "outdoor_temp") - 16;
      if (d > 4) power += value(r, "power_kw"), degrees += d;
    }
    return power / degrees;
  };
  EXPECT_GT(per_degree(kStart + 30 * kDay, kStart + 40 * kDay), 1.05 * per_degree(kStart, kStart + 5 * kDay));
}

TEST(Fleet, MetersFollowAWorkingWeek) {
  Options o;
  o.devices = 3;
  o.profile = "energy-meter";
  o.rate_hz = 1.0 / 900;
  o.faults_per_day = 0;
  auto run = simulate(o, 14 * kDay);
  double weekday_noon = 0, sunday_noon = 0;
  int a = 0, b = 0;
  for (const auto& r : run.readings) {
    const int64_t weekday = (r.ts_ns / kDay + 3) % 7;  // 0 Monday: 1970-01-01 was a Thursday
    const int64_t hour = (r.ts_ns % kDay) / kHour;
    if (hour != 12) continue;
    if (weekday < 5) weekday_noon += value(r, "power_kw"), ++a;
    if (weekday == 6) sunday_noon += value(r, "power_kw"), ++b;
  }
  EXPECT_GT(weekday_noon / a, 2.5 * sunday_noon / b);
  // The energy counter only grows.
  double last = 0;
  for (const auto& r : run.readings) {
    if (r.device != 0) continue;
    EXPECT_GE(value(r, "energy_kwh"), last);
    last = value(r, "energy_kwh");
  }
}

// Sensor faults come with their ground truth: a dropout sends nothing, a skewed clock stamps
// readings minutes off, and every fault ends.
TEST(Fleet, SensorFaultsAreLabelledAndShowInTheReadings) {
  Options o;
  o.devices = 10;
  o.rate_hz = 1.0 / 300;
  o.faults_per_day = 0.5;
  auto run = simulate(o, 30 * kDay);
  std::map<std::string, int> kinds;
  for (const auto& e : run.events) {
    if (e.kind == "fault") ++kinds[e.detail.substr(0, e.detail.find(':'))];
  }
  for (const char* k : {"drift", "stuck", "spikes", "dropout", "clock_skew"}) EXPECT_GT(kinds[k], 0) << k;
  // Readings arrive every 300 s of true time; a dropout leaves a gap, a skew shifts stamps.
  bool gap = false, skewed = false;
  std::map<size_t, int64_t> previous;
  for (const auto& r : run.readings) {
    auto it = previous.find(r.device);
    if (it != previous.end()) {
      const int64_t step = r.ts_ns - it->second;
      gap = gap || step > 3600LL * 1'000'000'000;
      skewed = skewed || (step % 300'000'000'000LL) != 0;
    }
    previous[r.device] = r.ts_ns;
  }
  EXPECT_TRUE(gap);
  EXPECT_TRUE(skewed);
}

TEST(Telemetry, ReadingsAreThePlatformsJsonAndBadOnesAreBadOnPurpose) {
  Reading r{0, 1'790'000'000'123'000'000, {{"vibration", 2.5}, {"running", 1}}};
  auto good = boost::json::parse(telemetry_json(r));
  EXPECT_EQ(good.at("ts").as_int64(), 1'790'000'000'123);
  EXPECT_EQ(good.at("values").at("vibration").to_number<double>(), 2.5);
  boost::system::error_code ec;
  boost::json::parse(telemetry_json(r, 0.1), ec);
  EXPECT_TRUE(ec) << "cut short";
  EXPECT_EQ(boost::json::parse(telemetry_json(r, 0.5)).at("values").at("vibration").as_string(), "ERR");
  EXPECT_EQ(boost::json::parse(telemetry_json(r, 0.9)).at("values").at("vibration").to_number<double>(), -1e9);
}

}  // namespace
}  // namespace fieldline::sim
