// Alarms end to end: telemetry over MQTT (mosquitto_pub) becomes an alarm that reaches a
// WebSocket subscriber (Python's websockets), an MQTT integrator (mosquitto_sub) and a webhook
// (Python's http.server, checking the signature with Python's hmac); operators act on it with
// the CLI and curl; it survives kill -9.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "contract_fixture.h"
#include "peers.h"

namespace fieldline::itest {
namespace {

using namespace std::chrono_literals;

constexpr const char* kWebhookReceiver = R"(import http.server, hmac, hashlib, sys, json
secret = sys.argv[2].encode()
failures = [int(sys.argv[3])]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        if failures[0] > 0:
            failures[0] -= 1
            self.send_response(503); self.end_headers(); return
        ts = self.headers['X-Fieldline-Timestamp']
        expected = 'sha256=' + hmac.new(secret, ts.encode() + b'.' + body, hashlib.sha256).hexdigest()
        print(json.dumps({"event": self.headers['X-Fieldline-Event'], "delivery": self.headers['X-Fieldline-Delivery'],
                          "signature_ok": hmac.compare_digest(expected, self.headers['X-Fieldline-Signature']),
                          "body": json.loads(body)}), flush=True)
        self.send_response(204); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
)";

int free_port() {
  static int next = 20000 + static_cast<int>(getpid() % 20000);
  return next++;
}

class Alarms : public ContractFixture {
 protected:
  std::string ws_url(const std::string& query = "") {
    return "ws://127.0.0.1:" + std::to_string(server_->http_port()) + "/api/v1/stream" + query;
  }
  // 400 ordinary readings a second apart, then one far off: a file for mosquitto_pub -l.
  std::string readings(const std::string& name, double spike, int normal = 400) {
    std::mt19937 rng(5);
    std::normal_distribution<double> noise(0, 1);
    const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
                       1000LL * (normal + 1);
    std::string lines;
    for (int i = 0; i < normal; ++i) {
      lines += "{\"ts\": " + std::to_string(t0 + 1000LL * i) + ", \"values\": {\"temperature\": " + std::to_string(60 + noise(rng)) + "}}\n";
    }
    lines += "{\"ts\": " + std::to_string(t0 + 1000LL * normal) + ", \"values\": {\"temperature\": " + std::to_string(spike) + "}}\n";
    return write(name, lines);
  }
  void publish(const std::string& device, const std::string& token, const std::string& file) {
    auto r = run("mosquitto_pub " + server_->mosquitto_args(device, token) + " -q 1 -t devices/" + device + "/telemetry -l < " + file);
    ASSERT_EQ(r.status, 0) << r.output;
  }
  boost::json::array alarms(const std::string& query = "") {
    auto [code, body] = server_->http("GET", "/api/v1/alarms" + query);
    EXPECT_EQ(code, 200) << body;
    return json_of(body).at("alarms").as_array();
  }
  boost::json::array wait_alarms(const std::string& query, size_t n = 1) {
    boost::json::array out;
    for (int i = 0; i < 200 && out.size() < n; ++i) {
      out = alarms(query);
      if (out.size() < n) std::this_thread::sleep_for(25ms);
    }
    return out;
  }
};

constexpr const char* kDetectors = R"(profile = "pump"
[alarm]
severity = "minor"
runbook = "https://wiki.example/pumps#temperature"
[[rules]]
name = "overheat"
when = "temperature > 150"
severity = "critical"
runbook = "Stop the pump and check the cooling"
)";

TEST_F(Alarms, AnAnomalyReachesEverySubscriberAndOperatorsActOnIt) {
  auto applied = run(cli("detectors apply " + write("pump.toml", kDetectors) + " --format json"));
  ASSERT_EQ(applied.status, 0) << applied.output;
  EXPECT_EQ(json_of(applied.output).at("version").as_int64(), 1);
  std::string token = add_pump("pump-1", "north");

  Background ws(std::string(kPython) + " " + write("ws.py", kWebSocketClient) + " " + shell_quote(ws_url("?device=pump-1")) + " " + kAdminToken,
                dir_.path() + "/ws.out");
  Background integrator("mosquitto_sub -h 127.0.0.1 -p " + std::to_string(server_->mqtt_port()) + " -u '$integrator' -P " + kAdminToken +
                            " -q 1 -t 'alarms/#' -v",
                        dir_.path() + "/integrator.out");
  ASSERT_TRUE(ws.wait_for("stream.open")) << ws.text();
  for (int i = 0; i < 100 && server_->metric("fieldline_mqtt_connections") < 1; ++i) std::this_thread::sleep_for(20ms);
  // A device may not listen to alarms.
  auto denied = run("mosquitto_sub " + server_->mosquitto_args("pump-1", token) + " -t 'alarms/#' -C 1 -W 3");
  EXPECT_NE(denied.output.find("All subscription requests were denied"), std::string::npos) << denied.output;

  publish("pump-1", token, readings("spike.jsonl", 95));
  auto raised = wait_alarms("?device=pump-1&type=anomaly");
  ASSERT_EQ(raised.size(), 1u) << server_->log();
  const auto& a = raised[0].as_object();
  EXPECT_EQ(a.at("severity").as_string(), "minor");
  EXPECT_EQ(a.at("runbook").as_string(), "https://wiki.example/pumps#temperature");
  // "temperature 95, expected 60.3 (ewma)": the value, what normal was, which detector said so.
  const std::string why(a.at("evidence").at("explanation").as_string());
  ASSERT_TRUE(why.starts_with("temperature 95, expected ")) << why;
  const double expected = std::stod(why.substr(std::string("temperature 95, expected ").size()));
  EXPECT_NEAR(expected, 60, 3) << why;
  const int64_t id = a.at("id").as_int64();
  EXPECT_EQ(alarms("?device=pump-1").size(), 1u) << "400 ordinary readings raised nothing else";

  ASSERT_TRUE(ws.wait_for("\"alarm.raised\"")) << ws.text();
  EXPECT_NE(ws.text().find("\"id\":" + std::to_string(id)), std::string::npos);
  ASSERT_TRUE(integrator.wait_for("alarms/pump-1/anomaly {\"event\":\"alarm.raised\"")) << integrator.text();

  // The operator acknowledges with the CLI and comments with curl; both are told to subscribers.
  auto ack = run(cli("alarm ack " + std::to_string(id)));
  ASSERT_EQ(ack.status, 0) << ack.output;
  EXPECT_NE(run(cli("alarm ack " + std::to_string(id))).status, 0) << "acknowledging twice is an error";
  auto [code, body] = server_->http("POST", "/api/v1/alarms/" + std::to_string(id) + "/comment", R"({"text": "fan replaced"})");
  ASSERT_EQ(code, 200) << body;
  auto shown = json_of(run(cli("alarm show " + std::to_string(id) + " --format json")).output);
  EXPECT_TRUE(shown.at("acknowledged").as_bool());
  EXPECT_EQ(shown.at("acknowledged_by").as_string(), "admin");
  EXPECT_EQ(shown.at("comments").as_array()[0].at("text").as_string(), "fan replaced");
  EXPECT_TRUE(ws.wait_for("\"alarm.acknowledged\"")) << ws.text();
  EXPECT_TRUE(ws.wait_for("\"alarm.commented\"")) << ws.text();
  EXPECT_TRUE(integrator.wait_for("\"alarm.acknowledged\"")) << integrator.text();

  // A rule of the profile: over 150 is critical, with its own runbook.
  publish("pump-1", token, write("hot.jsonl", "{\"values\": {\"temperature\": 170}}\n"));
  auto rule = wait_alarms("?type=rule");
  ASSERT_EQ(rule.size(), 1u);
  EXPECT_EQ(rule[0].at("severity").as_string(), "critical");
  EXPECT_EQ(rule[0].at("runbook").as_string(), "Stop the pump and check the cooling");
  auto listed = run(cli("alarm list --severity critical"));
  EXPECT_NE(listed.output.find("rule"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("anomaly"), std::string::npos) << listed.output;
}

TEST_F(Alarms, TheStreamAndAlarmsNeedTheAdminToken) {
  std::string token = add_pump("pump-2", "north");
  Background anonymous(std::string(kPython) + " " + write("ws.py", kWebSocketClient) + " " + shell_quote(ws_url()), dir_.path() + "/anon.out");
  EXPECT_TRUE(anonymous.wait_for("refused 401")) << anonymous.text();
  Background device(std::string(kPython) + " " + write("ws2.py", kWebSocketClient) + " " + shell_quote(ws_url()) + " " + token,
                    dir_.path() + "/device.out");
  EXPECT_TRUE(device.wait_for("refused 401")) << device.text();
  auto [code, body] = server_->http("GET", "/api/v1/alarms", "", token);
  EXPECT_EQ(code, 403) << body;
  auto bad = server_->http("GET", "/api/v1/alarms?state=open");
  EXPECT_EQ(bad.first, 400);
  EXPECT_NE(bad.second.find("state: expected active or cleared"), std::string::npos) << bad.second;
  // An integrator with a wrong password is refused.
  auto wrong = run("mosquitto_sub -h 127.0.0.1 -p " + std::to_string(server_->mqtt_port()) + " -u '$integrator' -P nope -t 'alarms/#' -C 1 -W 3");
  EXPECT_NE(wrong.status, 0);
}

TEST_F(Alarms, RaisedAndAcknowledgedAlarmsSurviveKill9) {
  std::string token = add_pump("pump-3", "north");
  publish("pump-3", token, readings("spike.jsonl", 99));
  auto raised = wait_alarms("?device=pump-3");
  ASSERT_EQ(raised.size(), 1u);
  const std::string id = std::to_string(raised[0].at("id").as_int64());
  auto [code, body] = server_->http("POST", "/api/v1/alarms/" + id + "/acknowledge");
  ASSERT_EQ(code, 200) << body;
  server_->kill9();
  server_->start();
  auto after = alarms("?device=pump-3");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].at("id").as_int64(), raised[0].at("id").as_int64());
  EXPECT_TRUE(after[0].at("acknowledged").as_bool());
  EXPECT_EQ(after[0].at("evidence"), raised[0].at("evidence"));
}

TEST_F(Alarms, WebhooksAreSignedAndRetriedUntilTheReceiverTakesThem) {
  const int port = free_port();
  // The receiver refuses the first two attempts.
  Background receiver(std::string(kPython) + " " + write("hook.py", kWebhookReceiver) + " " + std::to_string(port) + " hook-secret 2",
                      dir_.path() + "/hook.out");
  server_->terminate();
  server_ = std::make_unique<ServerProcess>(dir_.path() + "/data",
                                            std::vector<std::string>{"analytics.webhooks=http://127.0.0.1:" + std::to_string(port) + "/alarms",
                                                                     "analytics.webhook_secret=hook-secret"});
  server_->start();
  std::string token = add_pump("pump-4", "north");
  publish("pump-4", token, readings("spike.jsonl", 99));
  ASSERT_TRUE(receiver.wait_for("alarm.raised", 15s)) << receiver.text() << server_->log();
  auto line = receiver.text().substr(0, receiver.text().find('\n'));
  auto got = json_of(line);
  EXPECT_TRUE(got.at("signature_ok").as_bool()) << line;
  EXPECT_EQ(got.at("body").at("alarm").at("device").as_string(), "pump-4");
  EXPECT_GE(server_->metric("fieldline_webhook_retries_total"), 2);
  EXPECT_EQ(server_->metric("fieldline_webhook_deliveries_total"), 1);
  // The secret is not shown by `config print`.
  auto printed = run(std::string(FIELDLINE_BINARY) + " config print --set analytics.webhook_secret=hook-secret");
  EXPECT_EQ(printed.output.find("hook-secret"), std::string::npos) << printed.output;
}

TEST_F(Alarms, AValueOutsideTheContractSaysWhichRangeItBroke) {
  apply(R"(profile = "pump"
[metrics.temperature]
type = "float"
unit = "Cel"
min = -50
max = 150
)");
  std::string token = add_pump("pump-5", "north");
  publish("pump-5", token, write("hot.jsonl", "{\"values\": {\"temperature\": 60}}\n{\"values\": {\"temperature\": 180}}\n"));
  auto raised = wait_alarms("?type=out_of_range");
  ASSERT_EQ(raised.size(), 1u) << server_->log();
  EXPECT_EQ(raised[0].at("evidence").at("explanation").as_string(),
            "temperature 180 is outside [-50, 150], the range contract pump v1 allows");
  EXPECT_EQ(raised[0].at("severity").as_string(), "minor");
  publish("pump-5", token, write("ok.jsonl", "{\"values\": {\"temperature\": 61}}\n"));
  for (int i = 0; i < 100 && alarms("?type=out_of_range&state=active").size() == 1; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(alarms("?type=out_of_range&state=active").empty()) << "a sample back in range clears it";
}

TEST_F(Alarms, AStoppingServerClosesItsStreamsCleanly) {
  Background ws(std::string(kPython) + " " + write("ws.py", kWebSocketClient) + " " + shell_quote(ws_url()) + " " + kAdminToken,
                dir_.path() + "/ws.out");
  ASSERT_TRUE(ws.wait_for("stream.open")) << ws.text();
  auto [status, seconds] = server_->terminate();
  EXPECT_EQ(status, 0);
  EXPECT_LT(seconds, 5.0);
  EXPECT_TRUE(ws.wait_for("closed 1001 server shutting down")) << ws.text();
}

TEST_F(Alarms, AnAlarmStormIsHeldBackPerChannelAndIngestionGoesOn) {
  server_->terminate();
  server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"analytics.max_new_alarms_per_minute=50",
                                                                                           "analytics.notify_per_second=10"});
  server_->start();
  const int devices = 200;
  for (int d = 0; d < devices; ++d) add_pump("storm-" + std::to_string(d), "north");
  Background ws(std::string(kPython) + " " + write("ws.py", kWebSocketClient) + " " + shell_quote(ws_url()) + " " + kAdminToken,
                dir_.path() + "/ws.out");
  ASSERT_TRUE(ws.wait_for("stream.open")) << ws.text();
  // Every device's history, then every device far off at once: one line-protocol write.
  const int64_t t0 = (std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() - 200) *
                     1'000'000'000LL;
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0, 1);
  std::string lines;
  for (int i = 0; i < 100; ++i) {
    for (int d = 0; d < devices; ++d) {
      lines += "temperature,device=storm-" + std::to_string(d) + " value=" + std::to_string(60 + noise(rng)) + " " +
               std::to_string(t0 + i * 1'000'000'000LL) + "\n";
    }
  }
  for (int d = 0; d < devices; ++d) {
    lines += "temperature,device=storm-" + std::to_string(d) + " value=100000 " + std::to_string(t0 + 100'000'000'000LL) + "\n";
  }
  auto post = [&](const std::string& name, const std::string& body) {
    return run("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer " + std::string(kAdminToken) +
               "' --data-binary @" + write(name, body) + " " + shell_quote(server_->url() + "/api/v2/write"));
  };
  auto stored = post("storm.lp", lines);
  ASSERT_EQ(stored.output, "204") << stored.output;
  // The storm: 50 new alarms a minute of one type, the rest counted, not raised.
  auto raised = wait_alarms("?type=anomaly&limit=1000", 50);
  EXPECT_EQ(raised.size(), 50u);
  for (int i = 0; i < 100 && server_->metric("fieldline_alarms_rate_limited_total") < devices - 50 - 10; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_GE(server_->metric("fieldline_alarms_rate_limited_total"), devices - 50 - 10);
  // The WebSocket got a burst of at most twice its rate, then heard how many it missed.
  ASSERT_TRUE(ws.wait_for("\"alarm.storm\"", 5s)) << ws.text();
  size_t told = 0;
  for (size_t at = 0; (at = ws.text().find("\"alarm.raised\"", at)) != std::string::npos; ++at) ++told;
  EXPECT_LE(told, 20u + 2);
  EXPECT_GT(server_->metric("fieldline_alarm_notifications_dropped_total"), 0);
  // Ingestion went on throughout.
  auto after = post("after.lp", "temperature,device=storm-7 value=61.5 " + std::to_string(t0 + 101'000'000'000LL) + "\n");
  EXPECT_EQ(after.output, "204");
  auto points = server_->query("storm-7", "temperature");
  ASSERT_EQ(points.size(), 102u);
  EXPECT_EQ(points.back().at("value").as_double(), 61.5);
}

}  // namespace
}  // namespace fieldline::itest
