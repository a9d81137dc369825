// MQTT session behaviour against the real binary: keep-alive, wills (with MQTT 5 delays),
// persistent sessions with stored subscriptions and retransmission, session expiry, topic
// aliases and the client's receive maximum and maximum packet size.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "harness.h"

namespace fieldline::itest {

namespace mq = transport::mqtt;
using namespace std::chrono_literals;

class MqttSession : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data");
    server_->start();
  }
  mq::Connect connect_packet(uint8_t version, const std::string& device, const std::string& token, const std::string& client_id) {
    mq::Connect c;
    c.version = version;
    c.client_id = client_id;
    c.keep_alive = 60;
    c.username = device;
    c.password = token;
    return c;
  }
  // An MQTT 5 session that outlives its connection by `expiry_s`, subscribed to the device's
  // commands, left with a clean DISCONNECT.
  void persistent_subscription(const std::string& device, const std::string& token, const std::string& client_id,
                               uint32_t expiry_s) {
    auto c5 = connect_packet(5, device, token, client_id);
    c5.clean_start = false;
    c5.properties.session_expiry_interval = expiry_s;
    RawMqtt c(server_->mqtt_port());
    ASSERT_TRUE(c.connect(c5));
    mq::Subscribe s;
    s.packet_id = 1;
    s.filters = {{"devices/" + device + "/commands/#", 1}};
    c.send(s, 5);
    ASSERT_TRUE(c.receive(5));
    c.send(mq::Disconnect{}, 5);
    EXPECT_TRUE(c.wait_closed(2000));
  }
  // Sends a command through the REST API; returns how many sessions it reached.
  int command(const std::string& device, const std::string& name, const std::string& body) {
    auto [code, out] = server_->http("POST", "/api/v1/devices/" + device + "/commands/" + name, body);
    EXPECT_EQ(code, 202) << out;
    auto pos = out.find("\"delivered_to_sessions\":");
    return pos == std::string::npos ? -1 : std::stoi(out.substr(pos + 24));
  }
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(MqttSession, KeepAliveTimeoutDisconnectsSilentClientsOnly) {
  std::string token = server_->add_device("k1");
  // A client that sends PINGREQ within its keep-alive stays connected.
  RawMqtt pinger(server_->mqtt_port());
  ASSERT_EQ(pinger.connect(4, "k1", token, 1, "k1-c"), 0);
  for (int i = 0; i < 6; ++i) {
    pinger.send(mq::Pingreq{}, 4);
    auto pong = pinger.receive(4, 2000);
    ASSERT_TRUE(pong && std::holds_alternative<mq::Pingresp>(*pong)) << "ping " << i;
    std::this_thread::sleep_for(500ms);
  }
  // Silent ones are closed after 1.5 x keep-alive: MQTT 5 learns why (0x8D); 3.1.1 has no
  // DISCONNECT from the server, only a close.
  auto t0 = std::chrono::steady_clock::now();
  RawMqtt v5(server_->mqtt_port()), v3(server_->mqtt_port());
  ASSERT_EQ(v5.connect(5, "k1", token, 1, "k1-a"), 0);
  ASSERT_EQ(v3.connect(4, "k1", token, 1, "k1-b"), 0);
  auto d = v5.receive(5, 4000);
  ASSERT_TRUE(d && std::holds_alternative<mq::Disconnect>(*d));
  EXPECT_EQ(std::get<mq::Disconnect>(*d).reason, mq::reason::keep_alive_timeout);
  EXPECT_TRUE(v3.wait_closed(4000));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 1400ms);  // not before 1.5 x keep-alive
  EXPECT_LT(waited, 3s);
  EXPECT_GE(server_->metric("fieldline_mqtt_protocol_errors_total", "reason=\"keep_alive_timeout\""), 2);
}

TEST_F(MqttSession, WillIsStoredWhenTheConnectionDropsNotOnDisconnect) {
  std::string token = server_->add_device("w1");
  std::string will = "--will-topic devices/w1/telemetry --will-qos 1 --will-payload '{\"values\": {\"link\": \"lost\"}}'";
  // mosquitto_sub killed with SIGKILL: the connection drops without DISCONNECT.
  int pid = fork();
  if (pid == 0) {
    execlp("bash", "bash", "-c",
           ("exec mosquitto_sub " + server_->mosquitto_args("w1", token) + " -i w1-sub " + will + " -t 'devices/w1/commands/#'").c_str(),
           nullptr);
    _exit(127);
  }
  for (int i = 0; i < 100 && server_->metric("fieldline_mqtt_connections") < 1; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(server_->metric("fieldline_mqtt_connections"), 1);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  boost::json::array points;
  for (int i = 0; i < 100 && points.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    points = server_->query("w1", "link");
  }
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].at("value").as_string(), "lost");
  // A clean DISCONNECT discards the will (mosquitto_pub always sends one).
  std::string token2 = server_->add_device("w2");
  ASSERT_EQ(run("mosquitto_pub " + server_->mosquitto_args("w2", token2) +
                " --will-topic devices/w2/telemetry --will-payload '{\"values\": {\"link\": \"lost\"}}' -t devices/w2/telemetry -m '{\"up\": 1}'")
                .status,
            0);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(server_->query("w2", "up").size(), 1u);
  EXPECT_TRUE(server_->query("w2", "link").empty());
}

TEST_F(MqttSession, DelayedWillWaitsAndIsCancelledByAReturningClient) {
  std::string token = server_->add_device("d1");
  auto with_will = [&](bool clean) {
    auto c = connect_packet(5, "d1", token, "d1-client");
    c.clean_start = clean;
    c.properties.session_expiry_interval = 60;
    mq::Will w;
    w.topic = "devices/d1/telemetry";
    w.payload = R"({"values": {"offline": true}})";
    w.properties.will_delay_interval = 2;
    c.will = w;
    return c;
  };
  {
    RawMqtt c(server_->mqtt_port());
    ASSERT_TRUE(c.connect(with_will(true)));
  }  // dropped without DISCONNECT
  std::this_thread::sleep_for(500ms);
  {
    RawMqtt back(server_->mqtt_port());
    auto ack = back.connect(with_will(false));
    ASSERT_TRUE(ack);
    EXPECT_TRUE(ack->session_present);
    std::this_thread::sleep_for(2500ms);
    EXPECT_TRUE(server_->query("d1", "offline").empty()) << "the returning client cancels the delayed will";
  }  // dropped again; nobody comes back this time
  std::this_thread::sleep_for(1000ms);
  EXPECT_TRUE(server_->query("d1", "offline").empty()) << "published before its delay";
  boost::json::array points;
  for (int i = 0; i < 60 && points.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
    points = server_->query("d1", "offline");
  }
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].at("value").as_bool(), true);
}

TEST_F(MqttSession, PersistentSessionKeepsSubscriptionsAndRetransmitsUnacknowledged) {
  std::string token = server_->add_device("p1");
  auto persistent = [&] {
    auto c = connect_packet(5, "p1", token, "p1-client");
    c.clean_start = false;
    c.properties.session_expiry_interval = 300;
    return c;
  };
  uint16_t first_id = 0;
  {
    RawMqtt c(server_->mqtt_port());
    auto ack = c.connect(persistent());
    ASSERT_TRUE(ack);
    EXPECT_FALSE(ack->session_present);
    mq::Subscribe s;
    s.packet_id = 1;
    s.filters = {{"devices/p1/commands/#", 1}};
    c.send(s, 5);
    auto suback = c.receive(5);
    ASSERT_TRUE(suback && std::holds_alternative<mq::Suback>(*suback));
    EXPECT_EQ(std::get<mq::Suback>(*suback).codes, std::vector<uint8_t>{1});
    EXPECT_EQ(command("p1", "open-valve", "{\"n\": 1}"), 1);
    auto pub = c.receive(5);
    ASSERT_TRUE(pub && std::holds_alternative<mq::Publish>(*pub));
    const auto& p = std::get<mq::Publish>(*pub);
    EXPECT_EQ(p.topic, "devices/p1/commands/open-valve");
    EXPECT_EQ(p.qos, 1);
    EXPECT_FALSE(p.dup);
    first_id = p.packet_id;
  }  // dropped without acknowledging
  // While offline, the stored subscription still matches.
  for (int i = 0; i < 50 && server_->metric("fieldline_mqtt_connections") > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(command("p1", "close-valve", "{\"n\": 2}"), 1);
  {
    RawMqtt c(server_->mqtt_port());
    auto ack = c.connect(persistent());
    ASSERT_TRUE(ack);
    EXPECT_TRUE(ack->session_present);
    auto again = c.receive(5);
    ASSERT_TRUE(again && std::holds_alternative<mq::Publish>(*again));
    EXPECT_TRUE(std::get<mq::Publish>(*again).dup);
    EXPECT_EQ(std::get<mq::Publish>(*again).packet_id, first_id);
    EXPECT_EQ(std::get<mq::Publish>(*again).payload, "{\"n\": 1}");
    auto queued = c.receive(5);
    ASSERT_TRUE(queued && std::holds_alternative<mq::Publish>(*queued));
    EXPECT_EQ(std::get<mq::Publish>(*queued).payload, "{\"n\": 2}");
    for (const auto* pkt : {&*again, &*queued}) {
      mq::Ack a;
      a.packet_id = std::get<mq::Publish>(*pkt).packet_id;
      c.send(a, 5);
    }
    std::this_thread::sleep_for(200ms);
  }
  {
    RawMqtt c(server_->mqtt_port());
    ASSERT_TRUE(c.connect(persistent()));
    EXPECT_FALSE(c.receive(5, 500)) << "acknowledged messages are not sent again";
  }
  // The same with a real 3.1.1 client: mosquitto_sub -c keeps its session between runs.
  std::string sub = "mosquitto_sub -V mqttv311 " + server_->mosquitto_args("p1", token) + " -c -i p1-mosq -q 1 -t 'devices/p1/commands/#'";
  ASSERT_EQ(run(sub + " -E").status, 0);  // subscribe, then disconnect
  EXPECT_EQ(command("p1", "reset", "{\"n\": 3}"), 2);
  auto got = run(sub + " -C 1 -W 5 -v");
  EXPECT_EQ(got.status, 0) << got.output;
  EXPECT_EQ(got.output, "devices/p1/commands/reset {\"n\": 3}\n");
}

TEST_F(MqttSession, PersistentSessionsSurviveARestart) {
  std::string token = server_->add_device("r1");
  // The port changes with each start (port 0), so the command line is built when used.
  auto sub = [&] {
    return "mosquitto_sub -V mqttv311 " + server_->mosquitto_args("r1", token) + " -c -i r1-mosq -q 1 -t 'devices/r1/commands/#'";
  };
  ASSERT_EQ(run(sub() + " -E").status, 0);  // subscribe, then disconnect
  persistent_subscription("r1", token, "r1-short", 2);
  server_->terminate();
  server_->start();
  // Both sessions came back with their subscriptions; the short one then expires.
  EXPECT_EQ(command("r1", "first", "1"), 2);
  std::this_thread::sleep_for(3000ms);
  EXPECT_EQ(command("r1", "second", "2"), 1);
  auto got = run(sub() + " -C 2 -W 5 -v");
  EXPECT_EQ(got.status, 0) << got.output;
  EXPECT_EQ(got.output, "devices/r1/commands/first 1\ndevices/r1/commands/second 2\n");
  // A clean session replaces the stored one, which is then gone after another restart.
  ASSERT_EQ(run("mosquitto_sub -V mqttv311 " + server_->mosquitto_args("r1", token) + " -i r1-mosq -t 'devices/r1/commands/#' -E").status, 0);
  server_->terminate();
  server_->start();
  EXPECT_EQ(command("r1", "third", "3"), 0);
}

// A command accepted (202) for a device whose persistent session is offline is kept in the
// registry: it survives kill -9 and is delivered when the client comes back, once — after
// the client's PUBACK it is gone for good.
TEST_F(MqttSession, QueuedCommandsSurviveAKillAndAreDeliveredOnce) {
  std::string token = server_->add_device("q1");
  auto sub = [&](const std::string& extra) {
    return "mosquitto_sub -V mqttv311 " + server_->mosquitto_args("q1", token) + " -c -i q1-mosq -q 1 -t 'devices/q1/commands/#' " + extra;
  };
  auto queued = [&] {
    return run("sqlite3 " + shell_quote(server_->data_dir() + "/registry.db") + " 'SELECT COUNT(*) FROM mqtt_queued'").output;
  };
  ASSERT_EQ(run(sub("-E")).status, 0);  // subscribe, then leave the session behind
  EXPECT_EQ(command("q1", "open-valve", "{\"valve\":3}"), 1);
  EXPECT_EQ(command("q1", "close-valve", "{\"valve\":3}"), 1);
  EXPECT_EQ(queued(), "2\n");
  server_->kill9();
  server_->start();
  // Connected for 3 s, not "-C 2": mosquitto_sub leaves as soon as it has shown the count, and
  // may leave before its PUBACK for the last message is out, which QoS 1 answers by
  // delivering that message again (seen under ASan, where the server is slower).
  auto got = run(sub("-W 3 -v"));
  if (got.output.ends_with("Timed out\n")) got.output.resize(got.output.size() - std::string("Timed out\n").size());
  EXPECT_EQ(got.output, "devices/q1/commands/open-valve {\"valve\":3}\ndevices/q1/commands/close-valve {\"valve\":3}\n");
  // Wait until the registry no longer holds the two messages (QoS 1 would allow them again
  // if killed before that).
  for (int i = 0; i < 50 && queued() != "0\n"; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(queued(), "0\n");
  server_->kill9();
  server_->start();
  auto again = run(sub("-C 1 -W 2 -v"));
  EXPECT_EQ(again.output.find("devices/q1/commands"), std::string::npos) << "delivered twice: " << again.output;
}

TEST_F(MqttSession, SessionExpiresAfterItsInterval) {
  std::string token = server_->add_device("e1");
  persistent_subscription("e1", token, "e1-client", 1);
  EXPECT_EQ(command("e1", "ping", "{}"), 1);  // still within its expiry
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(command("e1", "ping", "{}"), 0);  // expired: nobody stores it any more
  auto c5 = connect_packet(5, "e1", token, "e1-client");
  c5.clean_start = false;
  RawMqtt c(server_->mqtt_port());
  auto ack = c.connect(c5);
  ASSERT_TRUE(ack);
  EXPECT_FALSE(ack->session_present);
}

TEST_F(MqttSession, TopicAliasesReceiveMaximumAndMaximumPacketSize) {
  std::string token = server_->add_device("a1");
  auto c5 = connect_packet(5, "a1", token, "a1-client");
  c5.properties.receive_maximum = 1;
  c5.properties.maximum_packet_size = 100;
  RawMqtt c(server_->mqtt_port());
  auto ack = c.connect(c5);
  ASSERT_TRUE(ack);
  ASSERT_TRUE(ack->properties.topic_alias_maximum);
  // The alias is set with the topic, then used alone.
  for (int i = 1; i <= 2; ++i) {
    mq::Publish p;
    p.qos = 1;
    p.packet_id = static_cast<uint16_t>(i);
    p.topic = i == 1 ? "devices/a1/telemetry" : "";
    p.properties.topic_alias = 3;
    p.payload = "{\"ts\": " + std::to_string(1795395723000LL + i) + ", \"values\": {\"x\": " + std::to_string(i) + "}}";
    c.send(p, 5);
    auto puback = c.receive(5);
    ASSERT_TRUE(puback && std::holds_alternative<mq::Ack>(*puback));
    EXPECT_EQ(std::get<mq::Ack>(*puback).reason, 0);
  }
  EXPECT_EQ(server_->query("a1", "x").size(), 2u);
  // Receive maximum 1: the second command waits for the first one's PUBACK.
  mq::Subscribe s;
  s.packet_id = 9;
  s.filters = {{"devices/a1/commands/#", 1}};
  c.send(s, 5);
  ASSERT_TRUE(c.receive(5));
  EXPECT_EQ(command("a1", "big", std::string(200, 'x')), 1);  // larger than the client's 100 bytes
  EXPECT_EQ(command("a1", "one", "1"), 1);
  EXPECT_EQ(command("a1", "two", "2"), 1);
  auto first = c.receive(5);
  ASSERT_TRUE(first && std::holds_alternative<mq::Publish>(*first));
  EXPECT_EQ(std::get<mq::Publish>(*first).topic, "devices/a1/commands/one");  // "big" is never sent
  EXPECT_FALSE(c.receive(5, 500)) << "a second message in flight beyond the receive maximum";
  mq::Ack a;
  a.packet_id = std::get<mq::Publish>(*first).packet_id;
  c.send(a, 5);
  auto second = c.receive(5);
  ASSERT_TRUE(second && std::holds_alternative<mq::Publish>(*second));
  EXPECT_EQ(std::get<mq::Publish>(*second).topic, "devices/a1/commands/two");
  // An alias beyond the maximum the server announced is a protocol error.
  mq::Publish bad;
  bad.topic = "devices/a1/telemetry";
  bad.properties.topic_alias = static_cast<uint16_t>(*ack->properties.topic_alias_maximum + 1);
  bad.payload = "{\"x\": 3}";
  c.send(bad, 5);
  auto d = c.receive(5);
  ASSERT_TRUE(d) << "closed: " << c.closed();
  ASSERT_TRUE(std::holds_alternative<mq::Disconnect>(*d)) << d->index();
  EXPECT_EQ(std::get<mq::Disconnect>(*d).reason, mq::reason::topic_alias_invalid);
}

}  // namespace fieldline::itest

namespace fieldline::itest {

// With several shards, a connection accepted on one shard moves at CONNECT to the shard that
// owns its device; clients notice nothing and every message is stored once.
TEST(MqttShards, ConnectionsMoveToTheirDevicesShard) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data", {"shards=4"});
  server.start();
  for (int i = 0; i < 12; ++i) {
    std::string id = "s" + std::to_string(i);
    std::string token = server.add_device(id);
    auto r = run("mosquitto_pub -V mqttv5 " + server.mosquitto_args(id, token) + " -q 1 -t devices/" + id +
                 "/telemetry -m '{\"ts\": 1795395723000, \"values\": {\"n\": " + std::to_string(i) + "}}'");
    ASSERT_EQ(r.status, 0) << r.output;
    // A persistent subscription made after moving still receives commands.
    if (i == 0) {
      ASSERT_EQ(run("mosquitto_sub " + server.mosquitto_args(id, token) + " -c -i s0-sub -q 1 -t 'devices/s0/commands/#' -E").status, 0);
    }
  }
  for (int i = 0; i < 12; ++i) {
    auto points = server.query("s" + std::to_string(i), "n");
    ASSERT_EQ(points.size(), 1u) << i;
    EXPECT_EQ(points[0].at("value").to_number<double>(), i);
  }
  // Three in four devices belong to another shard than the one that accepted them.
  EXPECT_GE(server.metric("fieldline_mqtt_connections_moved_total"), 3);
  auto [code, body] = server.http("POST", "/api/v1/devices/s0/commands/ping", "{}");
  EXPECT_EQ(code, 202);
  EXPECT_NE(body.find("\"delivered_to_sessions\":1"), std::string::npos) << body;
}

}  // namespace fieldline::itest
