#pragma once
// A profile's detector document (TOML, versioned next to its data contract): which detectors
// run on its metrics and how. With no document, or an empty one, every metric gets the default
// set; a document changes the defaults and any metric's own settings:
//
//   profile = "pump"
//   [defaults]
//   detectors = ["robust_z", "robust_z_change", "cusum", "seasonal_daily", "silence"]
//   alarm = 0.6          # score at which the ensemble alarms (0.05-1)
//   refractory = 200     # samples an alarm holds back weaker ones (0-100000)
//   [metrics.temperature]
//   window = 600         # robust z window in samples (16-100000)
//   [metrics.door_open]
//   enabled = false      # no detection on this metric
//
// Errors name the line and the key.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fieldline/analytics/detectors.h"
#include "fieldline/core/result.h"

namespace fieldline::analytics {

struct DetectorDocument {
  std::string profile;
  EnsembleConfig defaults;
  std::map<std::string, std::optional<EnsembleConfig>, std::less<>> metrics;  // nullopt: off
  // The configuration for a metric (nullopt: detection is off for it).
  std::optional<EnsembleConfig> for_metric(std::string_view metric) const;
};

Result<DetectorDocument> parse_detector_document(std::string_view toml_text);

}  // namespace fieldline::analytics
