// libFuzzer target: vendor JSON documents through a mapping decoder (nested pointers, an
// array of records, a timestamp, scaled and unit-carrying fields), as a profile's contract
// would configure it.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/contract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ingest;
  static const Contract contract = [] {
    auto c = parse_contract(R"toml(
profile = "vendor"
[metrics.temperature]
type = "float"
unit = "Cel"
[metrics.state]
type = "string"
[metrics.on]
type = "bool"
[decoder]
format = "mapping"
time = "/t"
records = "/r"
[decoder.fields.temperature]
pointer = "/d/temp~1f"
scale = 0.1
offset = -3
unit = "[degF]"
[decoder.fields.state]
pointer = "/d/s/0"
[decoder.fields.on]
pointer = "/on"
)toml");
    if (!c) __builtin_trap();
    return *c;
  }();
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  DecodeLimits limits;
  limits.max_values = 64;
  auto points = decode_mapped(contract.decoder, payload, 1'795'400'000'000'000'000, limits);
  if (!points) return 0;
  if (points->empty() || points->size() > limits.max_values) __builtin_trap();
  for (const auto& p : *points) {
    if (!contract.metric(p.metric)) __builtin_trap();
    if (const auto* d = std::get_if<double>(&p.value); d && !std::isfinite(*d)) __builtin_trap();
  }
  return 0;
}
