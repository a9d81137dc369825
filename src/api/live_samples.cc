#include "fieldline/api/live_samples.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

#include "fieldline/core/json.h"
#include "fieldline/core/time.h"
#include "responses.h"

namespace fieldline::api {

namespace json = boost::json;

LiveSamples::LiveSamples(uint32_t shards) {
  for (uint32_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

uint64_t LiveSamples::watch(uint32_t shard, std::string device, std::shared_ptr<transport::http::WebSocketFeed> feed) {
  const uint64_t id = next_id_.fetch_add(1);
  Shard& s = *shards_.at(shard);
  std::lock_guard lock(s.mu);
  s.watches.push_back({id, std::move(device), std::move(feed)});
  s.watched_series.clear();
  s.watching.store(s.watches.size());
  return id;
}

void LiveSamples::unwatch(uint64_t id) {
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::lock_guard lock(s.mu);
    auto it = std::find_if(s.watches.begin(), s.watches.end(), [id](const Watch& w) { return w.id == id; });
    if (it == s.watches.end()) continue;
    s.watches.erase(it);
    s.watched_series.clear();
    s.watching.store(s.watches.size());
    return;
  }
}

void LiveSamples::observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) {
  Shard& s = *shards_[shard];
  if (s.watching.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(s.mu);
  std::map<std::string, json::array> by_device;
  for (const auto& sample : samples) {
    auto it = s.watched_series.find(sample.ref);
    if (it == s.watched_series.end()) {
      auto key = db.series_key(sample.ref);
      const bool watched = std::any_of(s.watches.begin(), s.watches.end(), [&](const Watch& w) { return w.device == key.device; });
      it = s.watched_series.emplace(sample.ref, watched ? std::make_pair(std::move(key.device), std::move(key.metric))
                                                        : std::pair<std::string, std::string>()).first;
    }
    const auto& [device, metric] = it->second;
    if (device.empty()) continue;
    by_device[device].push_back(json::object{{"metric", metric}, {"ts", sample.ts / core::kNsPerMs}, {"value", detail::value_json(sample.value)}});
  }
  for (auto& [device, list] : by_device) {
    if (list.empty()) continue;
    const std::string text = core::to_json(json::object{{"event", "samples"}, {"device", device}, {"samples", std::move(list)}});
    for (const auto& w : s.watches) {
      if (w.device == device) w.feed->push(text);
    }
  }
}

}  // namespace fieldline::api
