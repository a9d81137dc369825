// A profile's detector document: defaults that need no configuration, per-metric settings on
// top of the profile's defaults, a metric switched off, and errors that name the line and key.
#include <gtest/gtest.h>

#include <algorithm>

#include "fieldline/analytics/detector_document.h"

namespace fieldline::analytics {
namespace {

TEST(DetectorDocument, NoConfigurationMeansTheDefaultSet) {
  auto doc = parse_detector_document("");
  ASSERT_TRUE(doc) << doc.error().message();
  auto c = doc->for_metric("anything");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->members, EnsembleConfig{}.members);
  EXPECT_EQ(c->window, 288u);
  // Every default member is one a document may name.
  for (const auto& m : c->members) EXPECT_NE(std::find(detector_names().begin(), detector_names().end(), m), detector_names().end()) << m;
}

TEST(DetectorDocument, DefaultsThenPerMetricSettingsAndAMetricSwitchedOff) {
  auto doc = parse_detector_document(R"(profile = "pump"
[defaults]
detectors = ["robust_z", "cusum", "silence"]
alarm = 0.6
refractory = 200
[metrics.temperature]
window = 600
[metrics.vibration]
detectors = ["robust_z_change", "seasonal_daily"]
[metrics.door_open]
enabled = false
)");
  ASSERT_TRUE(doc) << doc.error().message();
  EXPECT_EQ(doc->profile, "pump");
  auto temperature = doc->for_metric("temperature");
  ASSERT_TRUE(temperature);
  EXPECT_EQ(temperature->members, (std::vector<std::string>{"robust_z", "cusum", "silence"})) << "the profile's defaults";
  EXPECT_EQ(temperature->window, 600u);
  EXPECT_DOUBLE_EQ(temperature->alarm, 0.6);
  EXPECT_EQ(temperature->refractory, 200u);
  EXPECT_EQ(doc->for_metric("vibration")->members, (std::vector<std::string>{"robust_z_change", "seasonal_daily"}));
  EXPECT_FALSE(doc->for_metric("door_open")) << "switched off";
  EXPECT_EQ(doc->for_metric("pressure")->members, (std::vector<std::string>{"robust_z", "cusum", "silence"}));
  // The configuration builds an ensemble that runs.
  Ensemble e(*temperature);
  for (int i = 0; i < 100; ++i) EXPECT_LE(e.update(1'795'400'000'000'000'000LL + i * 60'000'000'000LL, 20.0 + i % 3).score, 1.0);
}

TEST(DetectorDocument, ErrorsNameTheLineAndTheKey) {
  struct Case {
    const char* text;
    const char* expected;
  } cases[] = {
      {"[defaults]\ndetectors = [\"robust_z\", \"magic\"]\n", "line 2: defaults.detectors: unknown detector 'magic'"},
      {"[defaults]\nalarm = 3\n", "line 2: defaults.alarm: expected a score from 0.05 to 1"},
      {"[metrics.t]\nwindow = 4\n", "line 2: metrics.t.window: expected a whole number from 16"},
      {"[metrics.t]\nenabled = \"no\"\n", "line 2: metrics.t.enabled: expected true or false"},
      {"[defaults]\nenabled = false\n", "defaults.enabled: unknown setting"},
      {"colour = 1\n", "line 1: colour: unknown key"},
      {"metrics = 3\n", "metrics: expected a table"},
      {"[metrics]\nt = 1\n", "metrics.t: expected a table of settings"},
      {"[defaults\n", "line 1"},
      {"[multivariate]\nmetrics = [\"a\", \"b\"]\npersistence = 5\nwindow = 3\n", "multivariate.window: is shorter than persistence (5 rows)"},
      {"[multivariate]\nmetrics = [\"a\", \"b\"]\nlimit = 1.5\n", "line 3: multivariate.limit: expected a quantile of the reference"},
  };
  for (const auto& c : cases) {
    auto doc = parse_detector_document(c.text);
    ASSERT_FALSE(doc) << c.text;
    EXPECT_NE(doc.error().message().find(c.expected), std::string::npos) << c.text << " -> " << doc.error().message();
  }
}

}  // namespace
}  // namespace fieldline::analytics
