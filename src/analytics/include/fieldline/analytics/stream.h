#pragma once
// Detection in the stream: each shard runs, for every numeric metric of its devices, the
// detectors its profile's detector document names (the default set without one), the
// profile's rules, the contract's range (samples ingestion flagged out_of_range), missing data
// (a metric silent past its usual interval), and, where the document asks for it, a
// multivariate detector per device over several metrics. What fires becomes an alarm through
// the AlarmService; what calms down clears it.
//
// Alarm types and their deduplication keys (one active alarm per device and key):
//   anomaly        anomaly:<metric>        the ensemble's score reached the alarm level
//   out_of_range   range:<metric>          a value outside the contract's range
//   data_missing   missing:<metric>        no sample for `factor` usual intervals
//   multivariate   multivariate            T²/Q of the device's metrics out of control
//   rule           rule:<name>             a profile rule fired (cleared by its clear condition)
//
// Detector state is checkpointed per shard (<dir>/shard-<i>.ckpt) every checkpoint interval
// and at close, and restored when a metric is next seen, so a restart does not relearn from
// nothing. A checkpoint of another document version is not used: the detectors start afresh.

#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <string>

#include "fieldline/analytics/alarm_service.h"
#include "fieldline/analytics/detector_document.h"
#include "fieldline/core/env.h"
#include "fieldline/ingest/pipeline.h"
#include "fieldline/ingest/published.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::analytics {

// A profile's detector document at a version (the registry keeps them all).
struct ProfileDetectors {
  int64_t version = 0;
  DetectorDocument document;
};
using DetectorBook = ingest::Published<ProfileDetectors>;

class StreamDetection final : public ingest::SampleObserver {
 public:
  struct Options {
    uint32_t shards = 1;
    std::string checkpoint_dir;  // "" : no checkpoints
    int64_t checkpoint_interval_ns = 300LL * 1'000'000'000;
  };
  // `contracts` (may be null) lets an out_of_range alarm say what range the contract allows.
  StreamDetection(Options options, const DetectorBook& documents, AlarmService& alarms, core::Env& env, ops::Metrics& metrics,
                  const ingest::ContractBook* contracts = nullptr);
  ~StreamDetection() override;

  void observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) override;
  void tick(uint32_t shard, const tsdb::Db& db, int64_t now_ns) override;
  void close(uint32_t shard) override;

  struct ShardState;

 private:
  std::string checkpoint_path(uint32_t shard) const;  // "" without checkpoints
  void write_checkpoint(const std::string& path, const std::string& bytes);  // on writer_
  Options options_;
  const DetectorBook& documents_;
  const ingest::ContractBook* contracts_;
  AlarmService& alarms_;
  core::Env& env_;
  ops::Metrics& metrics_;
  std::vector<std::unique_ptr<ShardState>> shards_;
  // Checkpoints are written here: a large one must not hold up a shard's ingestion.
  std::unique_ptr<boost::asio::thread_pool> writer_;
};

}  // namespace fieldline::analytics
