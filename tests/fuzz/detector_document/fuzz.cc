// libFuzzer target: profiles' detector documents (TOML), and an ensemble built from whatever
// parses. Errors must be reported, never crash.
#include <cstdint>
#include <string_view>

#include "fieldline/analytics/detector_document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::analytics;
  auto doc = parse_detector_document(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc) return 0;
  for (const auto& [metric, config] : doc->metrics) {
    if (!config) continue;
    Ensemble e(*config);
    (void)e.update(1'795'400'000'000'000'000LL, 1.0);
  }
  return 0;
}
