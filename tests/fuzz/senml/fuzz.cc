// libFuzzer target: SenML packs as a device sends them, JSON when the first byte is even,
// CBOR when odd. Whatever decodes has named, finite, in-limit points.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ingest;
  if (size == 0) return 0;
  std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  DecodeLimits limits;
  limits.max_values = 64;
  auto points = data[0] % 2 == 0 ? decode_senml_json(payload, 1'795'400'000'000'000'000, limits)
                                 : decode_senml_cbor(payload, 1'795'400'000'000'000'000, limits);
  if (!points) return 0;
  if (points->empty() || points->size() > limits.max_values) __builtin_trap();
  for (const auto& p : *points) {
    if (p.metric.empty()) __builtin_trap();
    if (const auto* d = std::get_if<double>(&p.value); d && !std::isfinite(*d)) __builtin_trap();
  }
  return 0;
}
