// SenML (RFC 8428) in JSON and CBOR, and the mapping decoder for vendor layouts.
#include <gtest/gtest.h>

#include <cstring>

#include "fieldline/ingest/contract.h"
#include "fieldline/ingest/decode.h"

namespace fieldline::ingest {
namespace {

constexpr int64_t kNow = 1'795'400'000'000'000'000;  // receipt time

// ---- CBOR building, for the tests ------------------------------------------------------------
std::string head(int major, uint64_t n) {
  std::string out;
  if (n < 24) {
    out.push_back(static_cast<char>(major << 5 | n));
  } else if (n < 256) {
    out.push_back(static_cast<char>(major << 5 | 24));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(major << 5 | 25));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}
std::string text(const std::string& s) { return head(3, s.size()) + s; }
std::string label(int l) { return l >= 0 ? head(0, static_cast<uint64_t>(l)) : head(1, static_cast<uint64_t>(-1 - l)); }
std::string f64(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  std::string out("\xfb");
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(bits >> (8 * i)));
  return out;
}

TEST(SenML, RfcMultipleDatapointsExampleInJson) {
  // RFC 8428 section 5.1.2.
  auto p = decode_senml_json(R"([
     {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.276020076001e+09,"bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
     {"n":"current","t":-5,"v":1.2},
     {"n":"current","t":-4,"v":1.3}])", kNow);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[0].metric, "voltage");
  EXPECT_EQ((*p)[0].unit, "V");
  EXPECT_EQ(std::get<double>((*p)[0].value), 120.1);
  EXPECT_EQ((*p)[0].ts, 1'276'020'076'001'000'000);
  EXPECT_EQ((*p)[1].metric, "current");
  EXPECT_EQ((*p)[1].unit, "A");  // the base unit
  EXPECT_EQ((*p)[1].ts, 1'276'020'071'001'000'000);
}

TEST(SenML, RelativeTimesNamesFromTheBaseNameKindsAndSums) {
  auto p = decode_senml_json(R"([{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1},
     {"bn":"pump-7/","bv":100,"n":"level","v":5,"t":-10},
     {"n":"state","vs":"on"},{"n":"door","vb":false},{"n":"energy","s":1500,"u":"W.h"},{"bn":"sensor:rpm","v":1}])", kNow);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->size(), 6u);
  EXPECT_EQ((*p)[0].metric, "urn:dev:ow:10e2073a01080063");
  EXPECT_EQ((*p)[0].ts, kNow);  // no time: now
  EXPECT_EQ((*p)[1].metric, "level");
  EXPECT_EQ(std::get<double>((*p)[1].value), 105);  // base value added
  EXPECT_EQ((*p)[1].ts, kNow - 10'000'000'000);
  EXPECT_EQ(std::get<std::string>((*p)[2].value), "on");
  EXPECT_EQ(std::get<bool>((*p)[3].value), false);
  EXPECT_EQ((*p)[4].metric, "energy_sum");
  EXPECT_EQ((*p)[5].metric, "rpm");  // the base name's last segment
}

TEST(SenML, BadPacksSayWhatAndWhere) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (auto c : {Case{"{}", "array of records"}, Case{"[]", "empty"}, Case{R"([{"n":"a"}])", "[0]: record has no value"},
                 Case{R"([{"n":"a","v":"x"}])", "[0].v: expected a number"}, Case{R"([{"v":1}])", "no name"},
                 Case{R"([{"n":"a","v":1,"x_":2}])", "mandatory extension"}, Case{R"([{"n":"a","vd":"AAE="}])", "vd"},
                 Case{R"([{"bver":11,"n":"a","v":1}])", "newer than 10"}, Case{R"([{"n":"a b","v":1}])", "[0].n"},
                 Case{R"([{"n":"a","v":1,"t":1e300}])", "out of range"}}) {
    auto p = decode_senml_json(c.body, kNow);
    ASSERT_FALSE(p) << c.body;
    EXPECT_NE(p.error().message().find(c.says), std::string::npos) << c.body << " -> " << p.error().message();
  }
  DecodeLimits limits;
  limits.max_values = 2;
  EXPECT_TRUE(is(decode_senml_json(R"([{"n":"a","v":1},{"n":"b","v":1},{"n":"c","v":1}])", kNow, limits).error(), Errc::too_many_values));
}

TEST(SenML, CborPackMatchesItsJson) {
  // The same pack as the RFC example, in CBOR with integer labels (RFC 8428 section 6).
  std::string rec1 = head(5, 6) + label(-2) + text("urn:dev:ow:10e2073a01080063:") + label(-3) + f64(1.276020076001e9) +
                     label(-4) + text("A") + label(0) + text("voltage") + label(1) + text("V") + label(2) + f64(120.1);
  std::string rec2 = head(5, 3) + label(0) + text("current") + label(6) + label(-5) + label(2) + f64(1.2);
  std::string rec3 = head(5, 2) + label(0) + text("door") + label(4) + "\xf5";
  auto p = decode_senml_cbor(head(4, 3) + rec1 + rec2 + rec3, kNow);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[0].metric, "voltage");
  EXPECT_EQ((*p)[0].unit, "V");
  EXPECT_EQ((*p)[0].ts, 1'276'020'076'001'000'000);
  EXPECT_EQ((*p)[1].ts, 1'276'020'071'001'000'000);
  EXPECT_EQ((*p)[1].unit, "A");
  EXPECT_EQ(std::get<bool>((*p)[2].value), true);
  // Indefinite-length array and map, a half-precision float (1.0).
  auto q = decode_senml_cbor("\x9f" + head(5, 2) + label(0) + text("x") + label(2) + std::string("\xf9\x3c\x00", 3) + "\xff", kNow);
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(std::get<double>((*q)[0].value), 1.0);
  EXPECT_TRUE(looks_like_cbor(head(4, 3)));
  EXPECT_FALSE(looks_like_cbor("[{}]"));
}

TEST(SenML, HostileCborIsRefusedNotCrashing) {
  for (const std::string& bad : {std::string("\x83"), std::string("\x9b\xff\xff\xff\xff\xff\xff\xff\xff"),
                                 std::string("\x81\xbb\xff\xff\xff\xff\xff\xff\xff\xff"), std::string("\x81\xa1\x00\x7b\xff\xff\xff\xff\xff\xff\xff\xff"),
                                 std::string(40, '\x81'), std::string("\x81\xa1\x00\x5f"), std::string("\x80\x00"), std::string("\x1c")}) {
    auto p = decode_senml_cbor(bad, kNow);
    EXPECT_FALSE(p);
    if (!p) {
      EXPECT_TRUE(is(p.error(), Errc::bad_payload) || is(p.error(), Errc::bad_metric)) << p.error().message();
    }
  }
}

constexpr const char* kVendor = R"toml(
profile = "acme-pump"
[metrics.temperature]
type = "float"
unit = "Cel"
required = true
[metrics.pressure]
type = "float"
unit = "bar"
[metrics.running]
type = "bool"
[decoder]
format = "mapping"
time = "/meta/time"
records = "/readings"
[decoder.fields.temperature]
pointer = "/sensors/t_raw"
scale = 0.1
unit = "[degF]"
[decoder.fields.pressure]
pointer = "/sensors/p~1kPa"
unit = "kPa"
[decoder.fields.running]
pointer = "/state/run"
)toml";

TEST(Mapping, VendorLayoutThroughPointersScaleAndUnits) {
  auto c = parse_contract(kVendor);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->decoder.kind, DecoderSpec::Kind::mapping);
  // Canonical form and back: the same contract.
  auto again = parse_contract(canonical_json(*c));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *c);
  auto p = decode_mapped(c->decoder, R"({"readings": [
      {"meta": {"time": 1795400000000}, "sensors": {"t_raw": 1015, "p/kPa": 250}, "state": {"run": true}},
      {"meta": {"time": "2026-11-23T10:00:01Z"}, "sensors": {"t_raw": 1020}}]})", kNow);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->size(), 4u);
  // Fields in the contract's order of metrics (pressure, running, temperature).
  EXPECT_EQ((*p)[0].metric, "pressure");
  EXPECT_EQ((*p)[0].unit, "kPa");
  EXPECT_EQ(std::get<double>((*p)[0].value), 250);
  EXPECT_EQ((*p)[2].metric, "temperature");
  EXPECT_EQ(std::get<double>((*p)[2].value), 101.5);  // 1015 x 0.1, no binary residue
  EXPECT_EQ((*p)[2].unit, "[degF]");
  EXPECT_EQ((*p)[0].ts, 1'795'400'000'000'000'000);
  EXPECT_EQ((*p)[3].ts, 1'795'428'001'000'000'000);
}

TEST(Mapping, ErrorsNameThePointer) {
  auto c = parse_contract(kVendor);
  ASSERT_TRUE(c);
  struct Case {
    const char* body;
    const char* says;
  };
  for (auto k : {Case{R"({"readings": {}})", "/readings: expected an array"},
                 Case{R"({"readings": [{"sensors": {"t_raw": 1}}]})", "/readings/0/meta/time: no timestamp"},
                 Case{R"({"readings": [{"meta": {"time": true}, "sensors": {"t_raw": 1}}]})", "/readings/0/meta/time"},
                 Case{R"({"readings": [{"meta": {"time": 1795400000}, "sensors": {"t_raw": [1]}}]})", "/readings/0/sensors/t_raw: expected a number"},
                 Case{R"({"readings": [{"meta": {"time": 1795400000}}]})", "none of the mapped fields"},
                 Case{"not json", "invalid JSON"}}) {
    auto p = decode_mapped(c->decoder, k.body, kNow);
    ASSERT_FALSE(p) << k.body;
    EXPECT_NE(p.error().message().find(k.says), std::string::npos) << k.body << " -> " << p.error().message();
  }
}

TEST(Mapping, ContractChecksTheDecoder) {
  struct Case {
    std::string from, to, says;
  };
  for (const auto& k : std::vector<Case>{
           {"format = \"mapping\"", "format = \"xml\"", "decoder.format: 'xml' is not a decoder"},
           {"pointer = \"/state/run\"", "pointer = \"state/run\"", "decoder.fields.running.pointer: 'state/run' is not a JSON pointer"},
           {"[decoder.fields.running]", "[decoder.fields.speed]", "decoder.fields.speed: 'speed' is not a metric"},
           {"unit = \"kPa\"", "unit = \"kg\"", "decoder.fields.pressure.unit"},
           {"scale = 0.1", "scale = 0", "a scale of 0"},
       }) {
    std::string text = kVendor;
    text.replace(text.find(k.from), k.from.size(), k.to);
    auto c = parse_contract(text);
    ASSERT_FALSE(c) << k.to;
    EXPECT_NE(c.error().message().find(k.says), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find("line "), std::string::npos) << c.error().message();
  }
  // A decoder change is listed, and compatible.
  auto a = parse_contract(kVendor);
  std::string changed = kVendor;
  changed.replace(changed.find("scale = 0.1"), 11, "scale = 0.01");
  auto b = parse_contract(changed);
  ASSERT_TRUE(a && b);
  auto diff = diff_contracts(*a, *b);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0].field, "decoder");
  EXPECT_FALSE(diff[0].breaking);
}

}  // namespace
}  // namespace fieldline::ingest
