// Rules over a device's samples: thresholds with hysteresis, durations, rates, detector
// scores, tags and boolean combinations, evaluated as samples arrive; and conditions that do
// not parse, with the column that is wrong.
#include <gtest/gtest.h>

#include <cmath>

#include "fieldline/analytics/rules.h"

namespace fieldline::analytics::rules {
namespace {

constexpr int64_t kSec = 1'000'000'000LL;
constexpr int64_t kT0 = 1'795'400'000'000'000'000LL;

Rule rule(std::string name, std::string_view when, std::string_view clear = {}) {
  auto r = make_rule(std::move(name), when, clear, "major");
  EXPECT_TRUE(r) << r.error().message();
  return *r;
}

TEST(Rules, ThresholdWithHysteresisFiresOnceAndClearsBelowTheLowerLevel) {
  Evaluator e({rule("hot", "temperature > 80", "temperature < 75")});
  int64_t ts = kT0;
  EXPECT_TRUE(e.observe("temperature", ts += kSec, 70).empty());
  auto fired = e.observe("temperature", ts += kSec, 81);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].kind, Transition::Kind::fired);
  EXPECT_EQ(fired[0].rule, "hot");
  EXPECT_EQ(fired[0].severity, "major");
  EXPECT_TRUE(e.observe("temperature", ts += kSec, 85).empty()) << "already active: no second alarm";
  EXPECT_TRUE(e.observe("temperature", ts += kSec, 78).empty()) << "between the levels: still active";
  EXPECT_TRUE(e.active("hot"));
  auto cleared = e.observe("temperature", ts += kSec, 74);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].kind, Transition::Kind::cleared);
  EXPECT_FALSE(e.active("hot"));
}

TEST(Rules, ADurationMustHoldWithoutABreak) {
  Evaluator e({rule("sustained", "temperature > 80 for 5m")});
  int64_t ts = kT0;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(e.observe("temperature", ts += 60 * kSec, 90).empty());
  EXPECT_TRUE(e.observe("temperature", ts += 60 * kSec, 70).empty()) << "the break restarts the clock";
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(e.observe("temperature", ts += 60 * kSec, 90).empty()) << i;
  auto fired = e.observe("temperature", ts += 60 * kSec, 90);
  ASSERT_EQ(fired.size(), 1u) << "five minutes above 80";
  // Without a clear condition the rule clears when its condition stops holding.
  EXPECT_EQ(e.observe("temperature", ts += 60 * kSec, 79).size(), 1u);
}

TEST(Rules, RatesScoresTagsAndBooleanCombinations) {
  Evaluator e({rule("falling", "rate(pressure) < -0.5"),
               rule("anomalous_north", "score(vibration) >= 0.8 and tag.site == \"north\""),
               rule("dry_run", "current > 2 and not (flow > 10 or flow == 0)")},
              {{"site", "north"}});
  int64_t ts = kT0;
  e.observe("pressure", ts, 10);
  EXPECT_TRUE(e.observe("pressure", ts += 10 * kSec, 8).empty()) << "-0.2 bar/s is not below -0.5";
  EXPECT_FALSE(e.active("falling"));
  ts += 10 * kSec;
  auto fell = e.observe("pressure", ts, 0);  // -0.8 bar/s
  ASSERT_EQ(fell.size(), 1u);
  EXPECT_TRUE(e.active("falling"));
  EXPECT_TRUE(e.observe("vibration", ts += kSec, 3.0, 0.5).empty());
  EXPECT_EQ(e.observe("vibration", ts += kSec, 9.0, 0.9).size(), 1u);
  EXPECT_TRUE(e.active("anomalous_north"));
  e.observe("current", ts += kSec, 3);
  EXPECT_TRUE(e.active("dry_run")) << "flow not seen yet: its comparisons are false, so not(...) holds";
  e.observe("flow", ts += kSec, 12);
  EXPECT_FALSE(e.active("dry_run"));
  e.observe("flow", ts += kSec, 4);
  EXPECT_TRUE(e.active("dry_run"));
  Evaluator south({rule("anomalous_north", "score(vibration) >= 0.8 and tag.site == \"north\"")}, {{"site", "south"}});
  EXPECT_TRUE(south.observe("vibration", kT0, 9.0, 0.95).empty());
}

TEST(Rules, BadSamplesAndClockJumpsDoNotMisfire) {
  Evaluator e({rule("hot", "temperature > 80 for 1m")});
  int64_t ts = kT0;
  EXPECT_TRUE(e.observe("temperature", ts, 90).empty());
  EXPECT_TRUE(e.observe("temperature", ts + 30 * kSec, std::nan("")).empty());
  EXPECT_TRUE(e.observe("temperature", ts - 3600 * kSec, 90).empty()) << "a clock jump back starts the duration afresh";
  EXPECT_FALSE(e.active("hot"));
}

TEST(Rules, ConditionsThatDoNotParseSayWhereAndWhat) {
  struct Case {
    const char* text;
    const char* column;
    const char* expected;
  } cases[] = {
      {"temperature >", "column 14", "a metric, number"},
      {"temperature 80", "column 13", "a comparison"},
      {"temperature > 80 for", "column 21", "a duration"},
      {"temperature > 80 for 5", "column 23", "a unit"},
      {"(temperature > 80", "column 18", "')'"},
      {"tag.site > \"north\"", "", "== or != between strings"},
      {"tag.site == 3", "", "the same kind on both sides"},
      {"temperature > 80 extra", "column 18", "the end of the condition"},
      {"score(temperature > 1", "", "a metric name and ')'"},
      {"\"open", "", "a closing"},
  };
  for (const auto& c : cases) {
    auto r = parse_condition(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message().find(c.expected), std::string::npos) << c.text << ": " << r.error().message();
    EXPECT_NE(r.error().message().find(c.column), std::string::npos) << c.text << ": " << r.error().message();
  }
  std::string deep(100, '(');
  EXPECT_FALSE(parse_condition(deep + "a > 1" + std::string(100, ')')));
  EXPECT_FALSE(make_rule("", "a > 1"));
  EXPECT_FALSE(make_rule("r", "a > 1", "a < 1 for 5m"));
  EXPECT_TRUE(parse_condition("x>=-1.5e2 or y!=2"));
}

}  // namespace
}  // namespace fieldline::analytics::rules
