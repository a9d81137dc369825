#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fieldline/core/time.h"

namespace fieldline::core {

TEST(ParseRfc3339, UtcAndOffsetsAndFractions) {
  EXPECT_EQ(*parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*parse_rfc3339("2026-11-23T01:02:03Z"), 1795395723LL * kNsPerSecond);
  EXPECT_EQ(*parse_rfc3339("2026-11-23T02:02:03+01:00"), 1795395723LL * kNsPerSecond);
  // Beyond what 64-bit nanoseconds hold: refused, not wrapped.
  EXPECT_FALSE(parse_rfc3339("9999-12-31T23:59:59Z"));
  EXPECT_FALSE(parse_rfc3339("1000-01-01T00:00:00Z"));
  EXPECT_EQ(*parse_rfc3339("1970-01-01T00:00:00.5Z"), 500'000'000);
  EXPECT_EQ(*parse_rfc3339("1970-01-01T00:00:00.000000001Z"), 1);
}

TEST(ParseRfc3339, RejectsMalformedWithReason) {
  auto r = parse_rfc3339("2026-13-01T00:00:00Z");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("out of range"), std::string::npos);
  EXPECT_FALSE(parse_rfc3339("2026-11-23T01:02:03"));
  EXPECT_FALSE(parse_rfc3339("2026-11-23T01:02:03Zjunk"));
}

TEST(FormatRfc3339, RoundTrips) {
  for (int64_t ns : {0LL, 1795395723LL * kNsPerSecond, 1795395723LL * kNsPerSecond + 123 * kNsPerMs, 42LL}) {
    EXPECT_EQ(*parse_rfc3339(format_rfc3339(ns)), ns);
  }
}

TEST(ParseTime, RelativeEpochAndNow) {
  int64_t now = 1'000'000 * kNsPerSecond;
  EXPECT_EQ(*parse_time("now", now), now);
  EXPECT_EQ(*parse_time("-1h", now), now - kNsPerHour);
  EXPECT_EQ(*parse_time("now-15m", now), now - 15 * kNsPerMinute);
  EXPECT_EQ(*parse_time("1700000000", now), 1700000000LL * kNsPerSecond);
  EXPECT_EQ(*parse_time("1700000000123", now), 1700000000123LL * kNsPerMs);
  EXPECT_EQ(*parse_time("1700000000123", now, EpochUnit::nanoseconds), 1700000000123LL);
  EXPECT_FALSE(parse_time("yesterday", now));
}

TEST(ParseDuration, UnitsAndCompounds) {
  EXPECT_EQ(*parse_duration("10ms"), 10 * kNsPerMs);
  EXPECT_EQ(*parse_duration("1h30m"), 90 * kNsPerMinute);
  EXPECT_EQ(*parse_duration("7d"), 7 * kNsPerDay);
  EXPECT_FALSE(parse_duration("5 parsecs"));
  EXPECT_FALSE(parse_duration("99999999999999999999y"));
}

TEST(EpochToNs, GuessesUnitByMagnitudeAndRejectsNonFinite) {
  EXPECT_EQ(*epoch_to_ns(1.5e9, EpochUnit::guess), 1'500'000'000LL * kNsPerSecond);
  EXPECT_EQ(*epoch_to_ns(1.5e12, EpochUnit::guess), 1'500'000'000'000LL * kNsPerMs);
  EXPECT_FALSE(epoch_to_ns(std::numeric_limits<double>::infinity(), EpochUnit::guess));
  EXPECT_FALSE(epoch_to_ns(std::nan(""), EpochUnit::guess));
}

}  // namespace fieldline::core
