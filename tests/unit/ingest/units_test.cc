#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "fieldline/ingest/units.h"

namespace fieldline::ingest {
namespace {

double convert(double v, const char* from, const char* to) {
  auto c = unit_conversion(from, to);
  EXPECT_TRUE(c) << from << " -> " << to << ": " << (c ? "" : c.error().message());
  return c ? c->apply(v) : std::nan("");
}

}  // namespace

TEST(Units, KnownConversions) {
  EXPECT_NEAR(convert(0, "Cel", "K"), 273.15, 1e-9);
  EXPECT_NEAR(convert(100, "Cel", "[degF]"), 212, 1e-9);
  EXPECT_NEAR(convert(32, "[degF]", "Cel"), 0, 1e-9);
  EXPECT_NEAR(convert(-40, "[degF]", "Cel"), -40, 1e-9);
  EXPECT_NEAR(convert(1, "bar", "kPa"), 100, 1e-9);
  EXPECT_NEAR(convert(1, "[psi]", "kPa"), 6.894757293168361, 1e-12);
  EXPECT_NEAR(convert(1, "kW.h", "J"), 3.6e6, 1e-6);
  EXPECT_NEAR(convert(1, "kW.h", "MJ"), 3.6, 1e-12);
  EXPECT_NEAR(convert(6, "m3/h", "L/min"), 100, 1e-9);
  EXPECT_NEAR(convert(1, "m/s", "km/h"), 3.6, 1e-12);
  EXPECT_NEAR(convert(1500, "mm/s", "m/s"), 1.5, 1e-12);
  EXPECT_NEAR(convert(3000, "/min", "Hz"), 50, 1e-9);
  EXPECT_NEAR(convert(3000, "{rev}/min", "Hz"), 50, 1e-9);
  EXPECT_NEAR(convert(50, "%", "1"), 0.5, 1e-12);
  EXPECT_NEAR(convert(2500, "[ppm]", "%"), 0.25, 1e-12);
  EXPECT_NEAR(convert(1, "[gal_us]/min", "L/s"), 3.785411784 / 60, 1e-12);
  EXPECT_NEAR(convert(1, "[HP]", "kW"), 0.74569987158227022, 1e-12);
  EXPECT_NEAR(convert(1, "W/(m2.K)", "kg/(s3.K)"), 1e-3 * 1e3, 1e-12);  // W = kg.m2/s3
  EXPECT_NEAR(convert(1, "h", "s"), 3600, 1e-9);
  EXPECT_NEAR(convert(1, "kV.A{reactive}", "W"), 1000, 1e-9);
}

TEST(Units, IncompatibleOrUnconvertibleUnitsAreRefused) {
  for (auto [from, to] : {std::pair{"Cel", "m"}, {"bar", "J"}, {"kW", "kW.h"}, {"dB", "B"}, {"[pH]", "1"}, {"Cel/s", "K/s"},
                          {"Cel2", "K2"}, {"/Cel", "/K"}, {"degC", "K"}, {"m", "xyz"}}) {
    EXPECT_FALSE(unit_conversion(from, to)) << from << " -> " << to;
  }
  EXPECT_NE(unit_conversion("Cel", "m").error().message().find("different dimensions"), std::string::npos);
  EXPECT_NE(unit_conversion("Cel/s", "K/s").error().message().find("use K"), std::string::npos);
  EXPECT_TRUE(validate_ucum("dB"));  // valid, just not convertible
  // Found by the fuzzer: deep nesting is refused, not a stack overflow.
  EXPECT_TRUE(validate_ucum("((((m))))"));
  std::string deep(100000, '(');
  EXPECT_NE(validate_ucum(deep).error().message().find("nested too deeply"), std::string::npos);
}

// Property: converting there and back gives the value back, and converting through a third
// unit equals converting directly, for every pair of units of one dimension.
TEST(Units, RoundTripsAndCompositionHoldForRandomValues) {
  const std::vector<std::vector<const char*>> families = {
      {"Cel", "K", "[degF]", "[degR]", "mK"},
      {"Pa", "kPa", "hPa", "bar", "mbar", "[psi]", "atm", "N/m2", "MPa"},
      {"J", "kJ", "kW.h", "W.h", "cal", "[Btu_IT]", "eV", "MW.h"},
      {"m3/h", "L/min", "L/s", "[gal_us]/min", "m3/s", "dm3/h"},
      {"m/s", "km/h", "mm/s", "[mi_i]/h", "[kn_i]", "[ft_i]/s"},
      {"1", "%", "[ppm]", "[ppb]", "[ppth]"},
      {"Hz", "/min", "/s", "kHz", "{rev}/min"},
  };
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> value(-1e6, 1e6);
  for (const auto& family : families) {
    for (const char* a : family) {
      for (const char* b : family) {
        auto ab = unit_conversion(a, b), ba = unit_conversion(b, a);
        ASSERT_TRUE(ab && ba) << a << " <-> " << b;
        for (const char* c : family) {
          auto ac = unit_conversion(a, c), bc = unit_conversion(b, c);
          ASSERT_TRUE(ac && bc);
          for (int i = 0; i < 20; ++i) {
            double x = value(rng);
            double back = ba->apply(ab->apply(x));
            EXPECT_NEAR(back, x, 1e-9 * std::max(1.0, std::fabs(x))) << a << " -> " << b << " -> " << a;
            double direct = ac->apply(x), via = bc->apply(ab->apply(x));
            EXPECT_NEAR(via, direct, 1e-9 * std::max(1.0, std::fabs(direct))) << a << " -> " << b << " -> " << c;
          }
        }
      }
    }
  }
}

}  // namespace fieldline::ingest

namespace fieldline::ingest {
namespace {

TEST(Units, RoundingTo15DigitsMatchesTheDecimalForRandomValues) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> mantissa(1, 10);
  std::uniform_int_distribution<int> exponent(-30, 30);
  for (int i = 0; i < 100000; ++i) {
    double v = mantissa(rng) * std::pow(10.0, exponent(rng)) * (i % 2 ? -1 : 1);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    EXPECT_EQ(round_to_15_digits(v), std::strtod(buf, nullptr)) << buf;
  }
  EXPECT_EQ(round_to_15_digits(20.000000000000007), 20.0);
  EXPECT_EQ(round_to_15_digits(21.500000000000004), 21.5);
  EXPECT_EQ(round_to_15_digits(0.0), 0.0);
}

}  // namespace
}  // namespace fieldline::ingest
