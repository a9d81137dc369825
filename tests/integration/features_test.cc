// Online features end to end: a feature view applied with the CLI, telemetry over MQTT
// (mosquitto_pub), and the device's features read over REST (curl) and the CLI, checked
// against their definitions; views are versioned and audited, and need the admin token.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "contract_fixture.h"

namespace fieldline::itest {
namespace {

using namespace std::chrono_literals;

constexpr const char* kView = R"(view = "pump_health"
profile = "pump"
[[metrics]]
metric = "temperature"
windows = ["10m"]
aggregates = ["mean", "max", "count", "slope", "p50"]
last = true
[[ratios]]
name = "flow_per_current"
numerator = "flow"
denominator = "current"
[since]
events = ["maintenance"]
)";

using Features = ContractFixture;

TEST_F(Features, OnlineFeaturesFollowADeviceOverMqttAndMeetTheirDefinitions) {
  auto applied = run(cli("features apply " + write("view.toml", kView) + " --format json"));
  ASSERT_EQ(applied.status, 0) << applied.output;
  EXPECT_EQ(json_of(applied.output).at("version").as_int64(), 1);
  EXPECT_NE(run(cli("features apply " + write("view.toml", kView))).output.find("unchanged at version 1"), std::string::npos);
  std::string token = add_pump("pump-1", "north");

  // 100 readings a second apart: temperature 50, 50.1, ... 59.9; flow 30 and current 10; a
  // maintenance event 20 s before the last reading.
  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() - 200'000;
  std::string lines;
  for (int i = 0; i < 100; ++i) {
    lines += "{\"ts\": " + std::to_string(t0 + 1000LL * i) + ", \"values\": {\"temperature\": " + std::to_string(50 + 0.1 * i) +
             ", \"flow\": 30, \"current\": 10" + (i == 79 ? ", \"maintenance\": 1" : "") + "}}\n";
  }
  auto pub = run("mosquitto_pub " + server_->mosquitto_args("pump-1", token) + " -q 1 -t devices/pump-1/telemetry -l < " +
                 write("readings.jsonl", lines));
  ASSERT_EQ(pub.status, 0) << pub.output;

  boost::json::object f;
  for (int i = 0; i < 200; ++i) {
    auto [code, body] = server_->http("GET", "/api/v1/devices/pump-1/features");
    if (code == 200) {
      f = json_of(body).as_object();
      if (f.at("features").at("temperature_count_10m").to_number<double>() == 100) break;
    }
    std::this_thread::sleep_for(25ms);
  }
  ASSERT_FALSE(f.empty()) << server_->log();
  EXPECT_EQ(f.at("view").as_string(), "pump_health");
  EXPECT_EQ(f.at("view_version").as_int64(), 1);
  const auto& v = f.at("features").as_object();
  EXPECT_EQ(v.at("temperature_count_10m").to_number<double>(), 100);
  EXPECT_NEAR(v.at("temperature_mean_10m").to_number<double>(), 54.95, 1e-9);
  EXPECT_NEAR(v.at("temperature_max_10m").to_number<double>(), 59.9, 1e-9);
  EXPECT_NEAR(v.at("temperature_p50_10m").to_number<double>(), 54.95, 1e-9);
  EXPECT_NEAR(v.at("temperature_slope_10m").to_number<double>(), 0.1, 1e-9) << "per second";
  EXPECT_NEAR(v.at("temperature_last").to_number<double>(), 59.9, 1e-9);
  EXPECT_EQ(v.at("flow_per_current").to_number<double>(), 3);
  EXPECT_NEAR(v.at("since_maintenance_s").to_number<double>(), 20, 1e-9) << "as of the newest sample";

  // The same through the CLI; a device whose profile has no view has no features.
  auto shown = run(cli("features get pump-1"));
  ASSERT_EQ(shown.status, 0) << shown.output;
  EXPECT_NE(shown.output.find("temperature_count_10m"), std::string::npos) << shown.output;
  server_->add_device("meter-1");
  EXPECT_EQ(server_->http("GET", "/api/v1/devices/meter-1/features").first, 404);
  EXPECT_EQ(server_->http("GET", "/api/v1/devices/nobody/features").first, 404);

  // A training set from the stored samples: rows labelled by the metric "rul", one 1.5 s
  // after the 51st reading and one just after the last. A row reads only what came before its
  // label, and the last row's features are the online ones, to the last bit (since_* aside:
  // it is measured to the row's time).
  auto labels = run("mosquitto_pub " + server_->mosquitto_args("pump-1", token) + " -q 1 -t devices/pump-1/telemetry -l < " +
                    write("labels.jsonl", "{\"ts\": " + std::to_string(t0 + 51'500) + ", \"values\": {\"rul\": 7}}\n{\"ts\": " +
                                              std::to_string(t0 + 100'000) + ", \"values\": {\"rul\": 42}}\n"));
  ASSERT_EQ(labels.status, 0) << labels.output;
  const std::string csv_path = dir_.path() + "/set.csv";
  auto exported = run(cli("features export --profile pump --label rul -o " + csv_path));
  ASSERT_EQ(exported.status, 0) << exported.output;
  EXPECT_NE(exported.output.find("2 rows, sha256 "), std::string::npos) << exported.output;
  std::ifstream csv(csv_path);
  std::vector<std::vector<std::string>> table;
  for (std::string line; std::getline(csv, line);) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    for (std::string c; std::getline(in, c, ',');) cells.push_back(c);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    table.push_back(std::move(cells));
  }
  ASSERT_EQ(table.size(), 3u);
  auto column = [&](const std::string& name) { return static_cast<size_t>(std::find(table[0].begin(), table[0].end(), name) - table[0].begin()); };
  EXPECT_EQ(table[1][2], "7");
  EXPECT_EQ(table[1][column("temperature_count_10m")], "52") << "the 52 readings before its label, not the later ones";
  EXPECT_EQ(table[2][2], "42");
  for (const auto& [name, value] : v) {
    if (std::string(name).starts_with("since_")) continue;
    ASSERT_LT(column(std::string(name)), table[0].size()) << name;
    EXPECT_EQ(std::stod(table[2][column(std::string(name))]), value.to_number<double>()) << name << ": offline and online differ";
  }
  EXPECT_NEAR(std::stod(table[2][column("since_maintenance_s")]), 21, 1e-9);
  auto again = run(cli("features export --profile pump --label rul"));
  EXPECT_NE(again.output.find(exported.output.substr(exported.output.find("sha256 "))), std::string::npos) << "the same set, the same hash";
  EXPECT_NE(run(cli("features export --profile pump --label rul --kind classification")).output.find("not 0 or 1"), std::string::npos);

  // The store is the features' memory: killed and started again, the server rebuilds pump-1's
  // features from its stored samples before it sends anything, to the same bits.
  EXPECT_TRUE(f.at("warm").as_bool());
  server_->kill9();
  server_->start();
  boost::json::object after;
  for (int i = 0; i < 200; ++i) {
    auto [code, body] = server_->http("GET", "/api/v1/devices/pump-1/features");
    if (code == 200 && json_of(body).at("warm").as_bool()) {
      after = json_of(body).as_object();
      break;
    }
    std::this_thread::sleep_for(25ms);
  }
  ASSERT_FALSE(after.empty()) << server_->log();
  EXPECT_EQ(after.at("as_of"), f.at("as_of"));
  for (const auto& [name, value] : v) EXPECT_EQ(after.at("features").at(name), value) << name << " after the restart";

  // A late reading (between two stored ones, inside the store's out-of-order window) is
  // stored; the online state cannot take it in place, so it is rebuilt from the store within
  // about a second and counts it, as the offline path would.
  auto late = run("mosquitto_pub " + server_->mosquitto_args("pump-1", token) + " -q 1 -t devices/pump-1/telemetry -m '{\"ts\": " +
                  std::to_string(t0 + 50'500) + ", \"values\": {\"temperature\": 55}}'");
  ASSERT_EQ(late.status, 0) << late.output;
  double count = 0;
  for (int i = 0; i < 120 && count != 101; ++i) {
    count = json_of(server_->http("GET", "/api/v1/devices/pump-1/features").second).at("features").at("temperature_count_10m").to_number<double>();
    if (count != 101) std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(count, 101) << "the late reading, within about a second";
  EXPECT_EQ(server_->metric("fieldline_features_refused_total", "reason=\"late\""), 1);

  // Views and features need the admin token; versions are kept and audited.
  EXPECT_EQ(server_->http("GET", "/api/v1/devices/pump-1/features", "", "").first, 401);
  EXPECT_EQ(server_->http("GET", "/api/v1/devices/pump-1/features", "", token).first, 403);
  EXPECT_EQ(server_->http("POST", "/api/v1/features/views", kView, token, "text/plain").first, 403);
  auto bad = server_->http("POST", "/api/v1/features/views", "view = \"v\"\nprofile = \"pump\"\n[[metrics]]\nmetric = \"t\"\nwindows = [\"10m\"]\naggregates = [\"median\"]\n", kAdminToken, "text/plain");
  EXPECT_EQ(bad.first, 400);
  EXPECT_NE(bad.second.find("line 6: metrics[0].aggregates: unknown aggregate 'median'"), std::string::npos) << bad.second;
  std::string v2 = kView;
  v2.replace(v2.find("\"10m\""), 5, "\"1h\"");
  ASSERT_EQ(run(cli("features apply " + write("v2.toml", v2))).status, 0);
  // A new view version reads the stored history at once: no new sample needed.
  double hourly = 0;
  for (int i = 0; i < 200 && hourly != 101; ++i) {
    auto [code, body] = server_->http("GET", "/api/v1/devices/pump-1/features");
    const auto answer = json_of(body);
    if (code == 200 && answer.at("view_version").as_int64() == 2 && answer.at("warm").as_bool()) {
      hourly = answer.at("features").at("temperature_count_1h").to_number<double>();
    }
    if (hourly != 101) std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(hourly, 101);
  auto history = json_of(run(cli("features history pump --format json")).output);
  EXPECT_EQ(history.at("versions").as_array().size(), 2u);
  EXPECT_NE(run(cli("features show pump --version 1")).output.find("windows = [\"10m\"]"), std::string::npos);
  auto audit = server_->http("GET", "/api/v1/audit");
  EXPECT_NE(audit.second.find("features:pump@2"), std::string::npos) << audit.second;
}

}  // namespace
}  // namespace fieldline::itest
