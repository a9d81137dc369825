#include <gtest/gtest.h>

#include <random>

#include "fieldline/ingest/calibration.h"
#include "fieldline/ingest/validate.h"

namespace fieldline::ingest {
namespace {

constexpr int64_t kNow = 1'795'400'000'000'000'000;

TEST(Calibration, GainOffsetAndPolynomialApplyAndInvert) {
  auto lin = parse_calibration(R"({"metric": "temperature", "gain": 1.02, "offset": -0.3, "reference": "CERT-17"})", kNow);
  ASSERT_TRUE(lin) << lin.error().message();
  EXPECT_DOUBLE_EQ(lin->apply(20), 20.1);
  EXPECT_EQ(lin->valid_from_ns, kNow);
  EXPECT_EQ(lin->reference, "CERT-17");
  auto poly = parse_calibration(R"({"metric": "flow", "polynomial": [0.5, 2, 0.01], "raw_min": 0, "raw_max": 100,
                                    "valid_from": "2026-11-01T00:00:00Z", "due": "2027-05-01T00:00:00Z"})", kNow);
  ASSERT_TRUE(poly) << poly.error().message();
  EXPECT_DOUBLE_EQ(poly->apply(10), 0.5 + 20 + 1);
  // Property: invert(apply(x)) recovers x across the range, for both kinds.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> x(0, 100);
  for (int i = 0; i < 2000; ++i) {
    double r = x(rng);
    EXPECT_NEAR(*lin->invert(lin->apply(r)), r, 1e-9 * std::max(1.0, r));
    EXPECT_NEAR(*poly->invert(poly->apply(r)), r, 1e-9 * std::max(1.0, r));
  }
  EXPECT_FALSE(poly->invert(poly->apply(150)));  // outside the raw range
  // The stored form parses back to the same calibration.
  auto again = parse_calibration(calibration_json(*poly), 0);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->coefficients, poly->coefficients);
  EXPECT_EQ(again->due_ns, poly->due_ns);
}

TEST(Calibration, BadRecordsNameTheField) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (auto c : {Case{R"({"gain": 1})", "metric: missing"}, Case{R"({"metric": "t", "gain": 0})", "gain: a gain of 0"},
                 Case{R"({"metric": "t"})", "gain: give gain"}, Case{R"({"metric": "t", "gain": 1, "polynomial": [0, 1]})", "not both"},
                 Case{R"({"metric": "t", "polynomial": [0, 1, 1]})", "raw range"},
                 Case{R"({"metric": "t", "polynomial": [0, 0, 1], "raw_min": -1, "raw_max": 1})", "not monotonic"},
                 Case{R"({"metric": "t", "gain": 1, "due": "2026-01-01T00:00:00Z"})", "due: must be after valid_from"},
                 Case{R"({"metric": "t", "gain": 1, "colour": 1})", "colour: unknown field"},
                 Case{R"({"metric": "t", "gain": "x"})", "gain: expected a number"}}) {
    auto r = parse_calibration(c.body, kNow);
    ASSERT_FALSE(r) << c.body;
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << c.body << " -> " << r.error().message();
  }
}

TEST(Calibration, TheRecordValidAtEachSampleAppliesBeforeTheRangeCheck) {
  auto a = *parse_calibration(R"({"metric": "temperature", "gain": 2, "valid_from": 1000})", kNow);
  auto b = *parse_calibration(R"({"metric": "temperature", "offset": 100, "valid_from": 2000})", kNow);
  a.id = 1;
  b.id = 2;
  CalibrationSet set({b, a});
  EXPECT_EQ(set.at("temperature", 999'999'999), nullptr);
  EXPECT_EQ(set.at("temperature", 1'500'000'000)->id, 1);
  EXPECT_EQ(set.at("temperature", 2'000'000'000)->id, 2);
  EXPECT_EQ(set.at("pressure", 2'000'000'000), nullptr);
  auto contract = parse_contract(R"(profile = "p"
[metrics.temperature]
type = "float"
max = 150
)");
  ASSERT_TRUE(contract);
  ActiveContract active{1, *contract};
  std::vector<Point> points{Point{"temperature", 1'500'000'000, 80.0, {}, {}}, Point{"temperature", 500'000'000, 80.0, {}, {}}};
  UnitCache units;
  Validation v;
  ASSERT_TRUE(validate_message(active, points, units, &set, v));
  EXPECT_EQ(std::get<double>(points[0].value), 160.0);  // calibrated, then out of range
  EXPECT_EQ(v.calibration_of(0), 1);
  EXPECT_EQ(v.quality_of(0), Quality::out_of_range);
  EXPECT_EQ(std::get<double>(points[1].value), 80.0);  // before any calibration
  EXPECT_EQ(v.calibration_of(1), 0);
  EXPECT_EQ(v.quality_of(1), Quality::good);
}

}  // namespace
}  // namespace fieldline::ingest
