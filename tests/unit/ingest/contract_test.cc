#include <gtest/gtest.h>

#include "fieldline/ingest/contract.h"

namespace fieldline::ingest {
namespace {

constexpr const char* kPump = R"toml(
profile = "pump"
description = "Centrifugal pump"
required_tags = ["site", "asset"]

[metrics.temperature]
type = "float"
unit = "Cel"
min = -40
max = 150
required = true
max_rate_hz = 10

[metrics.vibration]
type = "float"
unit = "mm/s"
min = 0

[metrics.state]
type = "string"
)toml";

Contract parse_ok(std::string_view text) {
  auto c = parse_contract(text);
  EXPECT_TRUE(c) << (c ? "" : c.error().message());
  return c ? *c : Contract{};
}

std::string error_of(std::string_view text) {
  auto c = parse_contract(text);
  EXPECT_FALSE(c) << "accepted: " << text;
  return c ? "" : c.error().message();
}

}  // namespace

TEST(Contract, TomlAndJsonGiveTheSameCanonicalContract) {
  Contract toml = parse_ok(kPump);
  EXPECT_EQ(toml.profile, "pump");
  ASSERT_EQ(toml.metrics.size(), 3u);
  EXPECT_EQ(toml.metrics[0].name, "state");  // sorted
  const MetricSpec* t = toml.metric("temperature");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->unit, "Cel");
  EXPECT_EQ(*t->min, -40);
  EXPECT_TRUE(t->required);
  EXPECT_EQ(toml.required_tags, (std::vector<std::string>{"asset", "site"}));
  // Its canonical JSON parses back to the same contract, and a JSON document with the same
  // content in another order has the same canonical form.
  std::string canon = canonical_json(toml);
  EXPECT_EQ(parse_ok(canon), toml);
  Contract json = parse_ok(R"({"metrics": {"vibration": {"min": 0, "unit": "mm/s", "type": "float"},
    "temperature": {"type": "float", "max_rate_hz": 10, "required": true, "max": 150.0, "min": -40, "unit": "Cel"},
    "state": {"type": "string"}}, "required_tags": ["site", "asset"], "profile": "pump", "description": "Centrifugal pump"})");
  EXPECT_EQ(canonical_json(json), canon);
}

TEST(Contract, MalformedDocumentsNameTheLineAndField) {
  // TOML syntax: line and column.
  EXPECT_NE(error_of("profile = \"pump\"\n[metrics.t\ntype = \"float\"\n").find("line 2"), std::string::npos);
  // A bad field: its line and its path.
  std::string e = error_of("profile = \"pump\"\n\n[metrics.temp]\ntype = \"float\"\nunit = \"degC\"\n");
  EXPECT_NE(e.find("line 5"), std::string::npos) << e;
  EXPECT_NE(e.find("metrics.temp.unit"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'Cel'"), std::string::npos) << e;
  e = error_of("profile = \"pump\"\n[metrics.temp]\ntype = \"decimal\"\n");
  EXPECT_NE(e.find("metrics.temp.type"), std::string::npos) << e;
  e = error_of("profile = \"pump\"\n[metrics.temp]\ntype = \"float\"\nmin = 10\nmax = 5\n");
  EXPECT_NE(e.find("metrics.temp.min"), std::string::npos) << e;
  e = error_of("profile = \"pump\"\n[metrics.temp]\ntype = \"float\"\nmaxx = 5\n");
  EXPECT_NE(e.find("metrics.temp.maxx: unknown field"), std::string::npos) << e;
  e = error_of("profile = \"pump\"\n[metrics.state]\ntype = \"string\"\nmin = 0\n");
  EXPECT_NE(e.find("only numbers have a range"), std::string::npos) << e;
  EXPECT_NE(error_of("[metrics.t]\ntype = \"float\"\n").find("profile: missing"), std::string::npos);
  EXPECT_NE(error_of("profile = \"pump\"\n").find("metrics"), std::string::npos);
  EXPECT_NE(error_of("profile = \"p u m p\"\n[metrics.t]\ntype = \"int\"\n").find("profile"), std::string::npos);
  EXPECT_NE(error_of("profile = \"pump\"\n[metrics.t]\ntype = \"int\"\nmax_rate_hz = 0\n").find("max_rate_hz"), std::string::npos);
  EXPECT_NE(error_of("profile = \"pump\"\nrequired_tags = [\"site\", \"site\"]\n[metrics.t]\ntype = \"int\"\n").find("twice"), std::string::npos);
  EXPECT_NE(error_of("{\"profile\": \"pump\", \"metrics\": [1, 2]}").find("metrics"), std::string::npos);
  EXPECT_NE(error_of("{\"profile\": ").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of("").find("profile"), std::string::npos);
}

TEST(Contract, UcumUnitsParseAndTypicalMistakesAreNamed) {
  for (const char* ok : {"Cel", "mm/s", "kW.h", "m3/h", "[ppm]", "%", "1/min", "{rev}/min", "bar", "kPa", "mbar", "L/min",
                         "m/s2", "kg.m2", "(m/s)2", "dB", "[degF]", "Hz", "mA", "uS/cm", "/h", "W/(m2.K)", "kV.A{reactive}",
                         "h", "min", "d", "[psi]", "A", "V", "kV", "m-1", "ms"}) {
    EXPECT_TRUE(validate_ucum(ok)) << ok << ": " << validate_ucum(ok).error().message();
  }
  for (const char* bad : {"", "degC", "kWh", "rpm", "psi", "m//s", "m/", "(m/s", "[ppm", "{rev", "m+", "xyz", "°C", "k"}) {
    EXPECT_FALSE(validate_ucum(bad)) << bad;
  }
  EXPECT_NE(validate_ucum("kWh").error().message().find("kW.h"), std::string::npos);
}

TEST(Contract, DiffTellsBreakingFromCompatibleChanges) {
  Contract v1 = parse_ok(kPump);
  auto changed = [&](const std::string& from, const std::string& to) {
    std::string text = kPump;
    auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
    return diff_contracts(v1, parse_ok(text));
  };
  auto only_change = [](const std::vector<ContractChange>& d, const std::string& field, bool breaking) {
    ASSERT_EQ(d.size(), 1u) << field;
    EXPECT_EQ(d[0].field, field);
    EXPECT_EQ(d[0].breaking, breaking) << field << " " << d[0].detail;
  };
  EXPECT_TRUE(diff_contracts(v1, v1).empty());
  // Compatible: widen a range, add an optional metric, make a metric optional, drop a
  // required tag, raise a rate, remove an optional metric.
  only_change(changed("max = 150", "max = 200"), "metrics.temperature.max", false);
  only_change(changed("min = -40", "min = -60"), "metrics.temperature.min", false);
  only_change(changed("[metrics.state]", "[metrics.flow]\ntype = \"float\"\nunit = \"m3/h\"\n[metrics.state]"), "metrics.flow", false);
  only_change(changed("required = true", "required = false"), "metrics.temperature.required", false);
  only_change(changed("required_tags = [\"site\", \"asset\"]", "required_tags = [\"site\"]"), "required_tags", false);
  only_change(changed("max_rate_hz = 10", "max_rate_hz = 20"), "metrics.temperature.max_rate_hz", false);
  only_change(changed("[metrics.state]\ntype = \"string\"\n", ""), "metrics.state", false);
  // Breaking: narrow a range, change a type or unit, remove a required metric, add a
  // required metric or tag, make a metric required, lower a rate.
  only_change(changed("max = 150", "max = 120"), "metrics.temperature.max", true);
  only_change(changed("unit = \"mm/s\"\nmin = 0", "unit = \"mm/s\"\nmin = 1"), "metrics.vibration.min", true);
  only_change(changed("unit = \"mm/s\"\nmin = 0", "unit = \"mm/s\""), "metrics.vibration.min", false);
  only_change(changed("type = \"string\"", "type = \"int\""), "metrics.state.type", true);
  only_change(changed("unit = \"Cel\"", "unit = \"K\""), "metrics.temperature.unit", true);
  only_change(changed("[metrics.temperature]\ntype = \"float\"\nunit = \"Cel\"\nmin = -40\nmax = 150\nrequired = true\nmax_rate_hz = 10\n", ""),
              "metrics.temperature", true);
  only_change(changed("[metrics.state]", "[metrics.flow]\ntype = \"float\"\nrequired = true\n[metrics.state]"), "metrics.flow", true);
  only_change(changed("required_tags = [\"site\", \"asset\"]", "required_tags = [\"site\", \"asset\", \"line\"]"), "required_tags", true);
  only_change(changed("[metrics.vibration]\ntype = \"float\"", "[metrics.vibration]\nrequired = true\ntype = \"float\""),
              "metrics.vibration.required", true);
  only_change(changed("max_rate_hz = 10", "max_rate_hz = 5"), "metrics.temperature.max_rate_hz", true);
}

}  // namespace fieldline::ingest
