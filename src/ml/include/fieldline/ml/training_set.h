#pragma once
// Offline features: point-in-time-correct training sets. Each labelled row's features are what
// FeatureState (the online code itself) reads after every sample strictly before the label's
// time, so nothing from the label's moment or after leaks into its features, and a model
// trained on them sees in serving exactly what it saw in training. The set is exported as CSV
// and identified by the SHA-256 of that CSV: the same data, view and labels give the same
// bytes, so training is reproducible bit for bit.

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/ml/feature_view.h"

namespace fieldline::ml {

struct Sample {
  int64_t ts_ns = 0;
  double value = 0;
};

// One device's stored samples, per metric, each in time order.
struct DeviceData {
  std::string device;
  std::vector<std::pair<std::string, std::vector<Sample>>> metrics;
};

// A label: the target at a time (RUL in cycles, 1 for "fails within the horizon"...).
struct Label {
  int64_t ts_ns = 0;
  double value = 0;
};

enum class LabelKind : uint8_t { regression, classification };

struct TrainingSet {
  std::vector<std::string> features;  // column names, the view's feature_names()
  struct Row {
    std::string device;
    int64_t ts_ns = 0;
    double label = 0;
    std::vector<double> features;  // NaN: no data
  };
  std::vector<Row> rows;
  struct Lineage {
    std::string view;
    int64_t view_version = 0;
    std::vector<std::string> devices;
    int64_t from_ns = 0, to_ns = 0;  // the samples the rows read
    uint64_t samples = 0;
  } lineage;
  std::string sha256;  // of csv()

  // "device,time,label,<features...>": times in RFC 3339, numbers with 17 significant digits
  // (they read back to the same bits), an empty cell for NaN.
  std::string csv() const;
};

// `labels[i]` labels `devices[i]` (any order; rows come in device, then time order). A
// classification set needs labels of 0 and 1 with at least one of each; labels must be finite.
Result<TrainingSet> build_training_set(const FeatureView& view, int64_t view_version, const std::vector<DeviceData>& devices,
                                       const std::vector<std::vector<Label>>& labels, LabelKind kind = LabelKind::regression);

// Labels at `times` with the time until the next event after each, in seconds, capped at
// `cap_s` (0: no cap); a time with no event after it gets no label (its outcome is unknown).
std::vector<Label> time_to_event_labels(const std::vector<int64_t>& times, std::vector<int64_t> events, double cap_s);

// Labels from an event metric (failures, maintenance): "event:<metric>/<horizon>/<every>",
// e.g. "event:failure/7d/6h": a row every 6 h of a device's data, labelled with whether the
// event comes within 7 days after it (classification) or the hours to it, capped at 7 days
// (regression).
struct EventLabel {
  std::string metric;
  int64_t horizon_ns = 0, every_ns = 0;
};
// Nothing (not an event label: a metric's name), the parsed label, or an error.
Result<std::optional<EventLabel>> parse_event_label(std::string_view label);
// Rows at `times` (ascending), each at least `every_ns` after the previous row, labelled from
// `events` (ascending) as EventLabel says. A row whose horizon reaches past `observed_until`
// with no event in it is left out: its outcome is not known yet.
std::vector<Label> event_labels(const std::vector<int64_t>& times, const std::vector<int64_t>& events, const EventLabel& label,
                                int64_t observed_until, LabelKind kind);

std::string sha256_hex(std::string_view data);

class FeatureState;
// Applies `data` to `state` in time order (a metric's samples in their order), as the
// training sets do; returns the samples applied.
uint64_t replay(FeatureState& state, const DeviceData& data);

}  // namespace fieldline::ml
