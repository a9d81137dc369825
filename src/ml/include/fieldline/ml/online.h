#pragma once
// Online features in the shards: each shard keeps a FeatureState per device of a profile that
// has a feature view, updated from the stored live samples (ingest::SampleObserver) on the
// shard's thread, so the hot path takes no lock; a read runs on the device's shard too.
//
// The store is the memory: when the server starts, and when a profile's view changes, each
// device's state is rebuilt ("warmed") from its stored samples, as far back as the view looks
// (FeatureView::memory_ns; the newest sample of a metric that needs only that), replayed as the
// training sets replay them. A device that sends is warmed at the end of that round (within
// 2 ms a round); the others once a second (within 100 ms a tick). Until then its state holds
// only what it sent since, and serving leaves it alone.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "fieldline/ingest/pipeline.h"
#include "fieldline/ingest/published.h"
#include "fieldline/ml/features.h"
#include "fieldline/ml/model.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::ml {

// A profile's current feature view.
struct ProfileFeatures {
  int64_t version = 0;
  std::shared_ptr<const FeatureView> view;
};
using FeatureBook = ingest::Published<ProfileFeatures>;

// A model version in production, loaded and checked (serving reads it; a promotion or a
// rollback replaces it at once).
struct ServingModel {
  std::string name, profile;
  int64_t version = 0, view_version = 0;
  std::shared_ptr<const Model> model;
};
using ModelBook = ingest::Published<ServingModel>;


class OnlineFeatures final : public ingest::SampleObserver {
 public:
  OnlineFeatures(uint32_t shards, const FeatureBook& book, ops::Metrics& metrics);
  ~OnlineFeatures() override;

  void observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) override;
  // Warms devices (see below) for up to 100 ms.
  void tick(uint32_t shard, const tsdb::Db& db, int64_t now_ns) override;
  void close(uint32_t) override {}

  struct Reading {
    std::string profile, view;
    int64_t version = 0;
    int64_t as_of_ns = 0;  // the device's newest sample the features have seen
    bool warm = false;     // rebuilt from the store (else: only what it sent since)
    std::vector<std::string> names;
    std::vector<double> values;  // NaN: no data
  };
  // On `shard`'s thread: the device's features, or nothing when its profile has no view (or
  // it has sent nothing since the view was applied or the server started).
  std::optional<Reading> read(uint32_t shard, const std::string& device) const;
  // On `shard`'s thread, for serving, which reads the values without the names: the device's
  // feature state (null: none), the version of the view it follows, and the tags of its
  // series less ingestion's own (protocol, contract version, calibration, quality).
  struct DeviceState {
    const FeatureState* state = nullptr;
    int64_t view_version = 0;
    const tsdb::Tags* tags = nullptr;
    bool warm = false;
  };
  DeviceState state(uint32_t shard, const std::string& device) const;
  // On `shard`'s thread: the devices whose features the last observe() changed, with their
  // profiles (valid until the next observe()).
  const std::vector<std::pair<std::string, std::string>>& updated(uint32_t shard) const;

 private:
  struct Shard;
  struct Device;
  // Takes the views the book publishes now, if it moved.
  void refresh(Shard& s);
  // The device `key` names, following the profile's view (a new view version starts it afresh
  // and queues it to be warmed; `urgent`: at the front).
  Device& adopt(Shard& s, const tsdb::SeriesKey& key, const std::shared_ptr<const ProfileFeatures>& view, bool urgent);
  // Rebuilds the states of `queue`'s devices (cold or stale) from `db` until `budget` has passed.
  void warm(Shard& s, std::deque<std::string>& queue, const tsdb::Db& db, std::chrono::steady_clock::duration budget);
  void warm(Device& d, const tsdb::Db& db);

  const FeatureBook& book_;
  std::vector<std::unique_ptr<Shard>> shards_;
  ops::Counter& warmed_;
  ops::Counter& warm_failures_;
  ops::Counter& late_;
  ops::Counter& not_finite_;
  ops::Counter& applied_;
};

// A production model's output for a device, with the features that moved it most.
struct Prediction {
  std::string device, model, profile;
  int64_t version = 0;
  int64_t as_of_ns = 0;  // the features' time
  double value = 0;
  // Up to 3 contributions, largest first by size; only for the predictions that need an
  // explanation (see Serving): contributions cost far more than the prediction.
  std::vector<std::pair<std::string, double>> top;
};
// A sampled decision, kept for audit: the inputs beside the prediction.
struct DecisionRecord {
  Prediction prediction;
  std::vector<std::string> names;
  std::vector<double> inputs;
};

// Serving in the shards: after the online features (observers run in order), each device
// whose features changed is run through its profile's production models, at most every
// `interval_ns` of its own time. Each prediction is kept as the device's latest of the model,
// goes to the sinks (called on the shard's thread): `prediction`; `store`, as the device's
// series named after the model, tagged model=<name> and model_version=<version> beside the
// device's own tags, at the features' time; and, one in `decision_sample`, `decision` as a
// decision record with its inputs. Inference
// time is the histogram fieldline_inference_seconds. A feature without data (NaN) takes the
// runtime's policy (XGBoost: the branch its trees learnt for missing values; the linear model:
// the training mean) and is counted in fieldline_inference_missing_features_total. Contributions are computed for the
// decision records and for the predictions `explain` asks for (those that raise an alarm).
class Serving final : public ingest::SampleObserver {
 public:
  struct Options {
    uint32_t shards = 1;
    int64_t interval_ns = 0;
    uint32_t decision_sample = 100;
  };
  struct Sinks {
    std::function<void(const Prediction&)> prediction;
    std::function<bool(const Prediction&)> explain;  // true: compute its contributions
    std::function<void(uint32_t shard, const ingest::DerivedSample&)> store;
    std::function<void(DecisionRecord)> decision;
  };
  Serving(Options options, const OnlineFeatures& features, const ModelBook& models, ops::Metrics& metrics, Sinks sinks);
  ~Serving() override;
  void observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) override;
  void tick(uint32_t, const tsdb::Db&, int64_t) override {}
  void close(uint32_t) override {}
  // On `shard`'s thread: the device's latest prediction of each model.
  std::vector<Prediction> predictions(uint32_t shard, const std::string& device) const;
  // On `shard`'s thread: the latest prediction of each model for every device of the shard
  // (the fleet overview), by device.
  std::vector<Prediction> predictions(uint32_t shard) const;

 private:
  struct Shard;
  Options options_;
  const OnlineFeatures& features_;
  const ModelBook& models_;
  Sinks sinks_;
  std::vector<std::unique_ptr<Shard>> shards_;
  ops::Histogram& latency_;
  ops::Counter& failures_;
  ops::Counter& missing_;
};

}  // namespace fieldline::ml
