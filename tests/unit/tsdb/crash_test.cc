// Crash recovery: 200 randomized trials that kill the engine at a random step of the write,
// flush (block cut, checkpoint) and compaction paths, drop every byte not yet synced (as
// power loss would), reopen and check that every acknowledged sample is there exactly once.

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "fieldline/core/time.h"
#include "fieldline/tsdb/db.h"
#include "fieldline/tsdb/errc.h"
#include "test_util.h"

namespace fieldline::tsdb {

TEST(CrashRecovery, NoAcknowledgedSampleLostOrDuplicatedOver200Trials) {
  constexpr int64_t kSec = core::kNsPerSecond;
  auto base = core::make_posix_env();
  int crashes_inside = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    testing::TempDir dir;
    core::FaultInjectionEnv env(*base);
    std::mt19937_64 rng(static_cast<uint64_t>(trial) * 7919 + 1);
    std::map<std::pair<int, int64_t>, double> acked;  // (series, ts) -> value
    int steps_until_crash = 1 + static_cast<int>(rng() % 60);
    bool crashed = false;
    DbOptions options;
    options.block_range_ns = 600 * kSec;
    options.out_of_order_window_ns = 30 * kSec;
    options.wal.fsync = core::FsyncPolicy::never;  // durability comes from explicit syncs below
    options.wal.segment_bytes = 4096;
    options.crash_point = [&](std::string_view) -> Status {
      if (crashed || --steps_until_crash > 0) return {};
      crashed = true;
      env.crash();
      return core::make_error(core::Errc::crashed, "injected");
    };
    const int64_t t0 = 1'700'000'000LL * kSec;
    int64_t now = t0;
    for (int life = 0; life < 2; ++life) {
      auto dbr = Db::open(env, dir.path(), options, nullptr);
      ASSERT_TRUE(dbr) << dbr.error().message();
      auto& db = *dbr;
      std::vector<std::pair<int, int64_t>> pending;
      std::vector<double> pending_values;
      for (int round = 0; round < 40 && !crashed; ++round) {
        std::vector<SampleIn> batch;
        std::vector<std::pair<int, int64_t>> keys;
        for (int k = 0; k < 1 + static_cast<int>(rng() % 50); ++k) {
          int series = static_cast<int>(rng() % 4);
          auto ref = db->series({"dev" + std::to_string(series), "m", {}}, ValueType::float64);
          ASSERT_TRUE(ref);
          now += static_cast<int64_t>(rng() % 3) * kSec;
          int64_t ts = now - static_cast<int64_t>(rng() % 20) * kSec;  // some out of order
          double v = static_cast<double>(rng() % 1000);
          batch.push_back({*ref, ts, v});
          keys.emplace_back(series, ts);
        }
        auto r = db->append(batch);
        if (!r) break;  // crashed inside the write path
        std::vector<bool> rejected(batch.size(), false);
        for (const auto& rj : r->rejected) rejected[rj.index] = true;
        for (size_t i = 0; i < batch.size(); ++i) {
          if (rejected[i]) continue;
          // A duplicate of an acknowledged sample keeps the first value.
          if (acked.count(keys[i]) == 0) {
            pending.push_back(keys[i]);
            pending_values.push_back(std::get<double>(batch[i].value));
          }
        }
        if (rng() % 3 == 0) {
          if (db->sync_wal()) {
            for (size_t i = 0; i < pending.size(); ++i) acked.emplace(pending[i], pending_values[i]);
          }
          pending.clear();
          pending_values.clear();
        }
        if (rng() % 5 == 0) (void)db->maintain(now);
        if (rng() % 17 == 0) (void)db->flush_head();
      }
      if (crashed) ++crashes_inside;
      env.crash();  // from outside, like SIGKILL, if nothing inside fired
      db.reset();
      ASSERT_TRUE(env.drop_unsynced());
      env.restart();
      crashed = false;
      steps_until_crash = 1 + static_cast<int>(rng() % 60);
    }
    auto reopened = Db::open(env, dir.path(), options, nullptr);
    ASSERT_TRUE(reopened) << reopened.error().message();
    for (int series = 0; series < 4; ++series) {
      SeriesKey key{"dev" + std::to_string(series), "m", {}};
      auto samples = (*reopened)->read(key, INT64_MIN, INT64_MAX);
      ASSERT_TRUE(samples);
      std::map<int64_t, double> got;
      for (const auto& s : *samples) got[s.ts] = std::get<double>(s.value);
      for (const auto& [k, v] : acked) {
        if (k.first != series) continue;
        auto it = got.find(k.second);
        ASSERT_NE(it, got.end()) << "lost acknowledged sample " << key.to_string() << " at " << k.second;
        EXPECT_EQ(it->second, v);
      }
      // No duplicates: the count over head and blocks equals the distinct timestamps.
      AggregateQuery q;
      q.selector = *Selector::parse("dev" + std::to_string(series) + "/m");
      q.from = INT64_MIN / 2;
      q.to = INT64_MAX / 2;
      q.agg = Agg::count;
      auto agg = (*reopened)->aggregate(q);
      ASSERT_TRUE(agg);
      uint64_t count = agg->groups.empty() ? 0 : agg->groups.begin()->second.buckets.begin()->second.count;
      EXPECT_EQ(count, got.size());
    }
  }
  EXPECT_GT(crashes_inside, 20);  // the injected crash points were actually exercised
}

}  // namespace fieldline::tsdb
