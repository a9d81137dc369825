#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "fieldline/ingest/validate.h"

namespace fieldline::ingest {
namespace {

constexpr const char* kPump = R"toml(
profile = "pump"
[metrics.temperature]
type = "float"
unit = "Cel"
min = -40
max = 150
required = true
[metrics.starts]
type = "int"
[metrics.flow]
type = "float"
unit = "m3/h"
[metrics.running]
type = "bool"
[metrics.state]
type = "string"
)toml";

ActiveContract pump(int64_t version = 3) {
  auto c = parse_contract(kPump);
  EXPECT_TRUE(c) << c.error().message();
  return ActiveContract{version, *c};
}

Result<Validation> validate_message(const ActiveContract& c, std::vector<Point>& points, UnitCache& units) {
  Validation v;
  FL_TRY_STATUS(ingest::validate_message(c, points, units, nullptr, v));
  return v;
}

Point pt(std::string metric, tsdb::Value v, std::string unit = "") { return Point{std::move(metric), 1000, std::move(v), {}, std::move(unit)}; }

TEST(Validate, ConformingMessageIsConvertedToTheContractsTypesAndUnits) {
  UnitCache units;
  std::vector<Point> m{pt("temperature", 212.0, "[degF]"), pt("starts", 7.0), pt("flow", 60.0, "L/min"), pt("running", true),
                       pt("state", std::string("ok"))};
  auto v = validate_message(pump(), m, units);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->flagged, 0u);
  EXPECT_EQ(std::get<double>(m[0].value), 100.0);     // 212 [degF] = 100 Cel, to the last digit
  EXPECT_EQ(std::get<int64_t>(m[1].value), 7);        // an integral JSON number is an int
  EXPECT_DOUBLE_EQ(std::get<double>(m[2].value), 3.6);  // 60 L/min = 3.6 m3/h
  EXPECT_TRUE(m[0].unit.empty());
}

TEST(Validate, OutOfRangeIsFlaggedNotRefused) {
  UnitCache units;
  std::vector<Point> m{pt("temperature", 151.0), pt("starts", int64_t{1})};
  auto v = validate_message(pump(), m, units);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->flagged, 1u);
  EXPECT_EQ(v->quality[0], Quality::out_of_range);
  EXPECT_EQ(v->quality[1], Quality::good);
  EXPECT_NE(v->first_warning.find("'temperature' = 151 is outside [-40, 150]"), std::string::npos) << v->first_warning;
  EXPECT_NE(v->first_warning.find("version 3"), std::string::npos);
  // The range applies after conversion: 302 [degF] is 150 Cel, inside.
  std::vector<Point> f{pt("temperature", 302.0, "[degF]")};
  EXPECT_EQ(validate_message(pump(), f, units)->flagged, 0u);
}

TEST(Validate, BreachesAreRefusedWithTheirReason) {
  UnitCache units;
  struct Case {
    std::vector<Point> points;
    Errc code;
    std::string says;
  };
  for (auto& c : std::vector<Case>{
           {{pt("temperature", 20.0), pt("pressure", 1.0)}, Errc::unknown_metric, "'pressure' is not in the contract"},
           {{pt("temperature", std::string("hot"))}, Errc::wrong_type, "'temperature' must be float, got a string"},
           {{pt("temperature", 20.0), pt("starts", 2.5)}, Errc::wrong_type, "'starts' must be int"},
           {{pt("temperature", 20.0), pt("starts", 1e19)}, Errc::wrong_type, "'starts' must be int"},
           {{pt("temperature", 20.0), pt("running", 1.0)}, Errc::wrong_type, "'running' must be bool"},
           {{pt("starts", int64_t{1})}, Errc::missing_required, "'temperature' is missing"},
           {{pt("temperature", 20.0, "bar")}, Errc::unit_mismatch, "'temperature' in 'bar'"},
           {{pt("temperature", 20.0, "degC")}, Errc::unit_mismatch, "did you mean 'Cel'"},
           {{pt("temperature", 20.0), pt("starts", int64_t{1}, "kW")}, Errc::unit_mismatch, "no unit in the contract"},
       }) {
    auto v = validate_message(pump(), c.points, units);
    ASSERT_FALSE(v) << c.says;
    EXPECT_TRUE(is(v.error(), c.code)) << v.error().message();
    EXPECT_NE(v.error().message().find(c.says), std::string::npos) << v.error().message();
    EXPECT_NE(v.error().message().find("contract 'pump' version 3"), std::string::npos) << v.error().message();
  }
}

TEST(Validate, RateAdmitsABurstThenTheAverage) {
  RateState s;
  const int64_t sec = 1'000'000'000;
  // 2 Hz: a burst of up to two samples, then one per 500 ms.
  EXPECT_TRUE(admit_rate(s, 0, 2));
  EXPECT_TRUE(admit_rate(s, 1, 2));
  EXPECT_FALSE(admit_rate(s, 2, 2));
  EXPECT_TRUE(admit_rate(s, sec / 2, 2));
  EXPECT_TRUE(admit_rate(s, sec, 2));
  // A steady stream at the rate (with jitter) is never flagged.
  RateState steady;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> jitter(-50'000'000, 50'000'000);
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(admit_rate(steady, i * (sec / 2) + jitter(rng), 2)) << i;
  // Backfill (older than the latest) is not part of the live rate.
  EXPECT_TRUE(admit_rate(steady, 5, 2));
  EXPECT_TRUE(admit_rate(steady, 6, 2));
  // Twice the rate for long: half of it is flagged.
  RateState fast;
  int flagged = 0;
  for (int i = 0; i < 1000; ++i) flagged += !admit_rate(fast, i * (sec / 4), 2);
  EXPECT_NEAR(flagged, 500, 5);
}

Contract with_max(int64_t version) {
  auto c = pump().contract;
  for (auto& m : c.metrics) {
    if (m.name == "temperature") m.max = 150.0 + static_cast<double>(version);
  }
  return c;
}

TEST(Validate, BookPublishesWholeVersionsAndKeepsTheNewest) {
  ContractBook book;
  EXPECT_EQ(book.find("pump"), nullptr);
  book.publish(2, with_max(2));
  auto g = book.generation();
  book.publish(1, with_max(1));  // an older version arriving late changes nothing
  EXPECT_EQ(book.find("pump")->version, 2);
  EXPECT_EQ(book.generation(), g);
  // Readers racing a publisher see one whole version or the next, never a mix.
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      auto c = book.find("pump");
      ASSERT_TRUE(c);
      const auto* t = c->contract.metric("temperature");
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(*t->max, 150.0 + static_cast<double>(c->version));
    }
  });
  for (int64_t v = 3; v < 2000; ++v) book.publish(v, with_max(v));
  stop = true;
  reader.join();
}

}  // namespace
}  // namespace fieldline::ingest
