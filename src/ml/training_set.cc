#include "fieldline/ml/training_set.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "fieldline/ml/features.h"

namespace fieldline::ml {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string TrainingSet::csv() const {
  std::string out = "device,time,label";
  for (const auto& f : features) out += "," + f;
  out += "\n";
  char number[32];
  auto put = [&](double x) {
    out.push_back(',');
    if (std::isnan(x)) return;
    std::snprintf(number, sizeof number, "%.17g", x);
    out += number;
  };
  for (const auto& r : rows) {
    out += r.device;
    out += "," + core::format_rfc3339(r.ts_ns);
    put(r.label);
    for (double x : r.features) put(x);
    out += "\n";
  }
  return out;
}

Result<TrainingSet> build_training_set(const FeatureView& view, int64_t view_version, const std::vector<DeviceData>& devices,
                                       const std::vector<std::vector<Label>>& labels, LabelKind kind) {
  auto bad = [](const std::string& what) { return core::make_error(core::Errc::invalid_argument, "training set: " + what); };
  if (labels.size() != devices.size()) return bad("labels for " + std::to_string(labels.size()) + " devices, data for " + std::to_string(devices.size()));
  auto shared = std::make_shared<const FeatureView>(view);
  TrainingSet set;
  set.features = view.feature_names();
  set.lineage.view = view.name;
  set.lineage.view_version = view_version;
  set.lineage.from_ns = INT64_MAX;
  set.lineage.to_ns = INT64_MIN;
  size_t positives = 0;
  for (size_t d = 0; d < devices.size(); ++d) {
    for (const auto& l : labels[d]) {
      if (!std::isfinite(l.value)) return bad("a label of " + devices[d].device + " is not a finite number");
      if (kind == LabelKind::classification && l.value != 0 && l.value != 1) {
        return bad("a classification label of " + devices[d].device + " is " + std::to_string(l.value) + ", not 0 or 1");
      }
      positives += l.value == 1;
    }
  }
  size_t total = 0;
  for (const auto& l : labels) total += l.size();
  if (total == 0) return bad("no labelled rows");
  if (kind == LabelKind::classification && positives == 0) return bad("no positive labels: every one of the " + std::to_string(total) + " rows is 0");
  if (kind == LabelKind::classification && positives == total) return bad("no negative labels: every one of the " + std::to_string(total) + " rows is 1");

  struct Event {
    int64_t ts;
    int input;
    double value;
  };
  std::vector<size_t> order(devices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return devices[a].device < devices[b].device; });
  for (size_t d : order) {
    if (labels[d].empty()) continue;
    FeatureState state(shared);
    std::vector<Event> events;
    for (const auto& [metric, samples] : devices[d].metrics) {
      const int input = state.input(metric);
      if (input < 0) continue;
      for (const auto& s : samples) events.push_back({s.ts_ns, input, s.value});
    }
    // Stable: a metric's own samples keep their order (each metric's state is independent of
    // the others', so how metrics interleave at one time does not matter).
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
    std::vector<Label> rows = labels[d];
    std::stable_sort(rows.begin(), rows.end(), [](const Label& a, const Label& b) { return a.ts_ns < b.ts_ns; });
    set.lineage.devices.push_back(devices[d].device);
    size_t next = 0;
    for (const auto& l : rows) {
      for (; next < events.size() && events[next].ts < l.ts_ns; ++next) {
        const auto& e = events[next];
        if (state.apply(e.input, e.ts, e.value) == FeatureState::Applied::yes) {
          ++set.lineage.samples;
          set.lineage.from_ns = std::min(set.lineage.from_ns, e.ts);
          set.lineage.to_ns = std::max(set.lineage.to_ns, e.ts);
        }
      }
      TrainingSet::Row row{devices[d].device, l.ts_ns, l.value, {}};
      state.snapshot(l.ts_ns, row.features);
      set.rows.push_back(std::move(row));
    }
  }
  if (set.lineage.samples == 0) set.lineage.from_ns = set.lineage.to_ns = 0;
  set.sha256 = sha256_hex(set.csv());
  return set;
}

uint64_t replay(FeatureState& state, const DeviceData& data) {
  struct Event {
    int64_t ts;
    int input;
    double value;
  };
  std::vector<Event> events;
  for (const auto& [metric, samples] : data.metrics) {
    const int input = state.input(metric);
    if (input < 0) continue;
    for (const auto& s : samples) events.push_back({s.ts_ns, input, s.value});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
  uint64_t applied = 0;
  for (const auto& e : events) applied += state.apply(e.input, e.ts, e.value) == FeatureState::Applied::yes;
  return applied;
}

Result<std::optional<EventLabel>> parse_event_label(std::string_view label) {
  if (!label.starts_with("event:")) return std::optional<EventLabel>{};
  auto bad = [&] {
    return core::make_error(core::Errc::invalid_argument, "label '" + std::string(label.substr(0, 80)) +
                                                              "': an event label reads event:<metric>/<horizon>/<every>, e.g. event:failure/7d/6h");
  };
  const std::string_view rest = label.substr(6);
  const size_t a = rest.find('/'), b = a == std::string_view::npos ? a : rest.find('/', a + 1);
  if (a == 0 || a == std::string_view::npos || b == std::string_view::npos) return bad();
  EventLabel e;
  e.metric = std::string(rest.substr(0, a));
  auto horizon = core::parse_duration(rest.substr(a + 1, b - a - 1));
  auto every = core::parse_duration(rest.substr(b + 1));
  if (!horizon || !every || *horizon <= 0 || *every <= 0) return bad();
  e.horizon_ns = *horizon;
  e.every_ns = *every;
  return std::optional<EventLabel>(std::move(e));
}

std::vector<Label> event_labels(const std::vector<int64_t>& times, const std::vector<int64_t>& events, const EventLabel& label,
                                int64_t observed_until, LabelKind kind) {
  std::vector<Label> out;
  int64_t last_row = INT64_MIN;
  for (int64_t t : times) {
    if (last_row != INT64_MIN && t - last_row < label.every_ns) continue;
    auto next = std::upper_bound(events.begin(), events.end(), t);
    const bool within = next != events.end() && *next - t <= label.horizon_ns;
    if (!within && t + label.horizon_ns > observed_until) continue;  // not known yet
    last_row = t;
    const double hours = static_cast<double>(within ? *next - t : label.horizon_ns) / 3.6e12;
    out.push_back({t, kind == LabelKind::classification ? (within ? 1.0 : 0.0) : hours});
  }
  return out;
}

std::vector<Label> time_to_event_labels(const std::vector<int64_t>& times, std::vector<int64_t> events, double cap_s) {
  std::sort(events.begin(), events.end());
  std::vector<Label> out;
  for (int64_t t : times) {
    auto next = std::upper_bound(events.begin(), events.end(), t);
    if (next == events.end()) continue;
    double seconds = static_cast<double>(*next - t) * 1e-9;
    if (cap_s > 0) seconds = std::min(seconds, cap_s);
    out.push_back({t, seconds});
  }
  return out;
}

}  // namespace fieldline::ml
