#pragma once
// Live samples for WebSocket streams (GET /api/v1/stream?device=ID&samples=true): the samples
// of a watched device as ingestion appends them, pushed to each watching stream. Costs nothing
// while nobody watches: one relaxed load per batch.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fieldline/ingest/pipeline.h"
#include "fieldline/transport/http/server.h"

namespace fieldline::api {

class LiveSamples final : public ingest::SampleObserver {
 public:
  explicit LiveSamples(uint32_t shards);
  // From now on, each batch of `device`'s samples (on `shard`, its owner) goes to `feed` as
  // {"event": "samples", "device": ID, "samples": [{"metric", "ts" (epoch ms), "value"}]}.
  // Samples are shown as they are appended, before they are durable (a live view, like
  // detectors see them). Any thread.
  uint64_t watch(uint32_t shard, std::string device, std::shared_ptr<transport::http::WebSocketFeed> feed);
  void unwatch(uint64_t id);

  void observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) override;
  void tick(uint32_t, const tsdb::Db&, int64_t) override {}
  void close(uint32_t) override {}

 private:
  struct Watch {
    uint64_t id = 0;
    std::string device;
    std::shared_ptr<transport::http::WebSocketFeed> feed;
  };
  struct Shard {
    std::atomic<size_t> watching{0};
    std::mutex mu;  // watches and the cache; taken only while somebody watches
    std::vector<Watch> watches;
    // A series' device and metric when the device is watched, empty when it is not (a series'
    // key never changes, so this is kept until the watches change).
    std::unordered_map<tsdb::SeriesRef, std::pair<std::string, std::string>> watched_series;
  };
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace fieldline::api
