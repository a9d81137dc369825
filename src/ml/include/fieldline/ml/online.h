#pragma once
// Online features in the shards: each shard keeps a FeatureState per device of a profile that
// has a feature view, updated from the stored live samples (ingest::SampleObserver) on the
// shard's thread, so the hot path takes no lock; a read runs on the device's shard too.

#include <cstdint>
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
  void tick(uint32_t, int64_t) override {}
  void close(uint32_t) override {}

  struct Reading {
    std::string profile, view;
    int64_t version = 0;
    int64_t as_of_ns = 0;  // the device's newest sample the features have seen
    std::vector<std::string> names;
    std::vector<double> values;  // NaN: no data
  };
  // On `shard`'s thread: the device's features, or nothing when its profile has no view (or
  // it has sent nothing since the view was applied or the server started).
  std::optional<Reading> read(uint32_t shard, const std::string& device) const;

 private:
  struct Shard;
  const FeatureBook& book_;
  std::vector<std::unique_ptr<Shard>> shards_;
  ops::Counter& late_;
  ops::Counter& not_finite_;
  ops::Counter& applied_;
};

}  // namespace fieldline::ml
