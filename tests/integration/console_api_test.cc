// What the operator console reads, checked without a browser: its files (served without a
// token, with a content security policy), the fleet overview, metric queries as columns, and a
// device's live samples over the WebSocket stream. The browser test (web/tests/e2e.mjs) drives
// the same through Chromium.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <thread>

#include "contract_fixture.h"
#include "peers.h"

namespace fieldline::itest {
namespace {

using namespace std::chrono_literals;

class ConsoleApi : public ContractFixture {
 protected:
  std::string url(const std::string& path) const { return server_->url() + path; }
  boost::json::object fleet() {
    auto [code, body] = server_->http("GET", "/api/v1/fleet");
    EXPECT_EQ(code, 200) << body;
    return json_of(body).as_object();
  }
  static const boost::json::object* row(const boost::json::object& fleet, const std::string& id) {
    for (const auto& d : fleet.at("devices").as_array()) {
      if (d.at("id").as_string() == id) return &d.as_object();
    }
    return nullptr;
  }
};

TEST_F(ConsoleApi, ConsoleFilesNeedNoTokenButTheApiDoes) {
  auto page = run("curl -s -D - -o /dev/null " + url("/"));
  EXPECT_NE(page.output.find("HTTP/1.1 200"), std::string::npos) << page.output;
  EXPECT_NE(page.output.find("Content-Type: text/html"), std::string::npos) << page.output;
  EXPECT_NE(page.output.find("Content-Security-Policy: default-src 'self'"), std::string::npos) << page.output;
  EXPECT_NE(page.output.find("X-Frame-Options: DENY"), std::string::npos) << page.output;
  auto html = run("curl -s " + url("/"));
  EXPECT_NE(html.output.find("/assets/"), std::string::npos) << html.output;
  EXPECT_EQ(html.output.find("http://"), std::string::npos) << "the console loads nothing from elsewhere: " << html.output;

  auto gz = run("curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' " + url("/"));
  EXPECT_NE(gz.output.find("Content-Encoding: gzip"), std::string::npos) << gz.output;
  auto missing = run("curl -s -o /dev/null -w '%{http_code}' " + url("/assets/nothing-here.js"));
  EXPECT_EQ(missing.output, "404");
  auto post = run("curl -s -o /dev/null -w '%{http_code}' -X POST " + url("/"));
  EXPECT_EQ(post.output, "405");
  for (const char* path : {"/api/v1/fleet", "/api/v1/devices", "/api/v1/alarms", "/metrics"}) {
    auto r = run(std::string("curl -s -o /dev/null -w '%{http_code}' ") + url(path));
    EXPECT_EQ(r.output, "401") << path;
  }
}

TEST_F(ConsoleApi, FleetShowsEachDevicesHealthAndCountsBySiteAndProfile) {
  const std::string token = add_pump("pump-1", "north");
  add_pump("pump-2", "north");
  add_pump("pump-3", "south");
  auto [code, body] = server_->http("POST", "/api/v1/devices/pump-3/disable");
  ASSERT_EQ(code, 200) << body;
  auto file = write("one.jsonl", "{\"values\": {\"temperature\": 61.5, \"flow\": 80}}\n");
  auto r = run("mosquitto_pub " + server_->mosquitto_args("pump-1", token) + " -q 1 -t devices/pump-1/telemetry -l < " + file);
  ASSERT_EQ(r.status, 0) << r.output;

  auto f = fleet();
  const auto& totals = f.at("totals").as_object();
  EXPECT_EQ(totals.at("devices").as_int64(), 3);
  EXPECT_EQ(totals.at("online").as_int64(), 1);
  EXPECT_EQ(totals.at("offline").as_int64(), 1);
  EXPECT_EQ(totals.at("disabled").as_int64(), 1);
  const auto* p1 = row(f, "pump-1");
  ASSERT_NE(p1, nullptr);
  EXPECT_TRUE(p1->at("online").as_bool());
  EXPECT_EQ(p1->at("site").as_string(), "north");
  EXPECT_FALSE(p1->at("last_seen").is_null());
  EXPECT_DOUBLE_EQ(p1->at("conformance_rate").to_number<double>(), 1.0);
  EXPECT_EQ(p1->at("open_alarms").as_int64(), 0);
  const auto* p2 = row(f, "pump-2");
  ASSERT_NE(p2, nullptr);
  EXPECT_FALSE(p2->at("online").as_bool());
  EXPECT_TRUE(p2->at("last_seen").is_null());
  EXPECT_TRUE(p2->at("conformance_rate").is_null());
  EXPECT_EQ(row(f, "pump-3")->at("state").as_string(), "disabled");
  bool north = false;
  for (const auto& g : f.at("groups").as_array()) {
    if (g.at("site").as_string() == "north" && g.at("profile").as_string() == "pump") {
      north = true;
      EXPECT_EQ(g.at("devices").as_int64(), 2);
      EXPECT_EQ(g.at("online").as_int64(), 1);
    }
  }
  EXPECT_TRUE(north) << boost::json::serialize(f.at("groups"));

  // A device token cannot read the fleet.
  auto [denied, why] = server_->http("GET", "/api/v1/fleet", "", token);
  EXPECT_EQ(denied, 403) << why;
}

TEST_F(ConsoleApi, FleetCountsOpenAlarmsAtTheirHighestSeverity) {
  const std::string token = add_pump("pump-1", "north");
  auto [code, body] = server_->http("POST", "/api/v1/detectors", R"(profile = "pump"
[[rules]]
name = "overheat"
when = "temperature > 90"
severity = "major"
)", kAdminToken, "application/toml");
  ASSERT_EQ(code, 201) << body;
  auto file = write("hot.jsonl", "{\"values\": {\"temperature\": 95}}\n");
  auto r = run("mosquitto_pub " + server_->mosquitto_args("pump-1", token) + " -q 1 -t devices/pump-1/telemetry -l < " + file);
  ASSERT_EQ(r.status, 0) << r.output;
  const boost::json::object* p1 = nullptr;
  boost::json::object f;
  for (int i = 0; i < 100; ++i) {
    f = fleet();
    p1 = row(f, "pump-1");
    if (p1 && p1->at("open_alarms").as_int64() > 0) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1->at("open_alarms").as_int64(), 1);
  EXPECT_EQ(p1->at("highest_severity").as_string(), "major");
  EXPECT_EQ(f.at("totals").at("with_open_alarms").as_int64(), 1);
}

TEST_F(ConsoleApi, MetricColumnsCarryTheSamePointsAsThePointsFormat) {
  const std::string token = add_pump("pump-1", "north");
  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() - 60'000;
  std::string batch = "[";
  for (int i = 0; i < 30; ++i) {
    batch += (i ? "," : "") + std::string("{\"ts\": ") + std::to_string(t0 + i * 1000) + ", \"values\": {\"temperature\": " +
             std::to_string(50 + i * 0.5) + "}}";
  }
  batch += "]";
  auto [code, reply] = send("pump-1", token, batch);
  ASSERT_EQ(code, 204);

  auto points = server_->query("pump-1", "temperature", "&from=-5m");
  auto [c, body] = server_->http("GET", "/api/v1/devices/pump-1/metrics/temperature?from=-5m&format=columns");
  ASSERT_EQ(c, 200) << body;
  auto cols = json_of(body).as_object();
  const auto& ts = cols.at("ts").as_array();
  const auto& values = cols.at("value").as_array();
  ASSERT_EQ(ts.size(), 30u);
  ASSERT_EQ(values.size(), 30u);
  ASSERT_EQ(points.size(), 30u);
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ts[i].to_number<int64_t>(), t0 + static_cast<int64_t>(i) * 1000);
    EXPECT_DOUBLE_EQ(values[i].to_number<double>(), points[i].at("value").to_number<double>());
  }
  // Averaged per 10 s: three buckets of the same samples.
  auto [c2, body2] = server_->http("GET", "/api/v1/devices/pump-1/metrics/temperature?from=" + std::to_string(t0) + "&to=" +
                                              std::to_string(t0 + 29'999) + "&agg=avg&step=10s&format=columns");
  ASSERT_EQ(c2, 200) << body2;
  auto avg = json_of(body2).as_object();
  EXPECT_EQ(avg.at("agg").as_string(), "avg");
  double total = 0;
  for (const auto& v : avg.at("value").as_array()) total += v.to_number<double>();
  EXPECT_GE(avg.at("ts").as_array().size(), 3u);
  EXPECT_LE(avg.at("ts").as_array().size(), 4u);
  EXPECT_GT(total, 0);
  auto [bad, why] = server_->http("GET", "/api/v1/devices/pump-1/metrics/temperature?format=rows");
  EXPECT_EQ(bad, 400) << why;
}

TEST_F(ConsoleApi, StreamCarriesTheWatchedDevicesSamplesOnly) {
  const std::string t1 = add_pump("pump-1", "north");
  const std::string t2 = add_pump("pump-2", "north");
  auto script = write("ws.py", kWebSocketClient);
  const std::string ws = "ws://127.0.0.1:" + std::to_string(server_->http_port()) + "/api/v1/stream";
  Background watcher(std::string(kPython) + " " + script + " '" + ws + "?device=pump-1&samples=true&token=" + kAdminToken + "'",
                     dir_.path() + "/watcher.out");
  ASSERT_TRUE(watcher.wait_for("stream.open")) << watcher.text();
  auto a = write("a.jsonl", "{\"values\": {\"temperature\": 71.25}}\n{\"values\": {\"temperature\": 71.5}}\n");
  auto b = write("b.jsonl", "{\"values\": {\"temperature\": 33.75}}\n");
  ASSERT_EQ(run("mosquitto_pub " + server_->mosquitto_args("pump-2", t2) + " -q 1 -t devices/pump-2/telemetry -l < " + b).status, 0);
  ASSERT_EQ(run("mosquitto_pub " + server_->mosquitto_args("pump-1", t1) + " -q 1 -t devices/pump-1/telemetry -l < " + a).status, 0);
  ASSERT_TRUE(watcher.wait_for("71.5")) << watcher.text();
  const std::string out = watcher.text();
  EXPECT_NE(out.find("\"event\":\"samples\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"device\":\"pump-1\""), std::string::npos) << out;
  EXPECT_NE(out.find("71.25"), std::string::npos) << out;
  EXPECT_EQ(out.find("pump-2"), std::string::npos) << "another device's samples reached the stream: " << out;
  EXPECT_EQ(out.find("33.75"), std::string::npos) << out;

  // samples=true names one device; a bad value is refused with a reason.
  Background whole(std::string(kPython) + " " + script + " '" + ws + "?samples=true&token=" + kAdminToken + "'", dir_.path() + "/whole.out");
  EXPECT_TRUE(whole.wait_for("refused 400")) << whole.text();
  Background bad(std::string(kPython) + " " + script + " '" + ws + "?device=pump-1&samples=yes&token=" + kAdminToken + "'", dir_.path() + "/bad.out");
  EXPECT_TRUE(bad.wait_for("refused 400")) << bad.text();
}

}  // namespace
}  // namespace fieldline::itest
