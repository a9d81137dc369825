#include <gtest/gtest.h>

#include <random>

#include "fieldline/transport/mqtt/codec.h"

namespace fieldline::transport::mqtt {
namespace {

Packet roundtrip(const Packet& p, uint8_t version) {
  std::string bytes;
  encode(p, version, bytes);
  // CONNECT decodes before the version is known.
  uint8_t decode_version = std::holds_alternative<Connect>(p) ? 0 : version;
  auto d = decode(bytes, decode_version, 0);
  EXPECT_TRUE(d) << (d ? "" : d.error().message());
  EXPECT_TRUE(d && *d);
  EXPECT_EQ((*d)->size, bytes.size());
  return (*d)->packet;
}

std::span<const char> span(const std::string& s) { return {s.data(), s.size()}; }

}  // namespace

class CodecBothVersions : public ::testing::TestWithParam<uint8_t> {};

TEST_P(CodecBothVersions, ConnectWithWillAndCredentials) {
  Connect c;
  c.version = GetParam();
  c.client_id = "pump-1";
  c.clean_start = false;
  c.keep_alive = 30;
  c.username = "pump-1";
  c.password = std::string("s3cr\0t", 6);
  Will w;
  w.topic = "devices/pump-1/telemetry";
  w.payload = "{\"online\":false}";
  w.qos = 1;
  c.will = w;
  if (GetParam() == 5) {
    c.properties.session_expiry_interval = 3600;
    c.properties.receive_maximum = 10;
    c.properties.user_properties = {{"k", "v"}};
  }
  auto out = std::get<Connect>(roundtrip(c, GetParam()));
  EXPECT_EQ(out.version, GetParam());
  EXPECT_EQ(out.client_id, "pump-1");
  EXPECT_FALSE(out.clean_start);
  EXPECT_EQ(out.keep_alive, 30);
  EXPECT_EQ(*out.password, std::string("s3cr\0t", 6));
  ASSERT_TRUE(out.will);
  EXPECT_EQ(out.will->qos, 1);
  EXPECT_EQ(out.will->payload, w.payload);
  if (GetParam() == 5) {
    EXPECT_EQ(*out.properties.session_expiry_interval, 3600u);
    EXPECT_EQ(*out.properties.receive_maximum, 10);
    EXPECT_EQ(out.properties.user_properties.size(), 1u);
  }
}

TEST_P(CodecBothVersions, EveryOtherPacketType) {
  const uint8_t v = GetParam();
  Connack ca;
  ca.session_present = true;
  ca.code = v == 5 ? reason::bad_username_or_password : 4;
  if (v == 5) ca.properties.topic_alias_maximum = 64;
  auto ca2 = std::get<Connack>(roundtrip(ca, v));
  EXPECT_TRUE(ca2.session_present);
  EXPECT_EQ(ca2.code, ca.code);

  Publish p;
  p.qos = 1;
  p.dup = true;
  p.topic = "devices/d/telemetry";
  p.packet_id = 77;
  p.payload = "{\"t\":1}";
  if (v == 5) p.properties.topic_alias = 3;
  auto p2 = std::get<Publish>(roundtrip(p, v));
  EXPECT_EQ(p2.packet_id, 77);
  EXPECT_TRUE(p2.dup);
  EXPECT_EQ(p2.payload, p.payload);
  if (v == 5) {
    EXPECT_EQ(*p2.properties.topic_alias, 3);
  }

  for (auto type : {PacketType::puback, PacketType::pubrec, PacketType::pubrel, PacketType::pubcomp}) {
    Ack a;
    a.type = type;
    a.packet_id = 9;
    if (v == 5) {
      a.reason = reason::payload_format_invalid;
      a.properties.reason_string = "bad json";
    }
    auto a2 = std::get<Ack>(roundtrip(a, v));
    EXPECT_EQ(a2.type, type);
    EXPECT_EQ(a2.packet_id, 9);
    if (v == 5) {
      EXPECT_EQ(a2.reason, reason::payload_format_invalid);
      EXPECT_EQ(*a2.properties.reason_string, "bad json");
    }
  }
  Subscribe s;
  s.packet_id = 5;
  s.filters = {{"devices/d/commands/#", 1}, {"devices/d/commands/reboot", 0}};
  auto s2 = std::get<Subscribe>(roundtrip(s, v));
  EXPECT_EQ(s2.filters, s.filters);
  Suback sa;
  sa.packet_id = 5;
  sa.codes = {1, 0x80};
  EXPECT_EQ(std::get<Suback>(roundtrip(sa, v)).codes, sa.codes);
  Unsubscribe u;
  u.packet_id = 6;
  u.filters = {"a/b"};
  EXPECT_EQ(std::get<Unsubscribe>(roundtrip(u, v)).filters, u.filters);
  Unsuback ua;
  ua.packet_id = 6;
  if (v == 5) ua.codes = {0};
  EXPECT_EQ(std::get<Unsuback>(roundtrip(ua, v)).packet_id, 6);
  EXPECT_TRUE(std::holds_alternative<Pingreq>(roundtrip(Pingreq{}, v)));
  EXPECT_TRUE(std::holds_alternative<Pingresp>(roundtrip(Pingresp{}, v)));
  Disconnect d;
  d.reason = v == 5 ? reason::keep_alive_timeout : 0;
  EXPECT_EQ(std::get<Disconnect>(roundtrip(d, v)).reason, d.reason);
  if (v == 5) {
    Auth au;
    au.reason = 0x18;
    au.properties.authentication_method = "SCRAM";
    EXPECT_EQ(*std::get<Auth>(roundtrip(au, v)).properties.authentication_method, "SCRAM");
  }
}

INSTANTIATE_TEST_SUITE_P(Mqtt, CodecBothVersions, ::testing::Values(4, 5),
                         [](const auto& info) { return info.param == 4 ? "v311" : "v5"; });

TEST(MqttDecode, IncompleteInputAsksForMore) {
  Publish p;
  p.topic = "a";
  p.payload = std::string(300, 'x');
  std::string bytes;
  encode(p, 4, bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode(std::span<const char>(bytes.data(), n), 4, 0);
    ASSERT_TRUE(d);
    EXPECT_FALSE(*d) << n;
  }
}

TEST(MqttDecode, MalformedInputIsRejectedWithAReasonCode) {
  // Remaining length with 5 continuation bytes.
  std::string bad_len = "\x30\xff\xff\xff\xff\x01";
  auto r = decode(span(bad_len), 4, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(reason_code(r.error()), reason::malformed_packet);
  // First packet not CONNECT.
  std::string ping("\xc0\x00", 2);
  r = decode(span(ping), 0, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(reason_code(r.error()), reason::protocol_error);
  // Wrong protocol level.
  Connect c;
  c.version = 4;
  c.client_id = "x";
  std::string bytes;
  encode(c, 4, bytes);
  bytes[8] = 3;
  r = decode(span(bytes), 0, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(reason_code(r.error()), reason::unsupported_protocol_version);
  // Oversize.
  Publish p;
  p.topic = "t";
  p.payload = std::string(2000, 'x');
  bytes.clear();
  encode(p, 4, bytes);
  r = decode(span(bytes), 4, 1024);
  ASSERT_FALSE(r);
  EXPECT_EQ(reason_code(r.error()), reason::packet_too_large);
  // Wildcards in a PUBLISH topic.
  p.payload = "x";
  p.topic = "devices/+/telemetry";
  bytes.clear();
  encode(p, 4, bytes);
  r = decode(span(bytes), 4, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(reason_code(r.error()), reason::protocol_error);
  // Invalid UTF-8 in a topic.
  p.topic = std::string("dev\xc3\x28", 5);
  bytes.clear();
  encode(p, 4, bytes);
  r = decode(span(bytes), 4, 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("UTF-8"), std::string::npos);
  // QoS 3, reserved flags on SUBSCRIBE, DUP on QoS 0.
  for (std::string raw : {std::string("\x36\x03\x00\x01t", 5), std::string("\x80\x06\x00\x01\x00\x01t\x00", 8),
                          std::string("\x38\x03\x00\x01t", 5)}) {
    EXPECT_FALSE(decode(span(raw), 4, 0));
  }
  // Duplicate property in MQTT 5.
  std::string dup_prop = std::string("\x30\x0a\x00\x01t\x06\x01\x01\x01\x01x", 12);
  dup_prop[1] = static_cast<char>(dup_prop.size() - 2);
  EXPECT_FALSE(decode(span(dup_prop), 5, 0));
}

TEST(MqttDecode, RandomBytesNeverCrash) {
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    (void)decode(span(s), static_cast<uint8_t>(i % 3 == 0 ? 0 : (i % 3 == 1 ? 4 : 5)), 4096);
  }
}

TEST(MqttTopics, FiltersAndMatching) {
  EXPECT_TRUE(topic_matches("devices/d/commands/#", "devices/d/commands/reboot"));
  EXPECT_TRUE(topic_matches("devices/d/commands/#", "devices/d/commands"));
  EXPECT_TRUE(topic_matches("devices/+/commands/x", "devices/d/commands/x"));
  EXPECT_FALSE(topic_matches("devices/d/commands/x", "devices/d/commands/y"));
  EXPECT_FALSE(topic_matches("devices/+", "devices/d/commands"));
  EXPECT_TRUE(valid_topic_filter("a/+/b/#"));
  EXPECT_FALSE(valid_topic_filter("a/b#"));
  EXPECT_FALSE(valid_topic_filter("a/#/b"));
  EXPECT_FALSE(valid_topic_filter("a+/b"));
  EXPECT_TRUE(valid_utf8("héllo"));
  EXPECT_FALSE(valid_utf8(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));      // overlong
}

}  // namespace fieldline::transport::mqtt
