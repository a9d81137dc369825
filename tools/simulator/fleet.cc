#include "fieldline/sim/fleet.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <queue>
#include <random>

#include "fieldline/core/errc.h"

namespace fieldline::sim {

namespace {

constexpr int64_t kSecond = 1'000'000'000LL;
constexpr int64_t kHour = 3600 * kSecond;
constexpr double kDay = 86400.0 * 1e9;  // ns
constexpr double kPi = 3.14159265358979323846;

constexpr const char* kPumpMetrics[] = {"vibration", "temperature", "flow", "pressure", "current"};
constexpr const char* kHvacMetrics[] = {"outdoor_temp", "supply_temp", "return_temp", "power_kw", "energy_kwh", "cooling_kw"};
constexpr const char* kMeterMetrics[] = {"power_kw", "energy_kwh", "voltage", "power_factor"};

// The fraction of a day at `t` (0 at midnight UTC) and the weekday (0 Monday).
double day_fraction(int64_t t) { return std::fmod(static_cast<double>(t) / kDay, 1.0); }
int weekday(int64_t t) { return static_cast<int>((t / static_cast<int64_t>(kDay) + 3) % 7); }  // 1970-01-01 was a Thursday

}  // namespace

const char* profile_of(Kind kind) {
  switch (kind) {
    case Kind::pump: return "pump";
    case Kind::hvac: return "hvac";
    case Kind::energy_meter: return "energy-meter";
  }
  return "pump";
}

Result<std::vector<DeviceSpec>> fleet_of(const Options& o) {
  if (o.devices == 0 || o.devices > 1'000'000) return core::make_error(core::Errc::invalid_argument, "--devices: 1 to 1,000,000");
  if (o.sites == 0) return core::make_error(core::Errc::invalid_argument, "--sites: at least 1");
  if (o.profile != "pump" && o.profile != "hvac" && o.profile != "energy-meter" && o.profile != "mixed") {
    return core::make_error(core::Errc::invalid_argument, "--profile: pump, hvac, energy-meter or mixed, not '" + o.profile + "'");
  }
  std::vector<DeviceSpec> out;
  uint32_t counts[3] = {0, 0, 0};
  for (uint32_t i = 0; i < o.devices; ++i) {
    Kind kind = o.profile == "hvac" ? Kind::hvac : o.profile == "energy-meter" ? Kind::energy_meter : Kind::pump;
    if (o.profile == "mixed") {
      // Every tenth device in a fixed pattern: 7 pumps, 2 HVAC units, 1 meter.
      const uint32_t r = i % 10;
      kind = r < 7 ? Kind::pump : r < 9 ? Kind::hvac : Kind::energy_meter;
    }
    const uint32_t n = ++counts[static_cast<size_t>(kind)];
    char id[48];
    std::snprintf(id, sizeof id, "%s-%04u", kind == Kind::energy_meter ? "meter" : profile_of(kind), n);
    out.push_back({id, kind, "site-" + std::to_string(i % o.sites + 1)});
  }
  return out;
}

struct Fleet::Model {
  enum class Fault : uint8_t { none, drift, stuck, spikes, dropout, skew };
  Kind kind = Kind::pump;
  size_t index = 0;
  std::mt19937_64 rng;
  std::normal_distribution<double> gauss{0, 1};
  std::uniform_real_distribution<double> uniform{0, 1};
  int64_t next_ns = 0;  // the next reading, true time
  const Options* options = nullptr;

  int64_t down_until = 0;  // 0: running
  bool planned = false;
  // The events the next reading reports (the platform's KPIs read them as metrics).
  bool report_failure = false, report_maintenance = false;
  // Pump.
  double wear = 0, wear_rate = 0;  // per day
  double leak = -1, leak_rate = 0;  // -1: no leak
  int64_t cavitation_until = 0, next_cavitation = 0;
  double load_phase = 0;
  // HVAC.
  double fouling = 0, fouling_rate = 0, energy_kwh = 0, size_kw = 0;
  // Energy meter.
  double base_kw = 0;
  // A sensor fault.
  Fault fault = Fault::none;
  size_t fault_metric = 0;
  int64_t fault_since = 0, fault_until = 0, next_fault = 0;
  double fault_amount = 0, stuck_value = 0;
  bool stuck_set = false;

  double exponential_ns(double per_day) { return -std::log(1 - uniform(rng)) / per_day * kDay; }

  void renew() {
    wear = 0;
    // A bearing's life: lognormal around the median; wear grows as r (1 + 3 w) per day, so
    // it reaches 1 after ln(4) / (3 r) days.
    const double life = options->pump_life_days * std::exp(0.35 * gauss(rng));
    wear_rate = std::log(4.0) / (3 * life);
    leak = -1;
    fouling = 0;
    fouling_rate = 1.0 / (60 + 60 * uniform(rng));
  }

  void start(int64_t t, int64_t period) {
    next_ns = t + static_cast<int64_t>(uniform(rng) * static_cast<double>(period));
    load_phase = 0.1 * gauss(rng);
    size_kw = 20 + 40 * uniform(rng);
    base_kw = 20 + 180 * uniform(rng);
    renew();
    if (kind == Kind::pump) {
      wear = 0.6 * uniform(rng);  // a fleet is not new: bearings part way through their life
      next_cavitation = t + static_cast<int64_t>(exponential_ns(1.0 / 20));
    }
    if (kind == Kind::hvac) fouling = 0.8 * uniform(rng);
    next_fault = options->faults_per_day > 0 ? t + static_cast<int64_t>(exponential_ns(options->faults_per_day)) : INT64_MAX;
  }

  // Days until the device fails if nothing is done (infinity: it does not wear out).
  double days_to_failure() const {
    if (kind == Kind::pump) {
      double days = std::log(4.0 / (1 + 3 * wear)) / (3 * wear_rate);
      if (leak >= 0) days = std::min(days, (1 - leak) / leak_rate);
      return days;
    }
    if (kind == Kind::hvac) return (1.5 - fouling) / fouling_rate;
    return INFINITY;
  }

  const char* const* metrics(size_t& n) const {
    switch (kind) {
      case Kind::pump: n = std::size(kPumpMetrics); return kPumpMetrics;
      case Kind::hvac: n = std::size(kHvacMetrics); return kHvacMetrics;
      case Kind::energy_meter: n = std::size(kMeterMetrics); return kMeterMetrics;
    }
    n = 0;
    return nullptr;
  }

  // One reading at true time t, after `dt` of simulated time; false: nothing is sent.
  bool step(int64_t t, double dt_ns, Reading& r, const OnEvent& on_event) {
    const double days = dt_ns / kDay;
    auto event = [&](const char* kind, std::string detail) { on_event({index, t, kind, std::move(detail)}); };
    if (down_until && t >= down_until) {
      event(planned ? "maintained" : "repaired", "");
      down_until = 0;
    }
    r.values.clear();
    r.device = index;
    r.ts_ns = t;
    if (!down_until) {
      // Wear.
      if (kind == Kind::pump) {
        wear += wear_rate * (1 + 3 * wear) * days;
        if (leak < 0 && uniform(rng) < days / 120) {
          leak = 0;
          leak_rate = 1.0 / (5 + 10 * uniform(rng));
        }
        if (leak >= 0) leak += leak_rate * days;
        if (t >= next_cavitation && !cavitation_until) {
          cavitation_until = t + kHour + static_cast<int64_t>(5 * uniform(rng) * kHour);
          event("cavitation", "");
        } else if (cavitation_until && t >= cavitation_until) {
          cavitation_until = 0;
          next_cavitation = t + static_cast<int64_t>(exponential_ns(1.0 / 20));
          event("cavitation_end", "");
        }
        const bool sudden = uniform(rng) < options->sudden_failures_per_day * days;
        const char* failed = wear >= 1 ? "bearing" : leak >= 1 ? "seal" : sudden ? "motor" : nullptr;
        if (failed) {
          event("failure", failed);
          report_failure = true;
          down_until = t + 12 * kHour + static_cast<int64_t>(24 * uniform(rng) * kHour);
          planned = false;
          cavitation_until = 0;
          renew();  // repaired with new parts when it comes back
        }
      } else if (kind == Kind::hvac) {
        fouling += fouling_rate * days;
        if (fouling >= 1.5) {
          event("failure", "compressor");
          report_failure = true;
          down_until = t + 8 * kHour + static_cast<int64_t>(16 * uniform(rng) * kHour);
          planned = false;
          renew();
        }
      }
    }
    if (down_until) {
      r.values.push_back({"running", 0});
      if (report_failure) r.values.push_back({"failure", 1});
      if (report_maintenance) r.values.push_back({"maintenance", 1});
      report_failure = report_maintenance = false;
      if (kind == Kind::hvac) r.values.push_back({"energy_kwh", energy_kwh});
      return true;
    }
    const double hour = day_fraction(t) * 24;
    switch (kind) {
      case Kind::pump: {
        const double load = std::clamp(0.75 + 0.2 * std::sin(2 * kPi * (hour / 24 - 0.3) + load_phase) + 0.03 * gauss(rng), 0.3, 1.0);
        const double cavitating = cavitation_until ? 1 : 0;
        const double seal = std::max(0.0, leak);
        r.values = {{"vibration", 1.5 + 0.5 * load + 7 * wear * wear * wear + cavitating * (2.5 + 0.8 * std::fabs(gauss(rng))) + 0.12 * gauss(rng)},
                    {"temperature", 42 + 10 * load + 18 * wear * wear + 0.4 * gauss(rng)},
                    {"flow", 100 * load * (1 - 0.25 * seal) * (1 - 0.2 * cavitating) + gauss(rng)},
                    {"pressure", 4 + 2 * load - 1.5 * seal - 0.5 * cavitating + 0.05 * gauss(rng)},
                    {"current", 20 + 15 * load + 6 * wear + 0.3 * gauss(rng)},
                    {"running", 1}};
        break;
      }
      case Kind::hvac: {
        const double outdoor = 24 + 7 * std::sin(2 * kPi * (hour - 9) / 24) + 0.3 * gauss(rng);
        const double cooling = std::max(0.0, outdoor - 16) * size_kw / 15 + 2;  // kW of heat removed
        const double cop = 3.5 / (1 + 0.8 * fouling);
        const double power = cooling / cop + 0.8 + 0.05 * gauss(rng);
        energy_kwh += power * dt_ns / (3600.0 * 1e9);
        r.values = {{"outdoor_temp", outdoor},
                    {"supply_temp", 13 + 2 * fouling + 0.2 * gauss(rng)},
                    {"return_temp", 22 + 0.3 * gauss(rng)},
                    {"power_kw", power},
                    {"energy_kwh", energy_kwh},
                    {"cooling_kw", cooling},
                    {"running", 1}};
        break;
      }
      case Kind::energy_meter: {
        const bool workday = weekday(t) < 5;
        const double office = workday && hour >= 8 && hour < 18 ? 1.0 : workday && (hour >= 6 && hour < 20) ? 0.6 : 0.3;
        const double power = base_kw * office * (1 + 0.05 * gauss(rng));
        energy_kwh += power * dt_ns / (3600.0 * 1e9);
        r.values = {{"power_kw", power},
                    {"energy_kwh", energy_kwh},
                    {"voltage", 230 + 1.5 * gauss(rng)},
                    {"power_factor", std::clamp(0.92 + 0.02 * gauss(rng), 0.0, 1.0)}};
        break;
      }
    }
    // A stop shorter than the reading period still reports its event.
    if (report_maintenance) r.values.push_back({"maintenance", 1});
    // An event waits in the device until a reading carries it (a dropout is the link's fault).
    const bool sent = apply_fault(t, r, event);
    if (sent) report_failure = report_maintenance = false;
    return sent;
  }

  template <typename Event>
  bool apply_fault(int64_t t, Reading& r, const Event& event) {
    size_t n = 0;
    const char* const* names = metrics(n);
    if (fault == Fault::none && t >= next_fault) {
      fault = static_cast<Fault>(1 + static_cast<int>(uniform(rng) * 5) % 5);
      fault_metric = static_cast<size_t>(uniform(rng) * static_cast<double>(n)) % n;
      fault_since = t;
      stuck_set = false;
      const double hours = fault == Fault::drift ? 48 + 72 * uniform(rng) : fault == Fault::dropout ? 1 + 5 * uniform(rng) : 2 + 22 * uniform(rng);
      fault_until = t + static_cast<int64_t>(hours * static_cast<double>(kHour));
      fault_amount = fault == Fault::skew ? (2 + 8 * uniform(rng)) * 60 : 0.05 + 0.1 * uniform(rng);
      const char* what[] = {"", "drift:", "stuck:", "spikes:", "dropout", "clock_skew"};
      event("fault", std::string(what[static_cast<int>(fault)]) +
                         (fault == Fault::dropout || fault == Fault::skew ? "" : names[fault_metric]));
    } else if (fault != Fault::none && t >= fault_until) {
      fault = Fault::none;
      next_fault = t + static_cast<int64_t>(exponential_ns(options->faults_per_day));
      event("fault_end", "");
    }
    if (fault == Fault::none) return true;
    auto* value = [&]() -> double* {
      for (auto& [name, v] : r.values) {
        if (name == names[fault_metric]) return &v;
      }
      return nullptr;
    }();
    switch (fault) {
      case Fault::drift:
        // The reading creeps away from the truth by `amount` of itself per day.
        if (value) *value *= 1 + fault_amount * static_cast<double>(t - fault_since) / kDay;
        break;
      case Fault::stuck:
        if (value) {
          if (!stuck_set) stuck_value = *value;
          stuck_set = true;
          *value = stuck_value;
        }
        break;
      case Fault::spikes:
        if (value && uniform(rng) < 0.02) *value *= 3 + 3 * uniform(rng);
        break;
      case Fault::dropout: return false;
      case Fault::skew: r.ts_ns = t + static_cast<int64_t>(fault_amount * 1e9); break;
      case Fault::none: break;
    }
    return true;
  }
};

void Fleet::set_rate(double rate_hz) {
  if (!(rate_hz > 0 && rate_hz <= 1000)) return;
  period_ns_ = std::max<int64_t>(1, static_cast<int64_t>(1e9 / rate_hz));
  // Readings already scheduled further out come in sooner, spread over one new period.
  for (size_t i = 0; i < models_.size(); ++i) {
    const int64_t soon = now_ + static_cast<int64_t>(i) * period_ns_ / static_cast<int64_t>(models_.size());
    models_[i]->next_ns = std::min(models_[i]->next_ns, soon);
  }
}

Result<std::unique_ptr<Fleet>> Fleet::make(const Options& options, int64_t start_ns) {
  if (!(options.rate_hz > 0) || options.rate_hz > 1000) return core::make_error(core::Errc::invalid_argument, "--rate: above 0, at most 1000 Hz");
  if (!(options.pump_life_days > 0)) return core::make_error(core::Errc::invalid_argument, "pump life: above 0 days");
  if (!(options.sudden_failures_per_day >= 0 && options.sudden_failures_per_day < 1)) {
    return core::make_error(core::Errc::invalid_argument, "sudden failures: at least 0 and below 1 per day");
  }
  FL_TRY(devices, fleet_of(options));
  std::unique_ptr<Fleet> fleet(new Fleet());
  fleet->devices_ = std::move(devices);
  fleet->now_ = start_ns;
  fleet->period_ns_ = std::max<int64_t>(1, static_cast<int64_t>(1e9 / options.rate_hz));
  for (size_t i = 0; i < fleet->devices_.size(); ++i) {
    auto m = std::make_unique<Model>();
    m->kind = fleet->devices_[i].kind;
    m->index = i;
    // Each device its own stream: its readings do not depend on the fleet's size or order.
    m->rng.seed(options.seed * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL + 1);
    fleet->models_.push_back(std::move(m));
  }
  fleet->options_ = options;
  for (auto& m : fleet->models_) {
    m->options = &fleet->options_;
    m->start(start_ns, fleet->period_ns_);
  }
  return fleet;
}

Fleet::~Fleet() = default;

void Fleet::advance(int64_t until_ns, const OnReading& on_reading, const OnEvent& on_event) {
  using Next = std::pair<int64_t, size_t>;
  std::priority_queue<Next, std::vector<Next>, std::greater<>> queue;
  for (size_t i = 0; i < models_.size(); ++i) {
    if (models_[i]->next_ns < until_ns) queue.push({models_[i]->next_ns, i});
  }
  Reading r;
  while (!queue.empty()) {
    const auto [t, i] = queue.top();
    queue.pop();
    auto& m = *models_[i];
    now_ = std::max(now_, t);
    if (m.step(t, static_cast<double>(period_ns_), r, on_event)) on_reading(r);
    m.next_ns = t + period_ns_;
    if (m.next_ns < until_ns) queue.push({m.next_ns, i});
  }
  now_ = std::max(now_, until_ns);
}

bool Fleet::maintain(size_t device, const OnEvent& on_event) {
  auto& m = *models_[device];
  if (m.down_until || m.kind == Kind::energy_meter) return false;
  on_event({device, now_, "maintenance", ""});
  m.down_until = now_ + (m.kind == Kind::pump ? 4 : 2) * kHour;
  m.planned = true;
  m.report_maintenance = true;
  m.cavitation_until = 0;
  m.renew();
  return true;
}

bool Fleet::fails_within(size_t device, int64_t horizon_ns) const {
  const auto& m = *models_[device];
  return !m.down_until && m.days_to_failure() * kDay < static_cast<double>(horizon_ns);
}

bool Fleet::down(size_t device) const { return models_[device]->down_until != 0; }

}  // namespace fieldline::sim
