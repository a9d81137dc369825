// libFuzzer target: detector checkpoints (what a restart loads) into the default ensemble, the
// checksum skipped so the loaders themselves see the bytes, then a few samples through what
// loaded; and the same bytes as a shard's detector file. Damage must be refused, never crash.
#include <cstdint>
#include <string>

#include "fieldline/analytics/detectors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::analytics;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto file = decode_detector_file(bytes)) {
    for (const auto& entry : *file) {
      Ensemble restored;
      (void)restore(restored, entry.ensemble);
    }
  }
  Ensemble whole;
  (void)restore(whole, bytes);  // header and checksum checks
  Ensemble e;
  fieldline::core::ByteReader in(bytes);
  if (e.load(in)) {
    int64_t ts = 1'795'400'000'000'000'000LL;
    for (double v : {1.0, 50.0, -3.0}) (void)e.update(ts += 60'000'000'000LL, v);
  }
  return 0;
}
