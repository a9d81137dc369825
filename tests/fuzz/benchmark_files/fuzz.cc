// libFuzzer target: the benchmark-file readers behind `fieldline eval` — NAB's label windows
// (JSON), its data files (CSV) and time strings, SKAB's experiment files, C-MAPSS's cycle files — and a PCA fitted
// on whatever rows parse. Errors must be reported, never crash.
#include <cstdint>
#include <string_view>

#include "fieldline/analytics/nab.h"
#include "fieldline/analytics/pca.h"
#include "fieldline/analytics/skab.h"
#include "fieldline/ml/cmapss.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::analytics;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)nab::parse_time(text);
  (void)nab::parse_windows(text, "fuzz");
  if (auto series = nab::parse_series(text, "fuzz"); series && !series->values.empty()) {
    Ensemble detector;
    for (size_t i = 0; i < series->values.size(); ++i) (void)detector.update(series->times_us[i] * 1000, series->values[i]);
  }
  if (auto experiment = skab::parse_experiment(text, "fuzz"); experiment && experiment->rows.size() >= 3) {
    if (auto pca = PcaMonitor::fit(experiment->rows)) (void)pca->observe(experiment->rows.back());
  }
  (void)fieldline::ml::cmapss::parse_file(text, "fuzz");
  return 0;
}
