// fieldline simulate against the real server: the devices register with their profiles and
// sites and connect as MQTT clients with their own tokens; two simulated days at 17,280×
// arrive whole (every message acknowledged, the malformed and non-conforming ones quarantined
// and counted); a maintenance command sent through the platform's REST API reaches a pump,
// which stops for it, and the ground truth says so.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

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
  const auto summary = boost::json::parse(r.output.substr(r.output.rfind('{')));
  const double published = summary.at("published").to_number<double>(), bad = summary.at("bad").to_number<double>();
  EXPECT_EQ(summary.at("acknowledged").to_number<double>(), published);
  EXPECT_EQ(summary.at("unacknowledged").to_number<double>(), 0);
  EXPECT_GT(published, 5000);
  EXPECT_GT(bad, 0);

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

}  // namespace
}  // namespace fieldline::itest
