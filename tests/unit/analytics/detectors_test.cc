// The streaming detectors on made-up series: what each is for (a spike, a level shift, a
// stuck sensor) and bad input (NaN, gaps, bursts of repeated timestamps, a value that never
// changes, clock jumps) that must neither crash them nor make them alarm on and on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "fieldline/analytics/detectors.h"

namespace fieldline::analytics {
namespace {

constexpr int64_t kMinute = 60'000'000'000LL;
constexpr int64_t kT0 = 1'795'400'000'000'000'000LL;

// Noisy around 50 (σ 1), one sample a minute.
std::vector<double> noisy(size_t n, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(50, 1);
  std::vector<double> out(n);
  for (auto& x : out) x = d(rng);
  return out;
}

size_t alarms(Detector& d, const std::vector<double>& xs, size_t from = 0, int64_t step = kMinute) {
  size_t n = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    auto v = d.update(kT0 + static_cast<int64_t>(i) * step, xs[i]);
    EXPECT_GE(v.score, 0.0);
    EXPECT_LE(v.score, 1.0);
    if (i >= from && v.score >= 0.5) ++n;
  }
  return n;
}

TEST(Detectors, ASpikeStandsOutWithWhatWasExpected) {
  auto xs = noisy(1000);
  xs[800] = 70;
  RobustZ z;
  Verdict at;
  for (size_t i = 0; i < xs.size(); ++i) {
    auto v = z.update(kT0 + static_cast<int64_t>(i) * kMinute, xs[i]);
    if (i == 800) at = v;
  }
  EXPECT_GT(at.score, 0.9);
  EXPECT_NEAR(at.expected, 50, 0.5);
  EXPECT_EQ(at.actual, 70);
  EXPECT_EQ(at.detector, "robust_z");
  Ensemble e;
  auto quiet = noisy(1000);
  EXPECT_EQ(alarms(e, std::vector<double>(quiet.begin(), quiet.begin() + 800), 400), 0u) << "no alarm on plain noise";
  EXPECT_GE(e.update(kT0 + 800 * kMinute, 70).score, 0.5);
}

TEST(Detectors, CusumCatchesALevelShiftTooSmallForAnyOneSample) {
  auto xs = noisy(3000, 11);
  for (size_t i = 2000; i < xs.size(); ++i) xs[i] += 1.0;  // one σ up
  Cusum c;
  size_t first = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    auto v = c.update(kT0 + static_cast<int64_t>(i) * kMinute, xs[i]);
    if (i < 2000) {
      EXPECT_LT(v.score, 0.5) << i;
    }
    if (i >= 2000 && v.score >= 0.5 && first == 0) first = i;
  }
  ASSERT_GT(first, 0u);
  EXPECT_LT(first, 2050u);
}

TEST(Detectors, AStuckSensorIsFlaggedButAValueThatNeverChangedIsNot) {
  auto xs = noisy(500);
  for (size_t i = 300; i < 500; ++i) xs[i] = xs[299];
  Flatline f;
  EXPECT_GT(alarms(f, xs), 0u);
  Flatline never;
  Ensemble e;
  std::vector<double> constant(5000, 42.0);
  EXPECT_EQ(alarms(never, constant), 0u);
  EXPECT_EQ(alarms(e, constant), 0u) << "one value forever is not an anomaly";
}

TEST(Detectors, BadInputNeitherCrashesNorFloods) {
  Ensemble e;
  auto xs = noisy(3000, 3);
  size_t n = 0;
  int64_t ts = kT0;
  for (size_t i = 0; i < xs.size(); ++i) {
    double x = xs[i];
    if (i % 97 == 0) x = std::numeric_limits<double>::quiet_NaN();
    if (i % 101 == 0) x = std::numeric_limits<double>::infinity();
    // A burst of repeated timestamps, a six-hour gap and a clock that jumps back.
    if (i >= 1000 && i < 1050) ts = kT0 + 1000 * kMinute;
    else if (i == 1500) ts += 360 * kMinute;
    else if (i == 2000) ts -= 720 * kMinute;
    else ts += kMinute;
    auto v = e.update(ts, x);
    ASSERT_TRUE(std::isfinite(v.score));
    if (!std::isfinite(x)) {
      EXPECT_EQ(v.score, 0.0);
    }
    if (v.score >= 0.5) ++n;
  }
  EXPECT_LE(n, 5u) << "noise with bad samples in it is not a stream of alarms";
}

TEST(Detectors, TheSeasonalBaselineKnowsWhatIsUsualAtThisHour) {
  // A building's load: high from 8 to 18 h, low at night, four weeks at 15-minute steps.
  constexpr int64_t kDay = 86'400'000'000'000LL, kStep = 15 * kMinute;
  std::mt19937 rng(2);
  std::normal_distribution<double> noise(0, 1);
  auto load = [&](int64_t ts) {
    const int64_t hour = (ts % kDay) / (60 * kMinute);
    return (hour >= 8 && hour < 18 ? 80.0 : 20.0) + noise(rng);
  };
  Seasonal daily(kDay, 48);
  const int64_t start = kT0 - kT0 % kDay;
  double day_high = 0, night_at_day_level = 0;
  for (int64_t ts = start; ts < start + 28 * kDay; ts += kStep) {
    const bool probe = ts >= start + 27 * kDay && (ts % kDay) / (60 * kMinute) == 3 && (ts % (60 * kMinute)) == 0;
    const double x = probe ? 80.0 : load(ts);  // 3 am at the daytime level: unusual for the hour
    auto v = daily.update(ts, x);
    if (probe) night_at_day_level = v.score;
    else if (ts >= start + 27 * kDay) day_high = std::max(day_high, v.score);
  }
  EXPECT_GE(night_at_day_level, 0.5) << "80 at 3 am, where 20 is usual";
  EXPECT_LT(day_high, 0.5) << "the daily swing itself is not an anomaly";
}

TEST(Detectors, SilenceIsNoticedWhileItLastsAndWhenTheLateSampleComes) {
  Silence s;
  int64_t ts = kT0;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.update(ts += kMinute, 1.0).score, 0.0);
  EXPECT_EQ(s.check(ts + 2 * kMinute).score, 0.0);
  EXPECT_GE(s.check(ts + 6 * kMinute).score, 0.5);
  EXPECT_GT(s.check(ts + 60 * kMinute).score, s.check(ts + 6 * kMinute).score);
  auto late = s.update(ts + 10 * kMinute, 1.0);
  EXPECT_GE(late.score, 0.5);
  EXPECT_EQ(late.detector, "silence");
  EXPECT_NEAR(late.expected, 60, 1e-9);  // seconds between samples, usually
  EXPECT_NEAR(late.actual, 600, 1e-9);
  EXPECT_EQ(s.update(ts + 5 * kMinute, 1.0).score, 0.0) << "a clock that jumps back is not a gap";
}

// A step that lasts: the ensemble raises once, then holds its score below the alarm level for
// the refractory samples while Verdict::unheld still says the deviation is under way.
TEST(Detectors, OneDeviationIsOneAlarmWhileUnheldSaysItLasts) {
  auto xs = noisy(1200, 5);
  for (size_t i = 900; i < 950; ++i) xs[i] += 25;
  Ensemble e;  // alarm 0.6, refractory 100
  size_t raised = 0, still_deviating = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    auto v = e.update(kT0 + static_cast<int64_t>(i) * kMinute, xs[i]);
    EXPECT_LE(v.score, v.unheld);
    if (i < 400) continue;
    if (v.score >= 0.6) {
      ++raised;
      EXPECT_EQ(i, 900u) << "the first sample of the step raises, no other";
    }
    if (i > 900 && i < 950 && v.unheld >= 0.6) ++still_deviating;
  }
  EXPECT_EQ(raised, 1u);
  EXPECT_GT(still_deviating, 10u) << "the hold does not hide that the step lasts";
}

// A spike every night at 03:00 (a batch job) is news the first time and routine after it; a
// spike at another hour still is news.
TEST(Detectors, ARoutineAtTheSameHourEachDayIsNotNews) {
  constexpr int64_t kDay = 1440 * kMinute, kStep = 5 * kMinute;
  const int64_t midnight = kT0 - kT0 % kDay;
  const size_t per_day = 288, days = 8;
  auto xs = noisy(per_day * days, 13);
  for (size_t d = 0; d < days; ++d) xs[d * per_day + 36] += 15;  // 03:00 each day
  const size_t other = 6 * per_day + 180;                           // 15:00 on day 6
  xs[other] += 15;
  Ensemble e;
  std::vector<size_t> raised;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (e.update(midnight + static_cast<int64_t>(i) * kStep, xs[i]).score >= 0.6) raised.push_back(i);
  }
  ASSERT_FALSE(raised.empty());
  EXPECT_EQ(raised.front(), 36u) << "the first nightly spike is news";
  for (size_t i : raised) EXPECT_TRUE(i == 36 || i == other) << "sample " << i << " raised";
  EXPECT_NE(std::find(raised.begin(), raised.end(), other), raised.end()) << "a spike at another hour is news";
}

TEST(Detectors, ScoresRiseWithTheDeviation) {
  EXPECT_EQ(score_of_z(2.9), 0.0);
  EXPECT_NEAR(score_of_z(6.0), 0.5, 1e-12);
  EXPECT_GT(score_of_z(12), score_of_z(8));
  EXPECT_LE(score_of_z(1e9), 1.0);
  EXPECT_EQ(score_of_z(std::numeric_limits<double>::quiet_NaN()), 0.0);
}

}  // namespace
}  // namespace fieldline::analytics

namespace fieldline::analytics {
namespace {

// A restart: the detectors' checkpoint, restored into fresh ones, carries on exactly where the
// originals are, so nothing is relearnt from nothing.
TEST(DetectorCheckpoints, ARestoredEnsembleCarriesOnExactlyLikeTheOriginal) {
  auto xs = noisy(6000, 9);
  for (size_t i = 4500; i < 4600; ++i) xs[i] += 6;  // an excursion after the restart
  Ensemble original;
  int64_t ts = kT0;
  for (size_t i = 0; i < 4000; ++i) original.update(ts += kMinute, xs[i]);
  const std::string saved = checkpoint(original);
  Ensemble restored;
  ASSERT_TRUE(restore(restored, saved)) << restore(restored, saved).error().message();
  Ensemble fresh;  // what a restart without checkpoints would have
  size_t differ_from_fresh = 0;
  for (size_t i = 4000; i < xs.size(); ++i) {
    ts += kMinute;
    auto a = original.update(ts, xs[i]);
    auto b = restored.update(ts, xs[i]);
    ASSERT_EQ(a.score, b.score) << i;
    ASSERT_EQ(a.expected, b.expected) << i;
    ASSERT_EQ(a.detector, b.detector) << i;
    differ_from_fresh += fresh.update(ts, xs[i]).score != a.score;
  }
  EXPECT_GT(differ_from_fresh, 100u) << "a fresh detector is not the same as a restored one";
}

// Missing data's usual interval is the median of a ring of the last 64: saved part-way round
// the ring, with intervals that differ, the restored detector learns and judges as the original.
TEST(DetectorCheckpoints, ARestoredSilenceKnowsTheUsualIntervalAsTheOriginalDoes) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> seconds(20, 100);
  Silence original;
  int64_t ts = kT0;
  for (int i = 0; i < 150; ++i) original.update(ts += seconds(rng) * 1'000'000'000LL, 1.0);
  Silence restored;
  ASSERT_TRUE(restore(restored, checkpoint(original)));
  EXPECT_EQ(checkpoint(restored), checkpoint(original));
  for (int i = 0; i < 200; ++i) {
    ts += (i % 50 == 49 ? 20 * seconds(rng) : seconds(rng)) * 1'000'000'000LL;
    ASSERT_EQ(original.check(ts).score, restored.check(ts).score) << i;
    const auto a = original.update(ts, 1.0), b = restored.update(ts, 1.0);
    ASSERT_EQ(a.score, b.score) << i;
    ASSERT_EQ(a.expected, b.expected) << i;
  }
}

// The ensemble keeps its members in itself; its checkpoint is still the members' own
// checkpoints side by side (checkpoints written before stay readable), and they learn the same.
TEST(DetectorCheckpoints, AnEnsembleSavesWhatItsMembersOnTheirOwnWould) {
  constexpr int64_t kDay = 86'400'000'000'000LL;
  std::vector<std::pair<std::string, std::unique_ptr<Detector>>> members;
  members.emplace_back("robust_z", std::make_unique<Likelihood>(std::make_unique<RobustZ>(288, false)));
  members.emplace_back("robust_z_change", std::make_unique<Likelihood>(std::make_unique<RobustZ>(288, true)));
  members.emplace_back("ewma", std::make_unique<Likelihood>(std::make_unique<Ewma>()));
  members.emplace_back("cusum", std::make_unique<Cusum>());
  members.emplace_back("flatline", std::make_unique<Flatline>());
  members.emplace_back("seasonal_daily", std::make_unique<Likelihood>(std::make_unique<Seasonal>(kDay, 48)));
  members.emplace_back("seasonal_weekly", std::make_unique<Seasonal>(7 * kDay, 168));
  members.emplace_back("silence", std::make_unique<Silence>());
  Ensemble ensemble;
  auto xs = noisy(3000, 11);
  for (size_t i = 2000; i < 2010; ++i) xs[i] += 8;
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t ts = kT0 + static_cast<int64_t>(i) * kMinute;
    double highest = 0;
    for (auto& [name, d] : members) highest = std::max(highest, d->update(ts, xs[i]).score);
    ASSERT_EQ(ensemble.update(ts, xs[i]).unheld, highest) << i;
  }
  std::string expected;
  core::put_uvarint(expected, members.size());
  for (auto& [name, d] : members) {
    core::put_string(expected, name);
    d->save(expected);
  }
  std::string saved;
  ensemble.save(saved);
  ASSERT_GT(saved.size(), expected.size());
  EXPECT_EQ(saved.substr(0, expected.size()), expected);
}

TEST(DetectorCheckpoints, DamagedOrForeignCheckpointsAreRefusedWithAReason) {
  Ensemble e;
  for (int i = 0; i < 500; ++i) e.update(kT0 + i * kMinute, 50.0 + (i % 7));
  std::string saved = checkpoint(e);
  Ensemble target;
  EXPECT_FALSE(restore(target, "nonsense"));
  std::string flipped = saved;
  flipped[flipped.size() / 2] ^= 0x20;
  auto damaged = restore(target, flipped);
  ASSERT_FALSE(damaged);
  EXPECT_NE(damaged.error().message().find("checksum"), std::string::npos);
  EXPECT_FALSE(restore(target, saved.substr(0, saved.size() - 3)));
  // Another kind of detector's checkpoint does not fit.
  Ewma ewma;
  ewma.update(kT0, 1.0);
  auto foreign = restore(target, checkpoint(ewma));
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message().find("does not fit"), std::string::npos);
  // A robust z with a smaller window refuses a longer history.
  RobustZ small(16);
  RobustZ large(288);
  for (int i = 0; i < 100; ++i) large.update(kT0 + i * kMinute, i);
  EXPECT_FALSE(restore(small, checkpoint(large)));
}

}  // namespace
}  // namespace fieldline::analytics
