#include "fieldline/analytics/stream.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <future>
#include <unordered_map>

#include "fieldline/analytics/pca.h"
#include "fieldline/core/log.h"

namespace fieldline::analytics {

namespace {

constexpr int64_t kMinSilenceNs = 10'000'000'000;  // a network hiccup is not missing data
constexpr size_t kEvidenceSamples = 16;

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// The series' tag `name`, or "".
std::string tag_of(const tsdb::SeriesKey& key, std::string_view name) {
  const std::string* v = key.label(name);
  return v ? *v : std::string();
}

}  // namespace

struct StreamDetection::ShardState {
  struct Device {
    int64_t doc_version = -1;
    std::unique_ptr<rules::Evaluator> rules;
    std::map<std::string, std::string> rule_runbooks;
    // Multivariate: the row being gathered (one value per metric at one time).
    std::vector<std::string> mv_metrics;
    std::vector<double> row;
    std::vector<int64_t> row_ts;
    std::vector<std::vector<double>> reference;
    size_t reference_rows = 0;
    std::optional<PcaMonitor> pca;
    bool mv_active = false;
    size_t mv_calm = 0;  // rows in a row without the vote
    size_t mv_persistence = 3, mv_window = 3;
    double mv_limit = 0.99;
    std::deque<bool> mv_outside;  // the last mv_window rows: beyond a limit or not
    size_t mv_outside_count = 0;
    std::deque<std::pair<int64_t, double>> mv_recent;  // (time, largest ratio to its limit)
  };
  // One device's metric (its series of every quality and contract version together).
  struct Metric {
    std::string device, metric, profile;
    int64_t doc_version = -1;
    std::unique_ptr<Ensemble> ensemble;  // null: detection is off for this metric
    // In the metric itself (560 bytes with its ring): behind a pointer it was one more cache
    // miss per sample (a shard holds tens of thousands of metrics).
    std::optional<Silence> silence;
    double level = EnsembleConfig::kDefaultAlarm;  // the ensemble's alarm score
    std::array<std::pair<int64_t, double>, kEvidenceSamples> recent{};
    size_t recent_count = 0;
    bool anomaly_active = false, range_active = false, silence_active = false;
    size_t calm = 0;
    std::shared_ptr<const ProfileDetectors> document;  // null: the defaults
    Device* device_state = nullptr;  // in devices (node-stable)
  };
  struct Series {
    uint32_t metric = 0;  // into metrics, once resolved in `epoch`
    bool out_of_range = false;
    uint64_t epoch = 0;
  };

  std::vector<Series> series;  // by series ref
  std::deque<Metric> metrics;  // stable addresses
  std::unordered_map<std::string, uint32_t> metric_index;  // device \0 metric
  std::unordered_map<std::string, Device> devices;
  DetectorBook::Map documents;
  uint64_t documents_generation = UINT64_MAX;
  uint64_t epoch = 1;
  // Detector state read from the last checkpoint, until its metric is seen again.
  std::unordered_map<std::string, SavedDetectors> restored;  // by key
  int64_t last_checkpoint_ns = 0;
};

StreamDetection::StreamDetection(Options options, const DetectorBook& documents, AlarmService& alarms, core::Env& env,
                                 ops::Metrics& metrics, const ingest::ContractBook* contracts)
    : options_(std::move(options)), documents_(documents), contracts_(contracts), alarms_(alarms), env_(env), metrics_(metrics),
      writer_(std::make_unique<boost::asio::thread_pool>(1)) {
  auto log = core::logger("analytics");
  if (!options_.checkpoint_dir.empty()) {
    if (auto st = env_.create_dirs(options_.checkpoint_dir); !st) log->error("detector checkpoints: {}", st.error().message());
  }
  for (uint32_t i = 0; i < options_.shards; ++i) {
    auto s = std::make_unique<ShardState>();
    s->last_checkpoint_ns = env_.now_ns();
    const std::string path = checkpoint_path(i);
    auto bytes = path.empty() || !env_.exists(path) ? Result<std::string>(std::string()) : env_.read_file(path);
    if (!bytes) {
      log->error("{}: detectors of shard {} start afresh", bytes.error().message(), i);
    } else if (!bytes->empty()) {
      auto saved = decode_detector_file(*bytes);
      if (!saved) {
        log->error("{} ({}): detectors of shard {} start afresh", path, saved.error().message(), i);
      } else {
        for (auto& e : *saved) {
          std::string key = e.key;
          s->restored.emplace(std::move(key), std::move(e));
        }
        log->info("shard {}: detector state of {} metrics restored from {}", i, s->restored.size(), path);
      }
    }
    shards_.push_back(std::move(s));
  }
}

StreamDetection::~StreamDetection() { writer_->join(); }

namespace {

using Shard = StreamDetection::ShardState;

// An alarm's evidence: the metric's last samples, the score and why.
alarms::Evidence evidence_of(const Shard::Metric& m, double score, std::string explanation) {
  alarms::Evidence e;
  const size_t n = std::min(m.recent_count, kEvidenceSamples);
  for (size_t i = m.recent_count - n; i < m.recent_count; ++i) e.samples.push_back(m.recent[i % kEvidenceSamples]);
  e.score = score;
  e.explanation = std::move(explanation);
  return e;
}

std::shared_ptr<const ProfileDetectors> document_of(const Shard& s, const std::string& profile) {
  auto it = s.documents.find(profile);
  return it == s.documents.end() ? nullptr : it->second;
}

void setup_metric(Shard& s, Shard::Metric& m, const ProfileDetectors* doc) {
  static const DetectorDocument kDefaults;
  const DetectorDocument& d = doc ? doc->document : kDefaults;
  m.doc_version = doc ? doc->version : 0;
  m.ensemble.reset();
  m.silence.reset();
  m.anomaly_active = m.silence_active = false;  // a new document judges afresh (open alarms clear by condition later)
  auto config = d.for_metric(m.metric);
  if (!config) return;
  // Missing data is judged on arrival times by its own detector (and on the timer), not by
  // the ensemble on sample times.
  auto& members = config->members;
  const bool silence = std::erase(members, std::string("silence")) > 0;
  if (!members.empty()) m.ensemble = std::make_unique<Ensemble>(*config);
  if (silence) m.silence.emplace();
  m.level = config->alarm;
  auto it = s.restored.find(m.device + '\0' + m.metric);
  if (it != s.restored.end()) {
    if (it->second.document_version == m.doc_version) {
      if (m.ensemble && !restore(*m.ensemble, it->second.ensemble)) m.ensemble = std::make_unique<Ensemble>(*config);
      if (m.silence && !restore(*m.silence, it->second.silence)) m.silence.emplace();
    }
    s.restored.erase(it);
  }
}

void setup_device(Shard::Device& d, const ProfileDetectors* doc, const tsdb::SeriesKey& key) {
  d.doc_version = doc ? doc->version : 0;
  d.rules.reset();
  d.rule_runbooks.clear();
  d.mv_metrics.clear();
  d.pca.reset();
  d.reference.clear();
  if (!doc) return;
  if (!doc->document.rules.empty()) {
    std::vector<rules::Rule> rs;
    for (const auto& e : doc->document.rules) {
      rs.push_back(e.rule);
      d.rule_runbooks[e.rule.name] = e.runbook;
    }
    std::map<std::string, std::string> tags(key.tags.begin(), key.tags.end());
    d.rules = std::make_unique<rules::Evaluator>(std::move(rs), std::move(tags));
  }
  if (const auto& mv = doc->document.multivariate) {
    d.mv_metrics = mv->metrics;
    d.row.assign(mv->metrics.size(), 0);
    d.row_ts.assign(mv->metrics.size(), INT64_MIN);
    d.reference_rows = mv->reference;
    d.mv_persistence = mv->persistence;
    d.mv_window = mv->window ? mv->window : mv->persistence;
    d.mv_limit = mv->limit;
    d.mv_outside.clear();
    d.mv_outside_count = 0;
  }
}

}  // namespace

void StreamDetection::observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) {
  Shard& s = *shards_[shard];
  if (s.documents_generation != documents_.generation()) {
    s.documents = documents_.snapshot(s.documents_generation);
    ++s.epoch;  // every series looks its document up again
  }
  const int64_t now = env_.now_ns();
  for (const auto& sample : samples) {
    double value = 0;
    if (!tsdb::numeric_value(sample.value, value)) continue;
    if (sample.ref >= s.series.size()) s.series.resize(sample.ref + 1);
    auto& series = s.series[sample.ref];
    if (series.epoch != s.epoch) {
      const tsdb::SeriesKey key = db.series_key(sample.ref);
      series.epoch = s.epoch;
      series.out_of_range = tag_of(key, "quality") == ingest::to_string(ingest::Quality::out_of_range);
      const std::string profile = tag_of(key, "profile");
      auto doc = document_of(s, profile);
      std::string mkey = key.device + '\0' + key.metric;
      auto [it, fresh] = s.metric_index.try_emplace(mkey, static_cast<uint32_t>(s.metrics.size()));
      if (fresh) {
        auto& m = s.metrics.emplace_back();
        m.device = key.device;
        m.metric = key.metric;
        m.profile = profile;
      }
      auto& m = s.metrics[it->second];
      const int64_t version = doc ? doc->version : 0;
      if (m.doc_version != version) setup_metric(s, m, doc.get());
      m.document = doc;
      auto& d = s.devices[key.device];
      if (d.doc_version != version) setup_device(d, doc.get(), key);
      m.device_state = &d;
      series.metric = it->second;
    }
    auto& m = s.metrics[series.metric];
    m.recent[m.recent_count++ % kEvidenceSamples] = {sample.ts, value};
    auto evidence = [&m](double score, std::string explanation) { return evidence_of(m, score, std::move(explanation)); };
    const DetectorDocument* document = m.document ? &m.document->document : nullptr;
    const auto severity = document ? document->severity : alarms::Severity::warning;
    static const std::string kNoRunbook;
    const std::string& runbook = document ? document->runbook : kNoRunbook;

    // The contract's range: ingestion flagged the sample.
    if (series.out_of_range && std::isfinite(value)) {
      if (!m.range_active) {
        m.range_active = true;
        // Looked up only when it fires: the range the contract allows, for the explanation.
        std::string allowed = "the range its data contract allows";
        if (auto c = contracts_ ? contracts_->find(m.profile) : nullptr) {
          if (const auto* spec = c->contract.metric(m.metric)) {
            allowed = "[" + (spec->min ? format_value(*spec->min) : std::string("-inf")) + ", " +
                      (spec->max ? format_value(*spec->max) : std::string("inf")) + "], the range contract " + m.profile + " v" +
                      std::to_string(c->version) + " allows";
          }
        }
        alarms_.raise({"out_of_range", m.device, "range:" + m.metric, std::max(severity, alarms::Severity::minor), now,
                       evidence(1.0, m.metric + " " + format_value(value) + " is outside " + allowed), runbook});
      }
    } else if (m.range_active) {
      m.range_active = false;
      alarms_.clear_condition(m.device, "range:" + m.metric, now);
    }
    // Missing data: the metric is back.
    if (m.silence) {
      m.silence->update(now, value);
      if (m.silence_active) {
        m.silence_active = false;
        alarms_.clear_condition(m.device, "missing:" + m.metric, now);
      }
    }
    double score = 0;
    if (m.ensemble) {
      Verdict v = m.ensemble->update(sample.ts, value);
      score = v.score;
      if (v.score >= m.level) {
        m.calm = 0;
        // Raised once and updated while it lasts: the book deduplicates on the key.
        alarms_.raise({"anomaly", m.device, "anomaly:" + m.metric, severity, now,
                       evidence(v.score, m.metric + " " + format_value(v.actual) + ", expected " + format_value(v.expected) +
                                             " (" + std::string(v.detector) + ")"),
                       runbook});
        m.anomaly_active = true;
      } else if (m.anomaly_active && v.unheld < m.level / 2) {
        // Judged on the score before the ensemble's hold: a deviation still under way is not
        // calm because it has already raised its alarm.
        if (++m.calm >= (document ? document->clear_after : 30)) {
          m.anomaly_active = false;
          alarms_.clear_condition(m.device, "anomaly:" + m.metric, now);
        }
      } else {
        m.calm = 0;
      }
    }
    auto& d = *m.device_state;
    if (d.rules) {
      for (const auto& t : d.rules->observe(m.metric, sample.ts, value, score)) {
        const std::string key = "rule:" + t.rule;
        if (t.kind == rules::Transition::Kind::fired) {
          auto sev = alarms::parse_severity(t.severity);
          alarms_.raise({"rule", m.device, key, sev ? *sev : alarms::Severity::warning, now,
                         evidence(1.0, "rule " + t.rule + ": " + t.condition + " (" + m.metric + " " + format_value(value) + ")"),
                         d.rule_runbooks[t.rule].empty() ? runbook : d.rule_runbooks[t.rule]});
        } else {
          alarms_.clear_condition(m.device, key, now);
        }
      }
    }
    if (!d.mv_metrics.empty() && std::isfinite(value)) {
      auto pos = std::find(d.mv_metrics.begin(), d.mv_metrics.end(), m.metric);
      if (pos == d.mv_metrics.end()) continue;
      const size_t k = static_cast<size_t>(pos - d.mv_metrics.begin());
      d.row[k] = value;
      d.row_ts[k] = sample.ts;
      // A row is complete when every metric has a value at this time.
      if (!std::all_of(d.row_ts.begin(), d.row_ts.end(), [&](int64_t t) { return t == sample.ts; })) continue;
      if (!d.pca) {
        d.reference.push_back(d.row);
        if (d.reference.size() >= d.reference_rows) {
          auto fitted = PcaMonitor::fit(d.reference, PcaMonitor::Options{.limit_quantile = d.mv_limit});
          if (fitted) {
            d.pca = std::move(*fitted);
          } else {
            core::logger("analytics")->warn("multivariate detector of {}: {}; fitting on the next rows", m.device,
                                            fitted.error().message());
          }
          d.reference.clear();
        }
        continue;
      }
      auto st = d.pca->observe(d.row);
      const double ratio = std::max(st.t2_ratio, st.q_ratio);
      d.mv_recent.emplace_back(sample.ts, ratio);
      if (d.mv_recent.size() > kEvidenceSamples) d.mv_recent.pop_front();
      // 0 within the limits, 0.5 on them, on towards 1 beyond.
      const double mv_score = ratio <= 1 ? 0 : 1.0 - 0.5 / ratio;
      const bool out = ratio > 1;
      d.mv_outside.push_back(out);
      d.mv_outside_count += out;
      if (d.mv_outside.size() > d.mv_window) {
        d.mv_outside_count -= d.mv_outside.front();
        d.mv_outside.pop_front();
      }
      if (out && d.mv_outside_count >= d.mv_persistence) {
        d.mv_calm = 0;
        std::vector<std::pair<double, size_t>> shares;
        for (size_t i = 0; i < st.contributions.size(); ++i) shares.emplace_back(st.contributions[i], i);
        std::sort(shares.rbegin(), shares.rend());
        std::string who;
        for (size_t i = 0; i < std::min<size_t>(3, shares.size()); ++i) {
          who += (i ? ", " : "") + d.mv_metrics[shares[i].second] + " " + std::to_string(static_cast<int>(std::lround(shares[i].first * 100))) + "%";
        }
        alarms::Evidence e;
        e.samples.assign(d.mv_recent.begin(), d.mv_recent.end());
        e.score = mv_score;
        e.explanation = "T² " + format_value(st.t2_ratio) + "× and Q " + format_value(st.q_ratio) +
                        "× their limits; contributing: " + who;
        alarms_.raise({"multivariate", m.device, "multivariate", severity, now, std::move(e), runbook});
        d.mv_active = true;
      } else if (d.mv_outside_count >= d.mv_persistence) {
        d.mv_calm = 0;
      } else if (d.mv_active && ++d.mv_calm >= (document ? document->clear_after : 30)) {
        d.mv_active = false;
        alarms_.clear_condition(m.device, "multivariate", now);
      }
    }
  }
}

namespace {

std::string serialize(const Shard& s) {
  std::vector<SavedDetectors> entries;
  for (const auto& m : s.metrics) {
    if (!m.ensemble && !m.silence) continue;
    entries.push_back({m.device + '\0' + m.metric, m.doc_version, m.ensemble ? checkpoint(*m.ensemble) : std::string(),
                       m.silence ? checkpoint(*m.silence) : std::string()});
  }
  // Metrics not seen since the restart keep what they had learnt.
  for (const auto& [key, saved] : s.restored) entries.push_back(saved);
  return encode_detector_file(entries);
}

}  // namespace

void StreamDetection::tick(uint32_t shard, const tsdb::Db&, int64_t now_ns) {
  Shard& s = *shards_[shard];
  for (auto& m : s.metrics) {
    if (!m.silence || m.silence_active) continue;
    Verdict v = m.silence->check(now_ns);
    if (v.score < 0.5 || v.actual * 1e9 < static_cast<double>(kMinSilenceNs)) continue;
    m.silence_active = true;
    auto e = evidence_of(m, v.score, m.metric + ": no sample for " + format_value(v.actual) + " s, usually every " +
                                         format_value(v.expected) + " s");
    const auto& doc = m.document;
    alarms_.raise({"data_missing", m.device, "missing:" + m.metric, doc ? doc->document.severity : alarms::Severity::warning,
                   now_ns, std::move(e), doc ? doc->document.runbook : std::string()});
  }
  metrics_.gauge("fieldline_detector_metrics", "Metrics with detectors, by shard", {{"shard", std::to_string(shard)}})
      .set(static_cast<int64_t>(s.metrics.size()));
  if (!options_.checkpoint_dir.empty() && now_ns - s.last_checkpoint_ns >= options_.checkpoint_interval_ns) {
    s.last_checkpoint_ns = now_ns;
    // Serialised here (the state is the shard's), written off the shard.
    boost::asio::post(*writer_, [this, path = checkpoint_path(shard), bytes = serialize(s)] { write_checkpoint(path, bytes); });
  }
}

std::string StreamDetection::checkpoint_path(uint32_t shard) const {
  return options_.checkpoint_dir.empty() ? std::string()
                                         : core::join_path(options_.checkpoint_dir, "shard-" + std::to_string(shard) + ".ckpt");
}

void StreamDetection::write_checkpoint(const std::string& path, const std::string& bytes) {
  // Written beside, synced, then renamed over the old one: a crash leaves one or the other.
  const std::string tmp = path + ".tmp";
  auto write = [&]() -> Status {
    FL_TRY(file, env_.open_writable(tmp, true));
    FL_TRY_STATUS(file->append(bytes));
    FL_TRY_STATUS(file->sync());
    FL_TRY_STATUS(file->close());
    FL_TRY_STATUS(env_.rename(tmp, path));
    return env_.sync_dir(options_.checkpoint_dir);
  };
  if (auto st = write(); !st) core::logger("analytics")->error("detector checkpoint {}: {}", path, st.error().message());
}

void StreamDetection::close(uint32_t shard) {
  Shard& s = *shards_[shard];
  if (options_.checkpoint_dir.empty()) return;
  // Through the writer, after any checkpoint of this shard still being written.
  std::promise<void> done;
  boost::asio::post(*writer_, [this, &done, path = checkpoint_path(shard), bytes = serialize(s)] {
    write_checkpoint(path, bytes);
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace fieldline::analytics
