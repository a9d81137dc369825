#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <cmath>

#include "fieldline/core/time.h"
#include "fieldline/tsdb/db.h"
#include "fieldline/tsdb/errc.h"
#include "test_util.h"

namespace fieldline::tsdb {
namespace {

constexpr int64_t kSec = core::kNsPerSecond;
constexpr int64_t kT0 = 1'700'000'000LL * kSec;  // 2023-11-14T22:13:20Z

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    db_.reset();
    auto db = Db::open(*env_, dir_.path(), options_, nullptr);
    ASSERT_TRUE(db) << db.error().message();
    db_ = std::move(*db);
  }
  SeriesRef ref(const std::string& device, const std::string& metric, ValueType t = ValueType::float64,
                std::vector<std::pair<std::string, std::string>> tags = {}) {
    auto r = db_->series({device, metric, std::move(tags)}, t);
    EXPECT_TRUE(r);
    return *r;
  }
  AppendResult put(std::vector<SampleIn> samples) {
    auto r = db_->append(samples);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return r ? *r : AppendResult{};
  }
  std::vector<Sample> read(const std::string& device, const std::string& metric, int64_t from = INT64_MIN,
                           int64_t to = INT64_MAX, std::vector<std::pair<std::string, std::string>> tags = {}) {
    auto r = db_->read({device, metric, std::move(tags)}, from, to);
    EXPECT_TRUE(r);
    return r ? *r : std::vector<Sample>{};
  }

  // Hour-long blocks with a 10-minute out-of-order window; returns the start of an hour.
  int64_t use_hour_blocks() {
    options_.block_range_ns = 3600 * kSec;
    options_.out_of_order_window_ns = 600 * kSec;
    reopen();
    return (kT0 / (3600 * kSec)) * 3600 * kSec;
  }
  static AggregateQuery query(const char* selector, int64_t from, int64_t to, int64_t step, Agg agg) {
    AggregateQuery q;
    q.selector = *Selector::parse(selector);
    q.from = from;
    q.to = to;
    q.step = step;
    q.agg = agg;
    return q;
  }
  // The query answered with rollups allowed, and without them.
  std::pair<AggregateResult, AggregateResult> with_and_without_rollups(AggregateQuery q) {
    q.use_rollups = true;
    auto with = db_->aggregate(q);
    q.use_rollups = false;
    auto without = db_->aggregate(q);
    EXPECT_TRUE(with && without);
    return {with ? std::move(*with) : AggregateResult{}, without ? std::move(*without) : AggregateResult{}};
  }
  // The same groups with the same buckets and the same `agg` (to 1e-9) in both results.
  static void expect_same_buckets(const AggregateResult& a, const AggregateResult& b, Agg agg, const std::string& context = "") {
    ASSERT_FALSE(a.groups.empty()) << context;
    ASSERT_EQ(a.groups.size(), b.groups.size()) << context;
    for (const auto& [key, group] : a.groups) {
      auto other = b.groups.find(key);
      ASSERT_NE(other, b.groups.end()) << context;
      const auto& x = group.buckets;
      const auto& y = other->second.buckets;
      ASSERT_EQ(x.size(), y.size()) << context;
      for (auto ix = x.begin(), iy = y.begin(); ix != x.end(); ++ix, ++iy) {
        EXPECT_EQ(ix->first, iy->first) << context;
        EXPECT_NEAR(ix->second.result(agg), iy->second.result(agg), 1e-9) << context << " " << to_string(agg);
      }
    }
  }
  // One sample a second from `start`, valued 0, 1, 2, ...
  static std::vector<SampleIn> every_second(SeriesRef t, int64_t start, int seconds) {
    std::vector<SampleIn> batch;
    for (int k = 0; k < seconds; ++k) batch.push_back({t, start + k * kSec, static_cast<double>(k)});
    return batch;
  }

  testing::TempDir dir_;
  std::unique_ptr<core::Env> env_ = core::make_posix_env();
  DbOptions options_;
  std::unique_ptr<Db> db_;
};

}  // namespace

TEST_F(DbTest, AppendThenReadAndReplayAfterReopen) {
  auto t = ref("pump-1", "temp");
  std::vector<SampleIn> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back({t, kT0 + i * kSec, 20.0 + i * 0.01});
  auto r = put(batch);
  EXPECT_EQ(r.accepted, 1000u);
  EXPECT_GT(r.lsn, 0u);
  EXPECT_EQ(read("pump-1", "temp").size(), 1000u);
  reopen();
  auto back = read("pump-1", "temp");
  ASSERT_EQ(back.size(), 1000u);
  EXPECT_EQ(back[999].ts, kT0 + 999 * kSec);
  EXPECT_DOUBLE_EQ(std::get<double>(back[999].value), 20.0 + 999 * 0.01);
  EXPECT_EQ(db_->replay_report().samples, 1000u);
}

TEST_F(DbTest, DuplicatesAreIdempotentAndConflictsRejected) {
  auto t = ref("d", "m");
  put({{t, kT0, 1.0}, {t, kT0 + kSec, 2.0}});
  auto r = put({{t, kT0 + kSec, 2.0}, {t, kT0, 1.0}, {t, kT0, 5.0}});
  EXPECT_EQ(r.duplicates, 2u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].index, 2u);
  EXPECT_TRUE(is(r.rejected[0].error, Errc::duplicate_conflict));
  reopen();  // replay repeats the same decisions
  auto back = read("d", "m");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(std::get<double>(back[0].value), 1.0);
}

TEST_F(DbTest, OutOfOrderWithinWindowAcceptedOlderRejected) {
  options_.out_of_order_window_ns = 60 * kSec;
  reopen();
  auto t = ref("d", "m");
  put({{t, kT0 + 100 * kSec, 1.0}});
  auto r = put({{t, kT0 + 50 * kSec, 2.0}, {t, kT0 + 10 * kSec, 3.0}});
  EXPECT_EQ(r.accepted, 1u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_TRUE(is(r.rejected[0].error, Errc::out_of_order));
  EXPECT_NE(r.rejected[0].error.message().find("d/m"), std::string::npos);
  auto back = read("d", "m");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].ts, kT0 + 50 * kSec);
}

TEST_F(DbTest, TypeMismatchRejectsOnlyThatSample) {
  auto t = ref("d", "state", ValueType::string);
  auto r = put({{t, kT0, std::string("running")}, {t, kT0 + kSec, 3.0}, {t, kT0 + 2 * kSec, std::string("stopped")}});
  EXPECT_EQ(r.accepted, 2u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_TRUE(is(r.rejected[0].error, Errc::type_mismatch));
}

TEST_F(DbTest, AllValueTypesSurviveBlocksAndReplay) {
  auto f = ref("d", "f"), i = ref("d", "i", ValueType::int64), b = ref("d", "b", ValueType::boolean),
       s = ref("d", "s", ValueType::string);
  std::vector<SampleIn> batch;
  for (int k = 0; k < 500; ++k) {
    int64_t ts = kT0 + k * 30 * kSec;
    batch.push_back({f, ts, k * 0.5});
    batch.push_back({i, ts, int64_t{k} * 1000});
    batch.push_back({b, ts, k % 3 == 0});
    batch.push_back({s, ts, std::string(k % 50 < 25 ? "on" : "off")});
  }
  put(batch);
  ASSERT_TRUE(db_->flush_head());
  EXPECT_GE(db_->blocks().size(), 2u);
  reopen();
  auto fi = read("d", "i");
  ASSERT_EQ(fi.size(), 500u);
  EXPECT_EQ(std::get<int64_t>(fi[499].value), 499000);
  auto fs = read("d", "s");
  ASSERT_EQ(fs.size(), 500u);
  EXPECT_EQ(std::get<std::string>(fs[30].value), "off");
  EXPECT_EQ(db_->replay_report().samples, 0u);  // all of it lives in blocks now
}

TEST_F(DbTest, HeadIsCutIntoBlocksAndWalTruncated) {
  options_.block_range_ns = 3600 * kSec;
  options_.out_of_order_window_ns = 60 * kSec;
  reopen();
  auto t = ref("d", "m");
  std::vector<SampleIn> batch;
  for (int k = 0; k < 4 * 3600; ++k) batch.push_back({t, kT0 + k * kSec, static_cast<double>(k)});
  put(batch);
  ASSERT_TRUE(db_->maintain(kT0));
  EXPECT_GE(db_->blocks().size(), 2u);
  auto stats = db_->stats();
  EXPECT_GT(stats.persisted_until, kT0);
  EXPECT_EQ(read("d", "m").size(), 4u * 3600);
  // Data older than a persisted block is refused with a reason.
  auto r = put({{t, kT0 + 10 * kSec, 1.0}});
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_TRUE(is(r.rejected[0].error, Errc::too_old));
  reopen();
  EXPECT_EQ(read("d", "m").size(), 4u * 3600);
}

TEST_F(DbTest, AggregatesOverStepsGroupsAndFilters) {
  for (int dev = 0; dev < 4; ++dev) {
    std::string site = dev < 2 ? "north" : "south";
    auto t = ref("pump-" + std::to_string(dev), "temp", ValueType::float64, {{"site", site}});
    std::vector<SampleIn> batch;
    for (int k = 0; k < 600; ++k) batch.push_back({t, kT0 + k * kSec, static_cast<double>(dev * 100 + k % 60)});
    put(batch);
  }
  AggregateQuery q;
  q.selector = *Selector::parse("temp{site=\"north\"}");
  q.from = kT0;
  q.to = kT0 + 600 * kSec;
  q.step = 60 * kSec;
  q.agg = Agg::avg;
  q.group_by = {"site"};
  auto r = db_->aggregate(q);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->groups.size(), 1u);
  const auto& g = r->groups.begin()->second;
  ASSERT_EQ(g.buckets.size(), 10u);
  // avg of (0..59) and (100..159) = 79.5
  EXPECT_DOUBLE_EQ(g.buckets.begin()->second.result(Agg::avg), 79.5);
  EXPECT_EQ(g.buckets.begin()->second.result(Agg::count), 120);
  EXPECT_EQ(g.buckets.begin()->second.result(Agg::max), 159);

  q.selector = *Selector::parse("{metric=\"temp\",device=~\"pump-[23]\"}");
  q.group_by = {};
  q.agg = Agg::p90;
  q.step = 0;
  r = db_->aggregate(q);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->groups.size(), 2u);
  double p90 = r->groups.begin()->second.buckets.begin()->second.result(Agg::p90);
  EXPECT_NEAR(p90, 253, 253 * 0.02);
  q.selector = *Selector::parse("{metric=\"temp\",site!=\"north\",device!~\"pump-3\"}");
  r = db_->aggregate(q);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->groups.size(), 1u);
}

// The head keeps 1-minute rollups as samples arrive (out-of-order ones too, duplicates and
// NaN not): queries over the head read them instead of the samples, with the raw answer; a
// series too sparse for rollups to pay is read raw. Both survive a restart and a cut.
TEST_F(DbTest, HeadRollupsAreKeptAsSamplesArriveAndAnswerLikeRawData) {
  options_.block_range_ns = 4 * 3600 * kSec;
  options_.out_of_order_window_ns = 600 * kSec;
  reopen();
  const int64_t start = (kT0 / (4 * 3600 * kSec)) * 4 * 3600 * kSec;
  auto dense = ref("d", "m"), sparse = ref("s", "m");
  std::vector<SampleIn> batch;
  for (int k = 0; k < 90 * 60; ++k) {
    if (k % 97 == 5) continue;  // holes, filled out of order below
    batch.push_back({dense, start + k * kSec, std::sin(k * 0.01) * 10 + (k % 13) * 0.25});
  }
  for (int k = 0; k < 90; k += 3) batch.push_back({sparse, start + k * 60 * kSec, static_cast<double>(k)});
  put(batch);
  batch.clear();
  for (int k = 90 * 60 - 500; k < 90 * 60; ++k) {
    if (k % 97 == 5) batch.push_back({dense, start + k * kSec, -50.0 - k});  // late, inside the window
  }
  batch.push_back({dense, start + 90 * 60 * kSec - kSec, std::sin((90 * 60 - 1) * 0.01) * 10 + ((90 * 60 - 1) % 13) * 0.25});  // a resend
  batch.push_back({dense, start + 90 * 60 * kSec, std::nan("")});
  auto r = put(batch);
  EXPECT_EQ(r.duplicates, 1u);
  auto check = [&](const char* when) {
    for (int64_t step : {60 * kSec, 600 * kSec, 3600 * kSec}) {
      for (Agg agg : {Agg::avg, Agg::min, Agg::max, Agg::sum, Agg::count}) {
        auto [with, without] = with_and_without_rollups(query("{metric=\"m\"}", start, start + 2 * 3600 * kSec, step, agg));
        // The dense series came from rollups, the sparse one from its 30 samples.
        EXPECT_EQ(with.samples_read, 30u) << when;
        EXPECT_GT(with.rollup_points_read, 80u) << when;
        ASSERT_EQ(with.groups.size(), 2u);
        expect_same_buckets(with, without, agg, std::string(when) + " step " + std::to_string(step));
      }
    }
  };
  check("as written");
  reopen();
  check("after replay");
  // A cut: the first hours go to a block (and its rollups); the head keeps what is after.
  for (int k = 0; k < 60; ++k) batch.push_back({dense, start + 6 * 3600 * kSec + k * kSec, 1.0});
  put(batch);
  ASSERT_TRUE(db_->maintain(start + 6 * 3600 * kSec));
  EXPECT_GT(db_->stats().blocks, 0u);
  auto counted = db_->aggregate(query("d/m", start, start + 8 * 3600 * kSec, 3600 * kSec, Agg::count));
  ASSERT_TRUE(counted);
  uint64_t total = 0;
  for (const auto& [ts, state] : counted->groups.begin()->second.buckets) total += state.count;
  uint64_t written = 60;
  for (int k = 0; k < 90 * 60; ++k) written += k % 97 != 5 || k >= 90 * 60 - 500 ? 1 : 0;
  EXPECT_EQ(total, written);  // every sample once: block rollups + head rollups
  EXPECT_EQ(counted->samples_read, 0u);
}

// A series that was too sparse for head rollups gets them back at the next cut once what
// remains in its head is dense; one that stays sparse is not decoded for nothing.
TEST_F(DbTest, HeadRollupsComeBackWhenASparseSeriesBecomesDense) {
  options_.block_range_ns = 2 * 3600 * kSec;
  options_.out_of_order_window_ns = 600 * kSec;
  reopen();
  const int64_t start = (kT0 / (2 * 3600 * kSec)) * 2 * 3600 * kSec;
  auto x = ref("x", "m");
  std::vector<SampleIn> batch;
  for (int k = 0; k < 60; k += 2) batch.push_back({x, start + k * 60 * kSec, 1.0});  // one every 2 minutes
  for (int k = 0; k < 9000; ++k) batch.push_back({x, start + 2 * 3600 * kSec + k * kSec, static_cast<double>(k % 17)});
  put(batch);
  auto q = query("x/m", start + 2 * 3600 * kSec, start + 3 * 3600 * kSec, 60 * kSec, Agg::sum);
  auto before_cut = db_->aggregate(q);
  ASSERT_TRUE(before_cut);
  EXPECT_GT(before_cut->samples_read, 0u);  // off since its sparse start
  ASSERT_TRUE(db_->maintain(start + 5 * 3600 * kSec));
  EXPECT_EQ(db_->stats().blocks, 1u);  // the sparse hours only: [2 h, 3 h) is still in the head
  auto [after_cut, raw] = with_and_without_rollups(q);
  EXPECT_EQ(after_cut.samples_read, 0u);
  EXPECT_EQ(after_cut.rollup_points_read, 60u);
  expect_same_buckets(after_cut, raw, Agg::sum);
}

TEST_F(DbTest, RollupsAnswerLongRangesWithTheSameResultAsRawData) {
  options_.block_range_ns = 2 * 3600 * kSec;
  options_.out_of_order_window_ns = 60 * kSec;
  reopen();
  auto t = ref("d", "m");
  std::vector<SampleIn> batch;
  int64_t start = (kT0 / (3600 * kSec)) * 3600 * kSec;
  for (int k = 0; k < 24 * 360; ++k) batch.push_back({t, start + k * 10 * kSec, std::sin(k * 0.01) * 10});
  put(batch);
  ASSERT_TRUE(db_->flush_head());
  AggregateQuery q;
  q.selector = *Selector::parse("d/m");
  q.from = start;
  q.to = start + 24 * 3600 * kSec;
  q.step = 3600 * kSec;
  // Every aggregate rollups answer, each asked on its own (a state read from rollups holds
  // what its query needs, not the others).
  for (Agg agg : {Agg::avg, Agg::min, Agg::max, Agg::sum, Agg::count}) {
    q.agg = agg;
    auto [with, without] = with_and_without_rollups(q);
    EXPECT_GT(with.rollup_points_read, 0u);
    EXPECT_EQ(with.samples_read, 0u);
    expect_same_buckets(with, without, agg);
  }
}

TEST_F(DbTest, CompactionMergesBlocksAndRetentionDropsRawThenAll) {
  options_.block_range_ns = 3600 * kSec;
  options_.out_of_order_window_ns = 60 * kSec;
  reopen();
  auto t = ref("d", "m");
  std::vector<SampleIn> batch;
  int64_t start = (kT0 / (6 * 3600 * kSec)) * 6 * 3600 * kSec;
  for (int k = 0; k < 14 * 60; ++k) batch.push_back({t, start + k * 60 * kSec, static_cast<double>(k)});
  put(batch);
  ASSERT_TRUE(db_->flush_head());
  size_t before = db_->blocks().size();
  ASSERT_TRUE(db_->maintain(start));
  EXPECT_LT(db_->blocks().size(), before);
  EXPECT_EQ(read("d", "m").size(), 14u * 60);
  reopen();
  EXPECT_EQ(read("d", "m").size(), 14u * 60);
  // Raw retention passes: raw data gone, hourly rollups remain.
  ASSERT_TRUE(db_->maintain(start + options_.retention_ns + 20 * 3600 * kSec));
  EXPECT_EQ(read("d", "m").size(), 0u);
  auto q = query("d/m", start, start + 14 * 3600 * kSec, 3600 * kSec, Agg::count);
  auto r = db_->aggregate(q);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->groups.size(), 1u);
  EXPECT_EQ(r->groups.begin()->second.buckets.begin()->second.result(Agg::count), 60);
  ASSERT_TRUE(db_->maintain(start + options_.rollup_retention_ns + 20 * 3600 * kSec));
  EXPECT_EQ(db_->blocks().size(), 0u);
}

TEST_F(DbTest, RetentionPerTagSelectorKeepsEachSeriesItsOwnTime) {
  const int64_t day = 86400 * kSec;
  auto rules = parse_retention_rules(R"({site="lab"} raw=2d rollups=5d; {profile=~"meter|grid"} raw=20d)", 10 * day, 40 * day);
  ASSERT_TRUE(rules) << rules.error().message();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[1].rollup_ns, 40 * day);  // omitted: the default
  options_.retention_rules = *rules;
  options_.retention_ns = 10 * day;
  options_.rollup_retention_ns = 40 * day;
  options_.block_range_ns = 3600 * kSec;
  options_.out_of_order_window_ns = 60 * kSec;
  reopen();
  auto lab = ref("a", "t", ValueType::float64, {{"site", "lab"}});
  auto meter = ref("b", "t", ValueType::float64, {{"profile", "meter"}});
  auto other = ref("c", "t");
  int64_t start = (kT0 / (3600 * kSec)) * 3600 * kSec;
  std::vector<SampleIn> batch;
  for (int k = 0; k < 60; ++k) {
    for (auto s : {lab, meter, other}) batch.push_back({s, start + k * 60 * kSec, static_cast<double>(k)});
  }
  put(batch);
  ASSERT_TRUE(db_->flush_head());
  auto count = [&](const std::string& device, std::vector<std::pair<std::string, std::string>> tags) {
    return read(device, "t", INT64_MIN, INT64_MAX, std::move(tags)).size();
  };
  auto hourly = [&](const std::string& selector) {
    AggregateQuery q;
    q.selector = *Selector::parse(selector);
    q.from = start;
    q.to = start + 3600 * kSec;
    q.step = 3600 * kSec;
    q.agg = Agg::count;
    auto r = db_->aggregate(q);
    EXPECT_TRUE(r);
    return r && !r->groups.empty() ? r->groups.begin()->second.buckets.begin()->second.result(Agg::count) : 0.0;
  };
  // Day 3: the lab's raw samples are gone, its rollups and everyone else's data remain.
  ASSERT_TRUE(db_->maintain(start + 3 * day));
  EXPECT_EQ(count("a", {{"site", "lab"}}), 0u);
  EXPECT_EQ(hourly(R"(t{site="lab"})"), 60);
  EXPECT_EQ(count("b", {{"profile", "meter"}}), 60u);
  EXPECT_EQ(count("c", {}), 60u);
  reopen();  // the rewritten block is what is on disk
  EXPECT_EQ(count("a", {{"site", "lab"}}), 0u);
  EXPECT_EQ(count("c", {}), 60u);
  // Day 11: the default raw retention passed; the meter keeps 20 days.
  ASSERT_TRUE(db_->maintain(start + 11 * day));
  EXPECT_EQ(count("c", {}), 0u);
  EXPECT_EQ(count("b", {{"profile", "meter"}}), 60u);
  EXPECT_EQ(hourly(R"(t{site="lab"})"), 0);  // its 5-day rollups expired too
  EXPECT_EQ(hourly(R"(c/t)"), 60);
  // Day 41: everything expired, the block is dropped.
  ASSERT_TRUE(db_->maintain(start + 41 * day));
  EXPECT_EQ(db_->blocks().size(), 0u);
}

TEST_F(DbTest, BlockCutRunsOffTheOwnerAndFencesItsRange) {
  int64_t start = use_hour_blocks();
  auto t = ref("d", "m");
  auto batch = every_second(t, start, 100 * 60);
  put(batch);  // 100 minutes: the first hour is due (held back by half a block)
  auto job = db_->prepare_cut();
  ASSERT_TRUE(job);
  EXPECT_FALSE(db_->prepare_cut()) << "one cut at a time";
  // While the block is written elsewhere: the fenced range refuses new samples, later ones
  // are stored, and queries still see everything.
  auto r = db_->append(std::vector<SampleIn>{{t, start + 3599 * kSec + kSec / 2, 1.0}, {t, start + 100 * 60 * kSec, 2.0}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->accepted, 1u);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_TRUE(is(r->rejected[0].error, Errc::too_old));
  EXPECT_EQ(read("d", "m").size(), 100u * 60 + 1);
  Status run;
  std::thread writer([&] { run = Db::run_cut(*job); });
  writer.join();
  ASSERT_TRUE(run) << run.error().message();
  ASSERT_TRUE(db_->finish_cut(std::move(job), run));
  EXPECT_EQ(db_->blocks().size(), 1u);
  EXPECT_EQ(read("d", "m").size(), 100u * 60 + 1);
  EXPECT_EQ(db_->stats().head_samples, 40u * 60 + 1);
  reopen();
  EXPECT_EQ(read("d", "m").size(), 100u * 60 + 1);
}

TEST_F(DbTest, CancelledOrUnfinishedBlockCutLosesNothing) {
  int64_t start = use_hour_blocks();
  auto t = ref("d", "m");
  auto batch = every_second(t, start, 100 * 60);
  auto quiet = ref("e", "m");  // a device that went quiet within the first hour
  batch.push_back({quiet, start + 3000 * kSec, 1.0});
  put(batch);
  // Cancelled (shutdown): the fence is lifted, the data stays in the head and the WAL.
  auto job = db_->prepare_cut();
  ASSERT_TRUE(job);
  auto fenced = db_->append(std::vector<SampleIn>{{quiet, start + 3500 * kSec, 2.0}});
  ASSERT_TRUE(fenced);
  ASSERT_EQ(fenced->rejected.size(), 1u);
  EXPECT_TRUE(is(fenced->rejected[0].error, Errc::too_old));
  std::atomic<bool> cancel{true};
  auto run = Db::run_cut(*job, &cancel);
  EXPECT_FALSE(run);
  EXPECT_FALSE(db_->finish_cut(std::move(job), run));
  EXPECT_EQ(db_->blocks().size(), 0u);
  auto again = db_->append(std::vector<SampleIn>{{quiet, start + 3500 * kSec, 2.0}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->accepted, 1u);  // the range is open again
  EXPECT_EQ(read("d", "m").size(), 100u * 60);
  EXPECT_EQ(read("e", "m").size(), 2u);
  // Written but never published (the process died between run and finish): the block is
  // found on open and the WAL's copy of its samples is skipped, so each sample exists once.
  job = db_->prepare_cut();
  ASSERT_TRUE(job);
  ASSERT_TRUE(Db::run_cut(*job));
  job.reset();
  reopen();
  EXPECT_EQ(db_->blocks().size(), 1u);
  EXPECT_EQ(read("e", "m").size(), 2u);
  auto all = read("d", "m");
  EXPECT_EQ(all.size(), 100u * 60);
  for (size_t i = 1; i < all.size(); ++i) ASSERT_LT(all[i - 1].ts, all[i].ts);
}

TEST_F(DbTest, CompactionRunsOffTheOwnerAndAnUnfinishedOneIsResolvedOnOpen) {
  options_.block_range_ns = 3600 * kSec;
  options_.out_of_order_window_ns = 60 * kSec;
  reopen();
  auto t = ref("d", "m");
  int64_t start = (kT0 / (6 * 3600 * kSec)) * 6 * 3600 * kSec;
  std::vector<SampleIn> batch;
  for (int k = 0; k < 26 * 60; ++k) batch.push_back({t, start + k * 60 * kSec, static_cast<double>(k)});
  put(batch);
  ASSERT_TRUE(db_->flush_head());
  size_t before = db_->blocks().size();
  auto job = db_->prepare_compaction();
  ASSERT_TRUE(job);
  EXPECT_FALSE(db_->prepare_compaction()) << "one at a time";
  Status run;
  std::thread worker([&] { run = Db::run_compaction(*job); });
  // The owner keeps answering queries from the source blocks meanwhile.
  EXPECT_EQ(read("d", "m").size(), 26u * 60);
  worker.join();
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_EQ(db_->blocks().size(), before) << "nothing changes until finish";
  ASSERT_TRUE(db_->finish_compaction(std::move(job), run));
  EXPECT_LT(db_->blocks().size(), before);
  EXPECT_EQ(read("d", "m").size(), 26u * 60);
  // Written but not finished (the process died): the new block names its sources, so opening
  // deletes them and every sample is there once.
  job = db_->prepare_compaction();  // the second 12-hour window
  ASSERT_TRUE(job);
  ASSERT_TRUE(Db::run_compaction(*job));
  job.reset();
  size_t listed = db_->blocks().size();
  reopen();
  EXPECT_LT(db_->blocks().size(), listed);
  auto all = read("d", "m");
  EXPECT_EQ(all.size(), 26u * 60);
  for (size_t i = 1; i < all.size(); ++i) ASSERT_LT(all[i - 1].ts, all[i].ts);
}

// A device's samples every 10 s over 4 hours of hour-long blocks, most of them cut: a
// replacement of 3 hours in the middle reaches three blocks and the head.
class ReplaceTest : public DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    start_ = use_hour_blocks();
    old_ = ref("d", "m", ValueType::float64, {{"v", "1"}});
    other_ = ref("e", "m");
    std::vector<SampleIn> batch;
    for (int k = 0; k < 4 * 360; ++k) {
      batch.push_back({old_, start_ + k * 10 * kSec, static_cast<double>(k)});
      batch.push_back({other_, start_ + k * 10 * kSec, static_cast<double>(-k)});
    }
    put(batch);
    ASSERT_TRUE(db_->maintain(start_));
    ASSERT_GE(db_->blocks().size(), 2u);
    ASSERT_GT(db_->stats().persisted_until, start_ + 2 * 3600 * kSec);
    ASSERT_LT(db_->stats().persisted_until, start_ + 4 * 3600 * kSec);
  }
  int64_t from() const { return start_ + 1800 * kSec; }
  int64_t to() const { return start_ + (3 * 3600 + 1800) * kSec; }
  // The replacement: the same times under a new series (a new contract version), valued 1000 + k.
  std::vector<SampleIn> replacement() {
    auto fresh = ref("d", "m", ValueType::float64, {{"v", "2"}});
    std::vector<SampleIn> out;
    for (int64_t ts = from(); ts < to(); ts += 10 * kSec) out.push_back({fresh, ts, 1000.0 + static_cast<double>((ts - start_) / (10 * kSec))});
    return out;
  }
  void expect_replaced() {
    auto before = read("d", "m", INT64_MIN, INT64_MAX, {{"v", "1"}});
    ASSERT_EQ(before.size(), 180u + 180u);  // the half hours either side of the range
    for (const auto& s : before) EXPECT_TRUE(s.ts < from() || s.ts >= to()) << s.ts;
    auto after = read("d", "m", INT64_MIN, INT64_MAX, {{"v", "2"}});
    ASSERT_EQ(after.size(), 3u * 360);
    for (const auto& s : after) {
      ASSERT_EQ(std::get<double>(s.value), 1000.0 + static_cast<double>((s.ts - start_) / (10 * kSec)));
    }
    EXPECT_EQ(read("e", "m").size(), 4u * 360) << "another device is left alone";
    // Rollups of the rewritten blocks and head agree with the raw samples.
    auto [with, without] = with_and_without_rollups(query("d/m", start_, start_ + 4 * 3600 * kSec, 3600 * kSec, Agg::sum));
    expect_same_buckets(with, without, Agg::sum);
    auto count = db_->aggregate(query("d/m", start_, start_ + 4 * 3600 * kSec, 4 * 3600 * kSec, Agg::count));
    ASSERT_TRUE(count);
    double total = 0;
    for (const auto& [key, g] : count->groups) total += g.buckets.begin()->second.result(Agg::count);
    EXPECT_EQ(total, 4 * 360) << "every time of the device once";
  }
  int64_t start_ = 0;
  SeriesRef old_ = 0, other_ = 0;
};

TEST_F(ReplaceTest, SwapsADevicesRangeInBlocksAndHeadOnceAndSurvivesReopen) {
  auto r = db_->replace("d", from(), to(), replacement());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->removed, 3u * 360);
  EXPECT_EQ(r->written, 3u * 360);
  EXPECT_GE(r->blocks_rewritten, 2u);
  EXPECT_GT(r->lsn, 0u);
  expect_replaced();
  reopen();  // blocks swapped on disk, the head's part replayed from the WAL
  expect_replaced();
  // Again, as a re-run reprocess would: the same result, nothing doubled.
  r = db_->replace("d", from(), to(), replacement());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->removed, 3u * 360);
  expect_replaced();
  ASSERT_TRUE(db_->flush_head());  // the head's part reaches blocks too
  reopen();
  expect_replaced();
}

TEST_F(ReplaceTest, RunsOffTheOwnerHoldsOffOtherBlockJobsAndTakesLateSamples) {
  auto job = db_->prepare_replace("d", from(), to(), replacement());
  ASSERT_TRUE(job) << job.error().message();
  EXPECT_FALSE(db_->prepare_cut(true)) << "no cut while blocks are rewritten";
  EXPECT_FALSE(db_->prepare_compaction());
  auto second = db_->prepare_replace("e", from(), to(), {});
  ASSERT_FALSE(second);
  EXPECT_TRUE(is(second.error(), Errc::busy));
  Status run;
  std::thread worker([&] { run = Db::run_replace(**job); });
  // Ingestion and queries go on meanwhile; a sample of the device in the range arrives now.
  auto door = ref("d", "door");
  auto late = put({{door, to() - 5 * kSec, 7.0}});
  EXPECT_EQ(late.accepted, 1u);
  EXPECT_EQ(read("d", "m", INT64_MIN, INT64_MAX, {{"v", "1"}}).size(), 4u * 360);
  worker.join();
  ASSERT_TRUE(run) << run.error().message();
  std::vector<SampleIn> arrived{{door, to() - 5 * kSec, 7.0}};
  auto r = db_->finish_replace(std::move(*job), run, arrived);
  ASSERT_TRUE(r) << r.error().message();
  auto kept = read("d", "door");
  ASSERT_EQ(kept.size(), 1u) << "what arrived meanwhile stays";
  EXPECT_EQ(std::get<double>(kept[0].value), 7.0);
  expect_replaced();
  reopen();
  EXPECT_EQ(read("d", "door").size(), 1u);
  expect_replaced();
}

TEST_F(ReplaceTest, AFailedRunChangesNothingAndRefusesBadInput) {
  auto before_blocks = db_->blocks().size();
  int blocks_written = 0;
  options_.crash_point = [&](std::string_view step) -> Status {
    if (step == "replace.block" && ++blocks_written == 2) return core::make_error(core::Errc::crashed, "injected");
    return ok();
  };
  reopen();
  auto r = db_->replace("d", from(), to(), replacement());
  ASSERT_FALSE(r);
  EXPECT_EQ(db_->blocks().size(), before_blocks);
  EXPECT_EQ(read("d", "m", INT64_MIN, INT64_MAX, {{"v", "1"}}).size(), 4u * 360);
  EXPECT_TRUE(read("d", "m", INT64_MIN, INT64_MAX, {{"v", "2"}}).empty());
  options_.crash_point = nullptr;
  reopen();
  EXPECT_EQ(read("d", "m", INT64_MIN, INT64_MAX, {{"v", "1"}}).size(), 4u * 360) << "nothing half-published";
  EXPECT_TRUE(read("d", "m", INT64_MIN, INT64_MAX, {{"v", "2"}}).empty());
  // Samples of another device, or outside the range, are refused with the reason.
  auto wrong = db_->replace("d", from(), to(), {{other_, from(), 1.0}});
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("not the device's"), std::string::npos);
  auto outside = db_->replace("d", from(), to(), {{old_, to(), 1.0}});
  ASSERT_FALSE(outside);
  EXPECT_NE(outside.error().message().find("outside the range"), std::string::npos);
  EXPECT_FALSE(db_->replace("d", to(), from(), {}));
}

TEST(RetentionRules, ParseErrorsSayWhatAndWhere) {
  auto bad = [](const char* text) {
    auto r = parse_retention_rules(text, 86400 * kSec, 400 * 86400 * kSec);
    EXPECT_FALSE(r) << text;
    return r ? std::string() : r.error().message();
  };
  EXPECT_NE(bad("site=lab raw=2d").find("rule 1"), std::string::npos);
  EXPECT_NE(bad(R"({a="b"} raw=2d; {c="d"} keep=3d)").find("rule 2"), std::string::npos);
  EXPECT_NE(bad(R"({a="b"} raw=soon)").find("raw=soon"), std::string::npos);
  EXPECT_NE(bad(R"({a="b"} raw=10d rollups=1d)").find("at least as long"), std::string::npos);
  EXPECT_NE(bad(R"({a="b"})").find("raw=DURATION"), std::string::npos);
  auto empty = parse_retention_rules(" ; ", 86400 * kSec, 400 * 86400 * kSec);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST_F(DbTest, DiskLimitRefusesWritesAndResumesWhenSpaceReturns) {
  options_.max_disk_bytes = 1;  // anything on disk is over the limit
  reopen();
  auto t = ref("d", "m");
  auto r = db_->append(std::vector<SampleIn>{{t, kT0, 1.0}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(is(r.error(), Errc::disk_full));
  EXPECT_EQ(db_->stats().disk_full_rejections, 1u);
  options_.max_disk_bytes = 0;
  reopen();
  EXPECT_TRUE(db_->append(std::vector<SampleIn>{{t, kT0, 1.0}}));
}

TEST_F(DbTest, InjectedEnospcRejectsCleanlyAndRecovers) {
  core::FaultInjectionEnv fenv(*env_);
  db_.reset();
  auto db = Db::open(fenv, dir_.path(), options_, nullptr);
  ASSERT_TRUE(db);
  auto t = *(*db)->series({"d", "m", {}}, ValueType::float64);
  ASSERT_TRUE((*db)->append(std::vector<SampleIn>{{t, kT0, 1.0}}));
  fenv.fail_appends(0, 1, core::Errc::no_space);
  auto r = (*db)->append(std::vector<SampleIn>{{t, kT0 + kSec, 2.0}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(core::is_no_space(r.error()));
  auto ok2 = (*db)->append(std::vector<SampleIn>{{t, kT0 + kSec, 2.0}});
  // The engine re-checks real free space before accepting again.
  EXPECT_TRUE(ok2 || is(ok2.error(), Errc::disk_full));
  db->reset();
  reopen();
  auto back = read("d", "m");
  EXPECT_GE(back.size(), 1u);
  EXPECT_EQ(back[0].ts, kT0);
}

}  // namespace fieldline::tsdb
