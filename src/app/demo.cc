// fieldline demo: a fleet through the whole platform, and the business number it moves.
//
// A server of this binary starts on a data directory of its own; a simulated fleet (pumps on
// two sites, HVAC units, energy meters) registers and sends over MQTT, each device with its
// own token, under a contract, a feature view and KPI definitions. Simulated time runs fast.
// After the first half the platform trains a failure model (will this pump fail within 7
// days?) through its registry from the stored data, with labels from the failures the pumps
// reported, and puts it in production; in the second half the shards' serving raises
// maintenance alarms and the demo acts on each one, sending the pump a maintenance command
// through the platform's REST API. The outcome of the second half is set beside two baselines
// simulated on the same fleet and seed: run-to-failure and fixed-interval preventive
// maintenance. Every figure comes from the simulated events (the ground truth), and the
// platform's own KPIs are shown beside them.
#include "demo.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "embedded.h"
#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "fieldline/ops/kpi.h"
#include "fieldline/sim/fleet.h"
#include "fieldline/sim/mqtt_fleet.h"
#include "simulate.h"

namespace fieldline::app {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;
constexpr int64_t kDay = 24 * kHour;
constexpr const char* kModel = "pump_failure_7d";

constexpr const char* kPumpContract = R"toml(profile = "pump"
description = "Centrifugal pump (simulated)"
required_tags = ["site"]
[metrics.vibration]
type = "float"
unit = "mm/s"
min = 0
max = 50
[metrics.temperature]
type = "float"
unit = "Cel"
min = -20
max = 150
[metrics.flow]
type = "float"
unit = "m3/h"
min = -10
max = 500
[metrics.pressure]
type = "float"
unit = "bar"
min = -1
max = 25
[metrics.current]
type = "float"
unit = "A"
min = 0
max = 200
[metrics.running]
type = "float"
[metrics.failure]
type = "float"
[metrics.maintenance]
type = "float"
)toml";

constexpr const char* kHvacContract = R"toml(profile = "hvac"
description = "Rooftop HVAC unit (simulated)"
required_tags = ["site"]
[metrics.outdoor_temp]
type = "float"
unit = "Cel"
min = -50
max = 60
[metrics.supply_temp]
type = "float"
unit = "Cel"
min = -10
max = 40
[metrics.return_temp]
type = "float"
unit = "Cel"
min = -10
max = 45
[metrics.power_kw]
type = "float"
unit = "kW"
min = 0
max = 500
[metrics.energy_kwh]
type = "float"
unit = "kW.h"
min = 0
[metrics.cooling_kw]
type = "float"
unit = "kW"
min = 0
max = 2000
[metrics.running]
type = "float"
[metrics.failure]
type = "float"
[metrics.maintenance]
type = "float"
)toml";

constexpr const char* kMeterContract = R"toml(profile = "energy-meter"
description = "Building energy meter (simulated)"
required_tags = ["site"]
[metrics.power_kw]
type = "float"
unit = "kW"
min = 0
max = 5000
[metrics.energy_kwh]
type = "float"
unit = "kW.h"
min = 0
[metrics.voltage]
type = "float"
unit = "V"
min = 0
max = 500
[metrics.power_factor]
type = "float"
min = 0
max = 1
)toml";

// Anomaly detection for pumps: the event metrics are not signals, the usual deviations alarm
// as minor with a runbook, and a rule says what an overheating bearing looks like.
constexpr const char* kPumpDetectors = R"toml(profile = "pump"
[defaults]
detectors = ["robust_z", "robust_z_change", "cusum", "seasonal_daily", "silence"]
[metrics.running]
enabled = false
[metrics.failure]
enabled = false
[metrics.maintenance]
enabled = false
[alarm]
severity = "minor"
runbook = "Compare the pump's vibration, temperature and current trends; plan an inspection if they rise together"
[[rules]]
name = "overheat"
when = "temperature > 66 for 1h"
clear = "temperature < 62"
severity = "major"
runbook = "Bearing running hot: check lubrication and alignment, plan the bearing change"
)toml";

constexpr const char* kPumpView = R"toml(view = "pump_health"
profile = "pump"
[[metrics]]
metric = "vibration"
windows = ["6h", "1d", "3d"]
aggregates = ["mean", "max", "slope"]
last = true
[[metrics]]
metric = "temperature"
windows = ["6h", "1d", "3d"]
aggregates = ["mean", "slope"]
[[metrics]]
metric = "current"
windows = ["1d", "3d"]
aggregates = ["mean", "slope"]
[[metrics]]
metric = "flow"
windows = ["1d"]
aggregates = ["mean"]
[[metrics]]
metric = "pressure"
windows = ["1d"]
aggregates = ["mean"]
[since]
events = ["failure", "maintenance"]
)toml";

constexpr const char* kPumpKpi = R"toml(kpi = "pump_outcomes"
profile = "pump"
cost_failure = 12000
cost_maintenance = 1500
cost_downtime_hour = 800
alarm_type = "maintenance"
horizon = "7d"
)toml";

// HVAC units: what their electricity buys (fouling makes a kWh of cooling dearer).
constexpr const char* kHvacKpi = R"toml(kpi = "hvac_outcomes"
profile = "hvac"
cost_failure = 6000
cost_maintenance = 900
cost_downtime_hour = 300
energy = "energy_kwh"
output = "cooling_kw"
)toml";

// A policy's outcome over the evaluation window, from the simulated events of the pumps.
struct Outcome {
  uint64_t failures = 0, maintenance = 0;
  double unplanned_downtime_hours = 0, maintenance_cost = 0;
  uint64_t actions = 0, actions_before_failure = 0;  // maintenance orders, and those whose pump was going to fail within 7 days
  json::object to_json() const {
    json::object o{{"failures", failures}, {"maintenance_actions", maintenance}, {"unplanned_downtime_hours", unplanned_downtime_hours},
                   {"maintenance_cost", maintenance_cost}};
    if (actions) o["alarm_precision"] = static_cast<double>(actions_before_failure) / static_cast<double>(actions);
    return o;
  }
};

// Accounts the pumps' events in [from, to): failures, maintenance, downtime from a failure to
// its repair (clipped to the window), costed with the pump KPI definition's tariff (the one the
// platform costs them with too).
class Ledger {
 public:
  Ledger(const std::vector<sim::DeviceSpec>& devices, int64_t from, int64_t to, const ops::kpi::Definition& tariff)
      : devices_(devices), from_(from), to_(to), tariff_(tariff) {}
  void operator()(const sim::Event& e) {
    if (devices_[e.device].kind != sim::Kind::pump) return;
    if (e.kind == "failure") {
      down_[e.device] = e.ts_ns;
      if (e.ts_ns >= from_ && e.ts_ns < to_) ++outcome_.failures;
    } else if (e.kind == "repaired") {
      auto it = down_.find(e.device);
      if (it != down_.end()) {
        add_downtime(it->second, e.ts_ns);
        down_.erase(it);
      }
    } else if (e.kind == "maintenance" && e.ts_ns >= from_ && e.ts_ns < to_) {
      ++outcome_.maintenance;
    }
  }
  Outcome finish() {
    for (const auto& [device, since] : down_) add_downtime(since, to_);
    down_.clear();
    outcome_.maintenance_cost = static_cast<double>(outcome_.failures) * tariff_.cost_failure +
                                static_cast<double>(outcome_.maintenance) * tariff_.cost_maintenance +
                                outcome_.unplanned_downtime_hours * tariff_.cost_downtime_hour;
    return outcome_;
  }
  Outcome& outcome() { return outcome_; }

 private:
  void add_downtime(int64_t a, int64_t b) {
    a = std::max(a, from_);
    b = std::min(b, to_);
    if (b > a) outcome_.unplanned_downtime_hours += static_cast<double>(b - a) / static_cast<double>(kHour);
  }
  const std::vector<sim::DeviceSpec>& devices_;
  int64_t from_, to_;
  const ops::kpi::Definition& tariff_;
  std::map<size_t, int64_t> down_;
  Outcome outcome_;
};

// A baseline on the same fleet and seed, in memory: nothing done before `split`; from there,
// every pump maintained every `period` (0: never), staggered over the fleet.
Outcome baseline(const sim::Options& o, int64_t start, int64_t split, int64_t end, int64_t period, const ops::kpi::Definition& tariff) {
  auto fleet = sim::Fleet::make(o, start);
  Ledger ledger((*fleet)->devices(), split, end, tariff);
  auto on_event = [&ledger](const sim::Event& e) { ledger(e); };
  auto ignore = [](const sim::Reading&) {};
  const auto& devices = (*fleet)->devices();
  std::vector<int64_t> due(devices.size(), INT64_MAX);
  for (size_t i = 0; i < devices.size(); ++i) {
    if (period > 0 && devices[i].kind == sim::Kind::pump) due[i] = split + static_cast<int64_t>(i % 30) * period / 30;
  }
  for (int64_t t = start; t < end;) {
    t = std::min(end, t + kHour);
    (*fleet)->advance(t, ignore, on_event);
    for (size_t i = 0; i < devices.size(); ++i) {
      if (t >= due[i]) {
        (*fleet)->maintain(i, on_event);
        due[i] += period;
      }
    }
  }
  return ledger.finish();
}

// The sum of a Prometheus counter's or gauge's samples whose labels contain `filter`.
double metric_sum(const std::string& text, const std::string& name, const std::string& filter = {}) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(name) || line.size() <= name.size() || (line[name.size()] != ' ' && line[name.size()] != '{')) continue;
    if (!filter.empty() && line.find(filter) == std::string::npos) continue;
    sum += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  }
  return sum;
}

std::string percent(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f%%", x * 100);
  return b;
}

}  // namespace

int demo(const DemoOptions& opt) {
  const bool json_out = opt.format == "json";
  const bool tty = isatty(STDERR_FILENO) && !json_out;
  auto say = [&](const std::string& line) {
    if (!json_out) std::fprintf(stderr, "%s\n", line.c_str());
  };
  if (opt.pumps == 0 || opt.days < 4 || !(opt.minutes > 0)) {
    std::fprintf(stderr, "error: --pumps at least 1, --days at least 4, --minutes above 0\n");
    return 2;
  }
  // The demo's tariff and alarm horizon are the pump KPI definition's, read from the document
  // the platform is given.
  const auto pump_kpi = ops::kpi::parse_definition(kPumpKpi);
  if (!pump_kpi) {
    std::fprintf(stderr, "error: the demo's pump KPI definition: %s\n", pump_kpi.error().message().c_str());
    return 1;
  }
  sim::Options fleet_options;
  fleet_options.profile = "mixed";
  fleet_options.devices = opt.pumps / 7 * 10 + opt.pumps % 7;  // 7 pumps in every 10 devices, exactly opt.pumps of them
  fleet_options.seed = opt.seed;
  fleet_options.rate_hz = 1.0 / 600;                 // a reading every 10 simulated minutes
  fleet_options.sites = 2;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t end = now / kHour * kHour;
  const int64_t start = end - static_cast<int64_t>(opt.days) * kDay;
  const int64_t split = start + static_cast<int64_t>(opt.days / 2) * kDay;

  // The platform, on a data directory of its own.
  EmbeddedServer::Options server_options;
  server_options.settings = {"tsdb.retention=400d", "ml.serving_interval=6h", std::string("ml.alarm_policies=") + kModel + ">0.5",
                             "ml.decision_sample=20", "analytics.max_new_alarms_per_minute=1000000", "analytics.notify_per_second=100000"};
  if (opt.serve) {
    // A fresh demo each time: the folder is the demo's own (marked), never anything else.
    if (fs::exists(opt.data_dir) && !fs::exists(fs::path(opt.data_dir) / ".fieldline-demo")) {
      std::fprintf(stderr, "error: %s exists and is not a demo's folder; give --data-dir another\n", opt.data_dir.c_str());
      return 2;
    }
    std::error_code ec;
    fs::remove_all(opt.data_dir, ec);
    fs::create_directories(opt.data_dir, ec);
    std::ofstream(fs::path(opt.data_dir) / ".fieldline-demo") << "made by fieldline demo; removed by the next one\n";
    server_options.data_dir = opt.data_dir;
    server_options.http_listen = "127.0.0.1:8080";
    server_options.mqtt_listen = "127.0.0.1:1883";
  }
  auto server = EmbeddedServer::start(server_options);
  if (!server && opt.serve) {
    // The usual ports are taken: any free ones.
    server_options.http_listen = server_options.mqtt_listen = "127.0.0.1:0";
    server = EmbeddedServer::start(server_options);
  }
  if (!server) {
    std::fprintf(stderr, "error: %s\n", server.error().message().c_str());
    return 1;
  }
  auto& platform = **server;
  auto fail = [&](const std::string& what, const Error& e) {
    std::fprintf(stderr, "error: %s: %s\nserver log:\n%s", what.c_str(), e.message().c_str(), platform.log_tail().c_str());
    return 1;
  };
  say("platform at " + platform.url() + " (MQTT on port " + std::to_string(platform.mqtt_port()) + ")");
  for (const auto& [path, body] : {std::pair<const char*, const char*>{"/api/v1/contracts", kPumpContract},
                                   {"/api/v1/contracts", kHvacContract},
                                   {"/api/v1/contracts", kMeterContract},
                                   {"/api/v1/detectors", kPumpDetectors},
                                   {"/api/v1/features/views", kPumpView},
                                   {"/api/v1/kpis/definitions", kPumpKpi},
                                   {"/api/v1/kpis/definitions", kHvacKpi}}) {
    if (auto st = platform.call("POST", path, body, "text/plain"); !st) return fail(path, st.error());
  }
  auto fleet = sim::Fleet::make(fleet_options, start);
  if (!fleet) return fail("the fleet", fleet.error());
  const auto& devices = (*fleet)->devices();
  auto credentials = register_fleet(devices, platform.url(), platform.admin_token());
  if (!credentials) return fail("registering the fleet", credentials.error());
  say("registered " + std::to_string(devices.size()) + " devices (" + std::to_string(opt.pumps) +
      " pumps, HVAC units and energy meters on 2 sites); applied contracts, the pump detectors and feature view, KPIs");

  // The predictive run: the fleet through the platform.
  Ledger ledger(devices, split, end, *pump_kpi);
  std::vector<char> acting(devices.size(), 0);
  std::vector<std::optional<int64_t>> acted_at(devices.size());  // simulated time of each pump's last order
  auto on_event = [&](const sim::Event& e) { ledger(e); };
  asio::io_context io;
  sim::MqttFleet mqtt(io, {"127.0.0.1", platform.mqtt_port(), 64}, std::move(*credentials),
                      [&](size_t device, const std::string& command, const std::string&) {
                        if (command != "maintenance") return;
                        // Ground truth for the alarm's precision: was this pump going to fail within 7 days?
                        ++ledger.outcome().actions;
                        ledger.outcome().actions_before_failure += (*fleet)->fails_within(device, pump_kpi->horizon_ns);
                        (*fleet)->maintain(device, on_event);
                      });
  // Some readings go out broken (--bad-share), never one that reports a failure or maintenance:
  // the ground truth must stay comparable with what the platform counts.
  sim::BadMessages bad(opt.bad_share, opt.seed);
  auto on_reading = [&](const sim::Reading& r) {
    const bool reports_event = std::any_of(r.values.begin(), r.values.end(), [](const auto& v) { return v.first == "failure" || v.first == "maintenance"; });
    mqtt.publish(r.device, sim::telemetry_json(r, reports_event ? -1 : bad.next()));
  };
  const double speedup = static_cast<double>(end - start) / (opt.minutes * 60e9);
  const size_t backlog = devices.size() * 128;
  std::map<std::string, size_t> device_index;
  for (size_t i = 0; i < devices.size(); ++i) device_index[devices[i].id] = i;

  enum class Phase { history, training, acting, done } phase = Phase::history;
  json::object model_json;
  std::string model_note;
  auto started = std::chrono::steady_clock::now();
  int64_t sim_origin = start;  // simulated time at `started`
  asio::steady_timer tick(io);
  int ticks = 0;
  bool interrupted = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) interrupted = true;
  });
  // A platform that stops acknowledging would leave the demo waiting for ever: a minute without
  // progress ends it with the server's log.
  uint64_t last_acknowledged = 0;
  auto last_progress = std::chrono::steady_clock::now();
  bool stalled = false;
  std::function<void()> step = [&] {
    if (interrupted) {
      io.stop();
      return;
    }
    if (mqtt.stats().acknowledged != last_acknowledged || mqtt.unacknowledged() == 0) {
      last_acknowledged = mqtt.stats().acknowledged;
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > std::chrono::minutes(1)) {
      stalled = true;
      io.stop();
      return;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const int64_t limit = phase == Phase::history ? split : end;
    const int64_t target = std::min(limit, sim_origin + static_cast<int64_t>(elapsed * speedup * 1e9));
    if (mqtt.unacknowledged() < backlog && target > (*fleet)->now()) (*fleet)->advance(target, on_reading, on_event);
    const bool drained = mqtt.unacknowledged() == 0;
    if (phase == Phase::history && (*fleet)->now() >= split && drained) {
      phase = Phase::training;
      if (tty) std::fprintf(stderr, "\n");
      say("day " + std::to_string(opt.days / 2) + ": training " + kModel + " through the registry on the stored history...");
      const auto t0 = std::chrono::steady_clock::now();
      auto trained = platform.call("POST", std::string("/api/v1/models/") + kModel + "/train",
                                   R"({"profile": "pump", "label": "event:failure/7d/6h", "kind": "classification", "rounds": 200})");
      if (trained) {
        model_json = json::parse(*trained).as_object();
        const auto version = model_json.at("version").as_int64();
        auto promoted = platform.call("POST", std::string("/api/v1/models/") + kModel + "/versions/" + std::to_string(version) + "/promote",
                                      R"({"stage": "production", "reason": "fieldline demo"})");
        if (!promoted) model_note = "the model could not be promoted: " + promoted.error().message();
        char line[200];
        std::snprintf(line, sizeof line, "trained version %lld in %.1f s; in production; acting on its maintenance alarms",
                      static_cast<long long>(version), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        say(line);
      } else {
        model_note = "no model: " + trained.error().message();
        say(model_note);
      }
      // The clock starts again from here: training took its time, not the fleet's.
      started = std::chrono::steady_clock::now();
      sim_origin = (*fleet)->now();
      phase = Phase::acting;
    }
    if (phase == Phase::acting && ++ticks % 3 == 0) {
      // Maintenance alarms raised by serving: each pump gets one order per 3 simulated days.
      auto alarms = platform.call("GET", "/api/v1/alarms?type=maintenance&state=active&limit=1000");
      if (alarms) {
        const auto answer = json::parse(*alarms);
        for (const auto& a : answer.at("alarms").as_array()) {
          auto it = device_index.find(std::string(a.at("device").as_string()));
          if (it == device_index.end()) continue;
          const size_t i = it->second;
          if ((acted_at[i] && (*fleet)->now() - *acted_at[i] < 3 * kDay) || (*fleet)->down(i)) continue;
          acted_at[i] = (*fleet)->now();
          (void)platform.call("POST", "/api/v1/devices/" + devices[i].id + "/commands/maintenance", "{}");
        }
      }
    }
    if (tty && ticks % 10 == 0) {
      const auto& s = mqtt.stats();
      std::fprintf(stderr, "\rday %5.1f of %u  %llu messages acknowledged  %llu failures  %llu maintenance orders   ",
                   static_cast<double>((*fleet)->now() - start) / static_cast<double>(kDay), opt.days,
                   static_cast<unsigned long long>(s.acknowledged), static_cast<unsigned long long>(ledger.outcome().failures),
                   static_cast<unsigned long long>(ledger.outcome().actions));
    }
    if (phase != Phase::history) ++ticks;
    if (phase == Phase::acting && (*fleet)->now() >= end && drained) {
      phase = Phase::done;
      io.stop();  // the connections stay open for the live part
      return;
    }
    tick.expires_after(std::chrono::milliseconds(100));
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) step();
    });
  };
  step();
  io.run_for(std::chrono::hours(2));
  if (tty) std::fprintf(stderr, "\n");
  if (phase != Phase::done) {
    std::fprintf(stderr, "error: the demo stopped before its end (%s)\n%s", interrupted ? "interrupted"
                 : stalled ? "the platform acknowledged nothing for a minute; its log:" : "out of time",
                 stalled ? platform.log_tail().c_str() : "");
    return 1;
  }
  const Outcome predictive = ledger.finish();
  say("simulating the two baselines on the same fleet and seed...");
  const Outcome run_to_failure = baseline(fleet_options, start, split, end, 0, *pump_kpi);
  const Outcome preventive = baseline(fleet_options, start, split, end, static_cast<int64_t>(opt.preventive_days) * kDay, *pump_kpi);
  // The platform's own KPIs over the same window, from what the pumps reported.
  // The first half (nothing acted on) is their baseline.
  const std::string window = "&from=" + core::format_rfc3339(split) + "&to=" + core::format_rfc3339(end - 1'000'000) +
                             "&baseline_from=" + core::format_rfc3339(start) + "&baseline_to=" + core::format_rfc3339(split);
  json::value platform_kpis, platform_baseline, hvac_kpis;
  if (auto k = platform.call("GET", "/api/v1/kpis?profile=pump" + window)) {
    const auto answer = json::parse(*k);
    platform_kpis = answer.at("current");
    platform_baseline = answer.at("baseline");
  }
  if (auto k = platform.call("GET", "/api/v1/kpis?profile=hvac" + window)) hvac_kpis = json::parse(*k);
  // What the platform made of the broken messages: refused with a reason, kept in quarantine.
  double rejected = 0, quarantined = 0;
  if (auto m = platform.call("GET", "/metrics")) rejected = metric_sum(*m, "fieldline_messages_rejected_total", "transport=\"mqtt\"");
  for (std::string after = "0";;) {
    auto page = platform.call("GET", "/api/v1/quarantine?limit=1000&after=" + after);
    if (!page) break;
    const auto answer = json::parse(*page);
    quarantined += static_cast<double>(answer.at("messages").as_array().size());
    if (answer.at("next_after").is_null()) break;
    after = std::to_string(answer.at("next_after").to_number<int64_t>());
  }
  const double reduction = run_to_failure.unplanned_downtime_hours > 0
                               ? 1 - predictive.unplanned_downtime_hours / run_to_failure.unplanned_downtime_hours
                               : 0;
  const double vs_preventive = preventive.unplanned_downtime_hours > 0
                                   ? 1 - predictive.unplanned_downtime_hours / preventive.unplanned_downtime_hours
                                   : 0;
  const bool good = reduction >= 0.2;
  if (json_out) {
    json::object o{{"pumps", opt.pumps},
                   {"devices", devices.size()},
                   {"days", opt.days},
                   {"seed", opt.seed},
                   {"window", json::object{{"from", core::format_rfc3339(split)}, {"to", core::format_rfc3339(end)}}},
                   {"predictive", predictive.to_json()},
                   {"run_to_failure", run_to_failure.to_json()},
                   {"preventive", preventive.to_json()},
                   {"preventive_interval_days", opt.preventive_days},
                   {"unplanned_downtime_reduction_vs_run_to_failure", reduction},
                   {"unplanned_downtime_reduction_vs_preventive", vs_preventive},
                   {"model", model_json.empty() ? json::value(model_note) : json::value(model_json)},
                   {"platform_kpis", platform_kpis},
                   {"platform_kpis_first_half", platform_baseline},
                   {"hvac_kpis", hvac_kpis},
                   {"messages_acknowledged", mqtt.stats().acknowledged},
                   {"bad_messages", json::object{{"sent", bad.sent()}, {"rejected", rejected}, {"quarantined", quarantined}}}};
    std::printf("%s\n", core::to_json(o).c_str());
  } else {
    std::printf("\nOutcome over simulated days %u-%u, %u pumps (seed %llu); costs: failure %.0f, maintenance %.0f, downtime %.0f/h\n\n",
                opt.days / 2, opt.days, opt.pumps, static_cast<unsigned long long>(opt.seed), pump_kpi->cost_failure, pump_kpi->cost_maintenance,
                pump_kpi->cost_downtime_hour);
    std::printf("%-28s %16s %16s %22s\n", "", "predictive", "run-to-failure", ("preventive (every " + std::to_string(opt.preventive_days) + " d)").c_str());
    auto row = [](const char* name, double a, double b, double c, const char* fmt) {
      char x[3][32];
      std::snprintf(x[0], 32, fmt, a);
      std::snprintf(x[1], 32, fmt, b);
      std::snprintf(x[2], 32, fmt, c);
      std::printf("%-28s %16s %16s %22s\n", name, x[0], x[1], x[2]);
    };
    row("failures", static_cast<double>(predictive.failures), static_cast<double>(run_to_failure.failures),
        static_cast<double>(preventive.failures), "%.0f");
    row("unplanned downtime (h)", predictive.unplanned_downtime_hours, run_to_failure.unplanned_downtime_hours,
        preventive.unplanned_downtime_hours, "%.0f");
    row("maintenance actions", static_cast<double>(predictive.maintenance), static_cast<double>(run_to_failure.maintenance),
        static_cast<double>(preventive.maintenance), "%.0f");
    row("maintenance cost", predictive.maintenance_cost, run_to_failure.maintenance_cost, preventive.maintenance_cost, "%.0f");
    if (predictive.actions) {
      std::printf("\n%llu maintenance alarms acted on; %s of them on a pump that would have failed within 7 days\n",
                  static_cast<unsigned long long>(predictive.actions),
                  percent(static_cast<double>(predictive.actions_before_failure) / static_cast<double>(predictive.actions)).c_str());
    }
    if (good) {
      std::printf("Predictive maintenance cut unplanned downtime by %s against run-to-failure (%s against preventive).\n",
                  percent(reduction).c_str(), percent(vs_preventive).c_str());
    } else {
      std::printf("The model did NOT help enough: unplanned downtime changed by %s against run-to-failure (%s against preventive). %s\n",
                  percent(-reduction).c_str(), percent(-vs_preventive).c_str(), model_note.c_str());
    }
    std::printf("%llu messages acknowledged; of %llu sent broken on purpose, the platform refused %.0f with a reason and holds %.0f in "
                "quarantine (GET /api/v1/quarantine)\n",
                static_cast<unsigned long long>(mqtt.stats().acknowledged), static_cast<unsigned long long>(bad.sent()), rejected, quarantined);
    auto number = [](const json::value& v, const char* key) {
      return v.is_object() && v.as_object().contains(key) && v.at(key).is_number() ? v.at(key).to_number<double>() : NAN;
    };
    if (platform_kpis.is_object() && platform_baseline.is_object()) {
      std::printf("The platform's own KPIs from what the pumps reported (GET /api/v1/kpis?profile=pump), second half against the first:\n"
                  "  failures %.0f (%.0f), unplanned downtime %.0f h (%.0f h), MTBF %.0f h (%.0f h), availability %.3f (%.3f), "
                  "alert precision %.2f\n"
                  "  (alert precision counts alarms a failure followed; an alarm acted on prevents the failure that would confirm it)\n",
                  number(platform_kpis, "failures"), number(platform_baseline, "failures"), number(platform_kpis, "unplanned_downtime_hours"),
                  number(platform_baseline, "unplanned_downtime_hours"), number(platform_kpis, "mtbf_hours"),
                  number(platform_baseline, "mtbf_hours"), number(platform_kpis, "availability"), number(platform_baseline, "availability"),
                  number(platform_kpis, "alert_precision"));
    }
    if (hvac_kpis.is_object() && hvac_kpis.as_object().contains("baseline")) {
      std::printf("  HVAC units (GET /api/v1/kpis?profile=hvac): %.3f kWh of electricity per kWh of cooling (first half %.3f)\n",
                  number(hvac_kpis.at("current"), "energy_per_output"), number(hvac_kpis.at("baseline"), "energy_per_output"));
    }
  }
  if (!opt.serve) {
    mqtt.close();
    io.restart();
    io.run_for(std::chrono::seconds(2));
    return 0;
  }
  // The fleet goes on, live: simulated time is now real time.
  std::printf("\nThe platform keeps running with the fleet sending live data (Ctrl-C stops both):\n"
              "  console  %s/   (sign in with the admin token)\n"
              "  REST  %s   (admin token: %s)\n  MQTT  127.0.0.1:%u\n  try   curl -H 'Authorization: Bearer %s' %s/api/v1/devices/pump-0001/metrics\n"
              "        FIELDLINE_URL=%s FIELDLINE_TOKEN=%s build/release/fieldline kpi get --profile pump --from -%ud\n",
              platform.url().c_str(), platform.url().c_str(), platform.admin_token().c_str(), platform.mqtt_port(), platform.admin_token().c_str(),
              platform.url().c_str(), platform.url().c_str(), platform.admin_token().c_str(), opt.days);
  std::fflush(stdout);
  // The simulated days ended on the last full hour: catch up with the present at the history's
  // rate, then a reading every 5 s from each device (enough to watch, little to store).
  (*fleet)->advance(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count(),
                    on_reading, on_event);
  (*fleet)->set_rate(0.2);
  started = std::chrono::steady_clock::now();
  sim_origin = (*fleet)->now();
  std::function<void()> live = [&] {
    if (interrupted) {
      mqtt.close();
      return;
    }
    const int64_t target = sim_origin + std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count();
    (*fleet)->advance(target, on_reading, on_event);
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) live();
    });
  };
  io.restart();
  live();
  io.run();
  return 0;
}

}  // namespace fieldline::app
