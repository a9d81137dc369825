#include "fieldline/ml/online.h"

#include "fieldline/ml/training_set.h"
#include "fieldline/tsdb/query.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace fieldline::ml {

struct OnlineFeatures::Device {
  std::string name, profile;
  uint64_t round = 0;  // the last round that changed it
  std::shared_ptr<const ProfileFeatures> features;
  std::unique_ptr<FeatureState> state;
  tsdb::Tags tags;  // of its series, less ingestion's and serving's own
  bool warm = false, queued = false;
  bool stale = false;  // a late sample reached the store but not the state: rebuild it
};

struct OnlineFeatures::Shard {
  struct Series {
    uint64_t epoch = 0;
    Device* device = nullptr;  // null: no view reads it
    int input = -1;
  };
  uint64_t generation = UINT64_MAX;
  FeatureBook::Map views;
  uint64_t epoch = 1;  // bumped when the views change: every series looks its view up again
  uint64_t scanned = 0;  // the epoch whose devices were queued to be warmed
  std::vector<std::pair<std::string, std::string>> updated;  // (device, profile) of the last round
  uint64_t round = 0;
  std::unordered_map<std::string, Device> devices;  // node-based: Series point into it
  std::vector<Series> series;                        // by series ref of the shard's Db
  std::deque<std::string> cold;                      // devices to warm, in order
  std::deque<std::string> stale;                     // warm devices to rebuild (ticks only)
};

OnlineFeatures::OnlineFeatures(uint32_t shards, const FeatureBook& book, ops::Metrics& metrics)
    : book_(book),
      warmed_(metrics.counter("fieldline_features_warmed_total", "Devices whose online features were rebuilt from the store")),
      warm_failures_(metrics.counter("fieldline_features_warm_failures_total",
                                     "Stored series the online features could not read back when warming")),
      late_(metrics.counter("fieldline_features_refused_total", "Samples the online features did not apply, by reason",
                            {{"reason", "late"}})),
      not_finite_(metrics.counter("fieldline_features_refused_total", "Samples the online features did not apply, by reason",
                                  {{"reason", "not_finite"}})),
      applied_(metrics.counter("fieldline_features_samples_total", "Samples applied to online features")) {
  for (uint32_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

OnlineFeatures::~OnlineFeatures() = default;

void OnlineFeatures::refresh(Shard& s) {
  if (s.generation == book_.generation()) return;
  s.views = book_.snapshot(s.generation);
  ++s.epoch;
}

OnlineFeatures::Device& OnlineFeatures::adopt(Shard& s, const tsdb::SeriesKey& key, const std::shared_ptr<const ProfileFeatures>& view,
                                              bool urgent) {
  auto& d = s.devices[key.device];
  if (d.features == view) return d;
  // A new view version starts the device's features afresh, from the store.
  d.name = key.device;
  d.profile = view->view->profile;
  d.features = view;
  d.state = std::make_unique<FeatureState>(view->view);
  d.warm = false;
  d.tags.clear();
  for (const auto& tag : key.tags) {
    static constexpr std::string_view kOwn[] = {"protocol", "contract_version", "calibration", "quality", "model", "model_version"};
    if (std::find(std::begin(kOwn), std::end(kOwn), tag.first) == std::end(kOwn)) d.tags.push_back(tag);
  }
  if (!d.queued) {
    d.queued = true;
    if (urgent) s.cold.push_front(d.name);
    else s.cold.push_back(d.name);
  }
  return d;
}

void OnlineFeatures::warm(Device& d, const tsdb::Db& db) {
  DeviceData data{d.name, {}};
  const FeatureView& view = *d.features->view;
  for (const auto& metric : view.inputs()) {
    tsdb::Selector selector;
    selector.matchers = {*tsdb::Matcher::make("device", tsdb::Matcher::Op::eq, d.name),
                         *tsdb::Matcher::make("metric", tsdb::Matcher::Op::eq, metric)};
    auto series = db.select(selector);
    std::erase_if(series, [](const tsdb::SeriesInfo& info) { return info.key.label("model") != nullptr; });
    if (series.empty()) continue;
    int64_t newest = INT64_MIN;
    for (const auto& info : series) newest = std::max(newest, info.max_ts);
    const int64_t memory = view.memory_ns(metric);
    const int64_t from = newest < INT64_MIN + memory ? INT64_MIN : newest - memory;
    auto& samples = data.metrics.emplace_back(metric, std::vector<Sample>{}).second;
    for (const auto& info : series) {
      auto stored = db.read(info.key, from, INT64_MAX);
      if (!stored) {
        warm_failures_.inc();
        continue;
      }
      for (const auto& sample : *stored) {
        double value = 0;
        if (tsdb::numeric_value(sample.value, value)) samples.push_back({sample.ts, value});
      }
    }
    // A metric's series (one per protocol, contract version...) merged in time order.
    if (series.size() > 1) std::stable_sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) { return a.ts_ns < b.ts_ns; });
  }
  auto state = std::make_unique<FeatureState>(d.features->view);
  replay(*state, data);
  d.state = std::move(state);
  d.warm = true;
  d.stale = false;
  warmed_.inc();
}

void OnlineFeatures::warm(Shard& s, std::deque<std::string>& queue, const tsdb::Db& db, std::chrono::steady_clock::duration budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (!queue.empty() && std::chrono::steady_clock::now() < deadline) {
    auto it = s.devices.find(queue.front());
    queue.pop_front();
    if (it == s.devices.end()) continue;
    if (&queue == &s.cold) it->second.queued = false;
    if ((!it->second.warm || it->second.stale) && it->second.features) warm(it->second, db);
  }
}

void OnlineFeatures::tick(uint32_t shard, const tsdb::Db& db, int64_t) {
  Shard& s = *shards_[shard];
  refresh(s);
  if (s.scanned != s.epoch) {
    // Every device with stored samples of a view's inputs follows its view from now on.
    s.scanned = s.epoch;
    for (const auto& [profile, view] : s.views) {
      tsdb::Selector selector;
      selector.matchers = {*tsdb::Matcher::make("profile", tsdb::Matcher::Op::eq, profile)};
      const auto inputs = view->view->inputs();
      for (const auto& info : db.select(selector)) {
        if (info.key.label("model") || std::find(inputs.begin(), inputs.end(), info.key.metric) == inputs.end()) continue;
        adopt(s, info.key, view, false);
      }
    }
  }
  warm(s, s.cold, db, std::chrono::milliseconds(100));
  // Devices that took late samples: rebuilt once a second at most.
  warm(s, s.stale, db, std::chrono::milliseconds(20));
}

void OnlineFeatures::observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) {
  Shard& s = *shards_[shard];
  refresh(s);
  s.updated.clear();
  ++s.round;
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
      auto view = s.views.find(tag ? *tag : std::string());
      if (view != s.views.end() && !key.label("model")) {
        auto& d = adopt(s, key, view->second, true);
        series.input = d.state->input(key.metric);
        if (series.input >= 0) series.device = &d;
      }
    }
    if (!series.device) continue;
    switch (series.device->state->apply(series.input, sample.ts, value)) {
      case FeatureState::Applied::yes:
        ++applied;
        if (series.device->round != s.round) {
          series.device->round = s.round;
          s.updated.emplace_back(series.device->name, series.device->profile);
        }
        break;
      case FeatureState::Applied::late: {
        // The store took it (within its out-of-order window) and the offline path reads it in
        // its place: the state is rebuilt from the store at the next tick, so the two agree
        // again within a second. Until then serving goes on with what it has.
        ++late;
        Device& d = *series.device;
        if (d.warm && !d.stale) {
          d.stale = true;
          s.stale.push_back(d.name);
        }
        break;
      }
      case FeatureState::Applied::not_finite: ++not_finite; break;
    }
  }
  if (applied) applied_.inc(applied);
  if (late) late_.inc(late);
  if (not_finite) not_finite_.inc(not_finite);
  // The devices that just sent come first: their samples are in the store already (observers
  // run after the append), so the rebuilt state includes them.
  warm(s, s.cold, db, std::chrono::milliseconds(2));
}

const std::vector<std::pair<std::string, std::string>>& OnlineFeatures::updated(uint32_t shard) const { return shards_[shard]->updated; }

OnlineFeatures::DeviceState OnlineFeatures::state(uint32_t shard, const std::string& device) const {
  const Shard& s = *shards_[shard];
  auto it = s.devices.find(device);
  if (it == s.devices.end() || !it->second.state) return {};
  return {it->second.state.get(), it->second.features->version, &it->second.tags, it->second.warm};
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
  r.warm = d.warm;
  r.names = d.features->view->feature_names();
  d.state->snapshot(r.as_of_ns, r.values);
  return r;
}

}  // namespace fieldline::ml

namespace fieldline::ml {

struct Serving::Shard {
  uint64_t generation = UINT64_MAX;
  std::map<std::string, std::vector<std::shared_ptr<const ServingModel>>> by_profile;
  struct Last {
    int64_t as_of = INT64_MIN;
    Prediction prediction;
    int64_t stored_version = 0;  // the model version `sample` is tagged with
    ingest::DerivedSample sample;
  };
  std::map<std::pair<std::string, std::string>, Last> last;  // (device, model)
  uint64_t predictions = 0;
};

Serving::Serving(Options options, const OnlineFeatures& features, const ModelBook& models, ops::Metrics& metrics, Sinks sinks)
    : options_(options), features_(features), models_(models), sinks_(std::move(sinks)),
      latency_(metrics.histogram("fieldline_inference_seconds", "A device's prediction: features read, model run, contributions", {},
                                 {10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3})),
      failures_(metrics.counter("fieldline_inference_failures_total", "Predictions a model could not make")),
      missing_(metrics.counter("fieldline_inference_missing_features_total",
                               "Features without data at a prediction (the model's missing-value policy applies)")) {
  for (uint32_t i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

Serving::~Serving() = default;

void Serving::observe(uint32_t shard, const tsdb::Db&, std::span<const tsdb::SampleIn>) {
  Shard& s = *shards_[shard];
  if (s.generation != models_.generation()) {
    s.by_profile.clear();
    for (auto& [name, model] : models_.snapshot(s.generation)) s.by_profile[model->profile].push_back(model);
  }
  if (s.by_profile.empty()) return;
  std::vector<double> values;
  std::vector<float> row, out, why;
  for (const auto& [device, profile] : features_.updated(shard)) {
    auto models = s.by_profile.find(profile);
    if (models == s.by_profile.end()) continue;
    const auto [state, view_version, tags, warm] = features_.state(shard, device);
    if (!state || !warm) continue;  // a state not yet rebuilt from the store would mislead the model
    const int64_t as_of = state->newest();
    bool read = false;
    uint64_t missing = 0;
    for (const auto& m : models->second) {
      if (view_version != m->view_version) continue;  // features of another view version: not this model's
      auto& last = s.last[{device, m->name}];
      if (last.as_of != INT64_MIN && as_of < last.as_of + options_.interval_ns) continue;
      const auto started = std::chrono::steady_clock::now();
      if (!read) {
        // Read once for all the device's models: the values only (names when explaining).
        state->snapshot(as_of, values);
        row.assign(values.begin(), values.end());
        missing = static_cast<uint64_t>(std::count_if(row.begin(), row.end(), [](float f) { return std::isnan(f); }));
        read = true;
      }
      if (missing) missing_.inc(missing);
      if (!m->model->predict(row.data(), 1, out) || out.empty()) {
        failures_.inc();
        continue;
      }
      Prediction p{device, m->name, profile, m->version, as_of, out[0], {}};
      latency_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      const bool sampled = sinks_.decision && options_.decision_sample && s.predictions++ % options_.decision_sample == 0;
      const bool explained = (sampled || (sinks_.explain && sinks_.explain(p))) && m->model->contributions(row.data(), 1, why);
      const auto names = sampled || explained ? state->view().feature_names() : std::vector<std::string>{};
      if (explained) {
        std::vector<std::pair<double, size_t>> order;
        for (size_t j = 0; j < names.size() && j < why.size(); ++j) order.emplace_back(std::fabs(why[j]), j);
        const size_t k = std::min<size_t>(3, order.size());
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                          [](const auto& a, const auto& b) { return a.first > b.first; });
        for (size_t i = 0; i < k; ++i) p.top.emplace_back(names[order[i].second], why[order[i].second]);
      }
      last.as_of = as_of;
      last.prediction = p;
      // One stored prediction per time: a later one at the same time (the rest of a device's
      // metrics arriving in another message) would conflict with it in storage.
      if (sinks_.store && (last.stored_version != m->version || as_of > last.sample.ts)) {
        if (last.stored_version != m->version) {
          // The series' key, built once per model version: the device's tags and the model's.
          last.stored_version = m->version;
          last.sample.device = device;
          last.sample.metric = m->name;
          last.sample.tags = *tags;
          std::erase_if(last.sample.tags, [](const auto& t) { return t.first == "model" || t.first == "model_version"; });
          last.sample.tags.emplace_back("model", m->name);
          last.sample.tags.emplace_back("model_version", std::to_string(m->version));
          std::sort(last.sample.tags.begin(), last.sample.tags.end());
        }
        last.sample.ts = as_of;
        last.sample.value = p.value;
        sinks_.store(shard, last.sample);
      }
      if (sampled) sinks_.decision({p, names, values});
      if (sinks_.prediction) sinks_.prediction(p);
    }
  }
}

std::vector<Prediction> Serving::predictions(uint32_t shard, const std::string& device) const {
  std::vector<Prediction> out;
  const Shard& s = *shards_[shard];
  for (auto it = s.last.lower_bound({device, ""}); it != s.last.end() && it->first.first == device; ++it) {
    if (it->second.as_of != INT64_MIN) out.push_back(it->second.prediction);
  }
  return out;
}

std::vector<Prediction> Serving::predictions(uint32_t shard) const {
  std::vector<Prediction> out;
  for (const auto& [key, last] : shards_[shard]->last) {
    if (last.as_of != INT64_MIN) out.push_back(last.prediction);
  }
  return out;
}

}  // namespace fieldline::ml
