// fieldline simulate against the real server: the devices register with their profiles and
// sites and connect as MQTT clients with their own tokens; two simulated days at 17,280×
// arrive whole (every message acknowledged, the malformed and non-conforming ones quarantined
// and counted); a maintenance command sent through the platform's REST API reaches a pump,
// which stops for it, and the ground truth says so.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "fieldline/core/time.h"
#include "harness.h"

namespace fieldline::itest {
namespace {

using namespace std::chrono_literals;

class Simulate : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data");
    server_->start();
  }
  std::string simulate(const std::string& args) const {
    return "FIELDLINE_TOKEN=" + std::string(kAdminToken) + " " + FIELDLINE_BINARY + " simulate --target mqtt://127.0.0.1:" +
           std::to_string(server_->mqtt_port()) + " --server " + server_->url() + " " + args;
  }
  // The summary of a --format json run that sent broken messages too: every message answered.
  // Returns how many were published and how many of them were sent broken.
  static std::pair<double, double> all_answered(const std::string& output, double at_least) {
    const auto summary = boost::json::parse(output.substr(output.rfind('{')));
    const double published = summary.at("published").to_number<double>(), bad = summary.at("bad").to_number<double>();
    EXPECT_EQ(summary.at("acknowledged").to_number<double>(), published);
    EXPECT_EQ(summary.at("unacknowledged").to_number<double>(), 0);
    EXPECT_GT(published, at_least);
    EXPECT_GT(bad, 0);
    return {published, bad};
  }
  std::vector<boost::json::value> labels(const std::string& path) const {
    std::ifstream in(path);
    std::vector<boost::json::value> out;
    for (std::string line; std::getline(in, line);) out.push_back(boost::json::parse(line));
    return out;
  }
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(Simulate, TwoSimulatedDaysArriveWholeAndBadMessagesAreQuarantined) {
  const std::string truth = dir_.path() + "/labels.jsonl";
  auto r = run(simulate("--devices 10 --profile mixed --rate 0.0033333 --duration 172800 --speedup 17280 --seed 3 --bad-share 0.02 "
                        "--faults-per-day 0.5 --labels " + truth + " --format json"),
               120);
  ASSERT_EQ(r.status, 0) << r.output << server_->log();
  const auto [published, bad] = all_answered(r.output, 5000);

  // The registry has the fleet with profiles and sites.
  auto devices = boost::json::parse(server_->http("GET", "/api/v1/devices").second).at("devices").as_array();
  ASSERT_EQ(devices.size(), 10u);
  int pumps = 0, hvac = 0, meters = 0;
  for (const auto& d : devices) {
    const auto profile = d.at("profile").as_string();
    pumps += profile == "pump";
    hvac += profile == "hvac";
    meters += profile == "energy-meter";
    EXPECT_TRUE(d.at("tags").at("site").as_string().starts_with("site-"));
  }
  EXPECT_EQ(pumps, 7);
  EXPECT_EQ(hvac, 2);
  EXPECT_EQ(meters, 1);

  // Every message the simulator sent was stored or quarantined, and only bad ones were refused.
  double accepted = 0, refused = 0;
  for (int i = 0; i < 100; ++i) {
    accepted = server_->metric("fieldline_messages_accepted_total", "transport=\"mqtt\"");
    refused = server_->metric("fieldline_messages_rejected_total", "transport=\"mqtt\"");
    if (accepted + refused == published) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(accepted + refused, published);
  EXPECT_GT(refused, 0);
  EXPECT_LE(refused, bad);
  auto quarantined = boost::json::parse(server_->http("GET", "/api/v1/quarantine?limit=1000").second);
  EXPECT_EQ(static_cast<double>(quarantined.at("messages").as_array().size()), refused);

  // The ground truth: sensor faults and their ends, each naming a registered device.
  auto events = labels(truth);
  ASSERT_FALSE(events.empty());
  int faults = 0;
  for (const auto& e : events) {
    faults += e.at("event").as_string() == "fault";
    EXPECT_EQ(server_->http("GET", "/api/v1/devices/" + std::string(e.at("device").as_string())).first, 200);
  }
  EXPECT_GT(faults, 0);
  // A pump's readings are queryable.
  auto points = server_->query("pump-0001", "vibration");
  EXPECT_GT(points.size(), 100u);
}

// Over HTTP: the same fleet posts its readings with each device's token; every one is stored or
// refused with a reason (the broken ones), none is left unanswered.
TEST_F(Simulate, OverHttpEveryReadingIsStoredOrRefusedWithAReason) {
  auto r = run("FIELDLINE_TOKEN=" + std::string(kAdminToken) + " " + FIELDLINE_BINARY + " simulate --target " + server_->url() +
                   " --devices 5 --profile pump --rate 0.0033333 --duration 86400 --speedup 43200 --seed 5 --bad-share 0.03 --format json",
               120);
  ASSERT_EQ(r.status, 0) << r.output << server_->log();
  const auto [published, bad] = all_answered(r.output, 1000);
  const double accepted = server_->metric("fieldline_messages_accepted_total", "transport=\"http\"");
  const double refused = server_->metric("fieldline_messages_rejected_total", "transport=\"http\"");
  EXPECT_EQ(accepted + refused, published);
  EXPECT_GT(refused, 0);
  EXPECT_LE(refused, bad);
  EXPECT_GT(server_->query("pump-0003", "vibration").size(), 100u);
}

TEST_F(Simulate, AMaintenanceCommandReachesThePumpWhichStopsForIt) {
  const std::string truth = dir_.path() + "/live.jsonl";
  const std::string log = dir_.path() + "/simulate.log";
  auto started = run(simulate("--devices 3 --rate 2 --labels " + truth) + " > " + log + " 2>&1 & echo $!");
  const std::string pid = started.output.substr(0, started.output.find('\n'));
  // Connected once pump-0001 has readings.
  bool live = false;
  for (int i = 0; i < 100 && !live; ++i) {
    live = server_->query("pump-0001", "running").size() >= 2;
    if (!live) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(live) << server_->log();
  auto [code, body] = server_->http("POST", "/api/v1/devices/pump-0001/commands/maintenance", "{}");
  EXPECT_EQ(code, 202) << body;
  EXPECT_EQ(boost::json::parse(body).at("delivered_to_sessions").to_number<double>(), 1);
  bool stopped = false;
  for (int i = 0; i < 100 && !stopped; ++i) {
    auto running = server_->query("pump-0001", "running");
    stopped = !running.empty() && running.back().at("value").to_number<double>() == 0;
    if (!stopped) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(stopped) << "the pump reports running 0 while it is maintained";
  ASSERT_EQ(run("kill -INT " + pid + "; for i in $(seq 100); do kill -0 " + pid + " 2>/dev/null || exit 0; sleep 0.1; done; exit 1").status, 0);
  bool maintained = false;
  for (const auto& e : labels(truth)) {
    maintained = maintained || (e.at("device").as_string() == "pump-0001" && e.at("event").as_string() == "maintenance");
  }
  EXPECT_TRUE(maintained);
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  EXPECT_NE(out.str().find("3 devices"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find(", 0 not;"), std::string::npos) << "every message acknowledged after SIGINT: " << out.str();
}

// Outcome KPIs from the platform agree with the simulator's ground truth: a month of ten pumps
// left to fail, the failures the labels list and the downtime between failure and repair.
TEST_F(Simulate, KpisFromThePlatformMatchTheGroundTruth) {
  server_ = std::make_unique<ServerProcess>(dir_.path() + "/kpis", std::vector<std::string>{"tsdb.retention=90d"});
  server_->start();
  const std::string truth = dir_.path() + "/month.jsonl";
  auto r = run(simulate("--devices 10 --rate 0.0016667 --duration 2592000 --speedup 259200 --seed 5 --faults-per-day 0 --labels " + truth +
                        " --format json"),
               180);
  ASSERT_EQ(r.status, 0) << r.output << server_->log();
  const auto summary = boost::json::parse(r.output.substr(r.output.rfind('{')));
  const std::string definition = "kpi = \"pump_outcomes\"\nprofile = \"pump\"\ncost_failure = 12000\ncost_maintenance = 1500\n"
                                 "cost_downtime_hour = 800\n";
  std::ofstream(dir_.path() + "/kpi.toml") << definition;
  auto applied = run(std::string(FIELDLINE_BINARY) + " kpi apply " + dir_.path() + "/kpi.toml --server " + server_->url() + " --token " +
                     kAdminToken);
  ASSERT_EQ(applied.status, 0) << applied.output;
  // Ground truth: failures, and hours from each failure to its repair (or the end).
  int failures = 0;
  double downtime_h = 0;
  std::map<std::string, int64_t> failed;
  auto parse = [](const boost::json::value& e) { return *core::parse_rfc3339(std::string(e.at("ts").as_string())); };
  const int64_t end = *core::parse_rfc3339(std::string(summary.at("to").as_string()));
  for (const auto& e : labels(truth)) {
    const std::string device(e.at("device").as_string());
    if (e.at("event").as_string() == "failure") {
      ++failures;
      failed[device] = parse(e);
    } else if (e.at("event").as_string() == "repaired") {
      downtime_h += static_cast<double>(parse(e) - failed[device]) / 3.6e12;
      failed.erase(device);
    }
  }
  for (const auto& [device, at] : failed) downtime_h += static_cast<double>(end - at) / 3.6e12;
  ASSERT_GT(failures, 2);
  const std::string range = "&from=" + std::string(summary.at("from").as_string()) + "&to=" + std::string(summary.at("to").as_string());
  auto [code, body] = server_->http("GET", "/api/v1/kpis?profile=pump&step=10d" + range);
  ASSERT_EQ(code, 200) << body;
  const auto kpis = boost::json::parse(body);
  const auto& current = kpis.at("current");
  EXPECT_EQ(current.at("devices").to_number<double>(), 10);
  EXPECT_EQ(current.at("failures").to_number<double>(), failures);
  // Readings every 10 minutes: each stop is seen to within a reading at either end.
  EXPECT_NEAR(current.at("unplanned_downtime_hours").to_number<double>(), downtime_h, failures / 3.0);
  EXPECT_EQ(current.at("maintenance_cost").to_number<double>(),
            failures * 12000 + current.at("unplanned_downtime_hours").to_number<double>() * 800);
  EXPECT_NEAR(current.at("availability").to_number<double>(), 1 - downtime_h / (10 * 720), 0.01);
  double per_step = 0;
  for (const auto& s : kpis.at("series").as_array()) per_step += s.at("failures").to_number<double>();
  EXPECT_EQ(per_step, failures);
  // The same through the CLI.
  auto shown = run(std::string(FIELDLINE_BINARY) + " kpi get --profile pump --server " + server_->url() + " --token " + kAdminToken +
                   " --from " + std::string(summary.at("from").as_string()) + " --to " + std::string(summary.at("to").as_string()));
  ASSERT_EQ(shown.status, 0) << shown.output;
  EXPECT_NE(shown.output.find("unplanned_downtime_hours"), std::string::npos) << shown.output;
  EXPECT_EQ(server_->http("GET", "/api/v1/kpis?profile=pump", "", "").first, 401);
  EXPECT_EQ(server_->http("GET", "/api/v1/kpis?profile=hvac").first, 404);
}

}  // namespace
}  // namespace fieldline::itest
