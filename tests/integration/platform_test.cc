// Integration tests: the real binary, driven by mosquitto_pub/sub, curl and the fieldline CLI.

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <poll.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "harness.h"

namespace fieldline::itest {

namespace mq = transport::mqtt;
using namespace std::chrono_literals;

// One telemetry message per line: {"ts": <distinct ms>, "values": {"n": i}} for i = 1..count.
void write_messages(const std::string& path, int count) {
  std::ofstream out(path);
  for (int i = 1; i <= count; ++i) {
    out << "{\"ts\": " << (1795395723000LL + i) << ", \"values\": {\"n\": " << i << "}}\n";
  }
}

class Platform : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", settings());
    server_->start();
  }
  virtual std::vector<std::string> settings() { return {}; }
  std::string cli(const std::string& args) {
    return std::string(FIELDLINE_BINARY) + " " + args + " --server " + server_->url() + " --token " + kAdminToken;
  }
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(Platform, HealthWithoutTokenEverythingElseNeedsOne) {
  EXPECT_EQ(server_->http("GET", "/healthz", "", "").first, 200);
  EXPECT_EQ(server_->http("GET", "/readyz", "", "").first, 200);
  for (const auto& path : {"/metrics", "/api/v1/devices", "/api/v1/devices/x/metrics", "/api/v1/query?selector=x"}) {
    auto [code, body] = server_->http("GET", path, "", "");
    EXPECT_EQ(code, 401) << path;
    EXPECT_NE(body.find("\"error\""), std::string::npos);
  }
  EXPECT_EQ(server_->http("GET", "/api/v1/devices", "", "wrong-token").first, 401);
  EXPECT_EQ(server_->http("GET", "/api/v1/devices").first, 200);
}

// What is serving, for whoever reads /metrics: the version, and the allocator the build chose
// (the release build links jemalloc; a linker that dropped it would go unnoticed otherwise).
TEST_F(Platform, MetricsSayWhichBuildIsServing) {
  EXPECT_EQ(server_->metric("fieldline_build_info", "allocator=\"" FIELDLINE_EXPECTED_ALLOCATOR "\""), 1);
  EXPECT_EQ(server_->metric("fieldline_build_info", "version=\"" FIELDLINE_VERSION "\""), 1);
  auto version = run(std::string(FIELDLINE_BINARY) + " --version");
  EXPECT_EQ(version.status, 0);
  EXPECT_NE(version.output.find("fieldline " FIELDLINE_VERSION), std::string::npos) << version.output;
}

TEST_F(Platform, DeviceLifecycleThroughTheCli) {
  auto add = run(cli("device add pump-1 --profile pump --tag site=north --tag asset=p1"));
  ASSERT_EQ(add.status, 0) << add.output;
  auto pos = add.output.find("fld_");
  ASSERT_NE(pos, std::string::npos);
  std::string token = add.output.substr(pos, add.output.find('\n', pos) - pos);
  EXPECT_EQ(token.size(), 4u + 43u);  // 256 bits in base64url

  auto list = run(cli("device list --format json"));
  ASSERT_EQ(list.status, 0) << list.output;
  auto devices = boost::json::parse(list.output).as_array();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].at("profile").as_string(), "pump");
  EXPECT_EQ(devices[0].at("tags").at("site").as_string(), "north");
  // The token is stored hashed: it appears nowhere in the registry file.
  EXPECT_EQ(run("grep -c " + shell_quote(token) + " " + server_->data_dir() + "/registry.db").output.substr(0, 1), "0");

  std::string pub = "mosquitto_pub " + server_->mosquitto_args("pump-1", token) + " -q 1 -t devices/pump-1/telemetry -m '{\"t\":1}'";
  EXPECT_EQ(run(pub).status, 0);
  ASSERT_EQ(run(cli("device disable pump-1")).status, 0);
  EXPECT_NE(run(pub).status, 0);
  ASSERT_EQ(run(cli("device enable pump-1")).status, 0);
  EXPECT_EQ(run(pub).status, 0);
  auto rotated = run(cli("device rotate-token pump-1 --format json"));
  ASSERT_EQ(rotated.status, 0) << rotated.output;
  std::string new_token(boost::json::parse(rotated.output).at("token").as_string());
  EXPECT_NE(run(pub).status, 0) << "old token must stop working";
  EXPECT_EQ(run("mosquitto_pub " + server_->mosquitto_args("pump-1", new_token) +
                " -q 1 -t devices/pump-1/telemetry -m '{\"t\":2}'").status, 0);
  // A bare token (line protocol names no device) finds its device, and only the current one.
  // (Lines without a timestamp get receipt time: hours-old fixed times could meet a block cut
  // of that range on a slow machine and be refused as too old.)
  auto [c1, b1] = server_->http("POST", "/api/v2/write", "lp value=1", new_token, "text/plain");
  EXPECT_EQ(c1, 204) << b1;
  EXPECT_EQ(server_->http("POST", "/api/v2/write", "lp value=2", token, "text/plain").first, 401);
  // Tokens survive a restart (the lookup index is rebuilt from the registry).
  server_->terminate();
  server_->start();
  auto [c3, b3] = server_->http("POST", "/api/v2/write", "lp value=3", new_token, "text/plain");
  EXPECT_EQ(c3, 204) << b3;
  EXPECT_EQ(server_->query("pump-1", "lp").size(), 2u);
  auto show = run(cli("device show pump-1 --format json"));
  EXPECT_NE(show.output.find("last_seen"), std::string::npos);
  ASSERT_EQ(run(cli("device delete pump-1")).status, 0);
  EXPECT_EQ(run(cli("device show pump-1")).status, 5);  // not found
  EXPECT_EQ(run(cli("device add 'bad id!'")).status, 6);
}

TEST_F(Platform, MqttTelemetryInEveryShapeIsQueryable) {
  std::string token = server_->add_device("m1", R"({"site":"north"})");
  for (const std::string version : {"mqttv311", "mqttv5"}) {
    std::string base = "mosquitto_pub -V " + version + " " + server_->mosquitto_args("m1", token) + " -q 1 -t devices/m1/telemetry";
    ASSERT_EQ(run(base + " -m '{\"ts\": 1795395723000, \"values\": {\"temp\": 21.5, \"running\": true, \"mode\": \"auto\"}}'").status, 0);
    ASSERT_EQ(run(base + " -m '[{\"ts\": \"2026-11-23T01:02:04Z\", \"values\": {\"temp\": 22}}, {\"ts\": 1795395725000, \"values\": {\"temp\": 23}}]'").status, 0);
    ASSERT_EQ(run(base + " -m '{\"humidity\": 40}'").status, 0);
  }
  auto temp = server_->query("m1", "temp");
  ASSERT_EQ(temp.size(), 3u);  // the second version's resend is idempotent
  EXPECT_EQ(temp[0].at("ts").as_string(), "2026-11-23T01:02:03Z");
  EXPECT_EQ(temp[0].at("value").to_number<double>(), 21.5);
  EXPECT_EQ(temp[2].at("value").to_number<double>(), 23);
  EXPECT_EQ(server_->query("m1", "running")[0].at("value").as_bool(), true);
  EXPECT_EQ(server_->query("m1", "mode")[0].at("value").as_string(), "auto");
  EXPECT_EQ(server_->query("m1", "humidity").size(), 2u);
  // Aggregates through the CLI, in every output format.
  auto q = run(cli("query m1 temp --from 2026-11-23T01:00:00Z --to 2026-11-23T02:00:00Z --step 1h --agg max --format csv"));
  ASSERT_EQ(q.status, 0) << q.output;
  EXPECT_NE(q.output.find("2026-11-23T01:00:00Z,23"), std::string::npos) << q.output;
  auto metrics = server_->http("GET", "/api/v1/devices/m1/metrics");
  EXPECT_NE(metrics.second.find("\"mode\""), std::string::npos);
  // Device tags land on the series: query across devices by tag.
  auto [code, body] = server_->http("GET", "/api/v1/query?selector=" + std::string("temp%7Bsite%3D%22north%22%7D") +
                                               "&from=2026-11-23T01:00:00Z&to=2026-11-23T01:10:00Z&agg=avg&group_by=site");
  ASSERT_EQ(code, 200) << body;
  EXPECT_NE(body.find("\"site\":\"north\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"value\":22"), std::string::npos) << body;
  // So does the device's profile (retention rules and fleet queries select by it).
  std::tie(code, body) = server_->http("GET", "/api/v1/query?selector=" + std::string("temp%7Bprofile%3D%22generic%22%7D") +
                                                  "&from=2026-11-23T01:00:00Z&to=2026-11-23T01:10:00Z&agg=avg&group_by=profile");
  ASSERT_EQ(code, 200) << body;
  EXPECT_NE(body.find("\"profile\":\"generic\""), std::string::npos) << body;
  EXPECT_GE(server_->metric("fieldline_messages_accepted_total", "transport=\"mqtt\""), 6);
}

TEST_F(Platform, HttpTelemetryAndLineProtocolWithClearErrors) {
  std::string token = server_->add_device("h1");
  auto [c1, b1] = server_->http("POST", "/api/v1/devices/h1/telemetry", R"({"ts": 1795395723000, "values": {"temp": 20}})", token);
  EXPECT_EQ(c1, 204) << b1;
  auto [c2, b2] = server_->http("POST", "/api/v2/write?precision=s", "env,room=a temp=21.5,hum=40i 1795395724\nenv value=3 1795395725\n",
                                token, "text/plain");
  EXPECT_EQ(c2, 204) << b2;
  EXPECT_EQ(server_->query("h1", "env_temp").size(), 1u);
  EXPECT_EQ(server_->query("h1", "env").size(), 1u);
  // Influx-style "Token" header works too.
  auto r = run("curl -s -o /dev/null -w '%{http_code}' -XPOST -H 'Authorization: Token " + token + "' " + server_->url() +
               "/api/v2/write --data-binary 'x value=1'");
  EXPECT_EQ(r.output, "204");

  struct Case {
    std::string body;
    int status;
    std::string code;
    std::string where;
  };
  for (const auto& c : std::vector<Case>{
           {"{\"temp\": ", 400, "ingest.bad_payload", "invalid JSON at byte"},
           {R"({"values": {"temp": {"x": 1}}})", 400, "ingest.bad_payload", "values.temp"},
           {R"({"temp": 1e999})", 400, "ingest.bad_payload", "temp"},
           {R"({"ts": 4102444800000, "values": {"temp": 1}})", 422, "ingest.future_timestamp", "temp"},
           {R"({"temp": "hot"})", 422, "ingest.type_conflict", "temp"},
       }) {
    auto [code, body] = server_->http("POST", "/api/v1/devices/h1/telemetry", c.body, token);
    EXPECT_EQ(code, c.status) << c.body << " -> " << body;
    auto v = boost::json::parse(body);
    EXPECT_EQ(v.at("error").at("code").as_string(), c.code) << body;
    EXPECT_NE(std::string(v.at("error").at("message").as_string()).find(c.where), std::string::npos) << body;
  }
  auto [c3, b3] = server_->http("POST", "/api/v2/write", "ok value=1\nbad value=x\n", token, "text/plain");
  EXPECT_EQ(c3, 400);
  EXPECT_NE(b3.find("line 2"), std::string::npos) << b3;
  // Another device's token cannot write here.
  std::string other = server_->add_device("h2");
  EXPECT_EQ(server_->http("POST", "/api/v1/devices/h1/telemetry", R"({"t": 1})", other).first, 401);
  // The admin writing for devices: an unknown one is 404, a disabled one 403.
  EXPECT_EQ(server_->http("POST", "/api/v2/write", "env,device=nobody value=1", kAdminToken, "text/plain").first, 404);
  ASSERT_EQ(server_->http("POST", "/api/v1/devices/h2/disable").first, 200);
  auto [c4, b4] = server_->http("POST", "/api/v2/write", "env,device=h2 value=1", kAdminToken, "text/plain");
  EXPECT_EQ(c4, 403) << b4;
  EXPECT_NE(b4.find("disabled"), std::string::npos) << b4;
  EXPECT_EQ(server_->http("POST", "/api/v1/devices/h2/telemetry", R"({"t": 1})").first, 403);
  EXPECT_GE(server_->metric("fieldline_messages_rejected_total", "transport=\"http\""), 4);
}

TEST_F(Platform, BadMqttInputIsRefusedCountedAndDisturbsNoOne) {
  std::string good_token = server_->add_device("good");
  std::string token = server_->add_device("bad");
  // A well-behaved device publishes throughout.
  RawMqtt good(server_->mqtt_port());
  ASSERT_EQ(good.connect(5, "good", good_token, 60, "good"), 0);
  int good_id = 1;
  auto good_publish = [&] {
    mq::Publish p;
    p.qos = 1;
    p.packet_id = static_cast<uint16_t>(good_id);
    p.topic = "devices/good/telemetry";
    p.payload = "{\"ts\": " + std::to_string(1795395723000 + good_id) + ", \"values\": {\"v\": " + std::to_string(good_id) + "}}";
    ++good_id;
    good.send(p, 5);
    auto ack = good.receive(5);
    ASSERT_TRUE(ack && std::holds_alternative<mq::Ack>(*ack));
    EXPECT_EQ(std::get<mq::Ack>(*ack).reason, 0);
  };
  good_publish();

  // Wrong or missing token.
  EXPECT_EQ(RawMqtt(server_->mqtt_port()).connect(5, "bad", "nope"), mq::reason::bad_username_or_password);
  EXPECT_EQ(RawMqtt(server_->mqtt_port()).connect(4, "bad", "nope"), 4);
  EXPECT_NE(run("mosquitto_pub " + server_->mosquitto_args("bad", "wrong") + " -t devices/bad/telemetry -m 1").status, 0);
  // Wrong protocol level: CONNACK 0x01 and close.
  {
    RawMqtt c(server_->mqtt_port());
    mq::Connect conn;
    conn.version = 4;
    conn.client_id = "x";
    std::string bytes;
    mq::encode(conn, 4, bytes);
    bytes[8] = 3;
    c.send_bytes(bytes);
    auto ack = c.receive(4);
    ASSERT_TRUE(ack);
    EXPECT_EQ(std::get<mq::Connack>(*ack).code, 1);
    EXPECT_TRUE(c.wait_closed(2000));
  }
  // Truncated/malformed packet after CONNECT (MQTT 5: DISCONNECT 0x81).
  {
    RawMqtt c(server_->mqtt_port());
    ASSERT_EQ(c.connect(5, "bad", token), 0);
    c.send_bytes(std::string("\x30\xff\xff\xff\xff\x01", 6));
    auto d = c.receive(5);
    ASSERT_TRUE(d && std::holds_alternative<mq::Disconnect>(*d));
    EXPECT_EQ(std::get<mq::Disconnect>(*d).reason, mq::reason::malformed_packet);
    EXPECT_TRUE(c.wait_closed(2000));
  }
  // Invalid UTF-8 and wildcards in a topic; oversize packet.
  auto expect_disconnect = [&](const std::string& raw, uint8_t reason) {
    RawMqtt c(server_->mqtt_port());
    ASSERT_EQ(c.connect(5, "bad", token), 0);
    c.send_bytes(raw);
    auto d = c.receive(5);
    ASSERT_TRUE(d && std::holds_alternative<mq::Disconnect>(*d)) << "expected DISCONNECT";
    EXPECT_EQ(std::get<mq::Disconnect>(*d).reason, reason);
  };
  {
    mq::Publish p;
    p.topic = std::string("devices/bad/\xff", 13);
    p.payload = "{}";
    std::string b;
    mq::encode(p, 5, b);
    expect_disconnect(b, mq::reason::malformed_packet);
    p.topic = "devices/#";
    b.clear();
    mq::encode(p, 5, b);
    expect_disconnect(b, mq::reason::protocol_error);
    p.topic = "devices/bad/telemetry";
    p.payload = std::string(2 << 20, 'x');
    b.clear();
    mq::encode(p, 5, b);
    expect_disconnect(b, mq::reason::packet_too_large);
  }
  // Payload problems: MQTT 5 PUBACK with a reason code, the connection stays up.
  {
    RawMqtt c(server_->mqtt_port());
    ASSERT_EQ(c.connect(5, "bad", token), 0);
    struct Case {
      std::string topic, payload;
      uint8_t reason;
    };
    uint16_t id = 1;
    for (const auto& cs : std::vector<Case>{
             {"devices/bad/telemetry", "{not json", mq::reason::payload_format_invalid},
             {"devices/bad/telemetry", "{\"t\": 1e999}", mq::reason::payload_format_invalid},
             {"devices/bad/telemetry", "{\"t\": 1}", 0},
             {"devices/bad/telemetry", "{\"t\": \"changed type\"}", mq::reason::payload_format_invalid},
             {"devices/bad/telemetry", "{\"ts\": 4102444800000, \"values\": {\"t\": 2}}", mq::reason::payload_format_invalid},
             {"devices/good/telemetry", "{\"t\": 1}", mq::reason::not_authorized},
             {"devices/bad/whatever", "{\"t\": 1}", mq::reason::topic_name_invalid},
         }) {
      mq::Publish p;
      p.qos = 1;
      p.packet_id = id++;
      p.topic = cs.topic;
      p.payload = cs.payload;
      c.send(p, 5);
      auto ack = c.receive(5);
      ASSERT_TRUE(ack && std::holds_alternative<mq::Ack>(*ack)) << cs.payload;
      EXPECT_EQ(std::get<mq::Ack>(*ack).reason, cs.reason) << cs.topic << " " << cs.payload;
      if (cs.reason != 0) {
        EXPECT_TRUE(std::get<mq::Ack>(*ack).properties.reason_string) << cs.payload;
      }
      good_publish();
    }
  }
  // MQTT 3.1.1 has no reason codes: an ACL violation closes the connection.
  {
    RawMqtt c(server_->mqtt_port());
    ASSERT_EQ(c.connect(4, "bad", token), 0);
    mq::Publish p;
    p.qos = 1;
    p.packet_id = 1;
    p.topic = "devices/good/telemetry";
    p.payload = "{\"t\":1}";
    c.send(p, 4);
    EXPECT_TRUE(c.wait_closed(2000));
  }
  // Subscriptions outside devices/{id}/commands/# are refused.
  {
    RawMqtt c(server_->mqtt_port());
    ASSERT_EQ(c.connect(5, "bad", token), 0);
    mq::Subscribe s;
    s.packet_id = 1;
    s.filters = {{"devices/good/commands/#", 1}, {"devices/bad/commands/#", 1}};
    c.send(s, 5);
    auto ack = c.receive(5);
    ASSERT_TRUE(ack && std::holds_alternative<mq::Suback>(*ack));
    EXPECT_EQ(std::get<mq::Suback>(*ack).codes, (std::vector<uint8_t>{mq::reason::not_authorized, 1}));
  }
  good_publish();
  EXPECT_EQ(server_->query("good", "v").size(), static_cast<size_t>(good_id - 1));
  EXPECT_EQ(server_->query("bad", "t").size(), 1u);
  EXPECT_GE(server_->metric("fieldline_mqtt_protocol_errors_total"), 4);
  EXPECT_GE(server_->metric("fieldline_messages_rejected_total", "ingest.bad_payload"), 2);
  EXPECT_GE(server_->metric("fieldline_messages_rejected_total", "mqtt.not_authorized"), 2);
  EXPECT_GE(server_->metric("fieldline_messages_rejected_total", "ingest.type_conflict"), 1);
  EXPECT_GE(server_->metric("fieldline_messages_rejected_total", "ingest.future_timestamp"), 1);
  EXPECT_TRUE(server_->running());
}

TEST_F(Platform, DisabledDeviceIsDisconnectedAtOnce) {
  std::string token = server_->add_device("d1");
  RawMqtt c(server_->mqtt_port());
  ASSERT_EQ(c.connect(5, "d1", token), 0);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(server_->http("POST", "/api/v1/devices/d1/disable").first, 200);
  auto d = c.receive(5, 2000);
  ASSERT_TRUE(d && std::holds_alternative<mq::Disconnect>(*d));
  EXPECT_EQ(std::get<mq::Disconnect>(*d).reason, mq::reason::administrative_action);
  EXPECT_TRUE(c.wait_closed(1000));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(Platform, CommandsReachSubscribersWithMosquittoSub) {
  std::string token = server_->add_device("c1");
  std::string out = dir_.path() + "/sub.out";
  int pid = fork();
  if (pid == 0) {
    execlp("bash", "bash", "-c",
           ("mosquitto_sub -V mqttv5 " + server_->mosquitto_args("c1", token) + " -i c1-sub -q 1 -t 'devices/c1/commands/#' -C 1 -v -W 10 > " + out).c_str(),
           nullptr);
    _exit(127);
  }
  // Deliver once the subscription exists.
  for (int i = 0; i < 100; ++i) {
    auto [code, body] = server_->http("POST", "/api/v1/devices/c1/commands/reboot", "{\"delay_s\": 5}");
    ASSERT_EQ(code, 202) << body;
    if (body.find("\"delivered_to_sessions\":1") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_EQ(run("cat " + out).output, "devices/c1/commands/reboot {\"delay_s\": 5}\n");
}

TEST_F(Platform, SigtermStopsWithinFiveSecondsAndKeepsEverything) {
  std::string token = server_->add_device("s1");
  std::string input = dir_.path() + "/msgs.txt";
  write_messages(input, 200);
  ASSERT_EQ(run("mosquitto_pub " + server_->mosquitto_args("s1", token) + " -q 1 -t devices/s1/telemetry -l < " + input).status, 0);
  auto [status, secs] = server_->terminate();
  EXPECT_EQ(status, 0);
  EXPECT_LT(secs, 5.0);
  server_->start();
  EXPECT_EQ(server_->query("s1", "n").size(), 200u);
}

TEST_F(Platform, ConfigPrintShowsFlagsAndEnvironment) {
  auto r = run("FIELDLINE_TSDB_FSYNC=always " + std::string(FIELDLINE_BINARY) + " config print --mqtt-listen 127.0.0.1:1999 --set tsdb.retention=90d");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("fsync = \"always\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("listen = \"127.0.0.1:1999\""), std::string::npos);
  EXPECT_NE(r.output.find("retention = \"90d\""), std::string::npos);
  EXPECT_NE(run(std::string(FIELDLINE_BINARY) + " config print --set tsdb.fsync=sometimes").status, 0);
}

class PlatformShortTimeouts : public Platform {
  std::vector<std::string> settings() override {
    return {"mqtt.connect_timeout=1s", "mqtt.max_outbound_bytes=262144"};
  }
};

TEST_F(PlatformShortTimeouts, TenThousandSilentConnectionsTimeOut) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 30000);
  setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 11000) GTEST_SKIP() << "the file-descriptor limit here is below 11000";
  std::string token = server_->add_device("alive");
  std::vector<int> fds;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server_->mqtt_port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 10000; ++i) {
    // CLOEXEC: the peers started below must not inherit 10,000 sockets.
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << i;
    fds.push_back(fd);
  }
  // A real device is served meanwhile.
  EXPECT_EQ(run("mosquitto_pub " + server_->mosquitto_args("alive", token) + " -q 1 -t devices/alive/telemetry -m '{\"x\":1}'").status, 0);
  // All of them are closed by the server after the 1 s CONNECT timeout.
  size_t closed = 0;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  std::vector<bool> done(fds.size(), false);
  while (closed < fds.size() && std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < fds.size(); ++i) {
      if (done[i]) continue;
      pollfd p{fds[i], POLLIN, 0};
      if (poll(&p, 1, 0) > 0) {
        char c;
        if (recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0) {
          done[i] = true;
          ++closed;
        }
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  for (int fd : fds) close(fd);
  EXPECT_EQ(closed, fds.size());
  EXPECT_GE(server_->metric("fieldline_mqtt_protocol_errors_total", "connect_timeout"), 10000);
  EXPECT_EQ(server_->query("alive", "x").size(), 1u);
}

TEST_F(PlatformShortTimeouts, ClientThatNeverReadsIsDropped) {
  std::string token = server_->add_device("slow");
  std::string other = server_->add_device("other");
  RawMqtt c(server_->mqtt_port());
  int small = 4096;
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_EQ(c.connect(5, "slow", token), 0);
  mq::Subscribe s;
  s.packet_id = 1;
  s.filters = {{"devices/slow/commands/#", 0}};
  c.send(s, 5);
  ASSERT_TRUE(c.receive(5));
  std::string big(60000, 'x');
  for (int i = 0; i < 200 && server_->metric("fieldline_mqtt_protocol_errors_total", "slow_consumer") == 0; ++i) {
    server_->http("POST", "/api/v1/devices/slow/commands/fill", big);
  }
  EXPECT_GE(server_->metric("fieldline_mqtt_protocol_errors_total", "slow_consumer"), 1);
  EXPECT_EQ(run("mosquitto_pub " + server_->mosquitto_args("other", other) + " -q 1 -t devices/other/telemetry -m '{\"x\":1}'").status, 0);
}

// 10,000 QoS 1 messages; SIGKILL midway; restart: every PUBACKed message is queryable and
// none is stored twice.
TEST_F(Platform, KillNineMidwayLosesNothingAcknowledged) {
  std::string token = server_->add_device("k1");
  std::string input = dir_.path() + "/msgs.txt";
  write_messages(input, 10000);
  std::string log = dir_.path() + "/pub.log";
  int pid = fork();
  if (pid == 0) {
    execlp("bash", "bash", "-c",
           ("exec mosquitto_pub -d " + server_->mosquitto_args("k1", token) + " -q 1 -t devices/k1/telemetry -l < " + input +
            " > " + log + " 2>&1").c_str(), nullptr);
    _exit(127);
  }
  // Kill once a few thousand acknowledgements have come back.
  for (int i = 0; i < 400; ++i) {
    auto count = run("grep -c 'received PUBACK' " + log + " 2>/dev/null || true").output;
    if (std::atoi(count.c_str()) >= 3000) break;
    std::this_thread::sleep_for(25ms);
  }
  server_->kill9();
  // mosquitto_pub keeps trying to reconnect in line mode; nothing more can be acknowledged.
  std::this_thread::sleep_for(200ms);
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  std::set<int> acked;
  {
    auto out = run("grep -o 'received PUBACK (Mid: [0-9]*' " + log + " | grep -o '[0-9]*$'").output;
    std::istringstream in(out);
    int mid;
    while (in >> mid) acked.insert(mid);
  }
  ASSERT_GT(acked.size(), 100u) << run("tail -5 " + log).output;
  ASSERT_LT(acked.size(), 10000u) << "the kill came too late to test anything";
  server_->start();
  auto points = server_->query("k1", "n");
  std::map<int, int> seen;
  for (const auto& p : points) ++seen[static_cast<int>(p.at("value").to_number<double>())];
  for (int mid : acked) EXPECT_EQ(seen.count(mid), 1u) << "acknowledged message " << mid << " lost";
  for (const auto& [n, count] : seen) EXPECT_EQ(count, 1) << "message " << n << " stored twice";
  // The count aggregate over storage agrees: no duplicate rows hidden behind the raw view.
  auto agg = server_->query("k1", "n", "&agg=count");
  ASSERT_EQ(agg.size(), 1u);
  EXPECT_EQ(static_cast<size_t>(agg[0].at("value").to_number<double>()), points.size());
}

}  // namespace fieldline::itest

namespace fieldline::itest {

// A server-wide budget of bytes awaiting durability so small that every batch exceeds it: the
// connections take turns (each paused while anything is pending), and nothing stalls or is lost.
class PlatformTinyPendingBudget : public Platform {
  std::vector<std::string> settings() override { return {"mqtt.max_pending_bytes=1"}; }
};

TEST_F(PlatformTinyPendingBudget, ConnectionsTakeTurnsAndEveryMessageIsStored) {
  constexpr int kDevices = 4, kMessages = 2000;
  std::string input = dir_.path() + "/msgs.txt";
  write_messages(input, kMessages);
  std::string publishers;
  for (int d = 0; d < kDevices; ++d) {
    const std::string id = "budget-" + std::to_string(d);
    publishers += "mosquitto_pub " + server_->mosquitto_args(id, server_->add_device(id)) + " -q 1 -t devices/" + id + "/telemetry -l < " +
                  input + " & ";
  }
  ASSERT_EQ(run(publishers + "wait", 120).status, 0);
  for (int d = 0; d < kDevices; ++d) {
    auto agg = server_->query("budget-" + std::to_string(d), "n", "&agg=count");
    ASSERT_EQ(agg.size(), 1u);
    EXPECT_EQ(agg[0].at("value").to_number<double>(), kMessages) << "device " << d;
  }
  // The budget did hold connections back (without it this test would pass as well).
  EXPECT_GT(server_->metric("fieldline_mqtt_read_pauses_total", "reason=\"pending_budget\""), 0);
}

TEST_F(Platform, ImportExportInspectAndVerify) {
  server_->add_device("imp-1");
  server_->add_device("imp-2");
  std::string csv = dir_.path() + "/in.csv";
  {
    std::ofstream out(csv);
    out << "device,metric,ts,value\n";
    for (int i = 0; i < 3000; ++i) {
      out << "imp-" << (1 + i % 2) << ",temp," << (1795395723000LL + i * 1000) << "," << (20 + i % 10) << "\n";
    }
  }
  auto imp = run(std::string(FIELDLINE_BINARY) + " import " + csv + " --server " + server_->url() + " --token " + kAdminToken);
  ASSERT_EQ(imp.status, 0) << imp.output;
  EXPECT_NE(imp.output.find("imported 3000 rows"), std::string::npos) << imp.output;
  EXPECT_EQ(server_->query("imp-1", "temp").size(), 1500u);
  auto exp = run(std::string(FIELDLINE_BINARY) + " export --selector 'temp{device=~\"imp-.*\"}' --from 2026-11-23T00:00:00Z --to 2026-11-24T00:00:00Z --format csv --server " +
                 server_->url() + " --token " + kAdminToken);
  ASSERT_EQ(exp.status, 0) << exp.output;
  EXPECT_EQ(std::count(exp.output.begin(), exp.output.end(), '\n'), 3001) << exp.output.substr(0, 300);
  EXPECT_NE(exp.output.find("imp-2,temp,profile=generic;protocol=lineproto,2026-11-23T01:02:04Z,21"), std::string::npos) << exp.output.substr(0, 300);
  // Offline tools on the data directory after a clean stop.
  ASSERT_EQ(server_->terminate().first, 0);
  auto inspect = run(std::string(FIELDLINE_BINARY) + " tsdb inspect " + server_->data_dir() + " --format json");
  ASSERT_EQ(inspect.status, 0) << inspect.output;
  auto v = boost::json::parse(inspect.output);
  EXPECT_EQ(v.at("series").to_number<int>(), 2);
  EXPECT_GE(v.at("samples").to_number<int64_t>(), 3000);
  EXPECT_GT(v.at("bytes").to_number<int64_t>(), 0);
  EXPECT_EQ(run(std::string(FIELDLINE_BINARY) + " tsdb verify " + server_->data_dir()).status, 0);
  // Damage a WAL record: verify names the file and fails.
  auto seg = run("ls " + server_->data_dir() + "/tsdb/shard-*/wal/* | xargs ls -S | head -1").output;
  seg.erase(seg.find_last_not_of("\n") + 1);
  ASSERT_FALSE(seg.empty());
  run("printf '\\xff\\xff\\xff' | dd of=" + seg + " bs=1 seek=40 conv=notrunc 2>/dev/null");
  auto verify = run(std::string(FIELDLINE_BINARY) + " tsdb verify " + server_->data_dir());
  EXPECT_EQ(verify.status, 1) << verify.output;
  EXPECT_NE(verify.output.find(seg + " at offset"), std::string::npos) << verify.output;
  // The server still starts and reports what it dropped.
  server_->start();
  EXPECT_NE(server_->log().find("WAL damage"), std::string::npos);
}

}  // namespace fieldline::itest

namespace fieldline::itest {

// TLS is one setting away: a certificate and key turn on MQTT over TLS and HTTPS beside the
// plain listeners. Real clients verify the server against the certificate.
class PlatformTls : public Platform {
 protected:
  std::vector<std::string> settings() override {
    cert_ = dir_.path() + "/server.pem";
    key_ = dir_.path() + "/server.key";
    auto r = run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fieldline-test -addext subjectAltName=IP:127.0.0.1 -keyout " +
                 key_ + " -out " + cert_ + " 2>&1");
    EXPECT_EQ(r.status, 0) << r.output;
    return {"tls.cert_file=" + cert_, "tls.key_file=" + key_, "mqtt.tls_listen=127.0.0.1:0", "http.tls_listen=127.0.0.1:0"};
  }
  int port(const std::string& name) {
    auto listen = boost::json::parse(run("cat " + server_->data_dir() + "/listen.json").output);
    return static_cast<int>(listen.at(name).to_number<int64_t>());
  }
  std::string cert_, key_;
};

TEST_F(PlatformTls, MqttAndHttpsWithVerifiedCertificate) {
  std::string token = server_->add_device("t1");
  std::string mqtts = "-h 127.0.0.1 -p " + std::to_string(port("mqtts")) + " --cafile " + cert_ + " -u t1 -P " + token;
  for (const std::string version : {"mqttv311", "mqttv5"}) {
    auto r = run("mosquitto_pub -V " + version + " " + mqtts + " -q 1 -t devices/t1/telemetry -m '{\"tls_" + version + "\": 1}'");
    EXPECT_EQ(r.status, 0) << r.output;
  }
  EXPECT_EQ(server_->query("t1", "tls_mqttv311").size(), 1u);
  EXPECT_EQ(server_->query("t1", "tls_mqttv5").size(), 1u);
  // HTTPS: the same API, the device's token.
  std::string https = "https://127.0.0.1:" + std::to_string(port("https"));
  auto r = run("curl -s -o /dev/null -w '%{http_code}' --cacert " + cert_ + " -H 'Authorization: Bearer " + token +
               "' -H 'Content-Type: application/json' -d '{\"over_https\": 2}' " + https + "/api/v1/devices/t1/telemetry");
  EXPECT_EQ(r.output, "204");
  EXPECT_EQ(server_->query("t1", "over_https").size(), 1u);
  // A client that does not trust the certificate refuses it; one speaking plain MQTT to the
  // TLS port is dropped and counted, and nobody else notices.
  EXPECT_NE(run("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(port("mqtts")) + " --capath /nonexistent -u t1 -P " + token +
                " -t devices/t1/telemetry -m '{\"x\": 1}'")
                .status,
            0);
  RawMqtt plain(static_cast<uint16_t>(port("mqtts")));
  mq::Connect c;
  c.client_id = "plain";
  c.username = "t1";
  c.password = token;
  plain.send(c, 4);
  EXPECT_TRUE(plain.wait_closed(5000));
  EXPECT_GE(server_->metric("fieldline_mqtt_protocol_errors_total", "reason=\"tls_handshake\""), 1);
  EXPECT_EQ(run("mosquitto_pub " + server_->mosquitto_args("t1", token) + " -q 1 -t devices/t1/telemetry -m '{\"plain\": 3}'").status, 0);
  EXPECT_EQ(server_->query("t1", "plain").size(), 1u);
}

}  // namespace fieldline::itest
