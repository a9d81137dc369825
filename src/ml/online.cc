#include "fieldline/ml/online.h"

#include <cmath>

namespace fieldline::ml {

struct OnlineFeatures::Shard {
  struct Device {
    std::string profile;
    std::shared_ptr<const ProfileFeatures> features;
    std::unique_ptr<FeatureState> state;
  };
  struct Series {
    uint64_t epoch = 0;
    Device* device = nullptr;  // null: no view reads it
    int input = -1;
  };
  uint64_t generation = UINT64_MAX;
  FeatureBook::Map views;
  uint64_t epoch = 1;  // bumped when the views change: every series looks its view up again
  std::unordered_map<std::string, Device> devices;  // node-based: Series point into it
  std::vector<Series> series;                        // by series ref of the shard's Db
};

OnlineFeatures::OnlineFeatures(uint32_t shards, const FeatureBook& book, ops::Metrics& metrics)
    : book_(book),
      late_(metrics.counter("fieldline_features_refused_total", "Samples the online features did not apply, by reason",
                            {{"reason", "late"}})),
      not_finite_(metrics.counter("fieldline_features_refused_total", "Samples the online features did not apply, by reason",
                                  {{"reason", "not_finite"}})),
      applied_(metrics.counter("fieldline_features_samples_total", "Samples applied to online features")) {
  for (uint32_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

OnlineFeatures::~OnlineFeatures() = default;

void OnlineFeatures::observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) {
  Shard& s = *shards_[shard];
  if (s.generation != book_.generation()) {
    s.views = book_.snapshot(s.generation);
    ++s.epoch;
  }
  if (s.views.empty()) return;
  uint64_t applied = 0, late = 0, not_finite = 0;
  for (const auto& sample : samples) {
    double value = 0;
    if (!tsdb::numeric_value(sample.value, value)) continue;
    if (sample.ref >= s.series.size()) s.series.resize(sample.ref + 1);
    auto& series = s.series[sample.ref];
    if (series.epoch != s.epoch) {
      series.epoch = s.epoch;
      series.device = nullptr;
      const tsdb::SeriesKey key = db.series_key(sample.ref);
      const std::string* tag = key.label("profile");
      const std::string profile = tag ? *tag : std::string();
      auto view = s.views.find(profile);
      if (view != s.views.end()) {
        auto& d = s.devices[key.device];
        if (d.features != view->second) {
          // A new view version starts the device's features afresh.
          d.profile = profile;
          d.features = view->second;
          d.state = std::make_unique<FeatureState>(view->second->view);
        }
        series.input = d.state->input(key.metric);
        if (series.input >= 0) series.device = &d;
      }
    }
    if (!series.device) continue;
    switch (series.device->state->apply(series.input, sample.ts, value)) {
      case FeatureState::Applied::yes: ++applied; break;
      case FeatureState::Applied::late: ++late; break;
      case FeatureState::Applied::not_finite: ++not_finite; break;
    }
  }
  if (applied) applied_.inc(applied);
  if (late) late_.inc(late);
  if (not_finite) not_finite_.inc(not_finite);
}

std::optional<OnlineFeatures::Reading> OnlineFeatures::read(uint32_t shard, const std::string& device) const {
  const Shard& s = *shards_[shard];
  auto it = s.devices.find(device);
  if (it == s.devices.end() || !it->second.state) return std::nullopt;
  const auto& d = it->second;
  Reading r;
  r.profile = d.profile;
  r.view = d.features->view->name;
  r.version = d.features->version;
  r.as_of_ns = d.state->newest();
  r.names = d.features->view->feature_names();
  d.state->snapshot(r.as_of_ns, r.values);
  return r;
}

}  // namespace fieldline::ml
