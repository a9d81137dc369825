#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "fieldline/ingest/decode.h"

namespace fieldline::ingest {

constexpr int64_t kNow = 1'795'395'723'000'000'000;

TEST(JsonTelemetry, AllThreeShapes) {
  auto a = decode_json_telemetry(R"({"ts": 1795395723000, "values": {"temp": 21.5, "on": true, "state": "run"}})", kNow);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(a->size(), 3u);
  EXPECT_EQ((*a)[0].ts, 1'795'395'723'000'000'000);
  auto b = decode_json_telemetry(R"([{"ts": "2026-11-23T01:02:03Z", "values": {"t": 1}}, {"ts": 1795395724, "values": {"t": 2}}])", kNow);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ((*b)[1].ts, 1'795'395'724'000'000'000);
  auto c = decode_json_telemetry(R"({"temp": 20, "rpm": 1500})", kNow);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)[0].ts, kNow);
  EXPECT_EQ(std::get<double>((*c)[1].value), 1500.0);
}

// A value is stored as it was sent: any double written with 17 significant digits reads back
// to the same bits, over MQTT/HTTP JSON and SenML alike.
TEST(JsonTelemetry, NumbersReadBackToTheSameBits) {
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> mantissa(-10, 10);
  std::uniform_int_distribution<int> exponent(-30, 30);
  int differ = 0;
  for (int i = 0; i < 20000; ++i) {
    const double x = std::ldexp(mantissa(random), exponent(random));
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", x);
    auto json = decode_json_telemetry(std::string(R"({"ts": 1795395723000, "values": {"x": )") + text + "}}", kNow);
    auto senml = decode_senml_json(std::string(R"([{"n": "x", "t": 1795395723, "v": )") + text + "}]", kNow);
    ASSERT_TRUE(json) << text << json.error().message();
    ASSERT_TRUE(senml) << text << senml.error().message();
    const double a = std::get<double>((*json)[0].value), b = std::get<double>((*senml)[0].value);
    differ += std::memcmp(&a, &x, sizeof x) != 0 || std::memcmp(&b, &x, sizeof x) != 0;
  }
  EXPECT_EQ(differ, 0);
}

TEST(JsonTelemetry, ErrorsSayWhatAndWhere) {
  auto e1 = decode_json_telemetry(R"({"values": {"temp": [1]}})", kNow);
  ASSERT_FALSE(e1);
  EXPECT_NE(e1.error().message().find("values.temp"), std::string::npos);
  auto e2 = decode_json_telemetry(R"([{"values": {"t": 1}}, {"ts": "yesterday", "values": {"t": 1}}])", kNow);
  ASSERT_FALSE(e2);
  EXPECT_NE(e2.error().message().find("[1].ts"), std::string::npos);
  auto e3 = decode_json_telemetry(R"({"temp": 1e999})", kNow);
  ASSERT_FALSE(e3);
  auto e4 = decode_json_telemetry(R"({"temp": 1,)", kNow);
  ASSERT_FALSE(e4);
  EXPECT_NE(e4.error().message().find("invalid JSON at byte"), std::string::npos);
  auto e5 = decode_json_telemetry(R"({"bad name!": 1})", kNow);
  ASSERT_FALSE(e5);
  EXPECT_TRUE(is(e5.error(), Errc::bad_metric));
  EXPECT_FALSE(decode_json_telemetry(R"({"t": null})", kNow));
  EXPECT_FALSE(decode_json_telemetry(R"(42)", kNow));
  EXPECT_FALSE(decode_json_telemetry(R"({})", kNow));
  EXPECT_FALSE(decode_json_telemetry(R"({"ts": NaN, "values": {"t": 1}})", kNow));
}

TEST(LineProtocol, FieldsTagsEscapesAndPrecision) {
  auto r = decode_line_protocol("cpu,host=a\\ b,site=n usage=0.5,count=3i,ok=t,msg=\"hi \\\"x\\\"\" 1700000000\n"
                                "# comment\n\nmem value=12 1700000001\n",
                                core::EpochUnit::seconds, kNow);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].metric, "cpu_usage");
  EXPECT_EQ((*r)[0].tags[0].second, "a b");
  EXPECT_EQ((*r)[0].ts, 1'700'000'000'000'000'000);
  EXPECT_EQ(std::get<double>((*r)[1].value), 3.0);
  EXPECT_EQ(std::get<bool>((*r)[2].value), true);
  EXPECT_EQ(std::get<std::string>((*r)[3].value), "hi \"x\"");
  EXPECT_EQ((*r)[4].metric, "mem");
}

TEST(LineProtocol, ErrorsNameLineAndColumn) {
  auto r = decode_line_protocol("ok value=1\nbad value=abc\n", core::EpochUnit::nanoseconds, kNow);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("line 2, column 11"), std::string::npos) << r.error().message();
  EXPECT_FALSE(decode_line_protocol("nofields\n", core::EpochUnit::nanoseconds, kNow));
  EXPECT_FALSE(decode_line_protocol("m f=\"open\n", core::EpochUnit::nanoseconds, kNow));
  EXPECT_FALSE(decode_line_protocol("m f=1 notatime\n", core::EpochUnit::nanoseconds, kNow));
  EXPECT_FALSE(decode_line_protocol("m,tag f=1\n", core::EpochUnit::nanoseconds, kNow));
}

}  // namespace fieldline::ingest
