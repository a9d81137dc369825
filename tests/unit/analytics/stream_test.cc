// Detection in the stream (StreamDetection) and the alarm service, driven as a shard drives
// them: samples of real series in a tsdb::Db, alarms in a real alarms.db.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>
#include <mutex>
#include <random>

#include "fieldline/analytics/alarm_service.h"
#include "fieldline/analytics/stream.h"
#include "fieldline/core/env.h"
#include "fieldline/core/errc.h"
#include "fieldline/tsdb/db.h"

namespace fieldline::analytics {
namespace {

namespace asio = boost::asio;
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kT0 = 1'790'000'000LL * kSec;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = (std::filesystem::temp_directory_path() / ("fieldline-stream-" + std::to_string(rd()) + std::to_string(rd()))).string();
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

template <typename T>
T wait(asio::awaitable<T> a) {
  asio::io_context io;
  auto f = asio::co_spawn(io, std::move(a), asio::use_future);
  io.run();
  return f.get();
}

// Collects what a channel is told.
class Recorder final : public AlarmChannel {
 public:
  void deliver(const AlarmNotice& n) override {
    std::lock_guard lock(mu_);
    events_.emplace_back(n.event);
  }
  const char* kind() const override { return "test"; }
  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.set_now_ns(kT0);
    auto db = tsdb::Db::open(env_, dir_.path() + "/tsdb", tsdb::DbOptions{}, nullptr);
    ASSERT_TRUE(db) << db.error().message();
    db_ = std::move(*db);
    open_alarms();
    open_detection();
  }
  void open_alarms(alarms::Policy policy = {}, uint32_t notify_per_second = 50) {
    detection_.reset();
    alarms_.reset();
    AlarmService::Options o;
    o.path = dir_.path() + "/alarms.db";
    o.policy = policy;
    o.notify_per_second = notify_per_second;
    auto a = AlarmService::open(env_, metrics_, o);
    ASSERT_TRUE(a) << a.error().message();
    alarms_ = std::move(*a);
  }
  void open_detection(bool checkpoints = true) {
    if (detection_) detection_->close(0);
    detection_.reset();
    StreamDetection::Options o;
    o.shards = 1;
    if (checkpoints) o.checkpoint_dir = dir_.path() + "/detectors";
    detection_ = std::make_unique<StreamDetection>(o, book_, *alarms_, env_, metrics_);
  }
  // A pump running normally, one row a second: current and flow follow the load together
  // (and vibration stays near 1); returns the time after the last row.
  int64_t normal_pump(const std::string& device, int64_t t, int rows, bool vibration) {
    std::mt19937 rng(9);
    std::normal_distribution<double> noise(0, 0.05);
    std::uniform_real_distribution<double> load(0.5, 1.5);
    for (int i = 0; i < rows; ++i, t += kSec) {
      const double l = load(rng);
      feed(device, "current", t, 10 * l + noise(rng));
      feed(device, "flow", t, 30 * l + noise(rng));
      if (vibration) feed(device, "vibration", t, 1 + noise(rng));
    }
    return t;
  }
  void apply(const std::string& profile, int64_t version, const std::string& toml) {
    auto doc = parse_detector_document(toml);
    ASSERT_TRUE(doc) << doc.error().message();
    auto entry = std::make_shared<ProfileDetectors>();
    entry->version = version;
    entry->document = std::move(*doc);
    book_.publish(profile, entry, [](const ProfileDetectors&) { return false; });
  }
  tsdb::SeriesRef ref(const std::string& device, const std::string& metric, const std::string& quality = "") {
    tsdb::Tags tags{{"profile", "pump"}, {"site", "north"}};
    if (!quality.empty()) tags.emplace_back("quality", quality);
    auto r = db_->series({device, metric, tags}, tsdb::ValueType::float64);
    EXPECT_TRUE(r);
    return *r;
  }
  // One sample, as the pipeline shows it; the clock follows the sample.
  void feed(const std::string& device, const std::string& metric, int64_t ts, double value, const std::string& quality = "") {
    tsdb::SampleIn s{ref(device, metric, quality), ts, value};
    env_.set_now_ns(std::max(ts, kT0));
    detection_->observe(0, *db_, std::span<const tsdb::SampleIn>(&s, 1));
  }
  // `n` samples around 50 with noise, one a second from `from`.
  int64_t normal(const std::string& device, const std::string& metric, int64_t from, int n, uint32_t seed = 7) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0, 1);
    for (int i = 0; i < n; ++i) feed(device, metric, from + i * kSec, 50 + noise(rng));
    return from + n * kSec;
  }
  std::vector<alarms::Alarm> list(alarms::AlarmBook::Filter f = {}) {
    alarms_->flush();
    return wait(alarms_->list(std::move(f), 100000));
  }

  TempDir dir_;
  std::unique_ptr<core::Env> posix_ = core::make_posix_env();
  core::FaultInjectionEnv env_{*posix_};
  ops::Metrics metrics_;
  std::unique_ptr<tsdb::Db> db_;
  DetectorBook book_;
  std::unique_ptr<AlarmService> alarms_;
  std::unique_ptr<StreamDetection> detection_;
};

TEST_F(StreamTest, ASpikeRaisesOneAnomalyAlarmWithEvidenceThatClearsWhenCalm) {
  int64_t t = normal("pump-1", "temperature", kT0, 400);
  feed("pump-1", "temperature", t, 90);
  auto during = list();
  ASSERT_EQ(during.size(), 1u);
  EXPECT_EQ(during[0].type, "anomaly");
  EXPECT_EQ(during[0].device, "pump-1");
  EXPECT_EQ(during[0].dedup_key, "anomaly:temperature");
  EXPECT_TRUE(during[0].active);
  EXPECT_NE(during[0].evidence.explanation.find("temperature 90, expected 5"), std::string::npos) << during[0].evidence.explanation;
  ASSERT_FALSE(during[0].evidence.samples.empty());
  EXPECT_EQ(during[0].evidence.samples.back(), std::make_pair(t, 90.0));
  normal("pump-1", "temperature", t + kSec, 200, 11);
  auto after = list();
  ASSERT_EQ(after.size(), 1u) << "one deviation is one alarm";
  EXPECT_FALSE(after[0].active);
  EXPECT_EQ(after[0].cleared_by, "condition");
}

TEST_F(StreamTest, BadInputNeitherCrashesNorFloodsAlarms) {
  // NaN and infinities among normal values.
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 1);
  for (int i = 0; i < 2000; ++i) {
    double v = i % 3 == 0 ? std::nan("") : i % 7 == 0 ? INFINITY : 20 + noise(rng);
    feed("nan-dev", "flow", kT0 + i * kSec, v);
  }
  // Bursts of one timestamp repeated (a gateway resending).
  for (int i = 0; i < 200; ++i) {
    for (int k = 0; k < 50; ++k) feed("dup-dev", "flow", kT0 + i * kSec, 20 + noise(rng));
  }
  // One value forever.
  for (int i = 0; i < 20000; ++i) feed("stuck-dev", "flow", kT0 + i * kSec, 42.0);
  // Clock jumps: a day back, then a year ahead, then normal again.
  int64_t t = normal("clock-dev", "flow", kT0, 300);
  normal("clock-dev", "flow", t - 86400 * kSec, 100, 5);
  normal("clock-dev", "flow", t + 365 * 86400 * kSec, 300, 6);
  // A gap of three days in the data (a device switched off), then the same behaviour.
  t = normal("gap-dev", "flow", kT0, 300, 8);
  normal("gap-dev", "flow", t + 3 * 86400 * kSec, 300, 9);
  for (const char* device : {"nan-dev", "dup-dev", "stuck-dev", "clock-dev", "gap-dev"}) {
    alarms::AlarmBook::Filter f;
    f.device = device;
    auto raised = list(f);
    EXPECT_LE(raised.size(), 2u) << device << " flooded alarms";
  }
  alarms::AlarmBook::Filter stuck;
  stuck.device = "stuck-dev";
  EXPECT_TRUE(list(stuck).empty()) << "a series that never varied is not a stuck sensor";
}

TEST_F(StreamTest, OutOfRangeSamplesRaiseAnAlarmThatTheNextGoodSampleClears) {
  int64_t t = normal("pump-2", "pressure", kT0, 50);
  feed("pump-2", "pressure", t, 500, "out_of_range");
  alarms::AlarmBook::Filter f;
  f.type = "out_of_range";
  auto raised = list(f);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_TRUE(raised[0].active);
  EXPECT_NE(raised[0].evidence.explanation.find("pressure 500 is outside the range its data contract allows"), std::string::npos)
      << raised[0].evidence.explanation;
  feed("pump-2", "pressure", t + kSec, 50);
  EXPECT_FALSE(list(f)[0].active);
}

TEST_F(StreamTest, ProfileRulesFireAfterTheirDurationAndClearWithHysteresis) {
  apply("pump", 1, R"(
profile = "pump"
[defaults]
detectors = ["flatline"]
[alarm]
runbook = "Check the pump"
[[rules]]
name = "overheat"
when = "temperature > 80 and tag.site == \"north\" for 10s"
clear = "temperature < 75"
severity = "major"
runbook = "Check the cooling fan"
)");
  alarms::AlarmBook::Filter f;
  f.type = "rule";
  for (int i = 0; i < 8; ++i) feed("pump-3", "temperature", kT0 + i * kSec, 85);
  EXPECT_TRUE(list(f).empty()) << "not yet 10 s above 80";
  for (int i = 8; i < 15; ++i) feed("pump-3", "temperature", kT0 + i * kSec, 85);
  auto fired = list(f);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].severity, alarms::Severity::major);
  EXPECT_EQ(fired[0].runbook, "Check the cooling fan");
  EXPECT_EQ(fired[0].dedup_key, "rule:overheat");
  feed("pump-3", "temperature", kT0 + 20 * kSec, 78);
  EXPECT_TRUE(list(f)[0].active) << "78 is inside the hysteresis band";
  feed("pump-3", "temperature", kT0 + 21 * kSec, 70);
  EXPECT_FALSE(list(f)[0].active);
}

TEST_F(StreamTest, TheMultivariateDetectorNamesTheMetricsThatBrokeTheirRelation) {
  apply("pump", 1, R"(
profile = "pump"
[defaults]
detectors = ["flatline"]
[multivariate]
metrics = ["current", "flow", "vibration"]
reference = 300
)");
  int64_t t = normal_pump("pump-4", kT0, 600, true);
  alarms::AlarmBook::Filter f;
  f.type = "multivariate";
  EXPECT_TRUE(list(f).empty()) << "normal rows raise nothing";
  // Flow drops while the current stays (a blocked impeller): each value is ordinary, their
  // relation is not; it lasts, as a fault does.
  for (int i = 0; i < 3; ++i, t += kSec) {
    feed("pump-4", "current", t, 15);
    feed("pump-4", "flow", t, 15);
    feed("pump-4", "vibration", t, 1);
  }
  auto raised = list(f);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_NE(raised[0].evidence.explanation.find("contributing: flow"), std::string::npos) << raised[0].evidence.explanation;
}

// A fault that shows in every other row: "4 rows in a row" never sees it, "4 of the last 8"
// does (the vote `fieldline eval skab` uses, with its own numbers).
TEST_F(StreamTest, TheMultivariateVoteCountsRowsOutsideOverAWindow) {
  for (const std::string window : {"", "window = 8\n"}) {
    const std::string device = window.empty() ? "pump-6" : "pump-7";
    apply("pump", window.empty() ? 1 : 2, "profile = \"pump\"\n[defaults]\ndetectors = [\"flatline\"]\n[multivariate]\n"
                                          "metrics = [\"current\", \"flow\"]\nreference = 300\npersistence = 4\nlimit = 0.95\n" + window);
    int64_t t = normal_pump(device, kT0, 400, false);
    for (int i = 0; i < 12; ++i, t += kSec) {
      feed(device, "current", t, 10);
      feed(device, "flow", t, i % 2 ? 30 : 15);  // every other row, flow without its current
    }
    alarms::AlarmBook::Filter f;
    f.type = "multivariate";
    f.device = device;
    EXPECT_EQ(list(f).size(), window.empty() ? 0u : 1u) << (window.empty() ? "in a row" : "4 of the last 8");
  }
}

TEST_F(StreamTest, DetectorStateSurvivesARestartThroughItsCheckpoint) {
  int64_t t = normal("pump-5", "temperature", kT0, 400);
  // A detector that starts afresh has nothing to compare a first sample with...
  open_detection(false);
  feed("pump-5", "temperature", t, 90);
  EXPECT_TRUE(list().empty());
  // ...one restored from its checkpoint knows what normal was.
  SetUp();  // fresh state on disk
  t = normal("pump-5", "temperature", kT0, 400);
  open_detection(true);  // closes the first: its checkpoint is written
  feed("pump-5", "temperature", t, 90);
  auto raised = list();
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].type, "anomaly");
}

TEST_F(StreamTest, ADamagedCheckpointIsIgnoredNotTrusted) {
  int64_t t = normal("pump-6", "temperature", kT0, 400);
  detection_->close(0);
  const std::string path = dir_.path() + "/detectors/shard-0.ckpt";
  ASSERT_TRUE(std::filesystem::exists(path));
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  detection_.reset();
  open_detection(true);
  // Restored, these detectors would flag the first far-off sample (see the test above);
  // started afresh, they have nothing to judge it by yet.
  feed("pump-6", "temperature", t, 90);
  EXPECT_TRUE(list().empty());
  // And they learn again from there.
  t = normal("pump-6", "temperature", t + kSec, 400);
  feed("pump-6", "temperature", t, 90);
  EXPECT_EQ(list().size(), 1u);
}

TEST_F(StreamTest, AMetricThatFallsSilentRaisesDataMissingUntilItIsBack) {
  int64_t t = normal("pump-7", "flow", kT0, 100);
  detection_->tick(0, *db_, t + 3 * kSec);
  alarms::AlarmBook::Filter f;
  f.type = "data_missing";
  EXPECT_TRUE(list(f).empty()) << "a few seconds late is not missing";
  detection_->tick(0, *db_, t + 60 * kSec);
  auto raised = list(f);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_NE(raised[0].evidence.explanation.find("usually every 1 s"), std::string::npos) << raised[0].evidence.explanation;
  feed("pump-7", "flow", t + 61 * kSec, 50);
  EXPECT_FALSE(list(f)[0].active);
}

TEST_F(StreamTest, AnAlarmStormIsRateLimitedAndChannelsAreToldWhatTheyMissed) {
  alarms::Policy policy;
  policy.max_new_per_minute = 100;
  open_alarms(policy, 20);
  open_detection();
  auto recorder = std::make_shared<Recorder>();
  alarms_->subscribe(recorder, {});
  const int devices = 1000;
  for (int d = 0; d < devices; ++d) normal("storm-" + std::to_string(d), "flow", kT0, 60, d);
  for (int d = 0; d < devices; ++d) feed("storm-" + std::to_string(d), "flow", kT0 + 60 * kSec, 1e6);
  EXPECT_EQ(list().size(), 100u);
  // (A device's own noise may have raised one earlier: the storm is the rest.)
  EXPECT_GE(metrics_.counter("fieldline_alarms_rate_limited_total", "").value(), 890u);
  auto told = recorder->events();
  EXPECT_LE(told.size(), 45u) << "a burst of at most twice the channel's rate";
  // Within about a second the channel hears how many it missed.
  for (int i = 0; i < 40 && recorder->events().back() != "alarm.storm"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(recorder->events().back(), "alarm.storm");
}

TEST_F(StreamTest, AlarmsAndOperatorActionsSurviveAReopen) {
  int64_t t = normal("pump-8", "temperature", kT0, 400);
  feed("pump-8", "temperature", t, 90);
  auto raised = list();
  ASSERT_EQ(raised.size(), 1u);
  const uint64_t id = raised[0].id;
  ASSERT_TRUE(wait(alarms_->acknowledge(id, "operator-7")));
  ASSERT_TRUE(wait(alarms_->comment(id, "operator-7", "bearing replaced")));
  open_alarms();
  open_detection();
  auto again = list();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, id);
  EXPECT_TRUE(again[0].acknowledged);
  EXPECT_EQ(again[0].acknowledged_by, "operator-7");
  ASSERT_EQ(again[0].comments.size(), 1u);
  EXPECT_EQ(again[0].comments[0].text, "bearing replaced");
  EXPECT_EQ(again[0].evidence.samples.back(), std::make_pair(t, 90.0));
  // New alarms take later ids.
  feed("pump-9", "temperature", kT0, 1);
  normal("pump-9", "temperature", kT0 + kSec, 400);
  feed("pump-9", "temperature", kT0 + 402 * kSec, 1000);
  alarms::AlarmBook::Filter f;
  f.device = "pump-9";
  auto later = list(f);
  ASSERT_FALSE(later.empty());
  EXPECT_GT(later[0].id, id);
}

TEST_F(StreamTest, OperatorActionsSayWhatIsWrong) {
  int64_t t = normal("pump-10", "temperature", kT0, 400);
  feed("pump-10", "temperature", t, 90);
  const uint64_t id = list()[0].id;
  auto missing = wait(alarms_->acknowledge(999, "op"));
  ASSERT_FALSE(missing);
  EXPECT_TRUE(core::is(missing.error(), core::Errc::not_found));
  ASSERT_TRUE(wait(alarms_->acknowledge(id, "op")));
  auto twice = wait(alarms_->acknowledge(id, "op2"));
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message().find("acknowledged by op"), std::string::npos);
  ASSERT_TRUE(wait(alarms_->clear(id, "op")));
  EXPECT_FALSE(wait(alarms_->clear(id, "op")));
  EXPECT_FALSE(wait(alarms_->comment(id, "op", "")));
}

TEST_F(StreamTest, AMaintenanceWindowHoldsBackNewAlarmsOfItsDevice) {
  alarms::MaintenanceWindow w{"pump-11", kT0, kT0 + 3600 * kSec, "bearing swap"};
  ASSERT_TRUE(wait(alarms_->add_maintenance(w)));
  int64_t t = normal("pump-11", "temperature", kT0, 400);
  feed("pump-11", "temperature", t, 90);
  t = normal("pump-12", "temperature", kT0, 400);
  feed("pump-12", "temperature", t, 90);
  auto raised = list();
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].device, "pump-12");
  EXPECT_EQ(metrics_.counter("fieldline_alarms_suppressed_total", "").value(), 1u);
}

}  // namespace
}  // namespace fieldline::analytics
