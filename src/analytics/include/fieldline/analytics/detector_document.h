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
//   [alarm]
//   severity = "minor"   # of the anomaly alarms (info, warning, minor, major, critical)
//   runbook = "https://wiki.example/pumps#vibration"   # text or link every alarm carries
//   clear_after = 30     # calm samples (score below half the alarm level) before one clears
//   [multivariate]       # one detector over several metrics of a device (an asset)
//   metrics = ["flow", "pressure", "current", "temperature"]
//   reference = 400      # rows of normal operation the model is fitted on (at least metrics + 2)
//   persistence = 3      # rows in a row out of control before it alarms (a fault persists; noise does not)
//   [[rules]]
//   name = "overheat"
//   when = "temperature > 80 for 5m"
//   clear = "temperature < 75"   # optional: hysteresis
//   severity = "major"
//   runbook = "Check the cooling fan"
//
// Errors name the line and the key.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fieldline/analytics/alarms.h"
#include "fieldline/analytics/detectors.h"
#include "fieldline/analytics/rules.h"
#include "fieldline/core/result.h"

namespace fieldline::analytics {

struct DetectorDocument {
  std::string profile;
  EnsembleConfig defaults;
  std::map<std::string, std::optional<EnsembleConfig>, std::less<>> metrics;  // nullopt: off
  alarms::Severity severity = alarms::Severity::warning;  // of anomaly alarms
  std::string runbook;
  size_t clear_after = 30;
  struct Multivariate {
    std::vector<std::string> metrics;
    size_t reference = 400;
    // Outside: T² or Q beyond the `limit` quantile of the reference rows' values, in at least
    // `persistence` of the last `window` rows (window 0: persistence rows in a row).
    size_t persistence = 3;
    size_t window = 0;
    double limit = 0.99;
  };
  std::optional<Multivariate> multivariate;
  struct RuleEntry {
    rules::Rule rule;
    std::string runbook;
  };
  std::vector<RuleEntry> rules;
  // The configuration for a metric (nullopt: detection is off for it).
  std::optional<EnsembleConfig> for_metric(std::string_view metric) const;
};

Result<DetectorDocument> parse_detector_document(std::string_view toml_text);

}  // namespace fieldline::analytics
